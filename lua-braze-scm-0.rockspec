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
that behaves like Braze; needs LuaSocket) and braze-segments (an export
command; needs argparse).
]],
  license = "MIT",
}
-- Only the core module's needs are listed, so `luarocks make` works offline.
-- The two commands also need LuaSocket (braze-mock) and argparse
-- (braze-segments): Debian's lua-socket and lua-argparse serve.
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
      sources = { "csrc/core.c", "csrc/process.c", "csrc/random.c", "csrc/session.c", "csrc/headers.c", "csrc/decode.c" },
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
    ["braze.mock"] = "lua/braze/mock.lua",
    ["braze.retry"] = "lua/braze/retry.lua",
    ["braze.transport.ngx"] = "lua/braze/transport/ngx.lua",
  },
  install = {
    bin = {
      ["braze-mock"] = "bin/braze-mock",
      ["braze-segments"] = "bin/braze-segments",
    },
  },
}
