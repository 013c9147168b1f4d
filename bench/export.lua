--- bench/export.lua: the whole export (every segment with its details and
-- a 30-day series) against braze-mock started with --latency, as a ratio to
-- the latency bound:
--
--   bound = (list pages) x latency + ceil(2 x segments / concurrency) x latency
--
-- (the pages in sequence, then every details and series call `concurrency`
-- at a time). Runs the library's pipelined each and the braze-segments
-- command, interleaved; the sequential loop (each, then details and
-- data_series one by one) once beside them when asked.
--
--   lua5.4 bench/export.lua MOCK_URL SEGMENTS LATENCY_MS CONCURRENCY RUNS [sequential]
-- Prints per run:
--   RESULT export_lib_vs_bound_<L>ms <time/bound> ...
--   RESULT export_cli_vs_bound_<L>ms <time/bound> ...
-- and with `sequential`: RESULT export_sequential_vs_bound_<L>ms <time/bound>
local braze = require("braze")
local mock = require("braze_mock")
local now = require("braze.core").monotonic

local url, segments, latency_ms = arg[1], tonumber(arg[2] or "1000"), tonumber(arg[3] or "20")
local concurrency, runs, sequential = tonumber(arg[4] or "16"), tonumber(arg[5] or "3"), arg[6] == "sequential"
assert(url and segments and latency_ms, "usage: export.lua MOCK_URL SEGMENTS LATENCY_MS CONCURRENCY RUNS [sequential]")

local latency = latency_ms / 1000
local pages = math.floor(segments / 100) + 1
local bound = pages * latency + math.ceil(2 * segments / concurrency) * latency
local SERIES = { length = 30, ending_at = "2026-11-01" }
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")

local function new_client()
  return braze.new({ api_key = mock.DEFAULTS.api_key, endpoint = url, max_retries = 0 })
end

local function lib()
  local c = new_client()
  local t0, n = now(), 0
  for seg in c:each{ details = true, series = SERIES, concurrency = concurrency } do
    assert(seg.details and seg.series, "incomplete segment")
    n = n + 1
  end
  local t = now() - t0
  c:close()
  assert(n == segments, "exported " .. n .. " of " .. segments)
  return t
end

local function cli()
  local out = os.tmpname()
  local cmd = string.format("BRAZE_API_KEY=%s BRAZE_REST_ENDPOINT=%s %s %s/../bin/braze-segments --quiet "
    .. "--max-retries 0 export --details --series 30 --end 2026-11-01 --concurrency %d -o %s",
    mock.DEFAULTS.api_key, url, arg[-1] or "lua5.4", here, concurrency, out)
  local t0 = now()
  local ok = os.execute(cmd)
  local t = now() - t0
  local lines = 0
  for _ in io.lines(out) do lines = lines + 1 end
  os.remove(out)
  assert(ok == true or ok == 0, "braze-segments failed")
  assert(lines == segments, "the command wrote " .. lines .. " of " .. segments)
  return t
end

local function seq()
  local c = new_client()
  local t0 = now()
  for seg in c:each() do
    assert(c:details(seg.id))
    assert(c:data_series{ segment_id = seg.id, length = 30, ending_at = "2026-11-01" })
  end
  local t = now() - t0
  c:close()
  return t
end

for r = 1, runs do
  local tl, tc
  if r % 2 == 1 then tl = lib(); tc = cli() else tc = cli(); tl = lib() end
  print(string.format("RESULT export_lib_vs_bound_%dms %.4f time=%.3fs bound=%.3fs segments=%d concurrency=%d",
    latency_ms, tl / bound, tl, bound, segments, concurrency))
  print(string.format("RESULT export_cli_vs_bound_%dms %.4f time=%.3fs bound=%.3fs segments=%d concurrency=%d",
    latency_ms, tc / bound, tc, bound, segments, concurrency))
  io.stdout:flush()
end
if sequential then
  local ts = seq()
  print(string.format("RESULT export_sequential_vs_bound_%dms %.4f time=%.3fs bound=%.3fs segments=%d",
    latency_ms, ts / bound, ts, bound, segments))
end
