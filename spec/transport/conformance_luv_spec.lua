--- The transport conformance suite (spec/support/conformance.lua) against
-- braze.transport.luv in plain Lua with lua-luv: each call runs in a
-- coroutine while this file drives the loop (uv.run). Runs on every Lua:
--   lua5.4 /usr/bin/busted --cpath='build/?.so' spec/transport/conformance_luv_spec.lua
local conformance = require("spec.support.conformance")
local braze = require("braze")
local uv = require("luv")
local luv = require("braze.transport.luv")

-- Lua 5.1 (not LuaJIT) cannot yield across a pcall.
local pcall_yields = _VERSION ~= "Lua 5.1" or type(jit) == "table" -- luacheck: ignore 113

-- Run fn() in a coroutine, the loop turning until it ends (or 30 s pass);
-- returns what it returned, re-raises what it raised.
local function on_loop(fn)
  local done, ok, value = false, nil, nil
  coroutine.wrap(function()
    if pcall_yields then
      ok, value = xpcall(fn, debug.traceback)
    else
      ok, value = true, fn()
    end
    done = true
  end)()
  local deadline = uv.hrtime() + 30e9
  local guard = uv.new_timer() -- wakes uv.run("once") at least every 50 ms
  guard:start(50, 50, function() end)
  while not done and uv.hrtime() < deadline do uv.run("once") end
  guard:stop()
  guard:close()
  uv.run("nowait") -- the guard's close
  assert(done, "the call did not end within 30 s")
  if not ok then error(value, 0) end
  return value
end

conformance.run("luv (plain Lua, lua-luv)", function(case, url)
  return on_loop(function()
    local client = braze.new(conformance.options(case, { endpoint = url, transport = luv }))
    local got = conformance.result(client:details(conformance.SEGMENT_ID))
    client:close()
    return got
  end)
end)
