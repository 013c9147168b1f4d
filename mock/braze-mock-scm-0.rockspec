-- braze-mock, a local server that behaves like Braze's segment-export API,
-- for tests. Build from the repository root (the paths below are relative
-- to it):
--   luarocks make mock/braze-mock-scm-0.rockspec
-- offline, with LuaSocket and argparse from Debian (lua-socket,
-- lua-argparse): `luarocks make --deps-mode=none ...`.
rockspec_format = "3.0"
package = "braze-mock"
version = "scm-0"
source = { url = "git+https://example.invalid/lua-braze.git" }
description = {
  summary = "A local mock of Braze's segment-export REST API, for tests",
  detailed = [[
braze-mock serves /segments/list, /segments/details and
/segments/data_series on a loopback port with rate-limit headers, and takes
faults (statuses, resets, slow or broken bodies) through a control API.
Usable as a command or from Lua (require "braze_mock").
]],
  license = "MIT",
  -- The repository's public address goes here (and in source.url) before an upload.
  homepage = "https://example.invalid/lua-braze",
  maintainer = "The lua-braze authors",
  labels = { "braze", "mock", "testing" },
}
dependencies = { "lua >= 5.1", "luasocket", "argparse" }
-- Type "none" with install.lua, not "builtin": builtin also copies the
-- whole lua/ directory of the build's directory (the checkout's root, which
-- is the library's), and this rock must hold its own modules only.
build = {
  type = "none",
  install = {
    lua = {
      ["braze_mock"] = "mock/lua/braze_mock/init.lua",
      ["braze_mock.api"] = "mock/lua/braze_mock/api.lua",
      ["braze_mock.control"] = "mock/lua/braze_mock/control.lua",
      ["braze_mock.data"] = "mock/lua/braze_mock/data.lua",
      ["braze_mock.faults"] = "mock/lua/braze_mock/faults.lua",
      -- the start-up checks braze-segments has too: one file, two names
      ["braze_mock.launch"] = "cli/lua/braze_segments/launch.lua",
      ["braze_mock.options"] = "mock/lua/braze_mock/options.lua",
      ["braze_mock.ratelimit"] = "mock/lua/braze_mock/ratelimit.lua",
      ["braze_mock.server"] = "mock/lua/braze_mock/server.lua",
      -- lua-braze's version, defined once
      ["braze_mock.version"] = "lua/braze/version.lua",
    },
    bin = { ["braze-mock"] = "mock/bin/braze-mock" },
  },
}
