-- A throw-away redis-server on a free 127.0.0.1 port, for the window-store
-- specs (Debian `redis-server`): no persistence, its own temp directory,
-- stopped (TERM, then KILL) by :stop().
--
--   local redis_server = require("spec.support.redis_server")
--   local srv = redis_server.start()      -- srv.port, srv.pid
--   srv:stop()
--
-- Also makes redis-lua (Debian `lua-redis`, installed for 5.1-5.3) loadable
-- on 5.4: `redis_server.lua_path()` adds /usr/share/lua/5.3/?.lua once.
local socket = require("socket")

local M = {}

local function sh(cmd) -- (no spec.support.helpers here: child processes load this file)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end
M.free_port = free_port

--- redis-lua on this Lua: Debian installs it for 5.1-5.3 only.
function M.lua_path()
  if not package.path:find("/usr/share/lua/5.3/?.lua", 1, true) then
    package.path = package.path .. ";/usr/share/lua/5.3/?.lua"
  end
end

-- A raw command over a fresh connection (inline protocol): the first reply
-- line, or nil, err.
local function command(port, line)
  local c = socket.tcp()
  c:settimeout(1)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then c:close(); return nil, err end
  c:send(line .. "\r\n")
  local reply, rerr = c:receive("*l")
  c:close()
  return reply, rerr
end
M.command = command

local Server = {}
Server.__index = Server

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("*l") or ""
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

--- Start a redis-server; `port` to reuse one (a restart), else a free one.
function M.start(port)
  local p = io.popen("mktemp -d /tmp/braze-redis.XXXXXX")
  local dir = p:read("*l")
  p:close()
  for attempt = 1, 3 do
    local try = port or free_port()
    local cmd = string.format("cd '%s' && redis-server --port %d --bind 127.0.0.1 --save '' "
      .. "--appendonly no --daemonize yes --pidfile '%s/redis.pid' --logfile '%s/redis.log' "
      .. "--dir '%s' >/dev/null 2>&1", dir, try, dir, dir, dir)
    assert(sh(cmd), "redis-server did not start (is Debian's redis-server installed?)")
    for _ = 1, 100 do
      if command(try, "PING") == "+PONG" then
        local f = io.open(dir .. "/redis.pid")
        local pid = f and tonumber(f:read("*l"))
        if f then f:close() end
        return setmetatable({ port = try, pid = pid, dir = dir }, Server)
      end
      socket.sleep(0.02)
    end
    assert(attempt < 3 and not port, "redis-server does not answer PING on port " .. try)
  end
end

--- Stop it (and remove its directory unless `keep_dir`, for a restart).
function Server:stop(keep_dir)
  if self.pid and alive(self.pid) then
    sh("kill -TERM " .. self.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not alive(self.pid) then break end
      socket.sleep(0.02)
    end
    if alive(self.pid) then sh("kill -KILL " .. self.pid .. " 2>/dev/null") end
  end
  if not keep_dir and self.dir and self.dir:match("^/tmp/braze%-redis") then
    sh("rm -rf '" .. self.dir .. "'")
  end
end

return M
