--- The seam between a workspace's window in this Lua state (braze.window)
-- and a window store shared with other Lua states (braze.window.shdict,
-- braze.window.redis): the scheduler calls these where a request starts, is
-- answered or is held; without a store they are never called.
--
-- The store is the gate: a request starts only when the store grants it room
-- (its atomic `acquire`); a request that lands (answered or not) gives its
-- reservation back (the oldest of this state's first); every answer's window
-- is merged into the store's; and what the store answers is adopted here (the lowest remaining of everyone,
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
  win.reservations = win.reservations or {} -- { id, count } of this state, oldest first
  win.pending = win.pending or {} -- { id, count } landed, not given back yet
  local s = store:state(ws)
  if s then M.adopt(win, s) end
  return win
end

-- What no store of Braze's windows can hold (written there by hand, or by a
-- broken writer) is garbage, ignored and counted in `store.garbage`: a reset
-- or hold further ahead than braze.window's MAX_AHEAD, a remaining above the limit.
local function garbage(win, s, now)
  local far = now + require("braze.window").MAX_AHEAD
  local bad_window = (s.reset and s.reset > far) or (s.remaining and s.limit and s.remaining > s.limit)
  local bad_hold = s.hold_until and s.hold_until > far
  if bad_window or bad_hold then win.store.garbage = (win.store.garbage or 0) + 1 end
  return bad_window, bad_hold
end

--- Take what the store says of the window into `win`: its window (merged by
--- braze.window's rule, unless its reset is past), its hold, and (a store on
--- this host's clock, shdict) its clock offset until `win` learns its own.
--- Returns true when some of it was garbage (ignored).
function M.adopt(win, s)
  local now = win:server_time()
  local bad_window, bad_hold = garbage(win, s, now)
  if not bad_window and (s.remaining or s.limit or s.reset) and not (s.reset and s.reset <= now) then
    if not win.known then
      win.known = true
      win.limit, win.remaining, win.reset = s.limit, s.remaining, s.reset
    else
      wstore.merge(win, s.limit, s.remaining, s.reset)
    end
  end
  local hold = s.hold_until
  if hold and hold > now and not bad_hold then
    win.hold_until = max(win.hold_until or 0, win:now() + (hold - now))
  end
  if win.store.same_clock and s.offset and win.date == nil then win.offset = s.offset end
  return bad_window or bad_hold
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

-- Reservations of this Lua state, oldest first: { id, count left } (id
-- false: requests started while the store failed, counted here only).
local function push(win, id, count)
  local q = win.reservations
  q[#q + 1] = { id, count }
end

-- Give the store back what landed and is not settled yet.
local function flush(win)
  local pending = win.pending
  for i = 1, #pending do
    local p = pending[i]
    pending[i] = nil
    win.store:release(win.ws, p[1], p[2])
  end
end

--- Ask the store for `want` requests (the window of this state allows them).
--- Returns the count that may start (0..want): `want` when the store failed
--- (this state decides alone). With `may_wait` (nothing of this state in
--- flight to wait for), a room taken by requests in flight elsewhere is
--- waited for here in short sleeps; a window used up, or a hold, returns 0
--- and the scheduler's own wait runs.
function M.acquire(win, want, reserve, may_wait, sleep)
  local store, ws = win.store, win.ws
  -- An unknown window: one request learns it; all of them only when answers
  -- came and carried no X-RateLimit-* header (a server without them).
  local blind = (win.probed and not win.known) and want or 1
  if win.pending[1] then M.merge(win) end -- what landed unanswered: settle it first
  while true do
    local granted, id, s = store:acquire(ws, want, reserve, ttl(win), win:server_time(), blind)
    if not granted then -- the store failed: decide alone
      push(win, false, want)
      return want
    end
    local junk = M.adopt(win, s)
    if granted > 0 then
      push(win, id, granted)
      win.reserved = win.reserved + granted
      return granted
    end
    if junk then -- a refusal that rests on garbage: decide alone, as when the store fails
      push(win, false, want)
      return want
    end
    if not may_wait or (win.hold_until and win.hold_until > win:now()) then return 0 end
    local room = win:room(reserve)
    if room ~= nil and room <= 0 then return 0 end -- used up: wait for the reset
    win:sleep(sleep, M.BUSY_WAIT)
  end
end

--- `count` requests of this state landed (answered, failed or dropped):
--- the oldest reservations are given back, by the next `merge` (with the
--- answer's window, in one atomic step: never a moment when a request is
--- neither in flight nor in the remaining count), else by the next
--- `acquire`, else by their expiry.
function M.release(win, count)
  local q, pending = win.reservations, win.pending
  while count > 0 and q[1] do
    local r = q[1]
    local k = r[2] < count and r[2] or count
    if r[1] then
      win.reserved = max(0, win.reserved - k)
      local last = pending[#pending]
      if last and last[1] == r[1] then last[2] = last[2] + k else pending[#pending + 1] = { r[1], k } end
    end
    r[2], count = r[2] - k, count - k
    if r[2] == 0 then table.remove(q, 1) end
  end
end

--- An answer was merged into the window of this state: merge it into the
--- store's, settling the requests that landed, and adopt what the store
--- knows (the lowest remaining of everyone).
function M.merge(win)
  local p = table.remove(win.pending, 1)
  local offset = win.date and win.offset or nil
  local s
  if p then
    s = win.store:settle(win.ws, p[1], p[2], win.limit, win.remaining, win.reset, offset)
    if s and s.busy then table.insert(win.pending, 1, p) else flush(win) end -- busy: next time
  else
    s = win.store:merge(win.ws, win.limit, win.remaining, win.reset, offset)
  end
  if s then M.adopt(win, s) end
end

--- Every Lua state of the workspace holds off for `seconds` (a 429's wait).
function M.hold(win, seconds)
  win.store:hold(win.ws, win:server_time() + seconds)
end

return M
