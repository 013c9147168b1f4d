--- A hostile server for spec/transport/luv/cases.lua: every request gets a 200 whose
-- chunked body is a valid details document of about N bytes sent as 1-byte
-- chunks ("1\r\nx\r\n" per byte), as fast as the socket takes it.
--
--   lua5.4 spec/transport/luv/tiny_chunks_server.lua N
--
-- Prints `tiny chunks server on http://127.0.0.1:PORT pid PID`, serves one
-- connection at a time on 127.0.0.1 only, and exits after 60 s without a
-- connection (or on SIGTERM).
local socket = require("socket")

local n = assert(tonumber(arg[1]), "usage: tiny_chunks_server.lua BYTES")
local srv = assert(socket.bind("127.0.0.1", 0))
srv:settimeout(60)
local _, port = srv:getsockname()
local f = io.open("/proc/self/stat")
local pid = f and f:read("*l"):match("^%d+") or "?"
if f then f:close() end

local head, tail = '{"message":"success","name":"', '","tags":[]}'
local function chunks(s) return (s:gsub(".", "1\r\n%0\r\n")) end
local wire = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
  .. "Connection: close\r\n\r\n" .. chunks(head) .. string.rep("1\r\nx\r\n", n) .. chunks(tail)
  .. "0\r\n\r\n"

io.stdout:write("tiny chunks server on http://127.0.0.1:", port, " pid ", pid, "\n")
io.stdout:flush()
while true do
  local c = srv:accept()
  if not c then break end
  c:settimeout(30)
  repeat local l = c:receive("*l") until not l or l == ""
  c:send(wire)
  c:close()
end
