-- The braze-segments command. Build from the repository root (the paths
-- below are relative to it):
--   luarocks make cli/braze-segments-scm-0.rockspec
-- after lua-braze itself (`luarocks make` there); offline, with argparse
-- from Debian (lua-argparse): `luarocks make --deps-mode=none ...`.
rockspec_format = "3.0"
package = "braze-segments"
version = "scm-0"
source = { url = "git+https://example.invalid/lua-braze.git" }
description = {
  summary = "List, show, plot and export Braze segments from the shell",
  detailed = [[
braze-segments reads Braze's segment-export REST API through lua-braze:
tables, CSV, JSON Lines, a terminal plot of a segment's size, and a
resumable, rate-limit-aware export of every segment with its details and
size series. The API key comes only from BRAZE_API_KEY.
]],
  license = "MIT",
  -- The repository's public address goes here (and in source.url) before an upload.
  homepage = "https://example.invalid/lua-braze",
  maintainer = "The lua-braze authors",
  labels = { "braze", "cli", "export" },
}
-- On a Lua 5.1/LuaJIT tree the command re-runs itself with a lua5.4/lua5.3
-- that has lua-braze and braze-segments, or says how to get one.
dependencies = { "lua >= 5.1", "lua-braze", "argparse" }
-- Type "none" with install.lua, not "builtin": builtin also copies the
-- whole lua/ directory of the build's directory (the checkout's root, which
-- is the library's), and this rock must hold its own modules only.
build = {
  type = "none",
  install = {
    lua = {
      ["braze_segments"] = "cli/lua/braze_segments/init.lua",
      ["braze_segments.commands"] = "cli/lua/braze_segments/commands.lua",
      ["braze_segments.export"] = "cli/lua/braze_segments/export.lua",
      ["braze_segments.format"] = "cli/lua/braze_segments/format.lua",
      ["braze_segments.html"] = "cli/lua/braze_segments/html.lua",
      ["braze_segments.json"] = "cli/lua/braze_segments/json.lua",
      ["braze_segments.launch"] = "cli/lua/braze_segments/launch.lua",
      ["braze_segments.manifest"] = "cli/lua/braze_segments/manifest.lua",
      ["braze_segments.page"] = "cli/lua/braze_segments/page.lua",
      ["braze_segments.plot"] = "cli/lua/braze_segments/plot.lua",
      ["braze_segments.progress"] = "cli/lua/braze_segments/progress.lua",
      ["braze_segments.report"] = "cli/lua/braze_segments/report.lua",
      ["braze_segments.svg"] = "cli/lua/braze_segments/svg.lua",
      ["braze_segments.usage"] = "cli/lua/braze_segments/usage.lua",
    },
    bin = { ["braze-segments"] = "cli/bin/braze-segments" },
  },
}
