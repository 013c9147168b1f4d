--- bench/memory.lua: does a long run of requests grow the process?
--
--   lua5.4 bench/memory.lua BASE_URL N [WARMUP] [PAGE_SIZE]
-- One client makes WARMUP requests, then N more, sequentially (client:list{}).
-- RSS comes from /proc/self/statm (resident pages * PAGE_SIZE, default 4096),
-- read after a full collection at the end of the warm-up and at the end.
-- Prints:  RESULT memory_growth_kib <kib> rss_before=.. rss_after=.. rss_max=.. lua_kib=..
local base, n = arg[1], tonumber(arg[2] or "100000")
local warmup = tonumber(arg[3] or "") or 5000
local page_size = tonumber(arg[4] or "") or 4096
assert(base and n, "usage: memory.lua BASE_URL N [WARMUP] [PAGE_SIZE]")

local braze = require("braze")

local function rss_kib()
  local f = assert(io.open("/proc/self/statm", "r"))
  local _, resident = f:read("*l"):match("^(%d+)%s+(%d+)")
  f:close()
  return tonumber(resident) * page_size / 1024
end

local function full_gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

local client = braze.new({ api_key = "bench-key", endpoint = base, max_retries = 0 })
local function one()
  local page, err = client:list({})
  if not page then error(tostring(err)) end
  return page
end

for _ = 1, warmup do one() end
full_gc()
local before, lua_before = rss_kib(), collectgarbage("count")
local max = before
local every = math.max(1, n // 20)
for i = 1, n do
  one()
  if i % every == 0 then
    local r = rss_kib()
    if r > max then max = r end
  end
end
full_gc()
local after, lua_after = rss_kib(), collectgarbage("count")
client:close()
print(string.format(
  "RESULT memory_growth_kib %.0f rss_before=%.0fKiB rss_after=%.0fKiB rss_max=%.0fKiB lua_heap=%.0f->%.0fKiB requests=%d",
  after - before, before, after, max, lua_before, lua_after, n))
