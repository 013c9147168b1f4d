--- The transport conformance suite (spec/support/conformance.lua) against
-- braze.transport.luv inside Neovim: each call runs in its own
-- `nvim --headless` (spec/transport/luv/conformance_call.lua), on Neovim's loop, with
-- lua-braze and braze.core (build-luajit/) found through runtimepath alone.
-- Tagged #neovim (excluded by .busted's default run):
--   lua5.4 /usr/bin/busted --cpath='build/?.so' --exclude-tags= --tags=neovim \
--     spec/transport/conformance_neovim_spec.lua
local conformance = require("spec.support.conformance")
local helpers = require("spec.support.helpers")
local cjson = require("cjson")

describe("#neovim", function()
  conformance.run("luv inside Neovim", function(case, url)
    local out = os.tmpname()
    local opts = conformance.options(case, { endpoint = url })
    local cmd = "cd " .. helpers.shell_quote(helpers.root) .. " && env -u LUA_PATH -u LUA_CPATH"
      .. " BRAZE_CONF_OUT=" .. helpers.shell_quote(out)
      .. " BRAZE_CONF_ID=" .. helpers.shell_quote(conformance.SEGMENT_ID)
      .. " BRAZE_CONF_OPTS=" .. helpers.shell_quote(cjson.encode(opts))
      .. " timeout 60 nvim --headless -u NONE --cmd 'set rtp+=.'"
      .. " -c 'luafile spec/transport/luv/conformance_call.lua' -c 'qa!' </dev/null >/dev/null 2>&1"
    os.execute(cmd)
    local text = helpers.read_file(out)
    os.remove(out)
    assert(text and text ~= "", "no result from Neovim")
    local doc = cjson.decode(text)
    return conformance.result(doc.ok and doc.body or nil, doc.error, doc.text)
  end)
end)
