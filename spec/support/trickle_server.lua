-- A misbehaving HTTP server for the transport specs (spec/transport/): it answers every
-- request with the misbehaviour named by the first segment of its path, so a
-- client whose endpoint is http://127.0.0.1:PORT/<mode> gets that mode.
--
--   endless_status   "HTTP/1.1 200 " and then "a" without end
--   endless_header   a status line, then a header line without end
--   endless_chunk    chunked framing, then a chunk-size line without end
--   many_headers     1,000 short header lines, then a valid JSON body
--   trickle_header   a status line, then a 10,000-byte header line sent
--                    200 bytes every 100 ms, then a valid JSON body
--   trickle_body     a Content-Length of 12,000 and the JSON body sent 200
--                    bytes every 100 ms (6 s in all)
--   trickle_chunked  the same body in one chunk of a chunked response
--   one_byte_chunks  a valid 4 MiB list document as 1-byte chunks, sent fast
--   drip             a 200 with a Content-Length of 1 MB, its body one byte
--                    every 50 ms, for 20 s (then it closes)
--   huge_length      a 200 with a Content-Length of 1 GiB, its body sent fast
--   endless_body     a 200 without a length, its body sent fast without end
--   continue_later   "HTTP/1.1 100 Continue", then 200 ms later a valid list
--                    page (Content-Length)
--   silent           reads the request and never answers (until LIFETIME)
--   continue_flood   "HTTP/1.1 100 Continue" interim responses, one every
--                    10 ms, without end (never the final answer)
--
-- "Without end" stops after CAP bytes (then the connection is closed), so
-- even a client that buffers everything cannot take the machine's memory.
-- Connections are served side by side (coroutines over socket.select), so
-- light threads calling at once each get their answer.
--
-- Run: lua spec/support/trickle_server.lua; the first and only stdout line is
-- `trickle server listening on http://127.0.0.1:PORT pid PID`. It listens on
-- 127.0.0.1 only, and exits by itself after LIFETIME seconds (or on SIGTERM).
local socket = require("socket")

local CAP = 256 * 1024 * 1024
local BLOCK = 65536
local LIFETIME = tonumber(os.getenv("TRICKLE_LIFETIME") or "") or 600
local TRICKLE_BYTES, TRICKLE_MS = 200, 100

local gettime, format, rep = socket.gettime, string.format, string.rep
local yield = coroutine.yield

-- Waiting primitives used inside a connection's coroutine: each yields
-- what the scheduler must wait for.
local function sleep(seconds)
  yield("sleep", gettime() + seconds)
end

-- Sends all of data; false once the client has gone away.
local function send(conn, data)
  local i = 1
  while i <= #data do
    local last, err, partial = conn:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = partial + 1
      if i <= #data then yield("write", conn) end
    else
      return false
    end
  end
  return true
end

-- Reads the request head; its target, or nil when the client went away.
local function read_head(conn)
  local buf = ""
  while not buf:find("\r\n\r\n", 1, true) do
    local data, err, partial = conn:receive(4096)
    data = data or partial
    if data and data ~= "" then buf = buf .. data end
    if err and err ~= "timeout" then return nil end
    if #buf > 65536 then return nil end
    if not data or data == "" then yield("read", conn) end
  end
  return buf:match("^%u+ (%S+) HTTP/1%.%d\r\n")
end

-- A valid list document of exactly n bytes (padding in a segment name).
local function list_body(n)
  local head, tail = '{"message":"success","segments":[{"id":"trickled","name":"', '"}]}'
  return head .. rep("x", n - #head - #tail) .. tail
end

-- Sends data, TRICKLE_BYTES every TRICKLE_MS; false once the client has gone.
local function trickle(conn, data)
  for i = 1, #data, TRICKLE_BYTES do
    if not send(conn, data:sub(i, i + TRICKLE_BYTES - 1)) then return false end
    sleep(TRICKLE_MS / 1000)
  end
  return true
end

-- Sends prefix, then `fill` bytes without end (up to CAP).
local function endless(conn, prefix, fill)
  if not send(conn, prefix) then return end
  local block, sent = rep(fill, BLOCK), 0
  while sent < CAP and send(conn, block) do sent = sent + BLOCK end
end

local modes = {}

function modes.endless_status(conn)
  endless(conn, "HTTP/1.1 200 ", "a")
end

function modes.endless_header(conn)
  endless(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: ", "a")
end

function modes.endless_chunk(conn)
  endless(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    .. "Transfer-Encoding: chunked\r\n\r\n10;ext=", "x")
end

function modes.many_headers(conn)
  local body = list_body(100)
  send(conn, "HTTP/1.1 200 OK\r\n" .. rep("X-Many: 1\r\n", 1000)
    .. "Content-Type: application/json\r\nContent-Length: " .. #body
    .. "\r\nConnection: close\r\n\r\n" .. body)
end

function modes.trickle_header(conn)
  local body = list_body(100)
  if not trickle(conn, "HTTP/1.1 200 OK\r\nX-Pad: " .. rep("a", 10000) .. "\r\n") then return end
  send(conn, "Content-Type: application/json\r\nContent-Length: " .. #body
    .. "\r\nConnection: close\r\n\r\n" .. body)
end

function modes.trickle_body(conn)
  local body = list_body(12000)
  if not send(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    .. #body .. "\r\nConnection: close\r\n\r\n") then return end
  trickle(conn, body)
end

function modes.trickle_chunked(conn)
  local body = list_body(12000)
  if not send(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    .. "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n") then return end
  if trickle(conn, format("%x\r\n", #body) .. body .. "\r\n") then send(conn, "0\r\n\r\n") end
end

local one_byte_chunks -- the whole answer (24 MiB on the wire), made once
function modes.one_byte_chunks(conn)
  if not one_byte_chunks then
    one_byte_chunks = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      .. list_body(4 * 1024 * 1024):gsub(".", "1\r\n%0\r\n") .. "0\r\n\r\n"
  end
  for i = 1, #one_byte_chunks, BLOCK do -- as fast as the client takes it
    if not send(conn, one_byte_chunks:sub(i, i + BLOCK - 1)) then return end
  end
end

function modes.drip(conn)
  if not send(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    .. "Content-Length: 1000000\r\nConnection: close\r\n\r\n") then return end
  for _ = 1, 400 do
    if not send(conn, "x") then return end
    sleep(0.05)
  end
end

function modes.huge_length(conn)
  endless(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    .. "Content-Length: 1073741824\r\nConnection: close\r\n\r\n", "x")
end

function modes.endless_body(conn)
  endless(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n", "x")
end

function modes.continue_later(conn)
  if not send(conn, "HTTP/1.1 100 Continue\r\n\r\n") then return end
  sleep(0.2)
  local body = '{"message":"success","name":"Conformance","description":"a segment",'
    .. '"text_description":"t","tags":["x","y"],"teams":["t1"]}'
  send(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body
    .. "\r\nConnection: close\r\n\r\n" .. body)
end

function modes.silent(conn)
  repeat -- until the client hangs up
    yield("read", conn)
    local _, err = conn:receive(4096)
  until err and err ~= "timeout"
end

function modes.continue_flood(conn)
  while send(conn, "HTTP/1.1 100 Continue\r\n\r\n") do sleep(0.01) end
end

local function serve(conn)
  local target = read_head(conn)
  local mode = target and modes[target:match("^/([%w_]+)") or ""]
  if mode then
    mode(conn)
  elseif target then
    send(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
  end
end

local function own_pid()
  local f = io.open("/proc/self/stat", "r")
  local line = f and f:read("*l") or ""
  if f then f:close() end
  return line:match("^(%d+)") or "?"
end

local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0)
local _, port = server:getsockname()
io.stdout:write(format("trickle server listening on http://127.0.0.1:%d pid %s\n", port, own_pid()))
io.stdout:flush()

-- The scheduler: every connection is a coroutine waiting to read, to write
-- or for a time.
local tasks = {} -- coroutine -> { conn =, what =, arg = }
local function resume(co, task)
  local ok, what, arg = coroutine.resume(co)
  if not ok or coroutine.status(co) == "dead" then
    task.conn:close()
    tasks[co] = nil
  else
    task.what, task.arg = what, arg
  end
end

local stop_at = gettime() + LIFETIME
while gettime() < stop_at do
  local readers, writers, wake = { server }, {}, gettime() + 1
  for _, t in pairs(tasks) do
    if t.what == "read" then readers[#readers + 1] = t.conn
    elseif t.what == "write" then writers[#writers + 1] = t.conn
    else wake = math.min(wake, t.arg) end
  end
  local readable, writable = socket.select(readers, writers, math.max(0, wake - gettime()))
  local ready = {}
  for _, s in ipairs(readable) do ready[s] = true end
  for _, s in ipairs(writable) do ready[s] = true end
  if ready[server] then
    local conn = server:accept()
    if conn then
      conn:settimeout(0)
      local co = coroutine.create(function() serve(conn) end)
      local task = { conn = conn }
      tasks[co] = task
      resume(co, task)
    end
  end
  local now = gettime()
  for co, t in pairs(tasks) do
    if (t.what == "sleep" and t.arg <= now) or (t.what ~= "sleep" and ready[t.conn]) then
      resume(co, t)
    end
  end
end
