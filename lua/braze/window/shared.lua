--- The seam between a workspace's window in this Lua state (braze.window)
-- and a window store shared with other Lua states (braze.window.shdict,
-- braze.window.redis): the scheduler calls these where a request starts, is
-- answered or is held; without a store they are never called.
--
-- The store is the gate: a request starts only when the store grants it room
-- (its atomic `acquire`), every answer is settled there (the request leaves
-- the in-flight count; the window as this state knows it is merged in), and
-- what the store answers is adopted here (the lowest remaining of everyone,
-- a hold another state's 429 put). When the store fails, the window of this
-- state decides alone, as without a store; the store reports the failure
-- once (braze.window.store.reporting).
-- @module braze.window.shared
local wstore = require("braze.window.store")

local M = {}

local max = math.max

--- Seconds a reservation lives at most when the window's reset is further:
--- a request's deadline (braze.new's default timeout is 30 s).
M.TTL = 30

--- Seconds to wait before asking again when the room is taken by requests
--- in flight (perhaps of other workers or processes).
M.BUSY_WAIT = 0.02

--- Give window `win` the store `store` for workspace `ws`, and learn what
--- the store knows (a fresh client of a known workspace starts at full width).
function M.attach(win, store, ws)
  win.store, win.ws = store, ws
  win.reserved = win.reserved or 0 -- this state's live reservations in the store
  local s = store:state(ws)
  if s then M.adopt(win, s) end
  return win
end

--- Take what the store says of the window into `win`: its window (merged by
--- braze.window's rule, unless its reset is past), its hold, and (a store on
--- this host's clock, shdict) its clock offset until `win` learns its own.
function M.adopt(win, s)
  local now = win:server_time()
  if (s.remaining or s.limit or s.reset) and not (s.reset and s.reset <= now) then
    if not win.known then
      win.known = true
      win.limit, win.remaining, win.reset = s.limit, s.remaining, s.reset
    else
      wstore.merge(win, s.limit, s.remaining, s.reset)
    end
  end
  local hold = s.hold_until
  if hold and hold > now then
    win.hold_until = max(win.hold_until or 0, win:now() + (hold - now))
  end
  if win.store.same_clock and s.offset and win.date == nil then win.offset = s.offset end
end

-- A reservation's lifetime: the request's deadline, or less when the window
-- resets sooner (then a dead worker's reservations lapse with its window).
local function ttl(win)
  local t = M.TTL
  local reset = win.reset
  if reset then
    local left = reset - win:server_time() + 1
    if left > 0 and left < t then t = left end
  end
  return t
end

--- Ask the store for `want` requests (the window of this state allows them).
--- Returns the count that may start (0..want) and the reservation id (nil
--- when the store failed: then `want`, as without a store). With
--- `may_wait` (nothing of this state in flight to wait for), a room taken
--- by requests in flight elsewhere is waited for here in short sleeps; a
--- window used up, or a hold, returns 0 and the scheduler's own wait runs.
function M.acquire(win, want, reserve, may_wait, sleep)
  local store, ws = win.store, win.ws
  local blind = win.probed and want or 1
  while true do
    local granted, id, s = store:acquire(ws, want, reserve, ttl(win), win:server_time(), blind)
    if not granted then return want, nil end -- the store failed: decide alone
    M.adopt(win, s)
    if granted > 0 then
      win.reserved = win.reserved + granted
      return granted, id
    end
    if not may_wait or (win.hold_until and win.hold_until > win:now()) then return 0 end
    local room = win:room(reserve)
    if room ~= nil and room <= 0 then return 0 end -- used up: wait for the reset
    win:sleep(sleep, M.BUSY_WAIT)
  end
end

--- `count` requests of reservation `id` are answered (the window of this
--- state has merged their headers already): settle them in the store, and
--- adopt what it knows. `id` nil (the store had failed): only the merge.
function M.settle(win, id, count)
  count = count or 1
  if id then win.reserved = max(0, win.reserved - count) end
  local s = win.store:settle(win.ws, id or false, count, win.limit, win.remaining, win.reset,
    win.date and win.offset or nil)
  if s then M.adopt(win, s) end
end

--- `count` requests of reservation `id` will never be answered (cancelled).
function M.release(win, id, count)
  if not id then return end
  count = count or 1
  win.reserved = max(0, win.reserved - count)
  win.store:release(win.ws, id, count)
end

--- Every Lua state of the workspace holds off for `seconds` (a 429's wait).
function M.hold(win, seconds)
  win.store:hold(win.ws, win:server_time() + seconds)
end

return M
