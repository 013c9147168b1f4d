--- The rate-limit window of a client: what Braze's X-RateLimit-* headers
-- said (merged across answers that arrive in any order), the reserve kept
-- for everyone else, the requests in flight, the hold a 429 puts on every
-- request, and the window's clock.
--
-- The scheduler asks it for room before every request and tells it every
-- answer's headers; nothing else reads or writes the window's state. Every
-- request of a client counts against its one window: single calls, batches
-- and pipelines, however many run at once.
--
-- Braze's clock is not ours: the offset between them is learned from each
-- answer's `Date` header, and resets (epoch seconds on Braze's clock) are
-- compared with Braze's time as we estimate it. A 429 holds every request
-- of the client until its wait is over, then one request learns the window.
-- @module braze.window
local timegm = require("braze.date").timegm
local core = require("braze.core")
local shared = require("braze.window.shared") -- a window store's seam

local M = {}

local tonumber, type, ceil, max, setmetatable = tonumber, type, math.ceil, math.max, setmetatable
local byte, format, floor = string.byte, string.format, math.floor

--- The clocks, read through the module so that specs can inject their own:
-- `clock()` is the wall clock in seconds (Braze's resets are epoch seconds),
-- `monotonic()` measures waits.
M.clock = os.time
M.monotonic = core.monotonic

--- A reset further ahead of Braze's time than this is garbage (Braze's
--- windows are an hour): the answer's window headers are ignored.
M.MAX_AHEAD = 2 * 3600

--- A header value as a non-negative integer, or nil (empty or garbage
-- values, as Braze sends on 401s, count as absent).
function M.uint(s)
  if type(s) ~= "string" then return nil end
  local digits = s:match("^%s*(%d+)%s*$")
  if not digits or #digits > 15 then return nil end
  return tonumber(digits)
end
local uint = M.uint

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
  Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- An HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") as epoch seconds, or nil.
function M.http_date(value)
  if type(value) ~= "string" then return nil end
  local d, mon, y, h, mi, s = value:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not months[mon] then return nil end
  return timegm(tonumber(y), months[mon], tonumber(d), tonumber(h), tonumber(mi), tonumber(s))
end
local http_date = M.http_date

-- Merge an answer's `limit`, `remaining` and `reset` into `state` (a table
-- with those fields), in place. Concurrent answers arrive in any order:
-- within one window (same reset) the lowest remaining is the truth; a later
-- reset starts a new window; an answer from an earlier window, arriving
-- late, changes nothing.
local function merge_into(state, limit, remaining, reset)
  local old_reset = state.reset
  if reset and old_reset then
    if reset < old_reset then return end
    if reset > old_reset then
      state.limit, state.remaining, state.reset = limit, remaining, reset
      return
    end
  end
  local old_remaining = state.remaining
  if old_remaining and (remaining == nil or old_remaining < remaining) then
    remaining = old_remaining
  end
  state.remaining = remaining
  if limit then state.limit = limit end
  if reset then state.reset = reset end
end

--- `{limit=, remaining=, reset=}` when the headers carry any X-RateLimit-*
-- header (even an empty one), else nil.
function M.parse(headers)
  local l, r, t = headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"],
    headers["x-ratelimit-reset"]
  if l == nil and r == nil and t == nil then return nil end
  return { limit = uint(l), remaining = uint(r), reset = uint(t) }
end

--- The window state after an answer that said `new`, when the state so far
-- was `old` (either may be nil), as `merge_into` decides. Returns a table
-- (a new one when both are given).
function M.merge(old, new)
  if not old then return new end
  if not new then return old end
  local state = { limit = old.limit, remaining = old.remaining, reset = old.reset }
  merge_into(state, new.limit, new.remaining, new.reset)
  return state
end

local Window = {}
Window.__index = Window

--- A window not known yet. (A client's `reserve` is its own: the methods
--- that need it take it, so that clients with different reserves can share
--- their workspace's window.)
function M.new()
  local self = setmetatable({
    known = false,  -- an answer carried X-RateLimit-* headers
    limit = nil, remaining = nil, reset = nil,
    inflight = 0,   -- requests sent and not answered yet, by every runner
    probed = false, -- an answer came since the window was last unknown
    hold_until = nil, -- a 429's wait (window clock): nothing starts before it
    slept = 0,      -- waits a sleep callback returned early from
    offset = 0,     -- Braze's clock minus ours, seconds (from `Date`)
    date = nil,     -- the last `Date` header read
    limit_text = nil, limit_value = nil, -- the last X-RateLimit-Limit, read
    reset_text = nil, reset_value = nil, -- the last X-RateLimit-Reset, read
  }, Window)
  --- Braze's time as we estimate it (epoch seconds), as a function.
  self.server_clock = function() return M.clock() + self.offset end
  return self
end

--- Braze's time as we estimate it: our clock plus the learned offset.
function Window:server_time()
  return M.clock() + self.offset
end

--- What an answer's headers say of the window (and of Braze's clock).
function Window:update(headers)
  local date = headers.date
  if date ~= nil and date ~= self.date then -- a new second: learn the offset again
    self.date = date
    local at = http_date(date)
    if at then self.offset = at - M.clock() end
  end
  local l, r, t = headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"],
    headers["x-ratelimit-reset"]
  if l == nil and r == nil and t == nil then return end
  -- The limit and the reset change once a window: parsed once a window.
  local limit, reset = self.limit_value, self.reset_value
  if l ~= self.limit_text then limit = uint(l); self.limit_text, self.limit_value = l, limit end
  if t ~= self.reset_text then
    reset = uint(t)
    if reset and reset > self:server_time() + M.MAX_AHEAD then return end -- garbage
    self.reset_text, self.reset_value = t, reset
  end
  if not self.known then
    self.known = true
    self.limit, self.remaining, self.reset = limit, uint(r), reset
  else
    merge_into(self, limit, uint(r), reset)
  end
  if self.store then shared.merge(self) end -- every state's window, through the store
end

--- How many of `n` requests may start now, as the window store (shared with
--- other Lua states) grants them: `n` without a store, or when it fails.
--- `may_wait`: nothing of this state is in flight (the store may make the
--- caller wait out requests in flight elsewhere). 0: held, or used up.
function Window:grant(n, reserve, may_wait, sleep)
  if not self.store or n <= 0 then return n end
  return shared.acquire(self, n, reserve, may_wait, sleep)
end

--- `n` requests landed (answered, failed or dropped): no longer in flight.
function Window:landed(n)
  self.inflight = self.inflight - n
  if self.store then shared.release(self, n) end
end

--- A copy of the window as known (for error objects and `client:rate_limit()`:
--- a snapshot, not the live state), or nil before any X-RateLimit-* header.
function Window:snapshot()
  if not self.known then return nil end
  return { limit = self.limit, remaining = self.remaining, reset = self.reset }
end

--- The number of requests of the window kept for everyone else: `reserve`
--- (a client's option) as a count (a fraction below 1 is of
--- X-RateLimit-Limit, 0 until the limit is known).
function Window:reserve_count(reserve)
  local r = reserve or 0
  if r <= 0 then return 0 end
  if r < 1 then
    local limit = self.limit
    return limit and ceil(r * limit) or 0
  end
  return r
end

--- Requests the window can still take above `reserve` (those in flight
-- not counted), or nil when the window is not known (no answer gave
-- `remaining` yet, or it turned over).
function Window:room(reserve)
  local remaining = self.remaining
  if not remaining then return nil end
  if not reserve or reserve <= 0 then return remaining end
  return remaining - self:reserve_count(reserve)
end

--- True when `reserve` leaves nothing of the window: a reserve at or
--- above the limit. No request may be sent.
function Window:reserve_blocks(reserve)
  local limit = self.limit
  return limit ~= nil and reserve ~= nil and reserve > 0 and self:reserve_count(reserve) >= limit
end

--- The window has turned over (its reset passed, or the server's wait is
--- over): what is left of it is unknown until the next answer.
function Window:forget()
  self.remaining = nil
  self.probed = false
end

--- Seconds until the window resets, when there is no room left in it above
--- `reserve` for one more request beside `others` in flight; nil when there is room, or
--- when the reset is unknown or past by Braze's clock (then the window is
--- forgotten: one request learns it anew).
function Window:wait_for_room(reserve, others)
  local room = self:room(reserve)
  if room == nil or room - (others or 0) > 0 then return nil end
  local wait = self.reset and self.reset - self:server_time()
  if not wait or wait <= 0 then
    self:forget()
    return nil
  end
  return wait
end

--- Hold every request of the client for `seconds` (a 429's wait).
function Window:hold(seconds)
  self.hold_until = max(self.hold_until or 0, self:now() + seconds)
  if self.store then shared.hold(self, seconds) end -- and every state's
end

--- Seconds left of the hold, or nil. A hold that is over is lifted, and
--- the window forgotten: the server's wait is over, one request learns it.
function Window:held()
  local hold_until = self.hold_until
  if not hold_until then return nil end
  local left = hold_until - self:now()
  if left > 0 then return left end
  self.hold_until = nil
  self:forget()
  return nil
end

--- The window's clock: monotonic seconds, plus whatever a sleep callback
--- was asked to wait and did not (a test's no-op sleep), so due times pass.
function Window:now()
  return M.monotonic() + self.slept
end

--- Wait `seconds` with `sleep` (the client's sleep callback).
function Window:sleep(sleep, seconds)
  local monotonic = M.monotonic
  local before = monotonic()
  sleep(seconds)
  local short = seconds - (monotonic() - before)
  if short > 0 then self.slept = self.slept + short end
end

-- ---------------------------------------------------------------------------
-- One window per workspace in this Lua state

-- a xor b for bytes, without a bit library (Lua 5.1 has none).
local function xor8(a, b)
  local r, bit = 0, 1
  for _ = 1, 8 do
    local x, y = a % 2, b % 2
    if x ~= y then r = r + bit end
    a, b, bit = floor(a / 2), floor(b / 2), bit * 2
  end
  return r
end

-- 32-bit FNV-1a of `s` from `h`, exact in doubles and integers alike: the
-- prime 16777619 is 2^24 + 403, so h * prime mod 2^32 is
-- h * 403 + (h mod 2^8) * 2^24, every term below 2^42.
local function fnv1a(s, h)
  for i = 1, #s do
    local lo = h % 256
    h = h - lo + xor8(lo, byte(s, i))
    h = (h * 403 + (h % 256) * 16777216) % 4294967296
  end
  return h
end

--- The name of the workspace of `api_key` at `endpoint`: the endpoint and a
--- 48-bit fingerprint of the key (two FNV-1a hashes), never the key. It
--- names a workspace; it does not protect the key (not a cryptographic hash).
function M.workspace(endpoint, api_key)
  local a = fnv1a(api_key, 2166136261)
  local b = fnv1a(api_key:reverse(), 3735928559)
  return format("%s#%08x%04x", endpoint, a, floor(b / 65536))
end

-- Workspace name -> its window, held weakly: a window lives as long as a
-- client holds it.
local windows = setmetatable({}, { __mode = "v" })

--- A window store for `braze.new`'s `window` option, or an error.
function M.check_store(store)
  if store ~= nil and (type(store) ~= "table" or type(store.acquire) ~= "function") then
    error("braze: window must be a window store (braze.window.shdict or braze.window.redis)", 3)
  end
  return store
end

--- The window of the workspace of `api_key` at `endpoint` in this Lua state:
--- every client of that workspace gets the same one. With `store` (a window
--- store: braze.window.shdict, braze.window.redis) it is shared beyond this
--- Lua state through the store: the clients that name the same store (the
--- same dict, or Redis server, db and prefix) share one window, those
--- without a store another.
function M.of(endpoint, api_key, store)
  local name = M.workspace(endpoint, api_key)
  local key = store and (name .. " " .. (store.id or tostring(store))) or name
  local window = windows[key]
  if not window then
    window = M.new()
    windows[key] = window
    if store then shared.attach(window, store, name) end
  end
  return window
end

return M
