--- The rate-limit window of a client: what Braze's X-RateLimit-* headers
-- said (merged across answers that arrive in any order), the reserve kept
-- for everyone else, the requests in flight, the hold a 429 puts on every
-- request, and the window's clock.
--
-- The scheduler asks it for room before every request and tells it every
-- answer's headers; nothing else reads or writes the window's state.
-- @module braze.window
local core = require("braze.core")

local M = {}

local tonumber, type, ceil, setmetatable = tonumber, type, math.ceil, setmetatable

--- The clocks, read through the module so that specs can inject their own:
-- `clock()` is the wall clock in seconds (Braze's resets are epoch seconds),
-- `monotonic()` measures waits.
M.clock = os.time
M.monotonic = core.monotonic

--- A header value as a non-negative integer, or nil (empty or garbage
-- values, as Braze sends on 401s, count as absent).
function M.uint(s)
  if type(s) ~= "string" then return nil end
  local digits = s:match("^%s*(%d+)%s*$")
  if not digits or #digits > 15 then return nil end
  return tonumber(digits)
end
local uint = M.uint

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

--- A window not known yet. `reserve` is the client's option: requests of
--- each window left to others (a count, or below 1 a fraction of the limit).
function M.new(reserve)
  return setmetatable({
    known = false,  -- an answer carried X-RateLimit-* headers
    limit = nil, remaining = nil, reset = nil,
    reserve = reserve or 0,
    inflight = 0,   -- requests sent and not answered yet
    probed = false, -- an answer came since the window was last unknown
    hold_until = nil, -- a 429's wait (window clock): nothing starts before it
    slept = 0,      -- waits a sleep callback returned early from
  }, Window)
end

--- What an answer's headers say of the window.
function Window:update(headers)
  local l, r, t = headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"],
    headers["x-ratelimit-reset"]
  if l == nil and r == nil and t == nil then return end
  if not self.known then
    self.known = true
    self.limit, self.remaining, self.reset = uint(l), uint(r), uint(t)
    return
  end
  merge_into(self, uint(l), uint(r), uint(t))
end

--- A copy of the window as known (for error objects and `client:rate_limit()`:
--- a snapshot, not the live state), or nil before any X-RateLimit-* header.
function Window:snapshot()
  if not self.known then return nil end
  return { limit = self.limit, remaining = self.remaining, reset = self.reset }
end

--- The number of requests of the window kept for everyone else: the
--- reserve as a count (a fraction below 1 is of X-RateLimit-Limit, 0 until
--- the limit is known).
function Window:reserve_count()
  local r = self.reserve
  if r <= 0 then return 0 end
  if r < 1 then
    local limit = self.limit
    return limit and ceil(r * limit) or 0
  end
  return r
end

--- Requests the window can still take above the reserve (those in flight
-- not counted), or nil when the window is not known (no answer gave
-- `remaining` yet, or it turned over).
function Window:room()
  local remaining = self.remaining
  if not remaining then return nil end
  if self.reserve <= 0 then return remaining end
  return remaining - self:reserve_count()
end

--- The window has turned over (its reset passed, or the server's wait is
--- over): what is left of it is unknown until the next answer.
function Window:forget()
  self.remaining = nil
  self.probed = false
end

--- Seconds until the window resets, when there is no room left in it; nil
--- when there is room, or when the reset is unknown or past by our clock
--- (then the window is forgotten: one request learns it anew).
function Window:wait_for_room()
  local room = self:room()
  if room == nil or room > 0 then return nil end
  local wait = self.reset and self.reset - M.clock()
  if not wait or wait <= 0 then
    self:forget()
    return nil
  end
  return wait
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

return M
