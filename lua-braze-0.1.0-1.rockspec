-- lua-braze 0.1.0: lua-braze-scm-0.rockspec with this version and a tagged
-- source; everything else is the same (spec/install/version_spec.lua checks).
rockspec_format = "3.0"
package = "lua-braze"
version = "0.1.0-1"
source = { url = "git+https://example.invalid/lua-braze.git", tag = "v0.1.0" }
description = {
  summary = "Fast, safe access to Braze's segment-export REST API (libcurl + a C JSON decoder)",
  detailed = [[
A C core (libcurl, keep-alive, JSON straight into Lua tables) with a small
Lua front: list, details, data_series, a pagination iterator, typed errors,
retries that respect Braze's rate limits, transports for OpenResty, HAProxy
and luv. The export command and the mock server are rocks of their own
(cli/braze-segments-scm-0.rockspec, mock/braze-mock-scm-0.rockspec).
]],
  license = "MIT",
  -- The repository's public address goes here (and in source.url) before an upload.
  homepage = "https://example.invalid/lua-braze",
  maintainer = "The lua-braze authors",
  labels = { "braze", "api", "http", "libcurl", "json" },
}
-- The library needs Lua and libcurl, nothing else.
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
-- The C sources of braze.core: CMakeLists.txt reads this list too (keep it
-- one "csrc/x.c" each, inside these quotes).
local C_SOURCES = "csrc/core.c csrc/process.c csrc/random.c csrc/session.c csrc/batch.c csrc/transfer.c "
  .. "csrc/headers.c csrc/decode.c csrc/interrupt.c csrc/terminal.c"
-- Type "command", not "builtin": builtin compiles into the checkout
-- (csrc/*.o, braze/core.so at its root, where a later `lua` run from there
-- loads the wrong build) and copies the whole lua/ directory, a git-ignored
-- lua/braze/core.so for another Lua included. This compiles in one step
-- straight into the rock's lib/ (the defines and libraries are
-- CMakeLists.txt's), leaving the checkout as it was.
build = {
  type = "command",
  build_command = [[mkdir -p "$(LIBDIR)/braze" && $(CC) $(CFLAGS) $(LIBFLAG) -D_DEFAULT_SOURCE ]]
    .. [[-I"$(LUA_INCDIR)" -I"$(CURL_INCDIR)" -o "$(LIBDIR)/braze/core.so" ]] .. C_SOURCES
    .. [[ -L"$(CURL_LIBDIR)" -lcurl -lpthread -ldl]],
  install = {
    lua = {
      ["braze"] = "lua/braze/init.lua",
      ["braze.check"] = "lua/braze/check.lua",
      ["braze.date"] = "lua/braze/date.lua",
      ["braze.each"] = "lua/braze/each.lua",
      ["braze.errors"] = "lua/braze/errors.lua",
      ["braze.instances"] = "lua/braze/instances.lua",
      ["braze.options"] = "lua/braze/options.lua",
      ["braze.retry"] = "lua/braze/retry.lua",
      ["braze.scheduler"] = "lua/braze/scheduler.lua",
      ["braze.shape"] = "lua/braze/shape.lua",
      ["braze.types"] = "lua/braze/types.lua",
      ["braze.url"] = "lua/braze/url.lua",
      ["braze.version"] = "lua/braze/version.lua",
      ["braze.window"] = "lua/braze/window.lua",
      ["braze.window.shared"] = "lua/braze/window/shared.lua",
      ["braze.window.store"] = "lua/braze/window/store.lua",
      ["braze.window.shdict"] = "lua/braze/window/shdict.lua",
      ["braze.window.redis"] = "lua/braze/window/redis.lua",
      ["braze.transport.response"] = "lua/braze/transport/response.lua",
      ["braze.transport.ngx"] = "lua/braze/transport/ngx.lua",
      ["braze.transport.haproxy"] = "lua/braze/transport/haproxy.lua",
      ["braze.transport.haproxy_workers"] = "lua/braze/transport/haproxy_workers.lua",
      ["braze.transport.http1"] = "lua/braze/transport/http1.lua",
      ["braze.transport.sockets"] = "lua/braze/transport/sockets.lua",
      ["braze.transport.luv"] = "lua/braze/transport/luv.lua",
      ["braze.transport.cqueues"] = "lua/braze/transport/cqueues.lua",
    },
  },
}
