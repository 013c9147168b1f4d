rockspec_format = "3.0"
package = "lua-braze"
version = "scm-0"
source = { url = "git+https://example.invalid/lua-braze.git" }
description = {
  summary = "Fast, safe access to Braze's segment-export REST API (libcurl + a C JSON decoder)",
  detailed = [[
A C core (libcurl, keep-alive, JSON straight into Lua tables) with a small
Lua front: list, details, data_series, a pagination iterator, typed errors,
retries that respect Braze's rate limits. Ships braze-mock (a local server
that behaves like Braze; needs LuaSocket and argparse) and braze-segments
(an export command; needs Lua 5.3+ and argparse).
]],
  license = "MIT",
}
-- Only the library's needs are listed, so `luarocks make` works offline:
-- a rock listed here that is not in the tree makes LuaRocks fetch it from a
-- server, and it does not see Debian's packages (lua-argparse,
-- lua-socket), which serve as well. The two commands need more, and say
-- exactly what is missing, with the Debian package and the rock, when it is:
--   braze-segments  Lua 5.3 or 5.4 (on a 5.1/LuaJIT tree it re-runs itself
--                   with a lua5.4/lua5.3 that has lua-braze, or says so),
--                   argparse (Debian lua-argparse, rock argparse)
--   braze-mock      any Lua; LuaSocket (lua-socket, rock luasocket) and argparse
-- Online, `luarocks install argparse luasocket` first gives both commands
-- everything.
dependencies = { "lua >= 5.1" }
test_dependencies = { "lua-cjson", "busted" }
-- libcurl 7.66.0 or newer is needed (curl_multi_poll); external_dependencies
-- cannot carry a version, so csrc/process.c stops the build with an #error
-- on an older curl.h.
-- Only the library is looked up: Debian keeps curl/curl.h in a multiarch
-- directory (/usr/include/<triplet>) that LuaRocks does not search but the
-- C compiler does.
external_dependencies = {
  CURL = { library = "curl" },
}
build = {
  type = "builtin",
  modules = {
    ["braze.core"] = {
      -- The same sources, defines and libraries as CMakeLists.txt.
      sources = { "csrc/core.c", "csrc/process.c", "csrc/random.c", "csrc/session.c",
        "csrc/headers.c", "csrc/decode.c", "csrc/interrupt.c", "csrc/terminal.c" },
      defines = { "_DEFAULT_SOURCE" },
      libraries = { "curl", "pthread", "dl" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    ["braze"] = "lua/braze/init.lua",
    ["braze.args"] = "lua/braze/args.lua",
    ["braze.cli"] = "lua/braze/cli.lua",
    ["braze.cli.export"] = "lua/braze/cli/export.lua",
    ["braze.cli.format"] = "lua/braze/cli/format.lua",
    ["braze.cli.json"] = "lua/braze/cli/json.lua",
    ["braze.cli.plot"] = "lua/braze/cli/plot.lua",
    ["braze.cli.progress"] = "lua/braze/cli/progress.lua",
    ["braze.errors"] = "lua/braze/errors.lua",
    ["braze.instances"] = "lua/braze/instances.lua",
    ["braze.launch"] = "lua/braze/launch.lua",
    ["braze.mock"] = "lua/braze/mock/init.lua",
    ["braze.mock.api"] = "lua/braze/mock/api.lua",
    ["braze.mock.control"] = "lua/braze/mock/control.lua",
    ["braze.mock.data"] = "lua/braze/mock/data.lua",
    ["braze.mock.faults"] = "lua/braze/mock/faults.lua",
    ["braze.mock.options"] = "lua/braze/mock/options.lua",
    ["braze.mock.ratelimit"] = "lua/braze/mock/ratelimit.lua",
    ["braze.mock.server"] = "lua/braze/mock/server.lua",
    ["braze.retry"] = "lua/braze/retry.lua",
    ["braze.scheduler"] = "lua/braze/scheduler.lua",
    ["braze.shape"] = "lua/braze/shape.lua",
    ["braze.each"] = "lua/braze/each.lua",
    ["braze.window"] = "lua/braze/window.lua",
    ["braze.window.shared"] = "lua/braze/window/shared.lua",
    ["braze.window.store"] = "lua/braze/window/store.lua",
    ["braze.window.shdict"] = "lua/braze/window/shdict.lua",
    ["braze.window.redis"] = "lua/braze/window/redis.lua",
    ["braze.transport.response"] = "lua/braze/transport/response.lua",
    ["braze.transport.ngx"] = "lua/braze/transport/ngx.lua",
    ["braze.transport.haproxy"] = "lua/braze/transport/haproxy.lua",
    ["braze.transport.luv"] = "lua/braze/transport/luv.lua",
  },
  install = {
    bin = {
      ["braze-mock"] = "bin/braze-mock",
      ["braze-segments"] = "bin/braze-segments",
    },
  },
}
