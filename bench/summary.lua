--- bench/summary.lua: the table bench/run.sh prints, from its RESULT lines.
--
--   lua5.4 bench/summary.lua results.txt
-- Each line "RESULT <name> <value> [details...]" is one run of one
-- comparison; lines of the same name are summarised as median, min, max.
local file = assert(arg[1], "usage: summary.lua RESULTS_FILE")

-- name -> what it is, the target (as text) and how to check it.
local ROWS = {
  { "decode_list", "decode 100-segment list page, wall clock: braze / cjson throughput", ">= 1.4 (1.8)", 1.4 },
  { "decode_series", "decode 100-point data_series body, wall clock: braze / cjson", ">= 1.4 (1.8)", 1.4 },
  { "decode_list_ir", "decode list page, callgrind instructions: cjson Ir / braze Ir", ">= 1.4 (1.8)", 1.4 },
  { "decode_series_ir", "decode data_series body, callgrind: cjson Ir / braze Ir", ">= 1.4 (1.8)", 1.4 },
  { "req_vs_curl", "client:list{} req/s / bare curl_easy_perform loop req/s", ">= 0.6", 0.6 },
  { "req_vs_socket", "client:list{} req/s / socket.http + cjson.decode req/s", ">= 2", 2 },
  { "req_vs_node", "client:list{} req/s / npm braze-api segments.list req/s", ">= 1.5", 1.5 },
  { "tiny_vs_curl", "diagnostic: the same on a 36-byte page (transport alone, no decoding)", "(none)", nil },
  { "session_vs_curl", "diagnostic: braze.core session:get alone (transfer + decoding, no Lua front)"
    .. " / curl loop", "(none)", nil },
  { "rate_ours", "requests/s: client:list{} (100-segment page, 14,011 bytes)", "", nil },
  { "rate_curl_loop", "requests/s: bench/curl_loop.c on the same URL", "", nil },
  { "rate_socket_http", "requests/s: socket.http + cjson.decode (a connection per request)", "", nil },
  { "rate_braze_api", "requests/s: npm braze-api segments.list (node-fetch, keep-alive)", "", nil },
  { "memory_growth_kib", "RSS growth over the sequential requests after warm-up, KiB", "< 2048", -2048 },
  { "many_vs_curl_parallel", "details_many (160 URLs, concurrency 16, cold) vs curl --parallel-max 16: "
    .. "curl time / ours", ">= 0.9", 0.9 },
  { "export_lib_vs_bound_20ms", "export 1,000 segments + details + series, library each{}, 20 ms: time / bound",
    "< 1.25", -1.25 },
  { "export_cli_vs_bound_20ms", "the same through braze-segments export --concurrency 16, 20 ms", "< 1.25", -1.25 },
  { "export_lib_vs_bound_100ms", "the same, library, mock latency 100 ms", "< 1.25", -1.25 },
  { "export_cli_vs_bound_100ms", "the same, braze-segments, 100 ms", "< 1.25", -1.25 },
  { "export_sequential_vs_bound_20ms", "beside it: each, then details and data_series one at a time, 20 ms",
    "(none)", nil },
  { "export_peak_rss_ratio", "peak RSS of a pipelined export: 10,000 segments / 1,000", "< 2", -2 },
  { "details_many_speedup", "details (1,000; 32 with --quick): sequential time / details_many at concurrency 16", "(none)", nil },
}

local values = {}
for line in io.lines(file) do
  local name, v = line:match("^RESULT%s+(%S+)%s+(%S+)")
  if name and tonumber(v) then
    values[name] = values[name] or {}
    table.insert(values[name], tonumber(v))
  end
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function fmt(v, name)
  if name == "memory_growth_kib" or name:match("^rate_") then return string.format("%.0f", v) end
  if math.abs(v) >= 100 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

print(string.format("%-20s %8s %8s %8s %4s  %-12s %-4s  %s", "comparison", "median", "min", "max",
  "runs", "target", "met", "what"))
for _, row in ipairs(ROWS) do
  local name, what, target, limit = row[1], row[2], row[3], row[4]
  local t = values[name]
  if t and #t > 0 then
    local lo, hi = math.huge, -math.huge
    for _, v in ipairs(t) do lo = math.min(lo, v); hi = math.max(hi, v) end
    local m = median(t)
    local met = "-"
    if limit then
      if limit >= 0 then met = m >= limit and "yes" or "NO" else met = m < -limit and "yes" or "NO" end
    end
    print(string.format("%-20s %8s %8s %8s %4d  %-12s %-4s  %s", name, fmt(m, name), fmt(lo, name),
      fmt(hi, name), #t, target, met, what))
  else
    print(string.format("%-20s %8s %8s %8s %4s  %-12s %-4s  %s", name, "-", "-", "-", "0", target,
      "-", what .. " (not run)"))
  end
end
