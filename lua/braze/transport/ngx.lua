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
--
-- get(url) returns what braze.core's session:get returns: a response table
-- `{status=, headers={lower-case name=value}, body=|decode_error=,
-- decode_position=, snippet=}` or nil, kind ("network" | "timeout" |
-- "too_large"), message.
-- @module braze.transport.ngx
local args = require("braze.args")
local core = require("braze.core")
local response = require("braze.transport.response")

local monotonic = core.monotonic
local type, tonumber, tostring, setmetatable, error = type, tonumber, tostring, setmetatable, error
local format, concat, floor, min, max = string.format, table.concat, math.floor, math.min, math.max
local find, sub, byte = string.find, string.sub, string.byte

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

-- The response headers handed to the front, as braze.core keeps them.
local wanted = {
  ["x-ratelimit-limit"] = true, ["x-ratelimit-remaining"] = true, ["x-ratelimit-reset"] = true,
  ["x-request-id"] = true, ["content-type"] = true, ["retry-after"] = true, ["location"] = true,
}
local HEADER_VALUE_MAX = 255 -- as braze.core: values are cut to this many bytes
local MAX_HEADER_LINES = 200
local MAX_HEADER_BYTES = 65536 -- the longest line (status, header, chunk size), and all headers
local READ_CHUNK = 65536

-- Buffered reads from one cosocket, each bounded in size and ending by the
-- attempt's deadline. sock:receive(n) and receive("*l") are neither: a
-- cosocket's read timeout restarts with every packet (a trickling server
-- stretches one call without end), and "*l" buffers a whole line before the
-- caller can look at its length. receiveany returns as soon as some bytes
-- arrive, so each call here waits only for the time left and takes at most
-- READ_CHUNK bytes.
local Reader = {}
Reader.__index = Reader

local function reader(sock, deadline)
  return setmetatable({ sock = sock, deadline = deadline, buf = "", pos = 1 }, Reader)
end

-- Up to n new bytes (replacing the buffer), or nil, "timeout" | cosocket error.
function Reader:fill(n)
  local ms = floor((self.deadline - monotonic()) * 1000)
  if ms <= 0 then return nil, "timeout" end
  self.sock:settimeout(ms)
  local data, err = self.sock:receiveany(n)
  if not data then return nil, err end
  self.buf, self.pos = data, 1
  return true
end

--- The next line without its CRLF (or LF); nil, "too long" once it exceeds
-- limit bytes (without reading further); nil, err when the read fails.
function Reader:line(limit)
  local parts, n = nil, 0 -- the line's pieces from earlier reads, their length
  while true do
    local buf, pos = self.buf, self.pos
    local nl = find(buf, "\n", pos, true)
    if nl then
      if n + nl - pos > limit + 1 then return nil, "too long" end -- +1: the CR
      local piece = sub(buf, pos, nl - 1)
      self.pos = nl + 1
      if parts then
        parts[#parts + 1] = piece
        piece = concat(parts)
      end
      if byte(piece, -1) == 13 then piece = sub(piece, 1, -2) end
      if #piece > limit then return nil, "too long" end
      return piece
    end
    if pos <= #buf then
      n = n + #buf - pos + 1
      if n > limit + 1 then return nil, "too long" end
      parts = parts or {}
      parts[#parts + 1] = pos == 1 and buf or sub(buf, pos)
    end
    local ok, err = self:fill(READ_CHUNK)
    if not ok then return nil, err end
  end
end

--- Exactly n bytes; nil, err when the read fails first. Reads no further.
function Reader:bytes(n)
  local buf, pos = self.buf, self.pos
  local have = #buf - pos + 1
  if have >= n then
    self.pos = pos + n
    return sub(buf, pos, pos + n - 1)
  end
  local parts, need = { sub(buf, pos) }, n - have
  self.buf, self.pos = "", 1
  while need > 0 do
    local ok, err = self:fill(min(need, READ_CHUNK))
    if not ok then return nil, err end
    parts[#parts + 1] = self.buf
    need = need - #self.buf
    self.buf = ""
  end
  return concat(parts)
end

--- What is buffered and not read yet, emptying the buffer.
function Reader:take_buffered()
  local rest = sub(self.buf, self.pos)
  self.buf, self.pos = "", 1
  return rest
end

--- Bytes already received beyond what was read?
function Reader:has_extra()
  return self.pos <= #self.buf
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
    user_agent = config.user_agent or "lua-braze",
    timeout = config.timeout or 30,
    connect_timeout = config.connect_timeout or 10,
    max_body = config.max_body or 32 * 1024 * 1024,
    max_depth = config.max_depth or 1000,
  }, Session)
end

function Session:__tostring()
  return format("braze.transport.ngx (%s)", self.closed and "closed" or "open")
end

--- Mark the object closed (pooled connections belong to the worker, not to it).
function Session:close()
  self.closed = true
end


-- One request on one connection. Closes or pools the socket itself.
-- Returns status, headers, body | nil, kind, message, retry_fresh (true when
-- a pooled connection failed before any byte of the response).
local function exchange(self, scheme, host, port, host_header, target, deadline)
  local sock = ngx.socket.tcp()
  local function left_ms()
    return floor((deadline - monotonic()) * 1000)
  end
  local function fail(kind, msg, retry_fresh)
    sock:close()
    return nil, kind, msg, retry_fresh
  end
  -- cosocket errors: "timeout", "closed", "connection refused", ...
  local function io_fail(what, err, retry_fresh)
    if err == "timeout" then
      return fail("timeout", format("timed out %s after %.2f s", what,
        monotonic() - (deadline - self.timeout)))
    end
    return fail("network", format("%s: %s", what, tostring(err)), retry_fresh)
  end
  local function set_timeout()
    local ms = left_ms()
    if ms <= 0 then return false end
    sock:settimeout(ms)
    return true
  end

  -- Every step gets only what is left of the attempt's deadline.
  if left_ms() <= 0 then return io_fail("before connecting", "timeout") end
  sock:settimeout(max(1, min(left_ms(), floor(self.connect_timeout * 1000))))
  -- nginx parses "host:port" itself, so an IPv6 literal keeps its brackets.
  local address = host:find(":", 1, true) and ("[" .. host .. "]") or host
  local ok, err = sock:connect(address, port, { pool = scheme .. "://" .. address .. ":" .. port })
  if not ok then
    return io_fail(format("connecting to %s:%d", host, port), err)
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if scheme == "https" and not reused then
    if not set_timeout() then return io_fail("in the TLS handshake", "timeout") end
    local session, herr = sock:sslhandshake(nil, host, true)
    if not session then
      return io_fail(format("TLS handshake with %s", host), herr)
    end
  end

  if not set_timeout() then return io_fail("sending the request", "timeout") end
  local request = concat({
    "GET ", target, " HTTP/1.1\r\n",
    "Host: ", host_header, "\r\n",
    "Authorization: ", self.auth, "\r\n",
    "Accept: application/json\r\n",
    "User-Agent: ", self.user_agent, "\r\n",
    "Connection: keep-alive\r\n\r\n",
  })
  local sent
  sent, err = sock:send(request)
  if not sent then return io_fail("sending the request", err, reused) end

  -- Status line and headers; 1xx interim responses are skipped. Every line,
  -- and all of them together, within MAX_HEADER_BYTES; every read by the
  -- deadline.
  local r = reader(sock, deadline)
  local function too_long(what)
    return fail("too_large", format("response %s longer than %d bytes", what, MAX_HEADER_BYTES))
  end
  local header_lines, header_bytes = 0, 0
  -- The next header (or trailer) line, counted against the header limits.
  local function header_line(what)
    local line, lerr = r:line(MAX_HEADER_BYTES)
    if not line then
      if lerr == "too long" then return too_long(what .. " line") end
      return io_fail("reading the headers", lerr)
    end
    if line ~= "" then
      header_lines, header_bytes = header_lines + 1, header_bytes + #line
      if header_lines > MAX_HEADER_LINES then
        return fail("too_large", format("more than %d response header lines", MAX_HEADER_LINES))
      end
      if header_bytes > MAX_HEADER_BYTES then
        return fail("too_large", format("response headers longer than %d bytes in all",
          MAX_HEADER_BYTES))
      end
    end
    return line
  end

  local status, version, headers, framing, content_length, keepalive
  while true do
    local line
    line, err = r:line(MAX_HEADER_BYTES)
    if not line then
      if err == "too long" then return too_long("status line") end
      return io_fail("reading the status line", err, reused and status == nil)
    end
    local v, code = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not v then return fail("network", "malformed status line from the server") end
    header_bytes = header_bytes + #line
    version, status = v, tonumber(code)
    headers, framing, content_length = {}, nil, nil
    local connection_header
    while true do
      local kind, msg
      line, kind, msg = header_line("header")
      if not line then return nil, kind, msg end
      if line == "" then break end
      local name, value = line:match("^([^:]*):(.*)$")
      if name then
        name = name:lower()
        value = value:match("^[ \t]*(.-)[ \t\r\n]*$")
        if wanted[name] then
          -- As braze.core: cut, and no control bytes (values reach error messages).
          headers[name] = (value:sub(1, HEADER_VALUE_MAX):gsub("%c", "?"))
        elseif name == "transfer-encoding" then
          framing = value:lower():match("chunked%s*$") and "chunked" or "close"
        elseif name == "content-length" then
          if not value:match("^%d+$") or #value > 15
            or (content_length and content_length ~= tonumber(value)) then
            return fail("network", "invalid Content-Length in the response")
          end
          content_length = tonumber(value)
        elseif name == "connection" then
          connection_header = value:lower()
        end
      end
    end
    if status >= 200 or status == 101 then
      if version == "1.0" then
        keepalive = connection_header ~= nil and connection_header:find("keep-alive", 1, true) ~= nil
      else
        keepalive = not (connection_header and connection_header:find("close", 1, true))
      end
      break
    end
  end

  -- The body.
  local max_body = self.max_body
  local function too_large()
    return fail("too_large", format("response body larger than max_body (%d bytes)",
      min(max_body, 0x7fffffff)))
  end
  local body
  if status == 204 or status == 304 or status < 200 then
    body = ""
  elseif framing == "chunked" then
    if content_length then keepalive = false end -- both framings: do not trust the rest
    local parts, total = {}, 0
    while true do
      local line
      line, err = r:line(MAX_HEADER_BYTES)
      if not line then
        if err == "too long" then return too_long("chunk-size line") end
        return io_fail("reading the body", err)
      end
      local hex = line:match("^(%x+)[ \t]*;?") or line:match("^(%x+)[ \t]*$")
      if not hex or #hex > 12 then return fail("network", "malformed chunk size in the response") end
      local size = tonumber(hex, 16)
      if size == 0 then
        repeat -- trailers, up to the blank line
          local kind, msg
          line, kind, msg = header_line("trailer")
          if not line then return nil, kind, msg end
        until line == ""
        break
      end
      total = total + size
      if total > max_body then return too_large() end
      local data
      data, err = r:bytes(size)
      if not data then return io_fail("reading the body", err) end
      parts[#parts + 1] = data
      line, err = r:line(0)
      if not line then
        if err == "too long" then return fail("network", "malformed chunk in the response") end
        return io_fail("reading the body", err)
      end
    end
    body = concat(parts)
  elseif content_length and framing == nil then
    if content_length > max_body then return too_large() end
    body, err = r:bytes(content_length)
    if not body then return io_fail("reading the body", err) end
  else
    -- No length: the body ends when the server closes the connection.
    keepalive = false
    local parts, total = {}, 0
    local data = r:take_buffered()
    while true do
      total = total + #data
      if total > max_body then return too_large() end
      parts[#parts + 1] = data
      local got
      got, err = r:fill(READ_CHUNK)
      if not got then
        if err == "closed" then break end
        return io_fail("reading the body", err)
      end
      data = r:take_buffered()
    end
    body = concat(parts)
  end

  -- Bytes past the response: the connection is out of step, do not pool it.
  if r:has_extra() then keepalive = false end
  if keepalive then
    -- A failure here only means the connection is not kept.
    local kept = sock:setkeepalive(floor(M.keepalive_timeout * 1000), M.pool_size)
    if not kept then sock:close() end
  else
    sock:close()
  end
  return status, headers, body
end

--- One GET; the same contract as braze.core's session:get.
---@param url string
---@return table|nil response
---@return string|nil kind
---@return string|nil message
function Session:get(url)
  if self.closed then error("braze: session is closed", 2) end
  if type(url) ~= "string" then error("braze: bad URL: expected a string", 2) end
  local scheme, host, port, host_header, target = args.split_url(url)
  if not scheme then error("braze: bad URL: " .. host, 2) end
  local deadline = monotonic() + self.timeout

  local status, headers, body, retry_fresh
  for _ = 1, M.pool_size + 1 do
    status, headers, body, retry_fresh = exchange(self, scheme, host, port, host_header,
      target, deadline)
    -- A pooled connection that the server had closed while it sat idle
    -- failed before any byte of the answer: try again (the pool hands out
    -- its idle connections first; a fresh connection never sets retry_fresh).
    if status or not retry_fresh then break end
  end
  if not status then return nil, headers, body end

  return response.new(status, headers, body, self.max_depth)
end

--- Many GETs, at most `concurrency` at once, each in its own nginx light
-- thread (ngx.thread.spawn): the same contract as braze.core's
-- session:get_many, so client:details_many runs concurrently here too.
---@param urls string[]
---@param concurrency? integer
---@return table results one per URL: a response table, or { error = kind, message = }
function Session:get_many(urls, concurrency)
  if self.closed then error("braze: session is closed", 2) end
  local n = #urls
  local width = math.min(concurrency or 8, n)
  local out, next_index = {}, 1
  local function worker()
    while next_index <= n do
      local i = next_index
      next_index = i + 1
      local res, kind, msg = self:get(urls[i])
      out[i] = res or { error = kind, message = msg }
    end
  end
  local threads = {}
  for k = 1, width do threads[k] = ngx.thread.spawn(worker) end
  for k = 1, width do
    local ok, err = ngx.thread.wait(threads[k])
    if not ok then error(err, 0) end
  end
  return out
end

-- A batch: requests that start at once, each in its own light thread, and
-- are collected as they finish (braze.scheduler's async mode, so the
-- pipelined each keeps its pool full in OpenResty too).
local Batch = {}
Batch.__index = Batch

--- Start requests now and collect them as they finish: `:submit(url, tag)`,
-- `:poll(timeout)`, `:close()` (see braze.scheduler).
function Session:batch()
  if self.closed then error("braze: session is closed", 2) end
  return setmetatable({ session = self, running = {}, count = 0 }, Batch) -- running: tag -> thread
end

function Batch:submit(url, tag)
  local session = self.session
  local thread = ngx.thread.spawn(function()
    local res, kind, msg = session:get(url)
    return tag, res, kind, msg
  end)
  self.running[tag] = thread
  self.count = self.count + 1
end

local unpack = table.unpack or unpack -- luacheck: ignore 143

--- Wait for one request to finish (or `timeout` seconds): its outcome, in
-- an array, with `tag`; an empty array when the time ran out first.
function Batch:poll(timeout)
  if self.count == 0 then return {} end
  local threads = {}
  for _, t in pairs(self.running) do threads[#threads + 1] = t end
  local sleeper
  if timeout then
    -- never ngx.sleep(0): without OpenResty's delayed-events patch (Debian's
    -- nginx) the batch then raised "already waited or killed" under load
    sleeper = ngx.thread.spawn(function() ngx.sleep(max(timeout, 0.001)); return "timeout" end)
    threads[#threads + 1] = sleeper
  end
  local ok, tag, res, kind, msg = ngx.thread.wait(unpack(threads))
  if sleeper then ngx.thread.kill(sleeper) end
  if not ok then error(tag, 0) end
  if self.running[tag] == nil then return {} end -- the sleeper: time ran out
  self.running[tag] = nil
  self.count = self.count - 1
  local out = res or { error = kind, message = msg }
  out.tag = tag
  return { out }
end

--- Drop every request still running.
function Batch:close()
  for _, t in pairs(self.running) do ngx.thread.kill(t) end
  self.running, self.count = {}, 0
end

return M
