--- fuzz/alloc_fail.lua: the operations fuzz/alloc_fail.c fails at every
--- allocation point. Setup (modules, client, session) runs unarmed; the
--- returned step function runs one operation armed, checks what came
--- out, and returns whether the injected failure fired.
---   alloc_fail fuzz/alloc_fail.lua SECONDS SCENARIO MOCK_URL API_KEY
local scenario, url, key = ...
local braze = require("braze")
local core = require("braze.core")

local client = braze.new{ api_key = key, endpoint = url, max_retries = 0 }
local ids = {}
for seg in client:each() do ids[#ids + 1] = seg.id end
assert(#ids > 0, "the mock has no segments")
local session = core.session{ api_key = key, timeout = 5 }
local list_url = url .. "/segments/list"

-- Collect a batch's outcomes (n of them); a raise leaves the rest in flight.
-- Registry references in use (luaL_ref's free slots hold numbers; the tags
-- below are tables): must be the same after every step.
local registry = debug.getregistry()
local function live_refs()
  local n = 0
  for k, v in pairs(registry) do
    if math.type(k) == "integer" and type(v) ~= "number" then n = n + 1 end
  end
  return n
end

local function drain(b, n, mode)
  local got, fds = 0, {}
  for _ = 1, 2000 do
    if mode == "poll" then got = got + #b:poll(5)
    else
      for _, w in ipairs(b:updates()) do fds[w.fd] = w.what ~= "remove" or nil end
      got = got + #b:action()
      for fd in pairs(fds) do got = got + #b:action(fd, "rw") end
    end
    if got >= n then return end
  end
  error("batch: no answer")
end

local ops = {
  list = function() assert(client:list{}) end,
  details = function() assert(client:details(ids[1])) end,
  series = function() assert(client:data_series{ segment_id = ids[1], length = 3 }) end,
  each_details = function()
    local n = 0
    for seg in client:each{ details = true } do n = n + (seg and 1 or 0) end
    assert(n == #ids)
  end,
  batch_poll = function()
    local b = session:batch(2)
    b:submit(list_url, { 1 })
    b:submit(list_url, { 2 })
    drain(b, 2, "poll")
    b:close()
  end,
  batch_sockets = function()
    local b = session:batch(2, "sockets")
    b:submit(list_url, { 1 })
    b:submit(list_url, { 2 })
    drain(b, 2, "sockets")
    b:close()
  end,
}
local op = assert(ops[scenario], "unknown scenario " .. tostring(scenario))

collectgarbage()
local refs = live_refs()

return function()
  arm()
  local ok, err = pcall(op)
  local fired = disarm()
  if not ok then
    -- A memory error comes out as one (or wrapped in a braze error whose
    -- message says so); anything else is a bug the failure uncovered.
    local msg = tostring(err)
    if not (fired and (msg:find("memory", 1, true) or msg:find("braze", 1, true))) then
      error("unexpected error: " .. msg, 0)
    end
  end
  collectgarbage()
  collectgarbage()
  local now = live_refs()
  if now ~= refs then error(string.format("registry references: %d, were %d", now, refs), 0) end
  return fired
end
