-- braze.transport.ngx in a real nginx (Debian's libnginx-mod-http-lua, or
-- OpenResty with NGINX=/usr/local/openresty/bin/openresty): the handlers in
-- spec/transport/nginx/handlers.lua call the API through cosockets against the mock,
-- and this spec checks their JSON from outside, that a slow Braze does not
-- block the worker, and that errors match the libcurl transport's.
--
-- Needs: nginx with the Lua module, openssl (test certificates), and
-- braze/core.so built for LuaJIT in $BRAZE_LUAJIT_BUILD (default
-- build-luajit: `cmake -S . -B build-luajit -DBRAZE_LUA=luajit`).
-- Run (.busted excludes the #nginx tag by default):
--   lua5.4 /usr/bin/busted --cpath='build/?.so' --exclude-tags= --tags=nginx spec/transport/nginx_spec.lua
-- BRAZE_KEEP_NGINX=1 keeps the temp directory (config, logs) for a look.
local braze = require("braze")
local helpers = require("spec.support.helpers")
local cjson = require("cjson")
local socket = require("socket")

local NGINX = os.getenv("NGINX") or "nginx"
local ROOT = helpers.root
if ROOT:sub(1, 1) ~= "/" then -- nginx needs absolute paths
  local p = io.popen("cd '" .. ROOT .. "' && pwd")
  ROOT = p:read("*l")
  p:close()
end
local LUAJIT_BUILD = os.getenv("BRAZE_LUAJIT_BUILD") or (ROOT .. "/build-luajit")
if LUAJIT_BUILD:sub(1, 1) ~= "/" then LUAJIT_BUILD = ROOT .. "/" .. LUAJIT_BUILD end

local tls = require("spec.support.tls_nginx")
local conformance = require("spec.support.conformance")
local sh = tls.sh

local read_file = helpers.read_file
local write_file = helpers.write_file

local free_port = tls.free_port

local load_modules = tls.load_modules

-- A CA, a certificate it signs for 127.0.0.1 and one for another name.
local function make_certs(dir)
  tls.make_ca(dir, "ca")
  tls.make_cert(dir, "good", "ca", "IP:127.0.0.1,DNS:127.0.0.1")
  tls.make_cert(dir, "bad", "ca", "DNS:not-this-host.example")
end

-- GET target from nginx; returns status, decoded JSON (or raw body), seconds.
local function get(port, target, timeout)
  local res, elapsed = helpers.request({ host = "127.0.0.1", port = port }, target,
    { timeout = timeout or 10 })
  assert(res, "request to nginx failed: " .. tostring(elapsed))
  local ok, doc = pcall(cjson.decode, res.body)
  return res.status, ok and doc or res.body, elapsed
end


local stop_nginx = tls.stop_nginx

-- The resident set of a process and its peak so far, in kB (Linux /proc).
-- reset_peak first sets the peak back to the current RSS (clear_refs "5"),
-- so one test's peak does not hide the next one's.
local function memory_kb(pid, reset_peak)
  if reset_peak then
    local f = io.open("/proc/" .. pid .. "/clear_refs", "w")
    if f then
      f:write("5")
      f:close()
    end
  end
  local status = assert(read_file("/proc/" .. pid .. "/status"), "no /proc/" .. pid .. "/status")
  return {
    rss = tonumber(status:match("VmRSS:%s*(%d+) kB")),
    peak = tonumber(status:match("VmHWM:%s*(%d+) kB")),
  }
end

-- Wait until GET /path on port answers 200; false after 5 s.
local function wait_up(port, path)
  for _ = 1, 100 do
    local res = helpers.request({ host = "127.0.0.1", port = port }, path, { timeout = 1 })
    if res and res.status == 200 then return true end
    socket.sleep(0.05)
  end
  return false
end

describe("#nginx braze.transport.ngx in nginx", function()
  local tmp, port, fast, slow, segments, trickle


  setup(function()
    assert(read_file(LUAJIT_BUILD .. "/braze/core.so"),
      "no " .. LUAJIT_BUILD .. "/braze/core.so: build it with "
      .. "cmake -S . -B build-luajit -DBRAZE_LUA=luajit && cmake --build build-luajit")
    local p = io.popen("mktemp -d /tmp/braze-nginx.XXXXXX")
    tmp = p:read("*l")
    p:close()
    make_certs(tmp)
    fast = helpers.start_mock{ segments = 250 }
    slow = helpers.start_mock{ segments = 5, latency = 500 }
    trickle = conformance.start_trickle_server()
    local template = assert(read_file(ROOT .. "/spec/transport/nginx/nginx.conf.in"))
    -- A port found free can be taken before nginx binds it: try a few times.
    for attempt = 1, 3 do
      port = free_port()
      local vars = {
        LOAD_MODULES = load_modules(), PREFIX = tmp, ROOT = ROOT, PORT = port,
        TLS_PORT = free_port(), BADTLS_PORT = free_port(),
        CPATH = LUAJIT_BUILD .. "/?.so", API_KEY = fast.api_key,
        FAST_URL = fast.url, SLOW_URL = slow.url, TRICKLE_URL = trickle.url,
      }
      local conf = template:gsub("%${([%w_]+)}", function(k)
        return assert(vars[k], "no value for ${" .. k .. "}")
      end)
      write_file(tmp .. "/nginx.conf", conf)
      local cmd = string.format("%s -p '%s' -c '%s/nginx.conf' -e '%s/error.log' >'%s/start.log' 2>&1",
        NGINX, tmp, tmp, tmp, tmp)
      if sh(cmd) then break end
      assert(attempt < 3, "nginx did not start:\n" .. tostring(read_file(tmp .. "/start.log"))
        .. tostring(read_file(tmp .. "/error.log")))
    end
    assert(wait_up(port, "/ping"), "nginx does not answer /ping:\n"
      .. tostring(read_file(tmp .. "/error.log")))
    local status, doc = get(port, "/list")
    assert(status == 200 and doc.ok, "list through nginx failed: " .. cjson.encode(doc))
    segments = doc.result.segments
  end)

  teardown(function()
    stop_nginx(tmp and tmp .. "/nginx.pid")
    if fast then fast:stop() end
    if slow then slow:stop() end
    if trickle then trickle.stop() end
    if tmp and os.getenv("BRAZE_KEEP_NGINX") == nil then sh("rm -rf '" .. tmp .. "'") end
  end)

  before_each(function() fast:reset() end)

  -- The error log must not show Lua errors from the handlers.
  after_each(function()
    local log = read_file(tmp .. "/error.log") or ""
    assert.is_nil(log:match("[^\n]*lua entry thread aborted[^\n]*"))
    assert.is_nil(log:match("[^\n]*runtime error[^\n]*"))
  end)

  describe("handlers", function()
    it("list gives the same page as the libcurl transport", function()
      local status, doc = get(port, "/list?page=1")
      assert.equal(200, status)
      assert.is_true(doc.ok)
      local direct = assert(braze.new{ api_key = fast.api_key, endpoint = fast.url }:list{ page = 1 })
      assert.equal("success", doc.result.message)
      assert.equal(#direct.segments, #doc.result.segments)
      for i, s in ipairs(direct.segments) do
        assert.equal(s.id, doc.result.segments[i].id)
        assert.equal(s.name, doc.result.segments[i].name) -- quotes, newlines, UTF-8
      end
    end)

    it("sends the key as a Bearer token, the user agent and keep-alive", function()
      get(port, "/list")
      local req = fast:requests()[1]
      assert.equal("Bearer " .. fast.api_key, req.authorization)
      assert.matches("^lua%-braze/", req.user_agent)
    end)

    it("details returns the segment's fields, JSON null as null", function()
      local status, doc = get(port, "/details?segment_id=" .. helpers.url_encode(segments[5].id))
      assert.equal(200, status)
      assert.is_true(doc.ok)
      assert.equal("success", doc.result.message)
      assert.equal(segments[5].name, doc.result.name)
      assert.equal(cjson.null, doc.result.description)
      assert.is_table(doc.result.teams)
    end)

    it("data_series returns exact sizes (segment 1's exceed 2^32)", function()
      local status, doc = get(port, "/series?length=5&ending_at=2024-03-01T00:00:00Z&segment_id="
        .. helpers.url_encode(segments[1].id))
      assert.equal(200, status)
      assert.is_true(doc.ok)
      local direct = assert(braze.new{ api_key = fast.api_key, endpoint = fast.url }:data_series{
        segment_id = segments[1].id, length = 5, ending_at = "2024-03-01T00:00:00Z" })
      assert.equal(5, #doc.result.data)
      for i, point in ipairs(direct.data) do
        assert.equal(point.time, doc.result.data[i].time)
        assert.equal(point.size, doc.result.data[i].size)
        assert.is_true(point.size > 2 ^ 32)
      end
    end)

    it("each visits all 250 segments over 3 pages", function()
      local status, doc = get(port, "/each")
      assert.equal(200, status)
      assert.is_true(doc.ok)
      assert.same({ count = 250, pages = 3, first = segments[1].id }, {
        count = doc.result.count, pages = doc.result.pages, first = doc.result.first })
      assert.equal(3, fast:stats().by_path["/segments/list"])
    end)

    it("each raises the error object when a page fails (caught by the handler)", function()
      fast:fault{ type = "503", path = "/segments/list" }
      local _, doc = get(port, "/each")
      assert.is_false(doc.ok)
      assert.equal("http", doc.error.kind)
      assert.equal(503, doc.error.status)
    end)

    it("reuses pooled connections across requests", function()
      for _ = 1, 5 do get(port, "/list") end
      local stats = fast:stats()
      assert.equal(5, stats.requests)
      -- control requests open their own connections; the API ones share one
      assert.is_true(stats.connections <= 3, "connections: " .. stats.connections)
    end)
  end)

  describe("does not block the worker", function()
    it("20 requests to a 500 ms mock finish together while /ping keeps answering", function()
      local targets = {}
      for i = 1, 20 do
        targets[i] = (i % 2 == 0) and "/list?mock=slow" or "/details?mock=slow&fresh=1&segment_id=x" .. i
      end
      local results, probes, total = helpers.concurrent(port, targets, "/ping", 10)
      local slowest = 0
      for i, r in ipairs(results) do
        assert.equal(200, r.status, "request " .. i)
        assert.is_table(r.body, "request " .. i)
        if i % 2 == 0 then
          assert.is_true(r.body.ok, "request " .. i .. ": " .. cjson.encode(r.body))
          assert.equal(5, #r.body.result.segments)
        else
          -- unknown ids: a 400 from the mock, after its 500 ms
          assert.equal("http", r.body.error.kind)
        end
        slowest = math.max(slowest, r.done)
      end
      print(string.format("\n[nginx] 20 concurrent requests at 500 ms latency: %.3f s total, "
        .. "slowest %.3f s; %d /ping probes during them, slowest %.1f ms", total, slowest,
        #probes, (function()
          local m = 0
          for _, p in ipairs(probes) do m = math.max(m, p.took) end
          return m * 1000
        end)()))
      assert.is_true(total < 3, "took " .. total .. " s")
      assert.is_true(slowest >= 0.45, "faster than the mock's latency: " .. slowest)
      assert.is_true(#probes >= 3, "probes: " .. #probes)
      for _, p in ipairs(probes) do
        assert.equal(200, p.status)
        assert.is_true(p.took < 0.25, string.format("/ping at %.2f s took %.3f s", p.at, p.took))
        -- answered while the slow requests were still outstanding
      end
      assert.is_true(probes[1].at < 0.4)
    end)
  end)

  describe("details_many", function()
    it("runs its requests concurrently in light threads", function()
      local status, body, took = get(port, "/details_many?mock=slow&fresh=1&n=8&concurrency=8")
      assert.equal(200, status)
      assert.is_true(body.ok, cjson.encode(body))
      assert.equal(8, #body.result.kinds)
      for _, kind in ipairs(body.result.kinds) do assert.equal("http", kind) end
      -- eight 500 ms answers, side by side: about 0.5 s, far from 8 x 0.5 s
      assert.is_true(took < 2, "took " .. took .. " s")
    end)
  end)

  describe("the pipelined each", function()
    it("gives all 250 segments in list order, exactly once, with details and series", function()
      local _, doc = get(port, "/pipeline?fresh=1&details=1&series=5&concurrency=16", 60)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.is_nil(doc.result.error, cjson.encode(doc.result.error))
      local plain = {}
      for seg in braze.new{ api_key = fast.api_key, endpoint = fast.url }:each() do
        plain[#plain + 1] = seg.id
      end
      assert.same(plain, doc.result.ids)
      assert.equal(250, doc.result.details)
      assert.equal(250, doc.result.series)
      local stats = fast:stats().by_path
      assert.equal(250, stats["/segments/details"])
      assert.equal(250, stats["/segments/data_series"])
    end)

    it("runs its calls concurrently in light threads, while pages are listed ahead", function()
      -- slow: 5 segments, 500 ms a request: list, then 5 details and 5 series side by side
      local _, doc, took = get(port, "/pipeline?mock=slow&fresh=1&details=1&series=3&concurrency=16", 30)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.equal(5, #doc.result.ids)
      assert.equal(5, doc.result.series)
      -- one list page, then the ten per-segment calls at once: about 1 s, far from 11 x 0.5 s
      assert.is_true(took < 3, "took " .. took .. " s")
    end)

    it("survives a loop body that yields (ngx.sleep) while the batch's light threads run", function()
      -- lua-nginx-module 0.10.23 (Debian 12) ended it with "already waited or killed"
      local _, doc = get(port, "/pipeline?fresh=1&details=1&series=5&concurrency=16&sleep=0.001", 60)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.is_nil(doc.result.error, cjson.encode(doc.result.error))
      assert.equal(250, #doc.result.ids)
      assert.equal(250, doc.result.details)
      assert.equal(250, doc.result.series)
    end)

    it("raises at the page whose list call failed, with err.page, after the pages before it", function()
      fast:fault{ type = "status", code = 400, message = "no", path = "/segments/list", count = 1 }
      -- concurrency 1: page 0 goes first even when the worker's window is known
      local _, doc = get(port, "/pipeline?fresh=1&details=1&concurrency=1", 60)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.equal("http", doc.result.error.kind)
      assert.equal(0, doc.result.error.page)
      assert.equal(0, #doc.result.ids)
    end)
  end)

  describe("the transport's batch", function()
    local function statuses_of(doc)
      local list = {}
      for tag, st in pairs(doc.result.statuses) do list[#list + 1] = tag .. "=" .. tostring(st) end
      table.sort(list)
      return table.concat(list, " ")
    end

    it("the request sleeps while its threads finish and between submit and poll: every outcome "
      .. "comes back once", function()
      -- 4 requests of 500 ms; poll for the first, sleep 0.2 s (the other 3
      -- finish meanwhile), submit 4 more, sleep 0.2 s, poll the rest
      local _, doc, took = get(port, "/batch?mock=slow&n=4&sleep=0.2", 30)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.is_true(doc.result.semaphore) -- Debian 12's lua-resty-core has it
      -- poll(0.05), poll(0) with all 4 in flight: nothing, after about 0.05 s
      assert.equal(0, doc.result.early)
      assert.is_true(doc.result.early_seconds >= 0.04 and doc.result.early_seconds < 0.3,
        "the timed-out polls took " .. doc.result.early_seconds .. " s")
      assert.equal(8, doc.result.got, statuses_of(doc))
      for i = 1, 8 do assert.equal(400, doc.result.statuses["t" .. i], statuses_of(doc)) end
      assert.equal(0, doc.result.empty)
      -- two rounds of 500 ms with 0.4 s of sleeps: about 1.2 s, far from 8 x 0.5 s
      assert.is_true(took < 3, "took " .. took .. " s")
    end)

    it("without lua-resty-core's ngx.semaphore (poll sleeps in slices): the same", function()
      local _, doc, took = get(port, "/batch?mock=slow&n=4&sleep=0.2&nosema=1", 30)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.is_false(doc.result.semaphore)
      assert.equal(0, doc.result.early)
      assert.is_true(doc.result.early_seconds >= 0.04 and doc.result.early_seconds < 0.3,
        "the timed-out polls took " .. doc.result.early_seconds .. " s")
      assert.equal(8, doc.result.got, statuses_of(doc))
      for i = 1, 8 do assert.equal(400, doc.result.statuses["t" .. i], statuses_of(doc)) end
      assert.is_true(took < 3, "took " .. took .. " s")
    end)

    it("reaps the light threads that ended: 400 more calls in one batch leave its Lua memory flat", function()
      local _, doc = get(port, "/batchmem?n=400", 60)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.equal(800, doc.result.got)
      -- an ended thread left unreaped keeps its coroutine (some 600 bytes) until the request ends:
      -- 250 KB here
      local growth = doc.result.second - doc.result.first
      assert.is_true(growth < 100, string.format("grew %.0f KB over 400 calls", growth))
    end)

    it("close drops the requests in flight: their outcomes never come, the request goes on", function()
      local _, doc, took = get(port, "/batch?mock=slow&n=4&sleep=0.2&close=1", 30)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.is_true(doc.result.got >= 1 and doc.result.got <= 4, statuses_of(doc))
      for i = 5, 8 do assert.is_nil(doc.result.statuses["t" .. i], statuses_of(doc)) end
      assert.equal(0, doc.result.empty)
      assert.is_true(took < 3, "took " .. took .. " s")
    end)
  end)

  -- The shared transport cases (spec/support/conformance.lua), each call
  -- made by a handler inside nginx.
  conformance.run("nginx", function(case, url)
    local _, doc = get(port, "/conformance?segment_id=" .. helpers.url_encode(conformance.SEGMENT_ID)
      .. "&endpoint=" .. helpers.url_encode(url)
      .. "&opts=" .. helpers.url_encode(cjson.encode(conformance.options(case))), 30)
    assert(type(doc) == "table", "no JSON from nginx: " .. tostring(doc))
    return conformance.result(doc.ok and doc.result or nil, doc.error, doc.text)
  end)

  describe("body framing", function()
    for _, framing in ipairs({ "chunked", "close" }) do
      it("reads a body framed by " .. framing .. " like the libcurl transport", function()
        fast:fault{ type = "nolength_huge", bytes = 100000, framing = framing }
        local _, doc = get(port, "/list?fresh=1")
        assert.is_true(doc.ok, cjson.encode(doc))
        fast:fault{ type = "nolength_huge", bytes = 100000, framing = framing }
        local direct = assert(braze.new{ api_key = fast.api_key, endpoint = fast.url }:list())
        assert.equal(#direct.segments, #doc.result.segments)
        assert.equal(direct.segments[#direct.segments].id, doc.result.segments[#direct.segments].id)
      end)
    end
  end)

  -- spec/support/trickle_server.lua's misbehaviours (its path prefix `mode`).
  local function misbehaving(mode, query)
    return get(port, "/list?mock=trickle&fresh=1&mode=" .. mode .. (query or ""), 30)
  end
  local function worker_pid()
    return assert(tonumber(read_file(tmp .. "/nginx.pid"):match("%d+")), "no nginx pid")
  end
  local MB = 1024 -- kB

  describe("every line read is bounded by the header limit", function()
    for _, case in ipairs({
      { mode = "endless_status", what = "status line" },
      { mode = "endless_header", what = "header line" },
      { mode = "endless_chunk", what = "chunk-size line" },
    }) do
      it("an endless " .. case.what .. " fails at once as too_large, not retried, "
        .. "and the worker stays small", function()
        local pid = worker_pid()
        local before = memory_kb(pid, true)
        local _, doc, took = misbehaving(case.mode, "&timeout=10&max_retries=2")
        local after = memory_kb(pid)
        assert.is_false(doc.ok, cjson.encode(doc))
        assert.equal("too_large", doc.error.kind, cjson.encode(doc.error))
        assert.matches(case.what .. " longer than 65536 bytes", doc.error.message, 1, true)
        assert.equal(1, doc.error.attempts)
        assert.is_true(took < 3, "took " .. took .. " s")
        assert.is_true(after.peak - before.peak < 64 * MB, string.format(
          "worker peak RSS grew by %.0f MB (RSS %d -> %d kB)", (after.peak - before.peak) / MB,
          before.rss, after.rss))
      end)
    end

    it("more than 200 header lines are too_large", function()
      local _, doc = misbehaving("many_headers", "&timeout=10")
      assert.is_false(doc.ok, cjson.encode(doc))
      assert.equal("too_large", doc.error.kind, cjson.encode(doc.error))
      assert.matches("more than 200 response header lines", doc.error.message, 1, true)
    end)

    it("details_many: every light thread stops at the limit, the worker stays small", function()
      local pid = worker_pid()
      local before = memory_kb(pid, true)
      local _, doc, took = get(port, "/details_many?mock=trickle&mode=endless_header&fresh=1"
        .. "&timeout=10&n=4&concurrency=4", 30)
      local after = memory_kb(pid)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.same({ "too_large", "too_large", "too_large", "too_large" }, doc.result.kinds)
      assert.is_true(took < 3, "took " .. took .. " s")
      assert.is_true(after.peak - before.peak < 64 * MB, string.format(
        "worker peak RSS grew by %.0f MB", (after.peak - before.peak) / MB))
    end)
  end)

  describe("timeout is a deadline for the whole attempt", function()
    for _, case in ipairs({
      { mode = "trickle_header", what = "a header line" },
      { mode = "trickle_body", what = "a body with a Content-Length" },
      { mode = "trickle_chunked", what = "a chunked body" },
    }) do
      it("a server trickling " .. case.what .. " (200 bytes / 100 ms) ends as a timeout", function()
        local _, doc, took = misbehaving(case.mode, "&timeout=1")
        assert.is_false(doc.ok, cjson.encode(doc))
        assert.equal("timeout", doc.error.kind, cjson.encode(doc.error))
        assert.is_true(took < 2.5, "timeout=1 took " .. took .. " s")
      end)
    end

    it("details_many: each light thread stops at its own deadline", function()
      local _, doc, took = get(port, "/details_many?mock=trickle&mode=trickle_body&fresh=1"
        .. "&timeout=1&n=4&concurrency=4", 30)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.same({ "timeout", "timeout", "timeout", "timeout" }, doc.result.kinds)
      assert.is_true(took < 2.5, "timeout=1 took " .. took .. " s")
    end)
  end)

  describe("a body of a million 1-byte chunks", function()
    it("takes worker memory in proportion to its bytes, and the worker serves others meanwhile",
      function()
      local pid = worker_pid()
      collectgarbage()
      local before = memory_kb(pid, true)
      local results, probes, total = helpers.concurrent(port,
        { "/list?mock=trickle&fresh=1&mode=one_byte_chunks&timeout=60" }, "/ping", 60)
      local after = memory_kb(pid)
      local doc = results[1].body
      assert.is_table(doc, tostring(doc):sub(1, 200))
      assert.is_true(doc.ok, cjson.encode(doc.error))
      assert.equal(4 * 1024 * 1024 - 62, #doc.result.segments[1].name) -- the document is 4 MiB
      local worst = 0
      for _, p in ipairs(probes) do worst = math.max(worst, p.took) end
      print(string.format("\n[nginx] 4 MiB body in 1-byte chunks: %.2f s, worker peak RSS +%.1f MB, "
        .. "%d /ping probes meanwhile, slowest %.1f ms", total, (after.peak - before.peak) / MB,
        #probes, worst * 1000))
      -- 4 MiB of body: the old reader kept a table entry per chunk (about
      -- 10x the bytes) and never let the worker go while bytes were waiting.
      assert.is_true(after.peak - before.peak < 40 * MB, string.format(
        "worker peak RSS grew by %.0f MB for a 4 MiB body", (after.peak - before.peak) / MB))
      assert.is_true(#probes >= 3, "probes: " .. #probes)
      for _, p in ipairs(probes) do
        assert.equal(200, p.status)
        assert.is_true(p.took < 0.25, string.format("/ping at %.2f s took %.3f s", p.at, p.took))
      end
    end)
  end)

  describe("https", function()
    it("verifies the server certificate and then works", function()
      local status, doc = get(port, "/list?mock=tls&fresh=1")
      assert.equal(200, status)
      assert.is_true(doc.ok, cjson.encode(doc))
      assert.equal(100, #doc.result.segments)
    end)

    it("refuses a certificate for another name: a network error", function()
      local _, doc = get(port, "/list?mock=badtls&fresh=1")
      assert.is_false(doc.ok)
      assert.equal("network", doc.error.kind)
      assert.matches("TLS handshake", doc.error.message)
    end)
  end)
end)
