--- bench/export_memory.lua: peak RSS of a pipelined export (each with
-- details and a 30-day series, concurrency 16) of N segments, in a fresh
-- process, against braze-mock.
--
--   lua5.4 bench/export_memory.lua MOCK_URL SEGMENTS   -> prints "PEAK_KIB <n>"
-- bench/run.sh runs it for 1,000 and 10,000 segments and reports the ratio.
local braze = require("braze")
local mock = require("braze_mock")

local url, n = arg[1], tonumber(arg[2] or "1000")
assert(url and n, "usage: export_memory.lua MOCK_URL SEGMENTS")
local c = braze.new({ api_key = mock.DEFAULTS.api_key, endpoint = url, max_retries = 0 })
local count = 0
for seg in c:each{ details = true, series = { length = 30, ending_at = "2026-11-01" }, concurrency = 16 } do
  assert(seg.details and seg.series)
  count = count + 1
end
assert(count == n, "exported " .. count .. " of " .. n)
c:close()
for line in io.lines("/proc/self/status") do
  local kib = line:match("^VmHWM:%s*(%d+)")
  if kib then print("PEAK_KIB " .. kib) end
end
