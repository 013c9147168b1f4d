--- braze.transport.luv in its hosts: plain Lua with lua-luv (here, under
-- busted) and Neovim (spec/transport/luv/neovim_runner.lua inside `nvim --headless`,
-- its report parsed here). Both run the cases of spec/transport/luv/cases.lua.
--
-- The Neovim part is tagged #neovim (excluded by .busted's default run):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=neovim spec/transport/luv_spec.lua
-- It needs `nvim` and braze.core built for LuaJIT in build-luajit/
-- (bash scripts/build.sh build-luajit -DBRAZE_LUA=luajit), found by Neovim
-- through runtimepath alone (lua/braze/core.so links to it).
local helpers = require("spec.support.helpers")
local cases = require("spec.transport.luv.cases")

local uv = require("luv")

-- Drive the loop until done() or `seconds` passed.
local function wait(seconds, done)
  local deadline = uv.hrtime() + seconds * 1e9
  local guard = uv.new_timer() -- wakes uv.run("once") at least every 50 ms
  guard:start(50, 50, function() end)
  while not done() and uv.hrtime() < deadline do uv.run("once") end
  guard:stop()
  guard:close()
  uv.run("nowait") -- the guard's close
end

describe("#lua53 braze.transport.luv with plain Lua and lua-luv", function()
  local fast, slow
  setup(function()
    fast = helpers.start_mock{ segments = 250 }
    slow = helpers.start_mock{ latency = 500 }
  end)
  teardown(function()
    if fast then fast:stop() end
    if slow then slow:stop() end
  end)

  -- The cases are made once the mocks run (cases.new{} only names them).
  local list
  for i, case in ipairs(cases.new{}) do
    it(case.name, function()
      list = list or cases.new{ uv = uv, fast = fast, slow = slow, wait = wait, walk = true,
        figure = function(name, value)
          print(("\n  luv figure: %s = %s"):format(name, tostring(value)))
        end }
      cases.run(list[i], wait)
    end)
  end

  it("a call without a loop module raises a clear error at new()", function()
    local t = require("braze.transport.luv").using(nil)
    local braze = require("braze")
    assert.has_error(function()
      braze.new{ api_key = "k", endpoint = "http://127.0.0.1:1", allow_http = true, transport = t }
    end, nil)
    local ok, err = pcall(braze.new, { api_key = "k", endpoint = "http://127.0.0.1:1", transport = t })
    assert.is_false(ok)
    assert.matches("no libuv loop here", tostring(err), 1, true)
  end)
end)

describe("#lua53 #neovim braze.transport.luv inside Neovim", function()
  local report, lines = {}, nil
  setup(function()
    local out = os.tmpname()
    local cmd = "cd " .. helpers.shell_quote(helpers.root) .. " && env -u LUA_PATH -u LUA_CPATH"
      .. " BRAZE_LUV_REPORT=" .. helpers.shell_quote(out)
      .. " timeout 300 nvim --headless -u NONE --cmd 'set rtp+=.'"
      .. " -c 'luafile spec/transport/luv/neovim_runner.lua' -c 'qa!' </dev/null >/dev/null 2>&1"
    os.execute(cmd)
    local text = helpers.read_file(out) or ""
    os.remove(out)
    lines = {}
    for l in text:gmatch("[^\n]+") do
      lines[#lines + 1] = l
      local status, name, rest = l:match("^(%a+) ([^\t]*)\t?(.*)$")
      if status == "ok" or status == "fail" then report[name] = { status = status, err = rest } end
      if status == "figure" then print(("\n  neovim figure: %s = %s"):format(name, rest)) end
    end
  end)

  it("runs to its end, finding braze.core through runtimepath alone", function()
    assert.equal("done", lines[#lines], table.concat(lines, "\n"))
    assert.matches("^core %./lua/braze/core%.so$", lines[1])
  end)

  local names = cases.new{}
  for _, case in ipairs(names) do
    it(case.name, function()
      local r = report[case.name]
      assert.is_not_nil(r, "no result for this case")
      assert.equal("ok", r.status, r.err)
    end)
  end
end)
