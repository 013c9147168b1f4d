-- A real nginx with several worker processes and the Lua module, for the
-- window-store specs: `lua_shared_dict braze`, the repository's lua/ and
-- spec/window/nginx/ on the Lua path, braze/core.so built for LuaJIT
-- ($BRAZE_LUAJIT_BUILD, default build-luajit) on the C path.
--
--   local nginx = require("spec.support.nginx_workers")
--   local ngx_srv = nginx.start{ workers = 4, vars = { braze_endpoint = mock.url } }
--   ngx_srv.port; ngx_srv:get("/state?ws=x"); ngx_srv:stop()
--
-- Every location is `location /NAME { content_by_lua_block {
-- require("window_handlers").NAME() } }`; nginx variables from `vars`.
local helpers = require("spec.support.helpers")
local tls = require("spec.support.tls_nginx")
local cjson = require("cjson")
local socket = require("socket")

local M = {}

local NGINX = os.getenv("NGINX") or "nginx"
local read_file, sh, q = helpers.read_file, tls.sh, helpers.shell_quote

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local p = io.popen("cd " .. q(path) .. " && pwd")
  local abs = p:read("*l")
  p:close()
  return abs
end

local load_modules = tls.load_modules

local TEMPLATE = [[
${MODULES}
${USER}
worker_processes ${WORKERS};
daemon on;
pid ${PREFIX}/nginx.pid;
error_log ${PREFIX}/error.log warn;
events { worker_connections 512; accept_mutex off; }
http {
  access_log off;
  client_body_temp_path ${PREFIX}/client_body;
  proxy_temp_path ${PREFIX}/proxy;
  fastcgi_temp_path ${PREFIX}/fastcgi;
  uwsgi_temp_path ${PREFIX}/uwsgi;
  scgi_temp_path ${PREFIX}/scgi;
  lua_package_path "${ROOT}/lua/?.lua;${ROOT}/lua/?/init.lua;${ROOT}/spec/window/nginx/?.lua;${ROOT}/spec/support/?.lua;;";
  lua_package_cpath "${CPATH};;";
  lua_shared_dict braze ${DICT};
  lua_shared_dict spec 1m;
  server {
    listen 127.0.0.1:${PORT} reuseport;
    default_type application/json;
${VARS}
    location = /ping { return 200 "pong\n"; }
    location / { content_by_lua_block { require("window_handlers").dispatch() } }
  }
}
]]

local Server = {}
Server.__index = Server

--- Start it: opts.workers (4), opts.dict (size of `braze`, "1m"), opts.vars.
function M.start(opts)
  opts = opts or {}
  local root = absolute(helpers.root)
  local build = os.getenv("BRAZE_LUAJIT_BUILD") or (root .. "/build-luajit")
  if build:sub(1, 1) ~= "/" then build = root .. "/" .. build end
  assert(read_file(build .. "/braze/core.so"), "no " .. build .. "/braze/core.so: build it with "
    .. "bash scripts/build.sh build-luajit -DBRAZE_LUA=luajit")
  local dir = tls.tempdir("braze-window-nginx")
  local vars = {}
  for k, v in pairs(opts.vars or {}) do vars[#vars + 1] = "    set $" .. k .. " \"" .. v .. "\";" end
  local p = io.popen("id -u")
  local uid = p:read("*l")
  p:close()
  local port
  for attempt = 1, 3 do
    port = tls.free_port()
    local values = {
      MODULES = load_modules(), USER = uid == "0" and "user root root;" or "",
      WORKERS = opts.workers or 4, PREFIX = dir, ROOT = root, CPATH = build .. "/?.so",
      DICT = opts.dict or "1m", PORT = port, VARS = table.concat(vars, "\n"),
    }
    local conf = TEMPLATE:gsub("%${([%w_]+)}", function(k) return tostring(assert(values[k], k)) end)
    helpers.write_file(dir .. "/nginx.conf", conf)
    if sh(string.format("%s -p %s -c %s/nginx.conf -e %s/error.log >%s/start.log 2>&1",
      NGINX, q(dir), q(dir), q(dir), q(dir))) then break end
    assert(attempt < 3, "nginx did not start:\n" .. tostring(read_file(dir .. "/start.log")))
  end
  local self = setmetatable({ port = port, dir = dir }, Server)
  for _ = 1, 100 do
    local res = helpers.request({ host = "127.0.0.1", port = port }, "/ping", { timeout = 1 })
    if res and res.status == 200 then return self end
    socket.sleep(0.05)
  end
  self:stop()
  error("nginx does not answer /ping:\n" .. tostring(read_file(dir .. "/error.log")))
end

--- GET target; the decoded JSON body (errors raise).
function Server:get(target, timeout)
  local res, err = helpers.request({ host = "127.0.0.1", port = self.port }, target,
    { timeout = timeout or 10 })
  assert(res, "request to nginx failed: " .. tostring(err))
  local ok, doc = pcall(cjson.decode, res.body)
  assert(ok and res.status == 200, "nginx answered " .. res.status .. ": " .. res.body)
  return doc
end

--- Lua errors in the error log, or nil.
function Server:lua_errors()
  local log = read_file(self.dir .. "/error.log") or ""
  return log:match("[^\n]*lua entry thread aborted[^\n]*") or log:match("[^\n]*runtime error[^\n]*")
end

function Server:error_log() return read_file(self.dir .. "/error.log") or "" end

function Server:stop()
  tls.stop_nginx(self.dir .. "/nginx.pid")
  if os.getenv("BRAZE_KEEP_NGINX") == nil then tls.remove(self.dir) end
end

return M
