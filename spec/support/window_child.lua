-- A child process for the window-store specs: one more Lua state sharing a
-- store with the spec. Run as
--   lua5.4 spec/support/window_child.lua MODE PORT WS [ARGS...]
-- from the repository root. Modes (store: braze.window.redis on 127.0.0.1:PORT):
--   grab WANT RESERVE NOW GO  print "ready", wait for file GO, acquire WANT at a time (never releasing) until the
--                           store grants nothing 20 times in a row; prints
--                           "granted N"
--   hold N TTL              acquire N for TTL seconds, print "held N", then
--                           sleep until killed
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
require("spec.support.redis_server").lua_path()
local socket = require("socket")

local mode, port, ws = arg[1], tonumber(arg[2]), arg[3]
local store = require("braze.window.redis").new{ port = port, timeout = 2 }

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
  end
  print("granted " .. total)
elseif mode == "hold" then
  local n, ttl = tonumber(arg[4]), tonumber(arg[5])
  local g = assert(store:acquire(ws, n, 0, ttl, os.time(), n))
  print("held " .. g)
  while true do socket.sleep(1) end
end
