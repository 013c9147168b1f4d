--- What the window stores share: the workspace name, the merge rule, the
-- reserve as a count, and how a failing store reports itself (once).
--
-- A window store keeps the rate-limit window of a workspace where several
-- Lua states see it: `braze.window.shdict` (the workers of one nginx) and
-- `braze.window.redis` (processes and hosts). Every store has the same six
-- operations (settle is release + merge in one round trip), each atomic,
-- each returning nil, err instead of raising:
--
--   store:merge(ws, limit, remaining, reset, offset) -> state
--   store:acquire(ws, want, reserve, ttl, now, blind) -> granted, id, state
--   store:release(ws, id, count)                      -> true
--   store:settle(ws, id, count, limit, remaining, reset, offset) -> state
--   store:hold(ws, until_)                            -> state
--   store:state(ws)                                   -> state
--
-- `ws` is `M.workspace(endpoint, api_key)`. Times: `reset`, `now`, `until_`
-- are on Braze's clock (epoch seconds: the caller's clock plus its offset);
-- `ttl` is seconds from now on the store's own clock, so reservations expire
-- whatever the callers' clocks say. `state` is a table with `limit`,
-- `remaining`, `reset`, `offset`, `hold_until`, `inflight` (nil when not
-- known). lua/braze/window/README.md is the contract in full.
-- @module braze.window.store
local M = {}

local ceil, type = math.ceil, type

--- Reservations live at most this long (seconds), whatever ttl asks: a
--- request still in flight after that is no longer counted by the store.
M.MAX_TTL = 120

--- The window's state is dropped this long (seconds) after its last write.
M.STATE_TTL = 7200

-- ---------------------------------------------------------------------------
-- The workspace name: endpoint + a fingerprint of the key

--- A 48-bit fingerprint of `key` as 12 hex digits (braze.window.workspace's:
--- two FNV-1a hashes, of the key and of its reverse). It names a workspace;
--- it does not protect the key (not a cryptographic hash): whoever reads a
--- store learns 48 bits derived from the key, of a Braze key's 122 random ones.
function M.fingerprint(key)
  return require("braze.window").workspace("", key):sub(2)
end

--- The name of the workspace of `api_key` at `endpoint`: the endpoint and the
--- key's fingerprint, never the key.
function M.workspace(endpoint, api_key)
  if type(endpoint) ~= "string" or endpoint == "" then
    error("braze.window: endpoint must be a non-empty string", 2)
  end
  if type(api_key) ~= "string" or api_key == "" then
    error("braze.window: api_key must be a non-empty string", 2)
  end
  return require("braze.window").workspace(endpoint, api_key)
end

-- ---------------------------------------------------------------------------
-- The rules every store applies

--- The reserve as a count: `reserve` requests, or below 1 a fraction of
--- `limit` (0 while the limit is unknown).
function M.reserve_count(reserve, limit)
  if not reserve or reserve <= 0 then return 0 end
  if reserve < 1 then return limit and ceil(reserve * limit) or 0 end
  return reserve
end

--- Merge an answer's `limit`, `remaining`, `reset` into the window `s` (in
--- place): a later reset starts a new window, an earlier one is a late
--- answer and changes nothing, within one window the lowest remaining is
--- the truth. Returns true when `s` changed. (braze.window's rule; the Redis
--- store runs the same lines on the server.)
function M.merge(s, limit, remaining, reset)
  local old_reset = s.reset
  if reset and old_reset then
    if reset < old_reset then return false end
    if reset > old_reset then
      s.limit, s.remaining, s.reset = limit, remaining, reset
      return true
    end
  end
  local old_remaining = s.remaining
  if old_remaining and (remaining == nil or old_remaining < remaining) then
    remaining = old_remaining
  end
  local changed = remaining ~= s.remaining or (limit and limit ~= s.limit) or (reset and reset ~= old_reset)
  s.remaining = remaining
  if limit then s.limit = limit end
  if reset then s.reset = reset end
  return changed and true or false
end

--- How many of `want` requests may start now, given the window `s`, the
--- requests in flight `inflight` (everyone's), the reserve, Braze's `now`,
--- and `blind`: how many may be in flight while the window is not known
--- (no remaining, or its reset is past: 1 to learn it with one request).
function M.grant(s, inflight, want, reserve, now, blind)
  if s.hold_until and s.hold_until > now then return 0 end
  local room
  local remaining, reset = s.remaining, s.reset
  if remaining and (not reset or reset > now) then
    room = remaining - M.reserve_count(reserve, s.limit) - inflight
  else
    room = (blind or 1) - inflight
  end
  if room <= 0 then return 0 end
  return room < want and room or want
end

--- The reservation's lifetime asked for, bounded to (0, MAX_TTL].
function M.ttl(ttl)
  if type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0 then return 0.001 end
  if ttl > M.MAX_TTL then return M.MAX_TTL end
  return ttl
end

-- ---------------------------------------------------------------------------
-- Failure: never an error for the user's call, reported once

--- Give store object `self` its failure reporting: `self:failed(err)`
--- returns nil, err and reports `err` once per outage, through
--- `on_error(err)` when given, else `ngx.log(ngx.WARN, ...)` inside nginx,
--- else nowhere (a library does not write to stderr); `self:ok()` ends the
--- outage (the next failure is reported again). While an outage is younger
--- than `retry_after` seconds, `self:resting()` is true: the store is not
--- tried again (a Redis that is down costs each call nothing).
function M.reporting(self, name, on_error, retry_after, clock)
  if on_error ~= nil and type(on_error) ~= "function" then
    error("braze.window." .. name .. ": on_error must be a function", 3)
  end
  if retry_after ~= nil and (type(retry_after) ~= "number" or retry_after < 0) then
    error("braze.window." .. name .. ": retry_after must be a number of seconds >= 0", 3)
  end
  self.name = name
  self.down_since = nil
  self.errors = 0  -- failures so far (reported or not)
  self.reported = 0 -- failures reported (one per outage)
  retry_after = retry_after or 2
  function self.failed(store, err)
    err = "braze.window." .. name .. ": " .. tostring(err)
    store.errors = store.errors + 1
    store.last_error = err
    if not store.down_since then
      store.down_since = clock()
      store.reported = store.reported + 1
      if on_error then
        pcall(on_error, err)
      else
        local ngx = rawget(_G, "ngx")
        if type(ngx) == "table" and ngx.log then
          pcall(ngx.log, ngx.WARN, err, "; pacing with the in-process window until it answers")
        end
      end
    end
    store.retry_at = clock() + retry_after
    return nil, err
  end
  function self.ok(store)
    store.down_since = nil
    store.retry_at = nil
  end
  function self.resting(store)
    local at = store.retry_at
    return at ~= nil and clock() < at
  end
end

return M
