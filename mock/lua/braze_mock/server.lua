--- braze_mock.server: the mock's HTTP/1.1 server. One coroutine per
--- connection on non-blocking LuaSocket sockets, driven by a select() loop,
--- so a slow or hung client never blocks the others. Knows nothing of
--- Braze: each request goes to a handler that returns a response table
--- (described above write_response below).
--- Runs on Lua 5.1 .. 5.4 (no goto, //, bit operators or <close>).

local socket = require("socket")
local json = require("braze_mock.data") -- encode_json and object, for error bodies

local M = {}

local char, find, format, gsub, lower, match, sub =
  string.char, string.find, string.format, string.gsub, string.lower, string.match, string.sub
local concat = table.concat
local floor = math.floor
local tonumber, tostring, ipairs, setmetatable, pcall =
  tonumber, tostring, ipairs, setmetatable, pcall
local gettime = socket.gettime
local co_create, co_resume, co_status, co_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.yield

local MAX_REQUEST_LINE = 8192
local MAX_HEAD = 32768
local MAX_HEADERS = 100
local MAX_BODY = 1048576
local MAX_CONNECTIONS = 900 -- stay well under select()'s FD_SETSIZE of 1024
local IDLE_TIMEOUT = 75 -- seconds a keep-alive connection may sit idle
local WRITE_TIMEOUT = 60 -- seconds a stalled reader may block one response
local LINGER_TIMEOUT = 1 -- seconds to drain a client before closing on it
local MAX_WAIT = 0.25 -- select() cap, so SIGINT is noticed promptly
M.STREAM_CHUNK = 65536 -- bytes read at once, and the size of streamed pieces
local STREAM_CHUNK = M.STREAM_CHUNK

---------------------------------------------------------------------------
-- HTTP helpers
---------------------------------------------------------------------------


local REASONS = {
  [200] = "OK", [204] = "No Content", [301] = "Moved Permanently", [302] = "Found",
  [304] = "Not Modified", [307] = "Temporary Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [413] = "Payload Too Large",
  [414] = "URI Too Long", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

local function istr(n) return format("%.0f", n) end

local function hex_byte(h) return char(tonumber(h, 16)) end

-- `+` is a space and %XX any byte; a malformed escape stays as it is.
local function url_decode(s)
  return (gsub(gsub(s, "+", " "), "%%(%x%x)", hex_byte))
end

-- Decoded query; with repeated keys the last one wins (like most frameworks).
local function parse_query(raw)
  local q = {}
  for pair in string.gmatch(raw, "[^&]+") do
    local k, v = match(pair, "^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    q[url_decode(k)] = url_decode(v)
  end
  return q
end

---------------------------------------------------------------------------
-- Scheduler: one coroutine per connection on non-blocking sockets. A task
-- yields ("read"|"write", sock, deadline) or ("sleep", nil, deadline) and is
-- resumed with "ready" or "timeout", so a slow task never blocks the others.
---------------------------------------------------------------------------

local Scheduler = {}
Scheduler.__index = Scheduler

local function new_scheduler() return setmetatable({ tasks = {} }, Scheduler) end

function Scheduler:resume(task, ...)
  local ok, what, sock, at = co_resume(task.co, ...)
  if not ok then
    io.stderr:write("braze-mock: task failed: ", tostring(what), "\n")
  end
  if co_status(task.co) == "dead" then
    task.dead = true
    if task.conn then task.conn:close() end
  else
    task.wait, task.sock, task.at = what, sock, at
  end
end

--- Run fn(...) in a new task; conn (if any) is closed when the task ends.
function Scheduler:spawn(conn, fn, ...)
  local task = { co = co_create(fn), conn = conn }
  self.tasks[#self.tasks + 1] = task
  self:resume(task, ...)
end

--- Wait for I/O or deadlines (at most max_wait seconds) and resume who is due.
function Scheduler:step(max_wait)
  local now = gettime()
  local deadline = now + max_wait
  local recvt, sendt, owner = {}, {}, {}
  for _, t in ipairs(self.tasks) do
    if t.wait == "read" then
      recvt[#recvt + 1] = t.sock; owner[t.sock] = t
    elseif t.wait == "write" then
      sendt[#sendt + 1] = t.sock; owner[t.sock] = t
    end
    if t.at and t.at < deadline then deadline = t.at end
  end
  local r, w = socket.select(recvt, sendt, deadline > now and deadline - now or 0)
  local due = {}
  for _, s in ipairs(r or {}) do if owner[s] then due[owner[s]] = "ready" end end
  for _, s in ipairs(w or {}) do if owner[s] then due[owner[s]] = "ready" end end
  now = gettime()
  local tasks = self.tasks
  for k = 1, #tasks do -- tasks spawned meanwhile are appended, not visited
    local t = tasks[k]
    if not t.dead then
      local why = due[t] or (t.at and t.at <= now and "timeout")
      if why then self:resume(t, why) end
    end
  end
  local alive = {}
  for _, t in ipairs(tasks) do if not t.dead then alive[#alive + 1] = t end end
  self.tasks = alive
end

function Scheduler:close_all()
  for _, t in ipairs(self.tasks) do
    if t.conn then t.conn:close() end
    t.dead = true
  end
  self.tasks = {}
end

-- Called from inside tasks:
local function wait_readable(sock, at) return co_yield("read", sock, at) end
local function wait_writable(sock, at) return co_yield("write", sock, at) end
local function sleep(seconds)
  if seconds > 0 then co_yield("sleep", nil, gettime() + seconds) end
end

---------------------------------------------------------------------------
-- Connection I/O (inside tasks)
---------------------------------------------------------------------------

-- Some bytes, or nil plus "closed" / "timeout" / a socket error.
local function recv_some(conn, deadline)
  while true do
    local data, err, partial = conn:receive(STREAM_CHUNK)
    local got = data or partial
    if got and got ~= "" then return got end
    if err ~= "timeout" then return nil, err end
    if wait_readable(conn, deadline) == "timeout" then return nil, "timeout" end
  end
end

-- send() may take only part of the data: it returns the last index sent.
local function send_all(conn, data)
  local i, n = 1, #data
  while i <= n do
    local last, err, partial_last = conn:send(data, i)
    if last then
      i = last + 1
    else
      if err ~= "timeout" then return nil, err end
      i = partial_last + 1
      if i <= n and wait_writable(conn, gettime() + WRITE_TIMEOUT) == "timeout" then
        return nil, "timeout"
      end
    end
  end
  return true
end

-- Close politely: stop sending, then read what the client still sends, so the
-- kernel does not turn our close into an RST that destroys the response.
local function linger_close(conn)
  conn:shutdown("send")
  local deadline = gettime() + LINGER_TIMEOUT
  while recv_some(conn, deadline) do end
end

-- Parse a request head; returns req, or nil, status, message.
local function parse_head(head)
  local line, rest = match(head, "^([^\r\n]*)\r?\n?(.*)$")
  local method, target, version = match(line, "^(%u+) (%S+) HTTP/(%d%.%d)$")
  if not method then return nil, 400, "Malformed request line" end
  local headers, count = {}, 0
  for hl in string.gmatch(rest, "[^\r\n]+") do
    local name, value = match(hl, "^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, 400, "Malformed header line" end
    count = count + 1
    if count > MAX_HEADERS then return nil, 431, "Too many header fields" end
    headers[lower(name)] = value
  end
  target = gsub(target, "^[hH][tT][tT][pP][sS]?://[^/]*", "") -- absolute form
  local path, raw_query = match(target, "^([^?]*)%??(.*)$")
  local conn_hdr = lower(headers.connection or "")
  local keep_alive
  if version == "1.1" then keep_alive = not find(conn_hdr, "close", 1, true)
  else keep_alive = find(conn_hdr, "keep-alive", 1, true) ~= nil end
  return {
    method = method, target = target, version = version, headers = headers,
    path = path, raw_query = raw_query, query = parse_query(raw_query),
    keep_alive = keep_alive,
  }
end

-- Read one request from conn (st.buf keeps bytes already received, for
-- pipelining). Returns req, or nil, status, message (answer and close), or nil.
local function read_request(conn, st)
  local deadline = gettime() + IDLE_TIMEOUT
  while true do
    st.buf = gsub(st.buf, "^\r?\n", "") -- stray CRLF between requests is allowed
    local s, e = find(st.buf, "\r?\n\r?\n")
    local line_end = find(st.buf, "\n", 1, true)
    if (line_end or #st.buf + 1) > MAX_REQUEST_LINE + 2 then
      return nil, 414, "Request line too long"
    end
    if s then
      if s > MAX_HEAD then return nil, 431, "Request header too large" end
      local req, status, msg = parse_head(sub(st.buf, 1, s - 1))
      st.buf = sub(st.buf, e + 1)
      if not req then return nil, status, msg end
      if req.headers["transfer-encoding"] then
        return nil, 501, "Request bodies with Transfer-Encoding are not supported"
      end
      local len = req.headers["content-length"]
      if len then
        if not match(len, "^%d+$") then return nil, 400, "Bad Content-Length" end
        len = tonumber(len)
        if len > MAX_BODY then return nil, 413, "Request body too large" end
        while #st.buf < len do -- read and discard the body
          local data = recv_some(conn, deadline)
          if not data then return nil end
          st.buf = st.buf .. data
        end
        st.buf = sub(st.buf, len + 1)
      end
      return req
    end
    if #st.buf > MAX_HEAD then return nil, 431, "Request header too large" end
    local data = recv_some(conn, deadline)
    if not data then return nil end
    st.buf = st.buf .. data
  end
end

-- "hang" fault: never answer; return once the client goes away.
local function hang(conn)
  while recv_some(conn, nil) do end
end

--[[ A response is a table:
  status, headers = { {name, value}, ... } (Content-Length and Connection are
  added here), and one of
    body = string                       (Content-Length: #body)
    stream = function -> chunk | nil, length = N | nil   (nil: framing below)
  and optionally: chunked = true (Transfer-Encoding: chunked), close = true
  (close after it), delay = seconds, trickle = {ms=, bytes=},
  cut = true (send half the body then close), hang = true, reset = true,
  after = function run once it is sent.
Returns true when the connection can serve another request. ]]
local function write_response(conn, resp, keep_alive)
  if resp.reset then
    conn:setoption("linger", { on = true, timeout = 0 }) -- close() now sends RST
    return false
  end
  if resp.hang then hang(conn); return false end
  if resp.delay then sleep(resp.delay) end
  local close = resp.close or resp.cut or not keep_alive
    or (resp.stream and not resp.length and not resp.chunked)
  local head = { format("HTTP/1.1 %d %s\r\n", resp.status, REASONS[resp.status] or "Status") }
  for _, h in ipairs(resp.headers) do head[#head + 1] = h[1] .. ": " .. h[2] .. "\r\n" end
  local length = resp.body and #resp.body or resp.length
  if length then head[#head + 1] = "Content-Length: " .. istr(length) .. "\r\n"
  elseif resp.chunked then head[#head + 1] = "Transfer-Encoding: chunked\r\n" end
  head[#head + 1] = close and "Connection: close\r\n\r\n" or "Connection: keep-alive\r\n\r\n"
  head = concat(head)

  local ok
  if resp.trickle then
    local data, step = head .. (resp.body or ""), resp.trickle.bytes
    ok = true
    for i = 1, #data, step do
      ok = send_all(conn, sub(data, i, i + step - 1))
      if not ok then break end
      if i + step <= #data then sleep(resp.trickle.ms / 1000) end
    end
  elseif resp.stream then
    ok = send_all(conn, head)
    while ok do
      local chunk = resp.stream()
      if not chunk then
        if resp.chunked then ok = send_all(conn, "0\r\n\r\n") end
        break
      end
      if resp.chunked then chunk = format("%x\r\n", #chunk) .. chunk .. "\r\n" end
      ok = send_all(conn, chunk)
    end
  else
    local body = resp.body
    if resp.cut then body = sub(body, 1, floor(#body / 2)) end
    ok = send_all(conn, head .. body)
  end
  if not ok then return false end
  if close then linger_close(conn) end
  return not close
end


---------------------------------------------------------------------------
-- Responses and checks shared by the mock's parts
---------------------------------------------------------------------------

M.REASONS = REASONS
M.istr = istr
M.url_decode = url_decode
M.parse_query = parse_query

--- A response with a JSON body and no other header.
function M.json_response(status, value)
  return {
    status = status,
    headers = { { "Content-Type", "application/json; charset=utf-8" } },
    body = json.encode_json(value),
  }
end

--- Set a header of a response table (replacing one of the same name).
function M.set_header(resp, name, value)
  for _, h in ipairs(resp.headers) do
    if lower(h[1]) == lower(name) then h[2] = value; return end
  end
  resp.headers[#resp.headers + 1] = { name, value }
end

--- v (a number or a string) as an integer from min to max, or nil, err.
function M.check_int(name, v, min, max)
  local n = tonumber(v)
  if not n or n ~= floor(n) or n < min or n > max then
    return nil, format("%s must be an integer from %s to %s, got %s", name, istr(min), istr(max), tostring(v))
  end
  return floor(n) -- an integer on 5.4 even when v was "1e3"
end

function M.is_loopback(host)
  return host == "localhost" or host == "::1" or match(host, "^127%.%d+%.%d+%.%d+$") ~= nil
end

---------------------------------------------------------------------------
-- The server
---------------------------------------------------------------------------

local Server = {}
Server.__index = Server

--- A server (not listening yet) on host:port that answers each request with
--- handler(req); on_accept(), if given, is called for every accepted
--- connection. req: method, target, version, headers (lower-case names),
--- path, raw_query, query (decoded), keep_alive.
function M.new(host, port, handler, on_accept)
  return setmetatable({
    host = host, port = port, handler = handler, on_accept = on_accept,
    sched = new_scheduler(),
  }, Server)
end

--- Bind and listen; sets self.url and self.port. true, or nil, err.
function Server:listen()
  local listener, err = socket.bind(self.host, self.port, 128)
  if not listener then
    return nil, format("cannot listen on %s:%s: %s", self.host, istr(self.port), tostring(err))
  end
  listener:settimeout(0)
  local addr, port = listener:getsockname()
  self.listener, self.port = listener, tonumber(port)
  self.url = format(find(addr, ":", 1, true) and "http://[%s]:%s" or "http://%s:%s", addr, port)
  self.running = true
  self.sched:spawn(nil, function() self:accept_loop() end)
  return true
end

function Server:accept_loop()
  while self.running do
    local conn = self.listener:accept()
    if conn then
      if #self.sched.tasks > MAX_CONNECTIONS then
        conn:close()
      else
        if self.on_accept then self.on_accept() end
        conn:settimeout(0)
        conn:setoption("tcp-nodelay", true)
        self.sched:spawn(conn, function() self:connection(conn) end)
      end
    else
      wait_readable(self.listener)
    end
  end
end

function Server:connection(conn)
  local st = { buf = "" }
  while self.running do
    local req, status, msg = read_request(conn, st)
    if not req then
      if status then
        write_response(conn, M.json_response(status, json.object("message", msg)), false)
      end
      return
    end
    local resp = self.handler(req)
    local keep = write_response(conn, resp, req.keep_alive)
    if resp.after then resp.after() end
    if not keep then return end
  end
end

--- Serve until stop() or SIGINT. Returns true, or nil, err on a crash.
function Server:run()
  local ok, err = pcall(function()
    while self.running do self.sched:step(MAX_WAIT) end
  end)
  self:close()
  -- lua.c turns SIGINT into the error "interrupted!": a normal way to stop.
  if not ok and not find(tostring(err), "interrupted!", 1, true) then
    return nil, tostring(err)
  end
  return true
end

--- Make run() return once the current step is done.
function Server:stop() self.running = false end

function Server:close()
  self.running = false
  self.sched:close_all()
  if self.listener then self.listener:close(); self.listener = nil end
end

return M
