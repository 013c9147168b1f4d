-- A child process for the window-store specs: one more Lua state sharing a
-- store with the spec. Run as
--   lua5.4 spec/support/window_child.lua MODE PORT WS [ARGS...]
-- from the repository root. Modes (store: braze.window.redis on 127.0.0.1:PORT):
--   grab WANT RESERVE NOW GO  print "ready", wait for file GO, acquire WANT at a time (never releasing) until the
--                           store grants nothing 20 times in a row; prints
--                           "granted N"
--   hold N TTL              acquire N for TTL seconds, print "held N", then
--                           sleep until killed
--   export ENDPOINT KEY RESERVE GO
--                           print "ready", wait for file GO, then
--                           client:each{details, series, concurrency 16} with
--                           `window = ` the store (PORT 0: no store), and
--                           print one JSON line: segments, failures, what the
--                           answers said of the rate limit, the store's reports
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
package.cpath = (os.getenv("BRAZE_CPATH") or "build/?.so") .. ";" .. package.cpath
require("spec.support.redis_server").lua_path()
local socket = require("socket")

local mode, port, ws = arg[1], tonumber(arg[2]), arg[3]
local reports = {}
local store = port ~= 0 and require("braze.window.redis").new{ port = port, timeout = 2,
  on_error = function(err) reports[#reports + 1] = err end } or nil

io.stdout:setvbuf("line")
if mode == "grab" then
  local want, reserve, now = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
  assert(store:state(ws)) -- connected
  print("ready")
  -- start together: wait for the go file
  while not io.open(arg[7] or "/nonexistent") do socket.sleep(0.005) end
  local total, zeros = 0, 0
  while zeros < 20 do
    local g, err = store:acquire(ws, want, reserve, 60, now, 1)
    if not g then print("error " .. tostring(err)); os.exit(1) end
    if g == 0 then zeros = zeros + 1 else total, zeros = total + g, 0 end
    socket.sleep(0.002) -- spread the grabbing out, so that every process takes part
  end
  print("granted " .. total)
elseif mode == "export" then
  local cjson = require("cjson")
  local recording = require("spec.support.recording_transport")
  local rec = recording.new()
  local client = require("braze").new{ endpoint = arg[4], api_key = arg[5], reserve = tonumber(arg[6]),
    window = store, transport = rec, max_retries = 5, retry_base = 0.05 }
  print("ready")
  while not io.open(arg[7] or "/nonexistent") do socket.sleep(0.005) end
  local count, failed = 0, 0
  local ok, err = pcall(function()
    for seg in client:each{ details = true, series = { length = 3, ending_at = "2024-03-01T00:00:00Z" },
      concurrency = 16 } do
      count = count + 1
      if not (seg.details and seg.series) then failed = failed + 1 end
    end
  end)
  local statuses, lowest = {}, {}
  for k, v in pairs(rec.statuses) do statuses[tostring(k)] = v end
  for k, v in pairs(rec.lowest) do lowest[tostring(k)] = v end
  print(cjson.encode({ segments = count, failed = failed, error = not ok and tostring(err) or nil,
    statuses = statuses, lowest = lowest, reports = reports }))
elseif mode == "hold" then
  local n, ttl = tonumber(arg[4]), tonumber(arg[5])
  local g = assert(store:acquire(ws, n, 0, ttl, os.time(), n))
  print("held " .. g)
  while true do socket.sleep(1) end
end
