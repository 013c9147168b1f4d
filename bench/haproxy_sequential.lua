-- Sequential calls inside a HAProxy service: lua-braze's HAProxy transport
-- against bare core.httpclient in the same service, against the mock's list
-- page on loopback (issue 18 item 22: within 2x + 1 ms of bare).
--
--   lua5.4 bench/haproxy_sequential.lua [calls per run] [runs]
--
-- Needs haproxy, lua-cjson for 5.3, build-5.3 (bash scripts/build.sh build-5.3
-- -DBRAZE_LUA=5.3) and build/ for the mock. Prints one RESULT line per run
-- (ms per call for each side, interleaved) and the ratio's median.
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local helpers = require("spec.support.helpers")
local tls = require("spec.support.tls_nginx")
local cjson = require("cjson")
local socket = require("socket")

local N, RUNS = tonumber(arg[1]) or 2000, tonumber(arg[2]) or 4
local ROOT = helpers.read_pipe("pwd"):gsub("%s+$", "")
local mock = helpers.start_mock{ segments = 100 }
local dir = tls.tempdir("braze-hap-bench")
local port = tls.free_port()
local vars = { NBTHREAD = 1, PORT = port, PREFIX = dir, ROOT = ROOT, CPATH = ROOT .. "/build-5.3/?.so",
  LUA_LOAD = "lua-load", API_KEY = mock.api_key, FAST_URL = mock.url, SLOW_URL = mock.url,
  TLS_URL = mock.url, BADTLS_URL = mock.url, TRICKLE_URL = mock.url }
local conf = helpers.read_file("spec/transport/haproxy/haproxy.cfg.in"):gsub("%${([%w_]+)}", function(k)
  return tostring(assert(vars[k], k))
end)
helpers.write_file(dir .. "/haproxy.cfg", conf)
tls.make_ca(dir, "ca") -- the config wants a CA file (no https here)
local pipe = io.popen("exec haproxy -db -f " .. dir .. "/haproxy.cfg >" .. dir .. "/log 2>&1 & echo $!")
local pid = pipe:read("*l")
pipe:close()
for _ = 1, 100 do
  local res = helpers.request({ host = "127.0.0.1", port = port }, "/ping", { timeout = 1 })
  if res and res.status == 200 then break end
  socket.sleep(0.05)
end

local function run(how)
  local res = assert(helpers.request({ host = "127.0.0.1", port = port },
    "/bench?how=" .. how .. "&n=" .. N, { timeout = 300 }))
  local doc = cjson.decode(res.body)
  assert(doc.ok, res.body)
  return doc.result.seconds * 1000 / N
end

run("bare"); run("transport") -- warm up: workers, connections
print(string.format("core.msleep(1) takes %.3f ms", run("msleep")))
local ratios = {}
for i = 1, RUNS do
  local a, b
  if i % 2 == 1 then a = run("bare"); b = run("transport") else b = run("transport"); a = run("bare") end
  ratios[i] = b / a
  print(string.format("RESULT haproxy_seq run %d: bare %.3f ms/call, transport %.3f ms/call, "
    .. "ratio %.2f, bound (2x + 1 ms) %.3f ms", i, a, b, b / a, 2 * a + 1))
end
table.sort(ratios)
print(string.format("haproxy_seq: transport / bare median %.2f (min %.2f, max %.2f), %d calls x %d runs",
  ratios[(#ratios + 1) // 2], ratios[1], ratios[#ratios], N, RUNS))
os.execute("kill " .. pid)
mock:stop()
tls.remove(dir)
