--- A raw HTTP server for specs that need byte-exact hostile or odd
--- responses: a child process on 127.0.0.1, one connection at a time,
--- that reads a request for /<case>/..., sends the prepared bytes of that
--- case and closes. It leaves after 60 s without a connection, so it cannot
--- outlive the run.
---
---   local canned = require("spec.support.canned_server")
---   local server = canned.start{ ok = canned.response("HTTP/1.1 200 OK", { "Content-Length: 2" }, "{}") }
---   server:url("ok")            -- "http://127.0.0.1:PORT/ok/segments/list"
---   server:add("late", bytes)   -- a case added while it runs
---   server:add("seq", bytes, 2) -- what the 2nd request of case "seq" gets
---   server:reset()              -- every case's request count back to 0
---   server:stop()
---
--- The n-th request for a case since the last reset gets <case>.<n>.http
--- when there is one, else <case>.http (so "503, then the page" is two files).
local helpers = require("spec.support.helpers")
local tls = require("spec.support.tls_nginx")
local socket = require("socket")

local M = {}

local SCRIPT = [==[
local socket = require("socket")
local dir = arg[1]
local srv = assert(socket.bind("127.0.0.1", 0))
srv:settimeout(60)
local _, port = srv:getsockname()
local f = io.open("/proc/self/stat"); local pid = f and f:read("*l"):match("^%d+") or "?"; if f then f:close() end
io.stdout:write("canned ", port, " ", pid, "\n")
io.stdout:flush()
local counts = {}
while true do
  local c = srv:accept()
  if not c then break end
  c:settimeout(5)
  local line = c:receive("*l") or ""
  repeat local h = c:receive("*l") until not h or h == ""
  local case = line:match("^GET /([%w_]+)/")
  if case == "quit" then c:close() break end
  if case == "reset" then counts = {} end
  local fh
  if case then
    counts[case] = (counts[case] or 0) + 1
    fh = io.open(dir .. "/" .. case .. "." .. counts[case] .. ".http", "rb")
      or io.open(dir .. "/" .. case .. ".http", "rb")
  end
  local data = fh and fh:read("*a") or (case == "reset" and "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    or "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
  if fh then fh:close() end
  c:send(data)
  c:shutdown("send")
  c:settimeout(0.3)
  c:receive("*a")
  c:close()
end
]==]

--- A raw response: status line, header lines, body.
function M.response(status_line, headers, body)
  return status_line .. "\r\n" .. table.concat(headers, "\r\n") .. (#headers > 0 and "\r\n" or "")
    .. "\r\n" .. (body or "")
end

local Server = {}
Server.__index = Server

function Server:add(case, bytes, nth)
  tls.write_file(self.dir .. "/" .. case .. (nth and "." .. nth or "") .. ".http", bytes)
end

function Server:reset()
  local res = helpers.request({ host = "127.0.0.1", port = self.port }, "/reset/", { timeout = 2 })
  assert(res and res.status == 200, "canned server did not reset")
end

function Server:url(case, path)
  return "http://127.0.0.1:" .. self.port .. "/" .. case .. (path or "/segments/list")
end

function Server:stop()
  if self.pid then
    pcall(helpers.request, { host = "127.0.0.1", port = self.port }, "/quit/", { timeout = 1 })
    for _ = 1, 50 do
      if not helpers.alive(self.pid) then break end
      socket.sleep(0.02)
    end
    if helpers.alive(self.pid) then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
    self.pid = nil
  end
  if self.pipe then self.pipe:close(); self.pipe = nil end
  if self.dir then tls.remove(self.dir); self.dir = nil end
end

--- Start a server with `cases` (name -> raw response bytes).
function M.start(cases)
  local server = setmetatable({ dir = tls.tempdir("braze-canned") }, Server)
  for name, bytes in pairs(cases or {}) do server:add(name, bytes) end
  local script = server.dir .. "/canned.lua"
  tls.write_file(script, SCRIPT)
  server.pipe = assert(io.popen(helpers.lua .. " " .. tls.quote(script) .. " " .. tls.quote(server.dir)
    .. " </dev/null &", "r"))
  local line = server.pipe:read("*l") or ""
  local port, pid = line:match("^canned (%d+) (%d+)$")
  assert(port, "canned server did not start: " .. line)
  server.port, server.pid = tonumber(port), pid
  return server
end

return M
