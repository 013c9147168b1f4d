-- braze.transport.haproxy in a real HAProxy (Debian's haproxy 2.6, Lua 5.3):
-- spec/transport/haproxy/handlers.lua serves the API through HAProxy's httpclient
-- against the mock; this spec checks the service's JSON from outside, that a
-- slow Braze blocks neither HAProxy nor its other requests with 1, 2 and 4
-- threads (and that the watchdog does not kill it), and that errors match
-- the libcurl transport's.
--
-- Needs: haproxy (HAPROXY=path, default /usr/sbin/haproxy), openssl and
-- nginx (a TLS front for the https cases), lua-cjson for Lua 5.3, and
-- braze/core.so built for Lua 5.3 in $BRAZE_LUA53_BUILD (default build-5.3:
-- `bash scripts/build.sh build-5.3 -DBRAZE_LUA=5.3`).
-- Run (.busted excludes the #haproxy tag by default):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=haproxy spec/transport/haproxy_spec.lua
-- BRAZE_KEEP_HAPROXY=1 keeps the temp directories (config, logs).
local braze = require("braze")
local helpers = require("spec.support.helpers")
local cjson = require("cjson")
local socket = require("socket")
local tls = require("spec.support.tls_nginx")
local conformance = require("spec.support.conformance")

local HAPROXY = os.getenv("HAPROXY") or "/usr/sbin/haproxy"
local ROOT = helpers.root
if ROOT:sub(1, 1) ~= "/" then -- haproxy needs absolute paths
  local p = io.popen("cd " .. helpers.shell_quote(ROOT) .. " && pwd")
  ROOT = p:read("*l")
  p:close()
end
local BUILD = os.getenv("BRAZE_LUA53_BUILD") or (ROOT .. "/build-5.3")
if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end

local read_file, write_file, sh, q = helpers.read_file, helpers.write_file, tls.sh, tls.quote

-- GET target from haproxy; returns status, decoded JSON (or raw body), seconds.
local function get(port, target, timeout)
  local res, elapsed = helpers.request({ host = "127.0.0.1", port = port }, target,
    { timeout = timeout or 15 })
  assert(res, "request to haproxy failed: " .. tostring(elapsed))
  local ok, doc = pcall(cjson.decode, res.body)
  return res.status, ok and doc or res.body, elapsed
end

local function alive(pid)
  return sh("kill -0 " .. pid .. " 2>/dev/null")
end

-- A haproxy in the foreground (-db), as our child, with the spec's config
-- for `nbthread` threads, loading the handlers with `lua_load` (default
-- lua-load: one Lua state; or lua-load-per-thread). Returns { port=, pid=, dir=, log(), stop() }.
local function start_haproxy(vars, nbthread, lua_load)
  local dir = tls.tempdir("braze-haproxy")
  sh("cp " .. q(vars.CA) .. " " .. q(dir .. "/ca.pem"))
  local template = assert(read_file(ROOT .. "/spec/transport/haproxy/haproxy.cfg.in"))
  for attempt = 1, 3 do
    local port = tls.free_port()
    local all = { NBTHREAD = nbthread, PORT = port, PREFIX = dir, ROOT = ROOT, CPATH = BUILD .. "/?.so",
      LUA_LOAD = lua_load or "lua-load" }
    for k, v in pairs(vars) do all[k] = all[k] or v end
    local conf = template:gsub("%${([%w_]+)}", function(k)
      return tostring(assert(all[k], "no value for ${" .. k .. "}"))
    end)
    write_file(dir .. "/haproxy.cfg", conf)
    local pipe = io.popen("exec " .. q(HAPROXY) .. " -db -f " .. q(dir .. "/haproxy.cfg") .. " >"
      .. q(dir .. "/haproxy.log") .. " 2>&1 </dev/null & echo $!")
    local pid = tonumber(pipe:read("*l"))
    pipe:close()
    local h = {
      port = port, pid = pid, dir = dir,
      log = function() return read_file(dir .. "/haproxy.log") or "" end,
    }
    function h.stop()
      if h.stopped then return end
      h.stopped = true
      sh("kill -USR1 " .. pid .. " 2>/dev/null") -- soft stop
      for _ = 1, 100 do
        if not alive(pid) then break end
        socket.sleep(0.05)
      end
      sh("kill -KILL " .. pid .. " 2>/dev/null")
      if os.getenv("BRAZE_KEEP_HAPROXY") == nil then tls.remove(dir) end
    end
    for _ = 1, 100 do
      local res = helpers.request({ host = "127.0.0.1", port = port }, "/ping", { timeout = 1 })
      if res and res.status == 200 then return h end
      if not alive(pid) then break end
      socket.sleep(0.05)
    end
    local log = h.log()
    h.stopped = true
    sh("kill -KILL " .. pid .. " 2>/dev/null")
    assert(attempt < 3 and log:find("cannot bind", 1, true), "haproxy did not start:\n" .. log)
  end
end


describe("#haproxy braze.transport.haproxy", function()
  local tmp, fast, slow, front, vars, trickle

  setup(function()
    assert(read_file(BUILD .. "/braze/core.so"), "no " .. BUILD .. "/braze/core.so: build it with "
      .. "bash scripts/build.sh build-5.3 -DBRAZE_LUA=5.3")
    tmp = tls.tempdir("braze-haproxy-certs")
    tls.make_ca(tmp, "ca")
    tls.make_cert(tmp, "good", "ca", "IP:127.0.0.1,DNS:127.0.0.1")
    tls.make_cert(tmp, "bad", "ca", "DNS:not-this-host.example")
    fast = helpers.start_mock{ segments = 250 }
    slow = helpers.start_mock{ segments = 5, latency = 500 }
    trickle = conformance.start_trickle_server()
    front = tls.start_nginx(tmp, { good = { cert = "good", upstream = fast.url },
      bad = { cert = "bad", upstream = fast.url } })
    vars = {
      CA = tmp .. "/ca.pem", API_KEY = fast.api_key, FAST_URL = fast.url, SLOW_URL = slow.url,
      TLS_URL = "https://127.0.0.1:" .. front.ports.good,
      BADTLS_URL = "https://127.0.0.1:" .. front.ports.bad,
      TRICKLE_URL = trickle.url,
    }
  end)

  teardown(function()
    if front then front:stop() end
    if fast then fast:stop() end
    if slow then slow:stop() end
    if trickle then trickle.stop() end
    tls.remove(tmp)
  end)

  describe("outside HAProxy", function()
    it("new raises, naming what is missing", function()
      local transport = require("braze.transport.haproxy")
      assert.has_error(function()
        braze.new{ api_key = "k", endpoint = "http://127.0.0.1:1", transport = transport }
      end, "braze.transport.haproxy: needs HAProxy 2.6 or later (no core.httpclient here)")
    end)
  end)

  describe("examples/haproxy", function()
    it("run.sh serves a segment's sizes from the mock, then from its cache", function()
      local port = tls.free_port()
      local log = os.tmpname()
      local pipe = io.popen("BRAZE_API_KEY=" .. q(fast.api_key) .. " BRAZE_REST_ENDPOINT="
        .. q((fast.url:gsub("127%.0%.0%.1", "localhost"))) .. " BRAZE_BIND=127.0.0.1:" .. port
        .. " BRAZE_LUA53_BUILD=" .. q(BUILD) .. " HAPROXY=" .. q(HAPROXY) .. " exec "
        .. q(ROOT .. "/examples/haproxy/run.sh") .. " >" .. q(log) .. " 2>&1 </dev/null & echo $!")
      local pid = tonumber(pipe:read("*l"))
      pipe:close()
      finally(function()
        sh("kill " .. pid .. " 2>/dev/null")
        os.remove(log)
      end)
      local up
      for _ = 1, 100 do
        local res = helpers.request({ host = "127.0.0.1", port = port }, "/healthz", { timeout = 1 })
        up = res and res.status == 200
        if up or not alive(pid) then break end
        socket.sleep(0.05)
      end
      assert.is_true(up, "the example did not start:\n" .. tostring(read_file(log)))
      local id = assert(braze.new{ api_key = fast.api_key, endpoint = fast.url }:list()).segments[1].id
      local status, doc = get(port, "/segments/sizes?days=3&segment_id=" .. helpers.url_encode(id))
      assert.equal(200, status, tostring(read_file(log)))
      assert.same({ id, 3, false, 3 }, { doc.segment_id, doc.days, doc.cached, #doc.series })
      assert.is_true(doc.series[1].size > 2 ^ 32)
      status, doc = get(port, "/segments/sizes?days=3&segment_id=" .. helpers.url_encode(id))
      assert.equal(200, status)
      assert.is_true(doc.cached)
      status, doc = get(port, "/segments/sizes?days=3&segment_id=nope")
      assert.equal(400, status)
      assert.equal("http", doc.error)
    end)
  end)

  -- Nothing waits behind a slow Braze, whatever the number of threads.
  for _, case in ipairs({ { 1 }, { 2 }, { 4 }, { 2, "lua-load-per-thread" } }) do
    local nbthread, lua_load = case[1], case[2]
    describe("with nbthread " .. nbthread .. (lua_load and " and " .. lua_load or ""), function()
      local hap
      setup(function() hap = start_haproxy(vars, nbthread, lua_load) end)
      teardown(function() if hap then hap.stop() end end)

      it("20 requests to a 500 ms Braze finish together while /ping answers at once, "
        .. "and HAProxy lives on", function()
        local targets = {}
        for i = 1, 20 do
          targets[i] = (i % 2 == 0) and "/list?mock=slow" or "/details?mock=slow&segment_id=x" .. i
        end
        local results, probes, total = helpers.concurrent(hap.port, targets, "/ping", 15)
        local slowest, worst_probe = 0, 0
        for i, r in ipairs(results) do
          assert.equal(200, r.status, "request " .. i)
          assert.is_table(r.body, "request " .. i .. ": " .. tostring(r.body))
          if i % 2 == 0 then
            assert.is_true(r.body.ok, "request " .. i .. ": " .. cjson.encode(r.body))
            assert.equal(5, #r.body.result.segments)
          else
            -- unknown ids: a 400 from the mock, after its 500 ms
            assert.equal("http", r.body.error.kind, cjson.encode(r.body))
            assert.equal(400, r.body.error.status)
          end
          slowest = math.max(slowest, r.done)
        end
        for _, p in ipairs(probes) do worst_probe = math.max(worst_probe, p.took) end
        print(string.format("\n[haproxy nbthread %d%s] 20 concurrent requests at 500 ms latency: "
          .. "%.3f s total, slowest %.3f s; %d /ping probes during them, slowest %.1f ms",
          nbthread, lua_load and ", " .. lua_load or "", total, slowest, #probes, worst_probe * 1000))
        assert.is_true(total < 2, "took " .. total .. " s")
        assert.is_true(slowest >= 0.45, "faster than the mock's latency: " .. slowest)
        assert.is_true(#probes >= 3, "probes: " .. #probes)
        for _, p in ipairs(probes) do
          assert.equal(200, p.status)
          assert.is_true(p.took < 0.1, string.format("/ping at %.2f s took %.3f s", p.at, p.took))
        end
        assert.is_true(alive(hap.pid), "haproxy died:\n" .. hap.log())
        assert.is_nil(hap.log():match("[^\n]*about to kill[^\n]*"))
        assert.is_nil(hap.log():match("[^\n]*runtime error[^\n]*"))
        local status = get(hap.port, "/ping")
        assert.equal(200, status)
      end)
    end)
  end

  -- Hostile servers, each against a HAProxy of its own (what they leave
  -- behind must not reach the other specs).
  describe("a hostile Braze does not harm HAProxy", function()
    local hap
    before_each(function() hap = start_haproxy(vars, 2) end)
    after_each(function() if hap then hap.stop() end end)

    -- HAProxy's resident set in kB (Linux /proc).
    local function rss_kb()
      local status = read_file("/proc/" .. hap.pid .. "/status") or ""
      return tonumber(status:match("VmRSS:%s*(%d+) kB")) or 0
    end

    it("70 calls to servers dripping a byte every 50 ms time out, and the next calls still work",
      function()
      local targets = {}
      for i = 1, 70 do targets[i] = "/list?fresh=1&mock=trickle&mode=drip&timeout=1" end
      local results, probes, total = helpers.concurrent(hap.port, targets, "/ping", 15)
      for i, r in ipairs(results) do
        assert.is_table(r.body, "call " .. i .. ": " .. tostring(r.body))
        assert.equal("timeout", r.body.error and r.body.error.kind, cjson.encode(r.body))
      end
      assert.is_true(total < 4, "70 calls with timeout=1 took " .. total .. " s")
      for _, p in ipairs(probes) do
        assert.is_true(p.took < 0.1, string.format("/ping at %.2f s took %.3f s", p.at, p.took))
      end
      -- the servers still drip (for 20 s): the workers they hold left the pool
      local _, pool = get(hap.port, "/pool")
      assert.is_true(pool.result.abandoned >= 60, cjson.encode(pool.result))
      for i = 1, 5 do
        local _, doc, took = get(hap.port, "/list?fresh=1&timeout=2")
        assert.is_true(doc.ok, "healthy call " .. i .. " after the drips: " .. cjson.encode(doc))
        assert.is_true(took < 1, "healthy call " .. i .. " took " .. took .. " s")
      end
      assert.is_true(alive(hap.pid), "haproxy died:\n" .. hap.log())
    end)

    it("an 8 MB body arrives whole under tune.lua.maxmem 128", function()
      fast:fault{ type = "nolength_huge", bytes = 8000000, framing = "chunked" }
      local _, doc, took = get(hap.port, "/list?fresh=1&timeout=20", 30)
      assert.is_table(doc, tostring(doc):sub(1, 200))
      assert.is_true(doc.ok, cjson.encode(doc.error))
      fast:fault{ type = "nolength_huge", bytes = 8000000, framing = "chunked" }
      local direct = assert(braze.new{ api_key = fast.api_key, endpoint = fast.url }:list())
      assert.equal(#direct.segments, #doc.result.segments)
      print(string.format("\n[haproxy] an 8 MB chunked list page: %.2f s", took))
    end)

    for _, case in ipairs({
      { mode = "huge_length", what = "a 1 GiB Content-Length" },
      { mode = "endless_body", what = "an endless body without a length" },
    }) do
      it(case.what .. ": the call ends by its deadline, HAProxy stays small and alive, "
        .. "and its worker ends", function()
        local before = rss_kb()
        local peak = before
        local results, probes, total = helpers.concurrent(hap.port,
          { "/list?fresh=1&mock=trickle&mode=" .. case.mode .. "&timeout=3" }, "/ping", 20)
        -- and after the caller's deadline, while the worker may still read
        local pool
        for _ = 1, 60 do
          peak = math.max(peak, rss_kb())
          pool = select(2, get(hap.port, "/pool"))
          if pool.result.abandoned == 0 then break end
          socket.sleep(0.1)
        end
        peak = math.max(peak, rss_kb())
        local doc = results[1].body
        print(string.format("\n[haproxy] %s: %s after %.2f s; RSS %d -> peak %d kB; %d probes; %s",
          case.mode, tostring(type(doc) == "table" and doc.error and doc.error.kind), total,
          before, peak, #probes, type(doc) == "table" and doc.error and doc.error.message or ""))
        assert.is_table(doc, tostring(doc))
        assert.is_false(doc.ok)
        assert.is_truthy(({ too_large = true, timeout = true })[doc.error.kind], cjson.encode(doc.error))
        assert.is_true(total < 4.5, "timeout=3 took " .. total .. " s")
        assert.is_true(alive(hap.pid), "haproxy died:\n" .. hap.log())
        assert.is_nil(hap.log():match("[^\n]*about to kill[^\n]*"))
        -- tune.lua.maxmem 128 bounds what HAProxy buffers (before: the whole
        -- 256 MB the server sends, and more for an endless one)
        assert.is_true(peak - before < 160 * 1024, string.format("HAProxy's RSS grew by %d MB",
          (peak - before) // 1024))
        assert.equal(0, pool.result.abandoned, "the worker still reads: " .. cjson.encode(pool.result))
        for _, p in ipairs(probes) do
          assert.equal(200, p.status)
        end
      end)
    end
  end)

  describe("in HAProxy (nbthread 2)", function()
    local hap
    setup(function() hap = start_haproxy(vars, 2) end)
    teardown(function() if hap then hap.stop() end end)
    before_each(function() fast:reset() end)
    after_each(function()
      assert.is_nil(hap.log():match("[^\n]*runtime error[^\n]*"))
      assert.is_true(alive(hap.pid), "haproxy died:\n" .. hap.log())
    end)

    describe("contexts", function()
      it("a service: list gives the same page as the libcurl transport", function()
        local status, doc = get(hap.port, "/list?page=1")
        assert.equal(200, status)
        assert.is_true(doc.ok, cjson.encode(doc))
        local direct = assert(braze.new{ api_key = fast.api_key, endpoint = fast.url }:list{ page = 1 })
        assert.equal(#direct.segments, #doc.result.segments)
        for i, s in ipairs(direct.segments) do
          assert.equal(s.id, doc.result.segments[i].id)
          assert.equal(s.name, doc.result.segments[i].name) -- quotes, newlines, UTF-8
        end
      end)

      it("an action (http-request lua.*) calls Braze before HAProxy answers", function()
        local res = helpers.request({ host = "127.0.0.1", port = hap.port }, "/action", { timeout = 10 })
        assert.equal(200, res.status)
        assert.equal("5", res.body)
      end)

      it("a task registered at load time gets its answer", function()
        local _, doc = get(hap.port, "/task")
        assert.is_true(doc.ok, cjson.encode(doc))
        assert.same({ state = "done", count = 100 }, doc.result)
      end)

      it("sends the key as a Bearer token and the user agent", function()
        get(hap.port, "/list?fresh=1")
        local req = fast:requests()[1]
        assert.equal("Bearer " .. fast.api_key, req.authorization)
        assert.matches("^lua%-braze/", req.user_agent)
      end)

      it("each visits all 250 segments over 3 pages", function()
        local status, doc = get(hap.port, "/each")
        assert.equal(200, status)
        assert.is_true(doc.ok, cjson.encode(doc))
        assert.same({ count = 250, pages = 3 }, { count = doc.result.count, pages = doc.result.pages })
      end)

      it("details_many runs its requests concurrently in worker tasks", function()
        local status, doc, took = get(hap.port, "/details_many?mock=slow&fresh=1&n=8&concurrency=8")
        assert.equal(200, status)
        assert.is_true(doc.ok, cjson.encode(doc))
        assert.same({ "http", "http", "http", "http", "http", "http", "http", "http" }, doc.result.kinds)
        -- eight 500 ms answers side by side: about 0.5 s, far from 8 x 0.5 s
        print(string.format("\n[haproxy] details_many, 8 ids at 500 ms, concurrency 8: %.3f s", took))
        assert.is_true(took < 2, "took " .. took .. " s")
      end)
    end)

    describe("worker tasks", function()
      it("are reused: 30 calls one after another start at most one more worker", function()
        local _, before = get(hap.port, "/pool")
        for i = 1, 30 do
          local _, doc = get(hap.port, "/list")
          assert.is_true(doc.ok, "call " .. i .. ": " .. cjson.encode(doc))
        end
        local _, after = get(hap.port, "/pool")
        assert.is_true(after.result.started - before.result.started <= 1,
          cjson.encode(before.result) .. " -> " .. cjson.encode(after.result))
        assert.equal(0, after.result.queued)
      end)

      it("end once idle for worker_linger seconds", function()
        finally(function() get(hap.port, "/pool?linger=10") end)
        get(hap.port, "/pool?linger=0.2")
        local _, doc = get(hap.port, "/details_many?n=4&concurrency=4")
        assert.is_true(doc.ok, cjson.encode(doc))
        local pool
        for _ = 1, 40 do
          socket.sleep(0.05)
          pool = select(2, get(hap.port, "/pool")).result
          if pool.workers == 0 then break end
        end
        assert.same({ workers = 0, idle = 0, queued = 0 },
          { workers = pool.workers, idle = pool.idle, queued = pool.queued })
        -- and new ones start when work comes again
        local _, again = get(hap.port, "/list")
        assert.is_true(again.ok, cjson.encode(again))
      end)

      it("details_many: each request stops at its own deadline", function()
        fast:fault{ type = "hang", count = 4 }
        local _, doc, took = get(hap.port, "/details_many?fresh=1&timeout=0.5&n=4&concurrency=4")
        assert.is_true(doc.ok, cjson.encode(doc))
        assert.same({ "timeout", "timeout", "timeout", "timeout" }, doc.result.kinds)
        assert.is_true(took < 2, "timeout=0.5 took " .. took .. " s")
      end)
    end)

    -- The shared transport cases (spec/support/conformance.lua), each call
    -- made by the service inside HAProxy.
    conformance.run("haproxy", function(case, url)
      local _, doc = get(hap.port, "/conformance?segment_id=" .. helpers.url_encode(conformance.SEGMENT_ID)
        .. "&endpoint=" .. helpers.url_encode(url)
        .. "&opts=" .. helpers.url_encode(cjson.encode(conformance.options(case))), 30)
      assert(type(doc) == "table", "no JSON from haproxy: " .. tostring(doc))
      return conformance.result(doc.ok and doc.result or nil, doc.error, doc.text)
    end, { pending = {
      ["100 Continue, then the 200 in a later packet"] = "HAProxy 2.6.12's httpclient ends at a 1xx "
        .. "sent apart from the final answer (fixed upstream by 9d10be33a, 2025): timeout",
      ["header block too large: too_large, not retried"] = "HAProxy 2.6: a head over tune.bufsize is "
        .. "its own 502 page, which stands for any invalid answer: network",
      ["a chunked trailer line starting with HTTP/ is a trailer, not a new answer"] = "HAProxy 2.6's "
        .. "parser rejects that trailer as an invalid answer in about half the runs (by how the bytes "
        .. "arrive): its 502 page, network; never a misread body",
    } })

    describe("names", function()
      it("a host name that does not resolve is a network error saying so", function()
        local _, doc = get(hap.port, "/list?fresh=1&mock=unresolvable&timeout=10", 20)
        assert.is_false(doc.ok, cjson.encode(doc))
        assert.equal("network", doc.error.kind, cjson.encode(doc.error))
        assert.matches("could not resolve braze-spec.invalid", doc.error.message, 1, true)
      end)
    end)

    describe("https", function()
      it("verifies the server certificate (httpclient.ssl.ca-file) and then works", function()
        local status, doc = get(hap.port, "/list?mock=tls&fresh=1")
        assert.equal(200, status)
        assert.is_true(doc.ok, cjson.encode(doc))
        assert.equal(100, #doc.result.segments)
      end)

      it("refuses a certificate for another name: a network error", function()
        local _, doc = get(hap.port, "/list?mock=badtls&fresh=1")
        assert.is_false(doc.ok, cjson.encode(doc))
        assert.equal("network", doc.error.kind, cjson.encode(doc.error))
      end)
    end)
  end)
end)
