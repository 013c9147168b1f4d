--- bench/parallel.lua: client:details_many at concurrency 16 against
-- `curl --parallel --parallel-max 16` on the same URLs and the same nginx
-- (a static details body), both from cold connections: a new client (and a
-- new curl process) each run.
--
--   lua5.4 bench/parallel.lua BASE_URL COUNT RUNS
-- Prints per run: RESULT many_vs_curl_parallel <curl_time/our_time> ...
local braze = require("braze")
local now = require("braze.core").monotonic

local base, count, runs = arg[1], tonumber(arg[2] or "160"), tonumber(arg[3] or "5")
assert(base and count, "usage: parallel.lua BASE_URL COUNT RUNS")

local ids, urls = {}, {}
for i = 1, count do
  ids[i] = string.format("seg-%05d", i)
  urls[i] = base .. "/segments/details?segment_id=" .. ids[i]
end
local list = os.tmpname()
local f = assert(io.open(list, "w"))
for _, u in ipairs(urls) do f:write("url = \"", u, "\"\noutput = \"/dev/null\"\n") end
f:close()

local function ours()
  local c = braze.new({ api_key = "bench-key", endpoint = base, max_retries = 0 })
  local t0 = now()
  local res, errs = c:details_many(ids, { concurrency = 16 })
  local t = now() - t0
  c:close()
  assert(next(errs) == nil and #res == count, "details_many failed")
  return t
end

local function curl()
  local t0 = now()
  local ok = os.execute("curl -s --fail --parallel --parallel-max 16 -H 'Authorization: Bearer bench-key' "
    .. "-H 'Accept: application/json' --compressed -K " .. list)
  local t = now() - t0
  assert(ok == true or ok == 0, "curl --parallel failed")
  return t
end

for r = 1, runs do
  local to, tc
  if r % 2 == 1 then to = ours(); tc = curl() else tc = curl(); to = ours() end
  print(string.format("RESULT many_vs_curl_parallel %.4f details_many=%.4fs curl_parallel=%.4fs urls=%d",
    tc / to, to, tc, count))
  io.stdout:flush()
end
os.remove(list)
