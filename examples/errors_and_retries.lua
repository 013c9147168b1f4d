-- Error handling and retries: what `err.kind` tells you, how max_retries and
-- the rate-limit wait behave. The failure scenarios need the mock (they queue
-- faults through its /_mock/fault control API); against a real endpoint only
-- the first call runs.
--
-- Run from the repository root (after `cmake -S . -B build && cmake --build build`):
--   lua5.4 bin/braze-mock --port 0 &        # prints: braze-mock listening on URL pid PID
--   BRAZE_API_KEY=braze-mock-key BRAZE_REST_ENDPOINT=URL \
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/errors_and_retries.lua
local braze = require("braze")
local socket = require("socket")       -- lua-socket: a sleep for the retry hook
local http = require("socket.http")    -- ... and plain GETs to the mock's control API

local endpoint = assert(os.getenv("BRAZE_REST_ENDPOINT"), "set BRAZE_REST_ENDPOINT")
endpoint = braze.instances[endpoint:upper()] or endpoint

-- What to do about each kind of failure.
local function advice(err)
  if err.kind == "http" then
    if err.status == 401 then return "fix the key, or the instance (Braze says 401 for both)" end
    if err.status == 403 then return "the key lacks the segments.* permission" end
    if err.status and err.status >= 500 then return "Braze is failing: try again later" end
    return "a bad request: check the arguments"
  elseif err.kind == "rate_limited" then
    return ("rate limited: try again in %s s"):format(tostring(err.retry_after or "?"))
  elseif err.kind == "network" then
    return "no connection: check the endpoint and the network"
  elseif err.kind == "timeout" then
    return "too slow: raise `timeout` or try later"
  elseif err.kind == "decode" then
    return "the answer was not Braze's JSON (a proxy page?)"
  elseif err.kind == "too_large" then
    return "raise max_body"
  end
  return "unexpected"
end

-- Print the title, make the call, print the outcome.
local function report(title, call)
  print("== " .. title)
  local res, err = call()
  if res then
    print(("   ok: %d segment(s) on page 0"):format(#(res.segments or {})))
  else
    -- tostring(err) is one line, with the API key redacted.
    print(("   %s error after %s attempt(s): %s"):format(err.kind, tostring(err.attempts), tostring(err)))
    print("   -> " .. advice(err))
  end
  return res
end

-- Print each wait, then sleep: the `sleep` option is how to observe (or
-- replace, in tests) the backoff.
local function sleep(seconds)
  print(("   (waiting %.2f s before the next attempt)"):format(seconds))
  socket.sleep(seconds)
end

local client = braze.new({ max_retries = 3, retry_base = 0.05, retry_max = 0.2, sleep = sleep })
if not report("a normal call", function() return client:list({ page = 0 }) end) then
  os.exit(1)
end

local function is_mock()
  local body, code = http.request(endpoint .. "/_mock/stats")
  return code == 200 and body:find('"requests"') ~= nil
end
if not is_mock() then
  print("(not the mock: skipping the failure scenarios)")
  os.exit(0)
end
local function fault(query)
  local body, code = http.request(endpoint .. "/_mock/fault?" .. query)
  assert(code == 200, "fault API: " .. tostring(body))
end

-- 1. Two 503s: retried with backoff, the third attempt succeeds.
fault("type=503&count=2")
report("two 503s, max_retries = 3", function() return client:list({ page = 0 }) end)

-- 2. The same with max_retries = 1: the error after 2 attempts.
local impatient = braze.new({ max_retries = 1, retry_base = 0.05, sleep = sleep })
fault("type=503&count=2")
report("two 503s, max_retries = 1", function() return impatient:list({ page = 0 }) end)

-- 3. A 429 with Retry-After: 1 -> waited for, then retried.
fault("type=429&retry_after=1")
report("rate limited, Retry-After: 1", function() return client:list({ page = 0 }) end)

-- 4. A 429 when we will not wait that long (max_wait = 0): rate_limited.
local no_wait = braze.new({ max_wait = 0, sleep = sleep })
fault("type=429&retry_after=30")
report("rate limited, max_wait = 0", function() return no_wait:list({ page = 0 }) end)

-- 5. A wrong key: 401, never retried; Braze echoes the key, we redact it.
local wrong = braze.new({ api_key = "not-the-right-key-0123456789" })
report("a wrong API key", function() return wrong:list({ page = 0 }) end)

-- 6. A slow answer: timeout (and no retry with max_retries = 0).
local quick = braze.new({ timeout = 0.3, max_retries = 0 })
fault("type=delay&ms=1500")
report("a 1.5 s answer, timeout = 0.3 s", function() return quick:list({ page = 0 }) end)

-- 7. Nothing listening: network.
local nowhere = braze.new({ endpoint = "http://127.0.0.1:1", max_retries = 0 })
report("nothing listening", function() return nowhere:list({ page = 0 }) end)

-- Leave the mock clean for whoever comes next.
http.request(endpoint .. "/_mock/reset")
for _, c in ipairs({ client, impatient, no_wait, wrong, quick, nowhere }) do c:close() end
