--- A window store in Redis: processes and hosts that use one key share the
-- window of its workspace.
--
--   local store = require("braze.window.redis").new{ host = "127.0.0.1", port = 6379 }
--
-- Every operation is one server-side Lua script (EVALSHA, EVAL when the
-- server answers NOSCRIPT), so it is atomic however many clients call. The
-- Redis client is lua-resty-redis inside OpenResty (cosockets, a keep-alive
-- pool; Debian `lua-nginx-redis`, rock `lua-resty-redis`) and redis-lua
-- elsewhere (blocking LuaSocket; Debian `lua-redis`, rock `redis-lua`).
-- Neither is a dependency of lua-braze: `new` names the one it misses.
--
-- Keys, for a workspace `ws` (braze.window.store.workspace) and `prefix`
-- (default "braze:"), in one cluster slot (`{ws}` is a hash tag):
-- `prefix{ws}:w` a hash (limit, remaining, reset, offset, hold, in-flight
-- total, id sequence), `prefix{ws}:e` a sorted set of reservation ids by
-- expiry (Redis's own clock: `TIME`), `prefix{ws}:c` a hash id -> count.
-- Every write renews them for STATE_TTL; expired reservations are swept by
-- the next operation.
--
-- A failure (refused, timeout, AUTH or script error) returns nil, err and is
-- reported once per outage; for `retry_after` seconds (default 2) the store
-- is not tried again, so a Redis that is down costs a call nothing.
-- @module braze.window.redis
local store = require("braze.window.store")

local M = {}

local tonumber, tostring, type, setmetatable, pcall = tonumber, tostring, type, setmetatable, pcall
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

local Redis = {}
Redis.__index = Redis

-- The Redis client for this host: ("resty", module) inside OpenResty where
-- cosockets exist, else ("plain", module); or nil, message.
local function client_module()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.socket and ngx.socket.tcp then
    for _, name in ipairs({ "resty.redis", "nginx.redis" }) do
      local ok, mod = pcall(require, name)
      if ok and type(mod) == "table" then return "resty", mod end
    end
    return nil, "braze.window.redis needs lua-resty-redis inside nginx (Debian: apt install "
      .. "lua-nginx-redis; LuaRocks: luarocks install lua-resty-redis)"
  end
  local ok, mod = pcall(require, "redis")
  if ok and type(mod) == "table" and mod.connect then return "plain", mod end
  return nil, "braze.window.redis needs redis-lua (Debian: apt install lua-redis, which installs it "
    .. "for Lua 5.1-5.3: on 5.4 add /usr/share/lua/5.3/?.lua to package.path; LuaRocks: "
    .. "luarocks install redis-lua)"
end

-- Seconds, for the rest after a failure: ngx.now in nginx, else braze.core's
-- monotonic clock (os.time, whole seconds, if braze.core is not there).
local has_core, core = pcall(require, "braze.core")
local monotonic = has_core and core.monotonic or os.time
local function clock()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.now then return ngx.now() end
  return monotonic()
end

--- A store on the Redis at `opts.host` (default 127.0.0.1), `opts.port`
--- (6379), with `password`, `db` (0), `prefix` ("braze:"), `timeout` (seconds
--- for connect and each command: 0.25), `pool_size` (OpenResty keep-alive
--- pool, 16), `on_error(err)` and `retry_after` (see braze.window.store).
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("braze.window.redis: options must be a table", 2) end
  local kind, mod = client_module()
  if not kind then error(mod, 2) end
  local function check(name, want, default)
    local v = opts[name]
    if v == nil then return default end
    if type(v) ~= want then error("braze.window.redis: " .. name .. " must be a " .. want, 3) end
    return v
  end
  local self = setmetatable({
    kind = kind, mod = mod,
    host = check("host", "string", "127.0.0.1"),
    port = check("port", "number", 6379),
    password = check("password", "string", nil),
    db = check("db", "number", 0),
    prefix = check("prefix", "string", "braze:"),
    timeout = check("timeout", "number", 0.25),
    pool_size = check("pool_size", "number", 16),
  }, Redis)
  if self.timeout <= 0 then error("braze.window.redis: timeout must be above 0", 2) end
  self.pool = "braze:" .. self.host .. ":" .. self.port .. ":" .. self.db
  -- what the store is, for braze.window.of: stores with the same id share a window
  self.id = "redis:" .. self.host .. ":" .. self.port .. "/" .. self.db .. "/" .. self.prefix
  store.reporting(self, "redis", opts.on_error, opts.retry_after, clock)
  return self
end

-- ---------------------------------------------------------------------------
-- The script: every operation, atomic on the server (Redis's Lua 5.1)

M.SCRIPT = [[
local w, e, c = KEYS[1], KEYS[2], KEYS[3]
local op, ttl_ms = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local function num(v) if v and v ~= '' then return tonumber(v) end return nil end
local gone = redis.call('ZRANGEBYSCORE', e, '-inf', now)
if #gone > 0 then
  local k = 0
  for _, id in ipairs(gone) do
    k = k + (tonumber(redis.call('HGET', c, id)) or 0)
    redis.call('HDEL', c, id)
  end
  redis.call('ZREMRANGEBYSCORE', e, '-inf', now)
  if k > 0 then redis.call('HINCRBY', w, 'n', -k) end
end
local v = redis.call('HMGET', w, 'l', 'r', 't', 'o', 'h', 'n')
local l, r, rt, o, h, n = num(v[1]), num(v[2]), num(v[3]), num(v[4]), num(v[5]), num(v[6]) or 0
if n < 0 then n = 0 end
local granted, rid, dirty = 0, '', false
if op == 'merge' or op == 'settle' then
  local at = op == 'merge' and 3 or 5 -- settle: id, count, then the window
  local ml, mr, mt, mo = num(ARGV[at]), num(ARGV[at + 1]), num(ARGV[at + 2]), num(ARGV[at + 3])
  if mt and rt and mt > rt then
    l, r, rt, dirty = ml, mr, mt, true
  elseif not (mt and rt and mt < rt) then
    if r and (mr == nil or r < mr) then mr = r end
    if mr ~= r or (ml and ml ~= l) or (mt and mt ~= rt) then dirty = true end
    r = mr
    if ml then l = ml end
    if mt then rt = mt end
  end
  if mo and mo ~= o then o, dirty = mo, true end
elseif op == 'hold' then
  local u = num(ARGV[3])
  if u and (not h or u > h) then h, dirty = u, true end
elseif op == 'acquire' then
  local want, reserve, ttl, bnow, blind = num(ARGV[3]), num(ARGV[4]) or 0, num(ARGV[5]),
    num(ARGV[6]), num(ARGV[7]) or 1
  if not (h and h > bnow) then
    if reserve > 0 and reserve < 1 then reserve = l and math.ceil(reserve * l) or 0 end
    local room
    if r and (not rt or rt > bnow) then room = r - reserve - n else room = blind - n end
    if room > 0 then granted = math.min(room, want) end
  end
  if granted > 0 then
    rid = redis.call('HINCRBY', w, 'seq', 1)
    redis.call('HSET', c, rid, granted)
    redis.call('ZADD', e, now + ttl, rid)
    n = redis.call('HINCRBY', w, 'n', granted)
    redis.call('PEXPIRE', e, ttl_ms)
    redis.call('PEXPIRE', c, ttl_ms)
  end
end
if op == 'release' or op == 'settle' then
  local id, k = ARGV[3], num(ARGV[4]) or 1
  local have = tonumber(redis.call('HGET', c, id))
  if have then
    if k > have then k = have end
    if have - k <= 0 then
      redis.call('HDEL', c, id)
      redis.call('ZREM', e, id)
    else
      redis.call('HSET', c, id, have - k)
    end
    n = redis.call('HINCRBY', w, 'n', -k)
  end
end
if dirty then
  local function put(f, x) if x then redis.call('HSET', w, f, x) else redis.call('HDEL', w, f) end end
  put('l', l); put('r', r); put('t', rt); put('o', o); put('h', h)
end
if dirty or granted > 0 then redis.call('PEXPIRE', w, ttl_ms) end
local function s(x) if x == nil then return '' end return tostring(x) end
return { granted, s(rid), s(l), s(r), s(rt), s(o), s(h), n }
]]

local STATE_TTL_MS = tostring(store.STATE_TTL * 1000)

-- A number, or nil for "" and nil.
local function arg(v)
  if v == nil then return "" end
  return tostring(v)
end

-- The script's answer as (granted, id, state).
local function decode(res)
  if type(res) ~= "table" then error("unexpected answer from the script: " .. tostring(res), 0) end
  local s = {
    limit = tonumber(res[3]), remaining = tonumber(res[4]), reset = tonumber(res[5]),
    offset = tonumber(res[6]), hold_until = tonumber(res[7]), inflight = tonumber(res[8]) or 0,
  }
  local id = res[2]
  return tonumber(res[1]) or 0, (id ~= "" and id) or false, s
end

-- ---------------------------------------------------------------------------
-- Connections

local sha -- the script's SHA1, from SCRIPT LOAD (the same for every store)

-- redis-lua: one connection per store, made again after any failure.
-- Raises on failure (the caller pcalls).
local function plain_eval(self, argv)
  local conn = self.conn
  if not conn then
    conn = self.mod.connect({ host = self.host, port = self.port, timeout = self.timeout })
    if self.password then conn:auth(self.password) end
    if self.db ~= 0 then conn:select(self.db) end
    self.conn = conn
  end
  if not sha then sha = conn:script("load", M.SCRIPT) end
  local ok, res = pcall(conn.evalsha, conn, sha, 3, unpack(argv))
  if ok then return res end
  if not tostring(res):find("NOSCRIPT", 1, true) then error(res, 0) end
  return conn:eval(M.SCRIPT, 3, unpack(argv))
end

-- lua-resty-redis: a connection from the keep-alive pool per operation.
local function resty_eval(self, argv)
  local red = self.mod:new()
  local ms = self.timeout * 1000
  -- rawget: lua-resty-redis makes a Redis command of any unknown method name
  -- (0.27, Debian 12's, has no set_timeouts: `red.set_timeouts` would send
  -- SET_TIMEOUTS on a socket not connected yet).
  if rawget(self.mod, "set_timeouts") then red:set_timeouts(ms, ms, ms) else red:set_timeout(ms) end
  local ok, err = red:connect(self.host, self.port, { pool = self.pool, pool_size = self.pool_size })
  if not ok then error("connect: " .. tostring(err), 0) end
  local function fail(what, e)
    red:close()
    error(what .. tostring(e), 0)
  end
  if (red:get_reused_times() or 0) == 0 then
    if self.password then
      ok, err = red:auth(self.password)
      if not ok then fail("auth: ", err) end
    end
    if self.db ~= 0 then
      ok, err = red:select(self.db)
      if not ok then fail("select: ", err) end
    end
  end
  if not sha then
    local h
    h, err = red:script("load", M.SCRIPT)
    if not h then fail("script load: ", err) end
    sha = h
  end
  local res
  res, err = red:evalsha(sha, 3, unpack(argv))
  if not res and tostring(err):find("NOSCRIPT", 1, true) then
    res, err = red:eval(M.SCRIPT, 3, unpack(argv))
  end
  if not res then fail("", err) end
  red:set_keepalive(10000, self.pool_size)
  return res
end

-- One operation: nil, err when the store is resting after a failure or
-- fails now (reported once); else granted, id, state.
local function call(self, ws, op, a, b, c, d, e, f)
  if self:resting() then return nil, self.last_error end
  local base = self.prefix .. "{" .. ws .. "}"
  local argv = { base .. ":w", base .. ":e", base .. ":c", op, STATE_TTL_MS,
    arg(a), arg(b), arg(c), arg(d), arg(e), arg(f) }
  local ok, res = pcall(self.kind == "resty" and resty_eval or plain_eval, self, argv)
  if ok then ok, res = pcall(function() return { decode(res) } end) end
  if not ok then
    if self.conn then
      pcall(self.conn.quit, self.conn)
      self.conn = nil
    end
    return self:failed(res)
  end
  self:ok()
  return res[1], res[2], res[3]
end

--- Merge an answer's window (any argument may be nil); returns the state.
function Redis:merge(ws, limit, remaining, reset, offset)
  local _, _, s = call(self, ws, "merge", limit, remaining, reset, offset)
  if not s then return nil, self.last_error end
  return s
end

--- Nothing starts before `until_` (Braze's clock): a 429's wait, shared.
function Redis:hold(ws, until_)
  local _, _, s = call(self, ws, "hold", until_)
  if not s then return nil, self.last_error end
  return s
end

--- Reserve up to `want` requests for `ttl` seconds (on Redis's clock);
--- returns the count granted, the reservation's id (false when none) and
--- the state.
function Redis:acquire(ws, want, reserve, ttl, now, blind)
  return call(self, ws, "acquire", want, reserve, store.ttl(ttl), now, blind or 1)
end

--- `count` requests of reservation `id` are answered (or given up).
function Redis:release(ws, id, count)
  if not id then return true end
  local granted = call(self, ws, "release", id, count or 1)
  if not granted then return nil, self.last_error end
  return true
end

--- `release` and `merge` in one step (one round trip): a request of
--- reservation `id` (false: none) was answered with this window.
function Redis:settle(ws, id, count, limit, remaining, reset, offset)
  local _, _, s = call(self, ws, "settle", id or "", count or 1, limit, remaining, reset, offset)
  if not s then return nil, self.last_error end
  return s
end

--- The window as the store knows it, with the requests in flight.
function Redis:state(ws)
  local _, _, s = call(self, ws, "state")
  if not s then return nil, self.last_error end
  return s
end

--- Close the connection (redis-lua; OpenResty's go back to the pool).
function Redis:close()
  if self.conn then
    pcall(self.conn.quit, self.conn)
    self.conn = nil
  end
end

return M
