--- A non-blocking transport for OpenResty / lua-nginx-module: HTTP/1.1 over
-- nginx cosockets, so a request waiting on Braze yields the nginx worker to
-- other requests instead of blocking it (the default libcurl session blocks).
--
--     local braze = require("braze")
--     local client = braze.new{
--       instance = "US-01", api_key = key,
--       transport = require("braze.transport.ngx"),
--       sleep = ngx.sleep,            -- retries must not block the worker either
--     }
--
-- Requirements in nginx.conf:
--
-- * `lua_package_cpath` must find `braze/core.so` built for LuaJIT
--   (`cmake -DBRAZE_LUA=luajit`): JSON is decoded by its C decoder;
-- * `resolver` for host names (cosockets do not read /etc/hosts);
-- * `lua_ssl_trusted_certificate` (e.g. /etc/ssl/certs/ca-certificates.crt)
--   for https: certificates are always verified, and without trusted CAs
--   every handshake fails. `ca_file`, `ca_path` and `proxy` options cannot be
--   honoured per request here, so they raise instead of being ignored.
--
-- Works in every context where cosockets are enabled (rewrite, access,
-- content, ngx.timer.*, ssl_certificate...). A client (and this transport)
-- holds no socket between calls, so one client can be shared by all the
-- requests of a worker; connections are pooled with `setkeepalive`.
--
-- Like the libcurl transport, it bounds every read. `timeout` is a deadline
-- for the whole attempt: connect, TLS handshake and request each get only
-- the time left, and so does every read of the response, however slowly the
-- server trickles it (then kind "timeout"). A status, header or chunk-size
-- line longer than 64 KiB, headers over 64 KiB in all, or more than 200
-- header lines fail at once as "too_large", without buffering the rest.
-- The response is read by braze.transport.http1, which keeps the body in
-- memory in proportion to its bytes and lets the worker run other requests
-- (ngx.sleep(0)) every few milliseconds of a long read.
--
-- get(url) returns what braze.core's session:get returns: a response table
-- `{status=, headers={lower-case name=value}, body=|decode_error=,
-- decode_position=, snippet=}` or nil, kind ("network" | "timeout" |
-- "too_large"), message.
-- @module braze.transport.ngx
local split_url = require("braze.url").split_url
local core = require("braze.core")
local http1 = require("braze.transport.http1")
local response = require("braze.transport.response")

local monotonic = core.monotonic
local type, setmetatable, error = type, setmetatable, error
local format, floor, min, max = string.format, math.floor, math.min, math.max

local M = {
  --- Seconds an idle pooled connection is kept (setkeepalive's max_idle_timeout).
  keepalive_timeout = 60,
  --- Connections kept per pool (per scheme://host:port) in each worker.
  pool_size = 32,
}

--- Waits without blocking the worker: pass it (or ngx.sleep) as braze.new's `sleep`.
function M.sleep(seconds)
  return ngx.sleep(seconds)
end

-- Lets the worker run other requests during a long read (1-byte chunks...).
local function let_others_run()
  ngx.sleep(0)
end

---@class braze.transport.ngx.Session
local Session = {}
Session.__index = Session
Session.__name = "braze.transport.ngx"

--- Make a transport object from braze.new's connection settings.
-- luacheck: push ignore 631 (a type annotation is one line)
---@param config {api_key: string, timeout: number, connect_timeout: number, user_agent: string, max_body: number, max_depth: integer, ca_file?: string, ca_path?: string, proxy?: string}
-- luacheck: pop
---@return braze.transport.ngx.Session
function M.new(config)
  if type(ngx) ~= "table" or type(ngx.socket) ~= "table" then
    error("braze.transport.ngx: needs OpenResty / lua-nginx-module (no ngx.socket here)", 3)
  end
  if config.ca_file ~= nil or config.ca_path ~= nil then
    error("braze.transport.ngx: ca_file/ca_path cannot be set per request under nginx; "
      .. "set lua_ssl_trusted_certificate in nginx.conf", 3)
  end
  if config.proxy ~= nil then
    error("braze.transport.ngx: proxy is not supported", 3)
  end
  return setmetatable({
    auth = "Bearer " .. config.api_key,
    user_agent = config.user_agent,
    timeout = config.timeout,
    connect_timeout = config.connect_timeout,
    max_body = config.max_body,
    max_depth = config.max_depth,
  }, Session)
end

function Session:__tostring()
  return format("braze.transport.ngx (%s)", self.closed and "closed" or "open")
end

--- Mark the object closed (pooled connections belong to the worker, not to it).
function Session:close()
  self.closed = true
end


-- A connected socket (TLS done) for scheme://host:port, and whether it came
-- from the pool | nil, kind, message.
local function connect(self, scheme, host, port, deadline, started)
  local sock = ngx.socket.tcp()
  local ms = floor((deadline - monotonic()) * 1000)
  if ms <= 0 then return http1.failed("before connecting", "timeout", started) end
  sock:settimeout(max(1, min(ms, floor(self.connect_timeout * 1000))))
  -- nginx parses "host:port" itself, so an IPv6 literal keeps its brackets.
  local address = host:find(":", 1, true) and ("[" .. host .. "]") or host
  local ok, err = sock:connect(address, port, { pool = scheme .. "://" .. address .. ":" .. port })
  if not ok then
    sock:close()
    return http1.failed(format("connecting to %s:%d", host, port), err, started)
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if scheme == "https" and not reused then
    ms = floor((deadline - monotonic()) * 1000)
    if ms <= 0 then
      sock:close()
      return http1.failed("in the TLS handshake", "timeout", started)
    end
    sock:settimeout(ms)
    local session, herr = sock:sslhandshake(nil, host, true)
    if not session then
      sock:close()
      return http1.failed(format("TLS handshake with %s", host), herr, started)
    end
  end
  return sock, reused
end

-- One request on one connection, which it closes or pools. Returns the
-- head (braze.transport.http1) and body | nil, kind, message, retry_fresh
-- (true when a pooled connection failed before any byte of the response).
local function exchange(self, scheme, host, port, host_header, target, deadline)
  local started = deadline - self.timeout
  local sock, reused, msg = connect(self, scheme, host, port, deadline, started)
  if not sock then return nil, reused, msg end
  local ms = floor((deadline - monotonic()) * 1000)
  local sent, err = nil, "timeout"
  if ms > 0 then
    sock:settimeout(ms)
    sent, err = sock:send(http1.request(target, host_header, self.auth, self.user_agent))
  end
  if not sent then
    sock:close()
    local _, kind
    _, kind, msg = http1.failed("sending the request", err, started)
    return nil, kind, msg, reused and err ~= "timeout"
  end

  local r = http1.reader(sock, deadline, started, let_others_run)
  local head, kind, none
  head, kind, msg, none = http1.read_head(r)
  if not head then
    sock:close()
    return nil, kind, msg, reused and none and kind ~= "timeout"
  end
  local body
  body, kind, msg = http1.read_body(r, head, self.max_body)
  if not body then
    sock:close()
    return nil, kind, msg
  end
  -- Bytes past the response: the connection is out of step, do not pool it.
  if head.keepalive and not r:has_extra() then
    -- A failure here only means the connection is not kept.
    local kept = sock:setkeepalive(floor(M.keepalive_timeout * 1000), M.pool_size)
    if not kept then sock:close() end
  else
    sock:close()
  end
  return head, body
end

--- One GET; the same contract as braze.core's session:get.
---@param url string
---@return table|nil response
---@return string|nil kind
---@return string|nil message
function Session:get(url)
  if self.closed then error("braze: session is closed", 2) end
  if type(url) ~= "string" then error("braze: bad URL: expected a string", 2) end
  local scheme, host, port, host_header, target = split_url(url)
  if not scheme then error("braze: bad URL: " .. host, 2) end
  local deadline = monotonic() + self.timeout

  local head, body, msg, retry_fresh
  for _ = 1, M.pool_size + 1 do
    head, body, msg, retry_fresh = exchange(self, scheme, host, port, host_header, target, deadline)
    -- A pooled connection that the server had closed while it sat idle
    -- failed before any byte of the answer: try again (the pool hands out
    -- its idle connections first; a fresh connection never sets retry_fresh).
    if head or not retry_fresh then break end
  end
  if not head then return nil, body, msg end
  return response.new(head.status, head.headers, body, self.max_depth)
end

-- A batch: requests that start at once, each in its own light thread, and
-- are collected as they finish (braze.scheduler's async mode, so the
-- pipelined each keeps its pool full in OpenResty too).
--
-- A thread puts its outcome in the batch's queue and posts the batch's
-- semaphore; poll waits on the semaphore, never on several threads at once
-- with ngx.thread.wait: lua-nginx-module 0.10.23 (Debian 12) leaves the
-- threads that did not end such a wait marked as waited for, and one of
-- them that ends while the request is parked elsewhere (ngx.sleep in the
-- loop body, a cosocket of the window's store) resumes the request there
-- and is gone when the next wait names it ("already waited or killed").
-- A thread that has ended is reaped by poll (ngx.thread.kill), so none
-- lingers as a zombie in a long-running request.
local Batch = {}
Batch.__index = Batch

local semaphore_ok, semaphore = pcall(require, "ngx.semaphore") -- lua-resty-core

--- Start requests now and collect them as they finish: `:submit(url, tag)`,
-- `:poll(timeout)`, `:close()` (see braze.scheduler).
function Session:batch()
  if self.closed then error("braze: session is closed", 2) end
  -- running: tag -> thread; done: outcomes not yet polled, in order
  return setmetatable({ session = self, running = {}, count = 0, done = {},
    sema = semaphore_ok and semaphore.new(0) or nil }, Batch)
end

function Batch:submit(url, tag)
  local session = self.session
  if session.closed then error("braze: session is closed", 2) end
  if type(url) ~= "string" then error("braze: bad URL: expected a string", 2) end
  local scheme, why = split_url(url)
  if not scheme then error("braze: bad URL: " .. why, 2) end
  local thread = ngx.thread.spawn(function()
    local ok, res, kind, msg = pcall(session.get, session, url)
    if not ok then -- not a network outcome: poll raises it
      res, kind, msg = nil, "raised", res
    end
    local out = res or { error = kind, message = msg }
    out.tag = tag
    local done = self.done -- (poll and close replace the queue: look it up now)
    done[#done + 1] = out
    if self.sema then self.sema:post(1) end
  end)
  self.running[tag] = thread
  self.count = self.count + 1
end

-- Wait up to `seconds` (nil: no limit) for an outcome in the queue.
local function wait_done(self, seconds)
  local deadline = seconds and monotonic() + seconds
  local slice = 0.001
  while #self.done == 0 do
    local left = deadline and deadline - monotonic() or 60
    if left <= 0 then return end
    if self.sema then
      -- a post for an outcome an earlier poll took makes this return early: loop
      self.sema:wait(left)
    else -- no lua-resty-core: look again every few milliseconds
      ngx.sleep(max(0.001, min(slice, left)))
      slice = min(slice * 2, 0.01)
    end
  end
end

--- Wait until a request finishes (or `timeout` seconds): every outcome
-- finished so far, each with its `tag`; an empty array when the time ran
-- out first or nothing is in flight.
function Batch:poll(timeout)
  if self.count == 0 then return {} end
  wait_done(self, timeout and max(timeout, 0))
  local done = self.done
  if #done == 0 then return {} end
  self.done = {}
  local raised
  for _, out in ipairs(done) do
    local thread = self.running[out.tag]
    self.running[out.tag] = nil
    self.count = self.count - 1
    -- reap the ended thread: kill frees a zombie at once, without yielding
    -- (and, unlike wait, returns an error instead of raising when this is
    -- not the coroutine that spawned it)
    if thread then ngx.thread.kill(thread) end
    if out.error == "raised" then raised = raised or out.message end
  end
  if raised then error(raised, 0) end
  return done
end

--- Drop every request still running, and every outcome not polled (a
-- thread that has ended is reaped by its kill). Safe to call twice.
function Batch:close()
  for _, t in pairs(self.running) do ngx.thread.kill(t) end
  self.running, self.count, self.done = {}, 0, {}
  -- a fresh semaphore: the old one's posts are for outcomes dropped here
  self.sema = semaphore_ok and semaphore.new(0) or nil
end

return M
