-- A segment's size over the last N days, with a growth summary:
--   lua5.4 examples/series_growth.lua [SEGMENT_ID [DAYS]]
-- (defaults: the first segment, 30 days).
--
-- Run from the repository root (after `cmake -S . -B build && cmake --build build`):
--   BRAZE_API_KEY=... BRAZE_REST_ENDPOINT=US-01 \
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/series_growth.lua
local braze = require("braze")

local client = braze.new({})

local function fail(err)
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local id, days = arg[1], math.tointeger(tonumber(arg[2] or "30"))
if not days or days < 1 or days > 100 then fail("DAYS must be an integer in 1..100") end
if not id then
  local page, err = client:list({ page = 0 })
  if not page then fail(err) end
  if not page.segments or #page.segments == 0 then fail("no segments in this workspace") end
  id = page.segments[1].id
end

-- ending_at takes an ISO 8601 string or epoch seconds; the default is now.
local res, err = client:data_series({ segment_id = id, length = days, ending_at = os.time() })
if not res then fail(err) end
local data = res.data or {}
if #data == 0 then
  print("no data points for " .. id)
  os.exit(0)
end

-- Sizes are integers (exact even beyond 2^53 on Lua 5.3+).
local function num(n)
  local s = string.format("%d", n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^(-?),", "%1"))
end

local first, last = data[1], data[#data]
local best_rise, best_fall = nil, nil
for i = 2, #data do
  local d = data[i].size - data[i - 1].size
  if not best_rise or d > best_rise.delta then best_rise = { delta = d, day = data[i].time } end
  if not best_fall or d < best_fall.delta then best_fall = { delta = d, day = data[i].time } end
end

local change = last.size - first.size
print(("segment %s, %d days: %s .. %s"):format(id, #data, first.time, last.time))
print(("first   %15s"):format(num(first.size)))
print(("last    %15s"):format(num(last.size)))
print(("change  %15s  (%+.2f%%)"):format((change >= 0 and "+" or "") .. num(change),
  first.size ~= 0 and change / first.size * 100 or 0))
if #data > 1 then
  print(("per day %15s on average"):format(num(change // (#data - 1))))
  print(("biggest rise %s on %s, biggest fall %s on %s"):format(num(best_rise.delta),
    best_rise.day, num(best_fall.delta), best_fall.day))
end
client:close()
