-- A source rock packed from the checkout offline (scripts/pack.sh, the
-- documented way; plain `luarocks pack` needs the rockspec's git source),
-- holding the rockspec as written, then built from that rock with no
-- network into a fresh tree, where braze loads and says its version.
-- Packs the committed HEAD. Tagged #rock (a build; .busted leaves it out):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=rock spec/install/pack_spec.lua
local helpers = require("spec.support.helpers")

local q = helpers.shell_quote
local ROOT = helpers.root
local VERSION = require("braze.version")

local sh = helpers.sh

describe("#rock a source rock", function()
  local tmp
  setup(function()
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-pack.XXXXXX"):gsub("\n$", "")
  end)
  teardown(function()
    if tmp and tmp:match("^/tmp/braze%-pack") then sh("rm -rf " .. q(tmp)) end
  end)

  it("is packed offline by scripts/pack.sh and builds offline into a tree", function()
    local rockspec = "lua-braze-" .. VERSION .. "-1.rockspec"
    local out = helpers.read_pipe("cd " .. q(ROOT) .. " && bash scripts/pack.sh " .. rockspec .. " "
      .. q(tmp) .. " 2>&1")
    local rock = tmp .. "/lua-braze-" .. VERSION .. "-1.src.rock"
    assert.equal(rock .. "\n", out)
    -- the rockspec as written, with its real source, and the sources in lua-braze/
    local packed = helpers.read_pipe("unzip -p " .. q(rock) .. " " .. rockspec)
    assert.equal(helpers.read_file(ROOT .. "/" .. rockspec), packed)
    local listing = helpers.read_pipe("unzip -l " .. q(rock))
    assert.matches("lua-braze/csrc/core.c", listing, 1, true)
    assert.matches("lua-braze/lua/braze/init.lua", listing, 1, true)
    assert.matches("lua-braze/LICENSE", listing, 1, true)
    local log = tmp .. "/build.log"
    assert(sh("cd " .. q(tmp) .. " && luarocks --lua-version=5.4 --tree " .. q(tmp .. "/tree")
      .. " build --deps-mode=none " .. q(rock) .. " >" .. q(log) .. " 2>&1"), helpers.read_file(log))
    local v = helpers.read_pipe("LUA_PATH=" .. q(tmp .. "/tree/share/lua/5.4/?.lua;" .. tmp .. "/tree/share/lua/5.4/?/init.lua")
      .. " LUA_CPATH=" .. q(tmp .. "/tree/lib/lua/5.4/?.so")
      .. " lua5.4 -e 'io.write(require(\"braze\")._VERSION)'")
    assert.equal("lua-braze " .. VERSION, v)
  end)
end)
