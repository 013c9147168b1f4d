-- Test-time TLS: a throw-away CA, certificates it signs, and a Debian nginx
-- that terminates TLS on 127.0.0.1 and proxies to a braze-mock. Used by
-- spec/client/security_spec.lua; the same steps as spec/transport/nginx_spec.lua's
-- make_certs/stop_nginx, which can move here.
--
--   local tls = require("spec.support.tls_nginx")
--   local dir = tls.tempdir()
--   tls.make_ca(dir, "ca")
--   tls.make_cert(dir, "good", "ca", "DNS:localhost,IP:127.0.0.1")
--   local front = tls.start_nginx(dir, { good = { cert = "good", upstream = mock.url } })
--   ... https://localhost:<front.ports.good> ...
--   front:stop(); tls.remove(dir)
--
-- Needs only nginx (with its ssl and proxy modules, as Debian's has) and the
-- openssl command; no Lua module in nginx. Every server listens on 127.0.0.1.
local socket = require("socket")
local helpers = require("spec.support.helpers")

local M = {}

M.nginx = os.getenv("NGINX") or "nginx"

--- load_module lines for Debian's dynamic modules (ndk and lua); nothing when
--- nginx has the Lua module built in (OpenResty).
function M.load_modules()
  local p = io.popen(M.nginx .. " -V 2>&1")
  local v = p:read("*a")
  p:close()
  local dir = v:match("%-%-modules%-path=(%S+)") or "/usr/lib/nginx/modules"
  local lines = {}
  for _, m in ipairs({ "ndk_http_module.so", "ngx_http_lua_module.so" }) do
    if helpers.read_file(dir .. "/" .. m) then lines[#lines + 1] = "load_module " .. dir .. "/" .. m .. ";" end
  end
  return table.concat(lines, "\n")
end

local sh = helpers.sh
M.sh = sh

local q = helpers.shell_quote
M.quote = q

M.read_file = helpers.read_file
M.write_file = helpers.write_file

--- A fresh directory under /tmp.
function M.tempdir(prefix)
  local p = io.popen("mktemp -d /tmp/" .. (prefix or "braze-tls") .. ".XXXXXX")
  local dir = p:read("*l")
  p:close()
  assert(dir and dir ~= "", "mktemp failed")
  return dir
end

function M.remove(dir)
  if dir and dir:match("^/tmp/") and os.getenv("BRAZE_KEEP_TLS") == nil then
    sh("rm -rf " .. q(dir))
  end
end

--- A TCP port nothing listens on right now (it may be taken before use:
-- callers retry).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function run_all(cmds)
  for _, c in ipairs(cmds) do
    assert(sh(c .. " >/dev/null 2>&1"), "failed: " .. c)
  end
end

-- EC P-256 keys: much faster to make than RSA, and every TLS stack takes them.
local NEWKEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

--- A self-signed CA: dir/<name>.pem and dir/<name>.key.
function M.make_ca(dir, name)
  run_all({
    "openssl req -x509 " .. NEWKEY .. " -days 2 -subj /CN=" .. name .. "-test-ca"
      .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
      .. " -keyout " .. q(dir .. "/" .. name .. ".key") .. " -out " .. q(dir .. "/" .. name .. ".pem"),
  })
  return dir .. "/" .. name .. ".pem"
end

--- A server certificate signed by CA `ca`, with subjectAltName `san`
-- (e.g. "DNS:localhost,IP:127.0.0.1"): dir/<name>.pem and dir/<name>.key.
function M.make_cert(dir, name, ca, san)
  local base = dir .. "/" .. name
  M.write_file(base .. ".ext", "subjectAltName=" .. san .. "\n"
    .. "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
  run_all({
    "openssl req " .. NEWKEY .. " -subj /CN=" .. name .. " -keyout " .. q(base .. ".key")
      .. " -out " .. q(base .. ".csr"),
    "openssl x509 -req -days 2 -in " .. q(base .. ".csr") .. " -CA " .. q(dir .. "/" .. ca .. ".pem")
      .. " -CAkey " .. q(dir .. "/" .. ca .. ".key") .. " -CAcreateserial -extfile "
      .. q(base .. ".ext") .. " -out " .. q(base .. ".pem"),
  })
  return base .. ".pem"
end

--- A CA directory for ca_path: dir/<subdir> holding only the given CA
-- certificates and their OpenSSL hash links.
function M.make_ca_dir(dir, subdir, cas)
  local path = dir .. "/" .. subdir
  local cmds = { "mkdir -p " .. q(path) }
  for _, ca in ipairs(cas) do
    cmds[#cmds + 1] = "cp " .. q(dir .. "/" .. ca .. ".pem") .. " " .. q(path .. "/")
  end
  cmds[#cmds + 1] = "openssl rehash " .. q(path) .. " || c_rehash " .. q(path)
  run_all(cmds)
  return path
end

--- Stop the nginx whose pid file is `pid_file`: QUIT, then KILL after 5 s.
function M.stop_nginx(pid_file)
  local pid = pid_file and M.read_file(pid_file)
  pid = pid and pid:match("%d+")
  if not pid then return end
  sh("kill -QUIT " .. pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not sh("kill -0 " .. pid .. " 2>/dev/null") then return end
    socket.sleep(0.05)
  end
  sh("kill -KILL " .. pid .. " 2>/dev/null")
end

local function accepts(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

local Front = {}
Front.__index = Front

function Front:stop()
  if self.stopped then return end
  self.stopped = true
  M.stop_nginx(self.dir .. "/nginx.pid")
end

function Front:error_log()
  return M.read_file(self.dir .. "/error.log") or ""
end

--- Start nginx (one process, daemonized, files in `dir`) with one TLS server
-- per entry of `servers`: name -> { cert = <name given to make_cert>,
-- upstream = "http://127.0.0.1:PORT" }. Returns a front with
-- ports[name], stop() and error_log(). Raises when nginx does not come up.
function M.start_nginx(dir, servers)
  local names = {}
  for name in pairs(servers) do names[#names + 1] = name end
  table.sort(names)
  for attempt = 1, 3 do
    local ports, blocks = {}, {}
    for _, name in ipairs(names) do
      local s = servers[name]
      ports[name] = M.free_port()
      blocks[#blocks + 1] = table.concat({
        "  server {",
        "    listen 127.0.0.1:" .. ports[name] .. " ssl;",
        "    server_name localhost;",
        "    ssl_certificate " .. dir .. "/" .. s.cert .. ".pem;",
        "    ssl_certificate_key " .. dir .. "/" .. s.cert .. ".key;",
        "    location / { proxy_pass " .. s.upstream .. "; }",
        "  }",
      }, "\n")
    end
    local conf = table.concat({
      "master_process off;",
      "daemon on;",
      "pid " .. dir .. "/nginx.pid;",
      "error_log " .. dir .. "/error.log info;",
      "events { worker_connections 128; }",
      "http {",
      "  access_log " .. dir .. "/access.log;",
      "  client_body_temp_path " .. dir .. "/client_body;",
      "  proxy_temp_path " .. dir .. "/proxy;",
      "  fastcgi_temp_path " .. dir .. "/fastcgi;",
      "  uwsgi_temp_path " .. dir .. "/uwsgi;",
      "  scgi_temp_path " .. dir .. "/scgi;",
      table.concat(blocks, "\n"),
      "}",
    }, "\n") .. "\n"
    M.write_file(dir .. "/nginx.conf", conf)
    local cmd = string.format("%s -p %s -c %s -e %s >%s 2>&1", M.nginx, q(dir),
      q(dir .. "/nginx.conf"), q(dir .. "/error.log"), q(dir .. "/start.log"))
    if sh(cmd) then
      local front = setmetatable({ dir = dir, ports = ports }, Front)
      local up = true
      for _, name in ipairs(names) do
        local ok = false
        for _ = 1, 100 do
          if accepts(ports[name]) then ok = true break end
          socket.sleep(0.02)
        end
        up = up and ok
      end
      if up then return front end
      front:stop()
    end
    assert(attempt < 3, "nginx did not start:\n" .. tostring(M.read_file(dir .. "/start.log"))
      .. tostring(M.read_file(dir .. "/error.log")))
  end
end

return M
