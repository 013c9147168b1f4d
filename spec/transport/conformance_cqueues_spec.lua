--- The transport conformance suite (spec/support/conformance.lua) against
-- braze.transport.cqueues: each call runs in a coroutine of a cqueues
-- controller, which this file steps. Runs on every Lua lua-cqueues is built
-- for (5.1-5.4, LuaJIT):
--   lua5.4 /usr/bin/busted --cpath='build/?.so' spec/transport/conformance_cqueues_spec.lua
local conformance = require("spec.support.conformance")
local braze = require("braze")
local cqueues = require("cqueues")
local cqt = require("braze.transport.cqueues")

-- Run fn() in a coroutine of a new controller until every coroutine ended
-- (or 30 s passed); returns what fn returned, re-raises what it raised.
-- (No pcall around fn: Lua 5.1 cannot yield across one.)
local function in_controller(fn)
  local cq = cqueues.new()
  local done, value = false, nil
  cq:wrap(function()
    value = fn()
    done = true
  end)
  local deadline = cqueues.monotime() + 30
  while not cq:empty() and cqueues.monotime() < deadline do
    local ok, err = cq:step(0.05)
    if not ok then error(err, 0) end
  end
  assert(done, "the call did not end within 30 s")
  assert(cq:empty(), "coroutines left in the controller after the call")
  return value
end

conformance.run("cqueues", function(case, url)
  return in_controller(function()
    local client = braze.new(conformance.options(case, { endpoint = url, transport = cqt }))
    local got = conformance.result(client:details(conformance.SEGMENT_ID))
    client:close()
    return got
  end)
end)
