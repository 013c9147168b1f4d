--- An HTTP/1.1 response reader over a cosocket-like object (`settimeout(ms)`,
-- `receiveany(n)`), for transports that speak HTTP themselves (nginx). Every
-- read is bounded in size and ends by the attempt's deadline, however slowly
-- the server trickles: a cosocket's own read timeout restarts with every
-- packet, and `receive("*l")` buffers a whole line before anyone can look at
-- its length, so neither is used.
--
-- Limits: a status, header or chunk-size line over 64 KiB, headers over
-- 64 KiB in all, or more than 200 header lines fail at once as "too_large"
-- without reading further; a body over `max_body` as "too_large". The body
-- is kept in pieces joined as they gather (memory in proportion to its
-- bytes, not to its chunks), and a long read yields (the reader's `yield`)
-- every few milliseconds of work so that 1-byte chunks cannot stall the
-- worker.
--
-- Failures are `nil, kind, message` with kind "network", "timeout" or
-- "too_large", as braze.core's session:get gives them.
-- @module braze.transport.http1
local core = require("braze.core")
local response = require("braze.transport.response")

local monotonic = core.monotonic
local setmetatable, tonumber, tostring = setmetatable, tonumber, tostring
local format, concat, floor, min = string.format, table.concat, math.floor, math.min
local find, sub, byte = string.find, string.sub, string.byte

local M = {
  MAX_HEADER_LINES = 200,
  MAX_HEADER_BYTES = 65536, -- the longest line (status, header, chunk size), and all headers
  READ_CHUNK = 65536,
  YIELD_EVERY = 0.002, -- seconds of reading between two yields
}

local Reader = {}
Reader.__index = Reader

--- A reader of `sock` until `deadline` (core.monotonic seconds); `started`
-- is when the attempt began (for messages); `yield` a function that lets
-- the host run other work (ngx.sleep(0)), or nil.
function M.reader(sock, deadline, started, yield)
  return setmetatable({ sock = sock, deadline = deadline, started = started, buf = "", pos = 1,
    yield = yield, worked = monotonic() }, Reader)
end

--- Up to n new bytes (replacing the buffer), or nil, "timeout" | cosocket error.
function Reader:fill(n)
  local now = monotonic()
  local ms = floor((self.deadline - now) * 1000)
  if ms <= 0 then return nil, "timeout" end
  if self.yield and now - self.worked >= M.YIELD_EVERY then
    self.yield()
    self.worked = monotonic()
  end
  self.sock:settimeout(ms)
  local data, err = self.sock:receiveany(n)
  if not data then return nil, err end
  self.buf, self.pos = data, 1
  return true
end

--- Let the host run when this read has worked for a while (called per chunk).
function Reader:pause()
  if self.yield and monotonic() - self.worked >= M.YIELD_EVERY then
    self.yield()
    self.worked = monotonic()
  end
end

--- nil, kind, message for a failed step `what` of an attempt begun at
-- `started` (err: a cosocket error, "timeout" among them).
function M.failed(what, err, started)
  if err == "timeout" then
    return nil, "timeout", format("timed out %s after %.2f s", what, monotonic() - started)
  end
  return nil, "network", format("%s: %s", what, tostring(err))
end

function Reader:failed(what, err)
  return M.failed(what, err, self.started)
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
    local ok, err = self:fill(M.READ_CHUNK)
    if not ok then return nil, err end
  end
end

--- Exactly n bytes, added to `body` (a Body); nil, err when a read fails first.
function Reader:bytes_into(body, n)
  while true do
    local buf, pos = self.buf, self.pos
    local have = #buf - pos + 1
    if have >= n then
      self.pos = pos + n
      body:add(sub(buf, pos, pos + n - 1))
      return true
    end
    if have > 0 then body:add(pos == 1 and buf or sub(buf, pos)) end
    n = n - have
    self.buf, self.pos = "", 1
    local ok, err = self:fill(min(n, M.READ_CHUNK))
    if not ok then return nil, err end
  end
end

--- Bytes already received beyond what was read?
function Reader:has_extra()
  return self.pos <= #self.buf
end

-- A body in pieces: small pieces (a chunk each) gather in `small` and are
-- joined into one piece every 1,024 of them or 64 KiB, so a million 1-byte
-- chunks take a thousand pieces, not a million table entries, and each byte
-- is copied twice at most.
local Body = {}
Body.__index = Body

local function body()
  return setmetatable({ size = 0, small = {}, n_small = 0, small_bytes = 0, n = 0 }, Body)
end

function Body:flush()
  if self.n_small > 0 then
    self.n = self.n + 1
    self[self.n] = concat(self.small, "", 1, self.n_small)
    self.n_small, self.small_bytes = 0, 0
  end
end

function Body:add(s)
  local k = self.n_small + 1
  self.small[k] = s
  self.n_small, self.small_bytes, self.size = k, self.small_bytes + #s, self.size + #s
  if k >= 1024 or self.small_bytes >= 65536 then self:flush() end
end

function Body:string()
  self:flush()
  return concat(self, "", 1, self.n)
end

local function too_long(what)
  return nil, "too_large", format("response %s longer than %d bytes", what, M.MAX_HEADER_BYTES)
end

local function too_large(max_body)
  return nil, "too_large", format("response body larger than max_body (%d bytes)",
    min(max_body, 0x7fffffff))
end

--- The status line: version, status | nil, kind, message, before_any_byte.
function M.status_line(r)
  local line, err = r:line(M.MAX_HEADER_BYTES)
  if not line then
    if err == "too long" then return too_long("status line") end
    local _, kind, msg = r:failed("reading the status line", err)
    return nil, kind, msg, true
  end
  local version, code = line:match("^HTTP/(%d%.%d) (%d%d%d)")
  if not version then return nil, "network", "malformed status line from the server" end
  r.header_bytes = (r.header_bytes or 0) + #line
  return version, tonumber(code)
end

--- The next header (or trailer) line, counted against the header limits.
local function header_line(r, what)
  local line, err = r:line(M.MAX_HEADER_BYTES)
  if not line then
    if err == "too long" then return too_long(what .. " line") end
    return r:failed("reading the headers", err)
  end
  if line ~= "" then
    r.header_lines = (r.header_lines or 0) + 1
    r.header_bytes = (r.header_bytes or 0) + #line
    if r.header_lines > M.MAX_HEADER_LINES then
      return nil, "too_large", format("more than %d response header lines", M.MAX_HEADER_LINES)
    end
    if r.header_bytes > M.MAX_HEADER_BYTES then
      return nil, "too_large", format("response headers longer than %d bytes in all",
        M.MAX_HEADER_BYTES)
    end
  end
  return line
end

--- One header block up to its blank line: a head `{ headers =, framing =,
-- content_length =, connection = }` | nil, kind, message.
function M.header_block(r)
  local head = { headers = {} }
  while true do
    local line, kind, msg = header_line(r, "header")
    if not line then return nil, kind, msg end
    if line == "" then return head end
    local name, value = line:match("^([^:]*):(.*)$")
    if name then
      name = name:lower()
      value = value:match("^[ \t]*(.-)[ \t\r\n]*$")
      if name == "transfer-encoding" then
        head.framing = value:lower():match("chunked%s*$") and "chunked" or "close"
      elseif name == "content-length" then
        if not value:match("^%d+$") or #value > 15
          or (head.content_length and head.content_length ~= tonumber(value)) then
          return nil, "network", "invalid Content-Length in the response"
        end
        head.content_length = tonumber(value)
      elseif name == "connection" then
        head.connection = value:lower()
      end
      response.keep(head.headers, name, value)
    end
  end
end

--- Status line and headers, skipping 1xx interim responses: a head (see
-- header_block) with `status` and `keepalive` | nil, kind, message,
-- before_any_byte (true when nothing of the answer arrived).
function M.read_head(r)
  local first = true
  while true do
    local version, status, msg, none = M.status_line(r)
    if not version then return nil, status, msg, none and first end
    first = false
    local head, kind
    head, kind, msg = M.header_block(r)
    if not head then return nil, kind, msg end
    if status >= 200 or status == 101 then
      local c = head.connection
      if version == "1.0" then
        head.keepalive = c ~= nil and c:find("keep-alive", 1, true) ~= nil
      else
        head.keepalive = not (c and c:find("close", 1, true))
      end
      head.status = status
      return head
    end
  end
end

--- A chunked body: its string | nil, kind, message.
function M.chunked_body(r, max_body)
  local b = body()
  while true do
    local line, err = r:line(M.MAX_HEADER_BYTES)
    if not line then
      if err == "too long" then return too_long("chunk-size line") end
      return r:failed("reading the body", err)
    end
    local hex = line:match("^(%x+)[ \t]*;?") or line:match("^(%x+)[ \t]*$")
    if not hex or #hex > 12 then return nil, "network", "malformed chunk size in the response" end
    local size = tonumber(hex, 16)
    if size == 0 then break end
    if b.size + size > max_body then return too_large(max_body) end
    local ok
    ok, err = r:bytes_into(b, size)
    if not ok then return r:failed("reading the body", err) end
    line, err = r:line(0)
    if not line then
      if err == "too long" then return nil, "network", "malformed chunk in the response" end
      return r:failed("reading the body", err)
    end
    r:pause()
  end
  repeat -- trailers, up to the blank line
    local line, kind, msg = header_line(r, "trailer")
    if not line then return nil, kind, msg end
  until line == ""
  return b:string()
end

--- A body of exactly `length` bytes: its string | nil, kind, message.
function M.length_body(r, length, max_body)
  if length > max_body then return too_large(max_body) end
  local b = body()
  local ok, err = r:bytes_into(b, length)
  if not ok then return r:failed("reading the body", err) end
  return b:string()
end

--- A body that ends when the server closes: its string | nil, kind, message.
function M.close_body(r, max_body)
  local b = body()
  while true do
    if r:has_extra() then
      local rest = sub(r.buf, r.pos)
      r.buf, r.pos = "", 1
      if b.size + #rest > max_body then return too_large(max_body) end
      b:add(rest)
    end
    local ok, err = r:fill(M.READ_CHUNK)
    if not ok then
      if err == "closed" then return b:string() end
      return r:failed("reading the body", err)
    end
  end
end

--- The body the head announces: its string | nil, kind, message. Clears
-- head.keepalive when the connection cannot be reused.
function M.read_body(r, head, max_body)
  local status = head.status
  if status == 204 or status == 304 or status < 200 then return "" end
  if head.framing == "chunked" then
    if head.content_length then head.keepalive = false end -- both framings: trust neither
    return M.chunked_body(r, max_body)
  elseif head.content_length and head.framing == nil then
    return M.length_body(r, head.content_length, max_body)
  end
  head.keepalive = false
  return M.close_body(r, max_body)
end

--- The request bytes of one GET.
function M.request(target, host_header, auth, user_agent)
  return concat({
    "GET ", target, " HTTP/1.1\r\n",
    "Host: ", host_header, "\r\n",
    "Authorization: ", auth, "\r\n",
    "Accept: application/json\r\n",
    "User-Agent: ", user_agent, "\r\n",
    "Connection: keep-alive\r\n\r\n",
  })
end

return M
