--- A window store in an OpenResty shared dict: every worker of one nginx,
-- and every per-request client in them, shares the window of a workspace.
--
--   # nginx.conf, http {}
--   lua_shared_dict braze 1m;
--
--   local store = require("braze.window.shdict").new("braze")
--
-- Layout in the dict, for a workspace `ws` (braze.window.store.workspace):
--
-- * `ws|w`: the window as one value, "limit;remaining;reset;offset;hold"
--   (one get reads a consistent window), dropped STATE_TTL after its last write;
-- * `ws|b|E`: the requests in flight whose reservation expires by second E
--   (of `ngx.now()`, a multiple of WIDTH = 1), a counter that the dict drops
--   at E: a worker killed mid-request leaks nothing beyond E;
-- * `ws|top`: the latest E in use (the in-flight count is the sum of the
--   buckets up to it);
-- * `ws|L`: a lock (`add` with a 50 ms expiry) around the read-modify-write of
--   merge, hold and acquire. Its holder never yields inside, so it is held
--   for microseconds; a holder killed inside loses it to the expiry.
--
-- Failures (dict full, lock never free) return nil, err, reported once (see
-- braze.window.store.reporting); the caller goes on with its own window.
-- Writes never evict other keys (`safe_set`); an `incr` that had to evict
-- counts as a failure (the dict is too small: its count may be wrong).
-- @module braze.window.shdict
local store = require("braze.window.store")

local M = {}

local tonumber, tostring, floor, concat = tonumber, tostring, math.floor, table.concat
local setmetatable, pcall = setmetatable, pcall

local LOCK_TTL = 0.05
local WIDTH = 1 -- seconds a bucket of reservations spans (they live up to this much longer)

local Shdict = {}
Shdict.__index = Shdict

--- A store in `ngx.shared[name]`. Options: `on_error(err)` (called once per
--- outage instead of `ngx.log(ngx.WARN, ...)`), `retry_after` (seconds the
--- store rests after a failure; default 2).
function M.new(name, opts)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.shared) ~= "table" then
    error("braze.window.shdict needs OpenResty (ngx.shared); outside nginx use braze.window.redis", 2)
  end
  if type(name) ~= "string" then error("braze.window.shdict: dict name must be a string", 2) end
  local dict = ngx.shared[name]
  if not dict then
    error("braze.window.shdict: no shared dict '" .. name .. "' (add `lua_shared_dict " .. name
      .. " 1m;` to nginx.conf's http block)", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("braze.window.shdict: options must be a table", 2) end
  local self = setmetatable({ dict = dict, ngx = ngx, dict_name = name, id = "shdict:" .. name,
    same_clock = true }, Shdict) -- one host: its clock offset is ours too
  store.reporting(self, "shdict", opts.on_error, opts.retry_after, ngx.now)
  return self
end

-- "" for nil, the number otherwise.
local function field(v)
  if v == nil then return "" end
  return tostring(v)
end

local function read(dict, ws)
  local v = dict:get(ws .. "|w")
  local s = {}
  if v then
    local l, r, t, o, h = v:match("^([^;]*);([^;]*);([^;]*);([^;]*);([^;]*)$")
    s.limit, s.remaining, s.reset = tonumber(l), tonumber(r), tonumber(t)
    s.offset, s.hold_until = tonumber(o), tonumber(h)
  end
  return s
end

local function write(dict, ws, s)
  local v = concat({ field(s.limit), field(s.remaining), field(s.reset), field(s.offset),
    field(s.hold_until) }, ";")
  local ok, err = dict:safe_set(ws .. "|w", v, store.STATE_TTL)
  if not ok then return nil, "cannot write the window: " .. tostring(err) end
  return true
end

-- Requests in flight: the sum of the live buckets (one after `now`, up to
-- the latest in use).
local function inflight(dict, ws, now)
  local top = dict:get(ws .. "|top")
  if not top then return 0 end
  local first = (floor(now / WIDTH) + 1) * WIDTH
  local last = first + store.MAX_TTL + WIDTH
  if top < last then last = top end
  local n, prefix = 0, ws .. "|b|"
  for e = first, last, WIDTH do
    local c = dict:get(prefix .. e)
    if c and c > 0 then n = n + c end
  end
  return n
end

local BUSY = {} -- the lock stayed taken

-- Run fn(self, ...) holding the workspace's lock; nil, BUSY when it stays
-- taken for ~SPINS tries. Never yields: a yield here, with the request's
-- light threads in flight, made nginx report them "already waited or
-- killed" (seen with ngx.sleep between tries). The holder never yields
-- inside, so the lock is busy only while its holder's process is
-- descheduled (or dead: then it expires in LOCK_TTL).
local SPINS = 2000
local function locked(self, ws, fn, ...)
  local dict, key = self.dict, ws .. "|L"
  local got, err
  for _ = 1, SPINS do
    got, err = dict:add(key, true, LOCK_TTL)
    if got then break end
    if err ~= "exists" then return nil, "cannot take the lock: " .. tostring(err) end
  end
  if not got then return nil, BUSY end
  local ok, a, b, c = pcall(fn, self, ws, ...)
  dict:delete(key)
  if not ok then return nil, a end
  return a, b, c
end

local function do_merge(self, ws, limit, remaining, reset, offset)
  local s = read(self.dict, ws)
  local changed = store.merge(s, limit, remaining, reset)
  if offset and offset ~= s.offset then s.offset, changed = offset, true end
  if changed then
    local ok, err = write(self.dict, ws, s)
    if not ok then return nil, err end
  end
  return s
end

local function do_hold(self, ws, until_)
  local s = read(self.dict, ws)
  if not s.hold_until or until_ > s.hold_until then
    s.hold_until = until_
    local ok, err = write(self.dict, ws, s)
    if not ok then return nil, err end
  end
  return s
end

local function do_acquire(self, ws, want, reserve, ttl, now, blind)
  local dict, lnow = self.dict, self.ngx.now()
  local s = read(dict, ws)
  local n = inflight(dict, ws, lnow)
  local granted = store.grant(s, n, want, reserve, now, blind)
  local e = false
  if granted > 0 then
    e = (floor((lnow + store.ttl(ttl)) / WIDTH) + 1) * WIDTH
    local _, err, forcible = dict:incr(ws .. "|b|" .. e, granted, 0, e - lnow)
    if err then return nil, "cannot count the requests in flight: " .. tostring(err) end
    if forcible then return nil, "the dict is full (an in-flight count evicted another key)" end
    local top = dict:get(ws .. "|top")
    if not top or top < e then
      local ok, serr = dict:safe_set(ws .. "|top", e, store.MAX_TTL + 2)
      if not ok then
        dict:incr(ws .. "|b|" .. e, -granted)
        return nil, "cannot write the latest bucket: " .. tostring(serr)
      end
    end
    n = n + granted
  end
  s.inflight = n
  return granted, e, s
end

-- Return store results, or report the failure.
local function outcome(self, a, b, c)
  if a == nil and b == BUSY then return nil, BUSY end
  if a == nil then return self:failed(b) end
  self:ok()
  return a, b, c
end

--- Merge an answer's window (any argument may be nil); returns the state.
function Shdict:merge(ws, limit, remaining, reset, offset)
  local s, err = outcome(self, locked(self, ws, do_merge, limit, remaining, reset, offset))
  if err == BUSY then -- the state as it is; `busy`: not merged (merge again later)
    s = self:state(ws)
    if s then s.busy = true end
  end
  return s, err
end

--- Nothing starts before `until_` (Braze's clock): a 429's wait, shared.
function Shdict:hold(ws, until_)
  local s, err = outcome(self, locked(self, ws, do_hold, until_))
  if err == BUSY then return self:failed("the lock stayed taken") end
  return s, err
end

--- Reserve up to `want` requests for `ttl` seconds; returns the count
--- granted (0 when none may start now), the reservation's id (for
--- `release`; false when nothing was granted) and the state.
function Shdict:acquire(ws, want, reserve, ttl, now, blind)
  local granted, id, s = outcome(self, locked(self, ws, do_acquire, want, reserve, ttl, now, blind))
  if id == BUSY then -- none granted now; ask again soon
    s = self:state(ws)
    if not s then return nil, self.last_error end
    return 0, false, s
  end
  return granted, id, s
end

--- `count` requests of reservation `id` are answered (or given up).
function Shdict:release(ws, id, count)
  if not id then return true end
  local _, err = self.dict:incr(ws .. "|b|" .. id, -(count or 1))
  if err and err ~= "not found" then return self:failed("cannot release: " .. tostring(err)) end
  return true -- "not found": the reservation had expired already
end

--- `release` and `merge` in one call: a request of reservation `id`
--- (false: none) was answered with this window.
function Shdict:settle(ws, id, count, limit, remaining, reset, offset)
  local s, err = self:merge(ws, limit, remaining, reset, offset)
  if not s or s.busy then return s, err end -- `busy`: nothing settled, settle again later
  local ok, rerr = self:release(ws, id, count)
  if not ok then return nil, rerr end
  if id then s.inflight = s.inflight and s.inflight - (count or 1) end
  return s
end

--- The window as the store knows it, with the requests in flight.
function Shdict:state(ws)
  local ok, s = pcall(read, self.dict, ws)
  if not ok then return self:failed(s) end
  s.inflight = inflight(self.dict, ws, self.ngx.now())
  return s
end

--- Forget workspace `ws` (tests; a new window is learned from the next answer).
function Shdict:forget(ws)
  self.dict:delete(ws .. "|w")
  self.dict:delete(ws .. "|top")
  return true
end

return M
