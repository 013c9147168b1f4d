--- bench/many.lua: client:details_many at a concurrency vs one client:details
-- after another, against braze-mock started with --latency (bench/run.sh
-- starts it with --latency 20 --segments COUNT).
--
--   lua5.4 bench/many.lua MOCK_URL COUNT CONCURRENCY RUNS
-- Prints per run:  RESULT details_many_speedup <sequential_time/many_time> ...
-- When the client has no details_many, prints "skipped: details_many not
-- available" and nothing else (no number).
local braze = require("braze")
local mock = require("braze_mock")

local url, count = arg[1], tonumber(arg[2] or "1000")
local concurrency, runs = tonumber(arg[3] or "16"), tonumber(arg[4] or "3")
assert(url and count, "usage: many.lua MOCK_URL COUNT CONCURRENCY RUNS")
local now = require("braze.core").monotonic

-- The clearly named placeholder: no details_many, so no number at all.
local function details_many_not_available()
  print("skipped: details_many not available")
end

local client = braze.new({ api_key = mock.DEFAULTS.api_key, endpoint = url, max_retries = 0 })
if type(client.details_many) ~= "function" then
  details_many_not_available()
  return
end

local ids = {}
for i = 1, count do ids[i] = mock.segment_id(i) end

local function sequential()
  local t0 = now()
  for i = 1, count do
    local d, err = client:details(ids[i])
    if not d then error("details: " .. tostring(err)) end
  end
  return now() - t0
end

local function many()
  local t0 = now()
  local results, errs = client:details_many(ids, { concurrency = concurrency })
  local t = now() - t0
  for i = 1, count do
    if not results[i] then error("details_many[" .. i .. "]: " .. tostring(errs[i])) end
  end
  return t
end

many() -- the pool's connections, opened once
for r = 1, runs do
  local ts, tm
  if r % 2 == 1 then ts = sequential(); tm = many() else tm = many(); ts = sequential() end
  print(string.format("RESULT details_many_speedup %.4f sequential=%.3fs many=%.3fs count=%d concurrency=%d",
    ts / tm, ts, tm, count, concurrency))
  io.stdout:flush()
end
client:close()
