-- examples/nginx started exactly as README.md says (on a free port, with
-- BRAZE_BIND), from a clone in a directory only
-- root can read (workers run as nobody), with the machine's own resolver
-- and a `localhost` endpoint (the mock), which needs no DNS:
--   BRAZE_API_KEY=... BRAZE_REST_ENDPOINT=... examples/nginx/run.sh
-- Then: a second copy runs beside it (its own port and state directory);
-- without BRAZE_API_KEY it refuses to start; and with lua-braze installed as
-- a rock for LuaJIT (BRAZE_TREE=T) it serves the same.
--
-- Needs nginx with the Lua module, luarocks, and braze/core.so built for
-- LuaJIT in $BRAZE_LUAJIT_BUILD (default
-- build-luajit). Tagged #nginx (.busted leaves it out of the quick loop):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=nginx spec/transport/example_nginx_spec.lua
local helpers = require("spec.support.helpers")
local tls = require("spec.support.tls_nginx")
local cjson = require("cjson")
local socket = require("socket")

local q = helpers.shell_quote
local read_file = helpers.read_file
local sh = tls.sh

local ROOT = helpers.abs_root()
local LUAJIT_BUILD = os.getenv("BRAZE_LUAJIT_BUILD") or (ROOT .. "/build-luajit")
if LUAJIT_BUILD:sub(1, 1) ~= "/" then LUAJIT_BUILD = ROOT .. "/" .. LUAJIT_BUILD end

local PORT -- where the example listens (BRAZE_BIND)
local STATE -- the run's state directory (nginx.pid, the written conf files), from its log

local function get(target, timeout)
  local res, err = helpers.request({ host = "127.0.0.1", port = PORT }, target, { timeout = timeout or 10 })
  assert(res, "request to the example failed: " .. tostring(err))
  local ok, doc = pcall(cjson.decode, res.body)
  return res.status, ok and doc or res.body
end

local function answers()
  local res = helpers.request({ host = "127.0.0.1", port = PORT }, "/healthz", { timeout = 1 })
  return res and res.status == 200
end

local function port_free(port)
  local s = socket.bind("127.0.0.1", port or PORT)
  if not s then return false end
  s:close()
  return true
end

-- The README's command, in `dir`, in the background; output to `log`.
-- `env`: the variables to put before it (a string). Sets STATE from the
-- line run.sh prints.
local function start_example(dir, env, log)
  sh("cd " .. q(dir) .. " && BRAZE_BIND=127.0.0.1:" .. PORT .. " " .. env .. " examples/nginx/run.sh >"
    .. q(log) .. " 2>&1 </dev/null &")
  for _ = 1, 100 do
    if answers() then
      STATE = (read_file(log) or ""):match("%(state: (%S+), pid in ")
      return STATE ~= nil
    end
    socket.sleep(0.05)
  end
  return false
end

local function stop_example()
  if not STATE then return end
  tls.stop_nginx(STATE .. "/nginx.pid")
  for _ = 1, 100 do
    if port_free() then break end
    socket.sleep(0.05)
  end
  if STATE:match("^/tmp/braze%-example%-nginx%.") then sh("rm -rf " .. q(STATE)) end
end

describe("#nginx examples/nginx run as the README says", function()
  local mock, private, clone, segments, env

  setup(function()
    assert(read_file(LUAJIT_BUILD .. "/braze/core.so"), "no " .. LUAJIT_BUILD .. "/braze/core.so: build it with "
      .. "cmake -S . -B build-luajit -DBRAZE_LUA=luajit && cmake --build build-luajit")
    PORT = tls.free_port()
    mock = helpers.start_mock{ segments = 250 }
    -- A clone in a directory only root can read (mktemp -d makes it 0700),
    -- with braze.core built for LuaJIT where the README's build puts it.
    private = helpers.read_pipe("mktemp -d /tmp/braze-example.XXXXXX"):gsub("\n$", "")
    clone = private .. "/clone"
    assert(sh("mkdir -p " .. q(clone .. "/build-luajit/braze") .. " && cd " .. q(ROOT)
      .. " && git ls-files -co --exclude-standard -z | xargs -0 tar -c | tar -x -C " .. q(clone)
      .. " && cp " .. q(LUAJIT_BUILD .. "/braze/core.so") .. " " .. q(clone .. "/build-luajit/braze/")))
    -- `localhost`, which nginx's resolver (a DNS server) would not know.
    env = "BRAZE_API_KEY=" .. q(mock.api_key) .. " BRAZE_REST_ENDPOINT=" .. q("http://localhost:" .. mock.port)
    assert(start_example(clone, env, private .. "/example.log"),
      "the example did not start:\n" .. tostring(read_file(private .. "/example.log")))
    local status, doc = get("/healthz")
    assert(status == 200, doc)
    segments = assert(mock:api("/segments/list")).body
    segments = cjson.decode(segments).segments
  end)

  teardown(function()
    stop_example()
    if mock then mock:stop() end
    if private and private:match("^/tmp/braze%-example%.") then sh("rm -rf " .. q(private)) end
  end)

  before_each(function() mock:reset() end)

  describe("from a private clone", function()
    it("serves a segment's size series and then serves it from the cache", function()
      local target = "/segments/sizes?days=7&segment_id=" .. helpers.url_encode(segments[1].id)
      local status, doc = get(target)
      assert.equal(200, status, cjson.encode(doc))
      assert.equal(segments[1].id, doc.segment_id)
      assert.equal(7, #doc.series)
      assert.is_false(doc.cached)
      assert.is_true(doc.series[7].size > 2 ^ 32)
      local status2, doc2 = get(target)
      assert.equal(200, status2)
      assert.is_true(doc2.cached)
      assert.same(doc.series, doc2.series)
      assert.equal(1, mock:stats().by_path["/segments/data_series"])
    end)

    it("runs its workers as nobody when started as root", function()
      if helpers.read_pipe("id -u"):match("%d+") ~= "0" then
        pending("not root: the workers run as the same user")
        return
      end
      local master = assert(read_file(STATE .. "/nginx.pid")):match("%d+")
      local users = helpers.read_pipe("ps -o user= --ppid " .. master)
      assert.matches("nobody", users)
      assert.not_matches("root", users)
    end)

    it("asks Braze once for a burst of requests for the same series", function()
      local target = "/segments/sizes?days=3&segment_id=" .. helpers.url_encode(segments[2].id)
      mock:fault{ type = "delay", ms = 300 }
      local dir = private .. "/burst"
      sh("mkdir -p " .. q(dir))
      local cmd = {}
      for i = 1, 8 do
        cmd[#cmd + 1] = "curl -s -m 10 -o " .. q(dir .. "/" .. i) .. " -w '%{http_code}\\n' "
          .. q("http://127.0.0.1:" .. PORT .. target) .. " &"
      end
      local codes = helpers.read_pipe(table.concat(cmd, " ") .. " wait")
      local n = 0
      for code in codes:gmatch("%d+") do
        n = n + 1
        assert.equal("200", code)
      end
      assert.equal(8, n)
      for i = 1, 8 do
        local body = read_file(dir .. "/" .. i)
        assert.is_string(body)
        assert.equal(3, #cjson.decode(body).series)
      end
      assert.equal(1, mock:stats().by_path["/segments/data_series"])
    end)

    it("answers 400 for bad arguments and 502 with Braze's message for a 401", function()
      assert.equal(400, (get("/segments/sizes?days=7")))
      assert.equal(400, (get("/segments/sizes?segment_id=x&days=101")))
      mock:fault{ type = "401" }
      local status, doc = get("/segments/sizes?segment_id=" .. helpers.url_encode(segments[3].id))
      assert.equal(502, status)
      assert.equal("http", doc.error)
      assert.equal(401, doc.status)
      assert.not_matches(mock.api_key, doc.message, 1, true)
    end)

    it("uses the nameservers of /etc/resolv.conf as its resolver", function()
      local first = assert(read_file("/etc/resolv.conf")):match("\n%s*nameserver%s+([%x.:]+)")
        or read_file("/etc/resolv.conf"):match("^%s*nameserver%s+([%x.:]+)")
      local conf = assert(read_file(STATE .. "/http.conf"))
      assert.matches("resolver [^;]*" .. first:gsub("%p", "%%%0"), conf)
    end)
  end)

  describe("two copies", function()
    it("run side by side, each on its port with its own state directory and pid", function()
      local port2, state2 = tls.free_port(), private .. "-second"
      local log = private .. "/second.log"
      finally(function()
        tls.stop_nginx(state2 .. "/nginx.pid")
        sh("rm -rf " .. q(state2))
      end)
      sh("cd " .. q(clone) .. " && BRAZE_BIND=127.0.0.1:" .. port2 .. " BRAZE_STATE=" .. q(state2)
        .. " " .. env .. " examples/nginx/run.sh >" .. q(log) .. " 2>&1 </dev/null &")
      local up
      for _ = 1, 100 do
        local res = helpers.request({ host = "127.0.0.1", port = port2 }, "/healthz", { timeout = 1 })
        up = res and res.status == 200
        if up then break end
        socket.sleep(0.05)
      end
      assert.is_true(up, "the second copy did not start:\n" .. tostring(read_file(log)))
      local pid1 = assert(read_file(STATE .. "/nginx.pid")):match("%d+")
      local pid2 = assert(read_file(state2 .. "/nginx.pid")):match("%d+")
      assert.are_not.equal(pid1, pid2)
      assert.matches("listen 127.0.0.1:" .. port2 .. ";", read_file(state2 .. "/listen.conf"), 1, true)
      local target = "/segments/sizes?days=2&segment_id=" .. helpers.url_encode(segments[5].id)
      local res = helpers.request({ host = "127.0.0.1", port = port2 }, target, { timeout = 10 })
      assert.equal(200, res.status, res.body)
      tls.stop_nginx(state2 .. "/nginx.pid")
      assert.is_true(answers()) -- the first copy is untouched
      assert.equal(200, (get(target)))
    end)
  end)

  describe("misconfigured", function()
    it("refuses to start without BRAZE_API_KEY, with a log line naming it", function()
      local log = private .. "/nokey.log"
      local cmd = "cd " .. q(clone) .. " && env -u BRAZE_API_KEY BRAZE_REST_ENDPOINT=US-01 "
        .. "BRAZE_STATE=" .. q(private .. "/nokey-state") .. " timeout 20 "
        .. "examples/nginx/run.sh >" .. q(log) .. " 2>&1 </dev/null"
      assert.is_false(sh(cmd))
      local out = assert(read_file(log))
      assert.matches("init_by_lua error: examples/nginx: cannot make a Braze client: braze: no API key", out, 1, true)
      assert.matches("BRAZE_API_KEY", out, 1, true)
      assert.is_true(answers()) -- the running example is untouched
    end)
  end)

  describe("with lua-braze installed as a rock for LuaJIT", function()
    it("serves the same with BRAZE_TREE=T", function()
      stop_example()
      local tree = private .. "/tree"
      -- the README's command for a LuaJIT rock, without build-luajit/ in the clone
      assert(sh("rm -rf " .. q(clone .. "/build-luajit") .. " && cd " .. q(clone)
        .. " && luarocks --lua-version=5.1 --tree " .. q(tree)
        .. " make LUA_INCDIR=/usr/include/luajit-2.1 >" .. q(private .. "/rock.log") .. " 2>&1"),
        "luarocks make failed:\n" .. tostring(read_file(private .. "/rock.log")))
      assert(start_example(clone, "BRAZE_TREE=" .. q(tree) .. " " .. env, private .. "/rock-example.log"),
        "the example did not start from the rock:\n" .. tostring(read_file(private .. "/rock-example.log")))
      local conf = assert(read_file(STATE .. "/http.conf"))
      assert.matches(tree .. "/share/lua/5.1/?.lua", conf, 1, true)
      assert.not_matches(clone .. "/lua/", conf, 1, true)
      local status, doc = get("/segments/sizes?days=2&segment_id=" .. helpers.url_encode(segments[4].id))
      assert.equal(200, status, cjson.encode(doc))
      assert.equal(2, #doc.series)
    end)
  end)
end)
