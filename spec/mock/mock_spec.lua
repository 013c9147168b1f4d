-- Specs for braze-mock (bin/braze-mock, mock/lua/braze_mock/): the fake Braze
-- every client spec relies on. Talks to a real mock process over raw
-- sockets; cjson is the independent oracle for the JSON the mock writes.

local socket = require("socket")
local cjson = require("cjson")
local helpers = require("spec.support.helpers")
local braze_mock = require("braze_mock") -- only its data functions, as oracle

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local ISO_MS = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

local function decode(resp) return cjson.decode(resp.body) end

-- A connected raw socket to the mock.
local function connect(mock, timeout)
  local sock = socket.tcp()
  sock:settimeout(timeout or helpers.timeout)
  assert(sock:connect(mock.host, mock.port))
  return sock
end

-- Run bin/braze-mock with these arguments; all it prints, then rc=<exit code>.
local function run_cli(args)
  local p = io.popen(helpers.lua .. " " .. helpers.root .. "/bin/braze-mock " .. args .. " 2>&1; echo rc=$?")
  local out = p:read("*a")
  p:close()
  return out
end

local function raw_get(target, key, extra)
  return "GET " .. target .. " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. key
    .. "\r\n" .. (extra or "") .. "\r\n"
end

-- All ids of a listing, page by page; also the size of each page.
local function list_all(mock, dir)
  local ids, sizes = {}, {}
  for page = 0, 20 do
    local resp = assert(mock:api("/segments/list?page=" .. page .. "&sort_direction=" .. dir))
    assert.are.equal(200, resp.status)
    local segs = decode(resp).segments
    sizes[#sizes + 1] = #segs
    for _, s in ipairs(segs) do ids[#ids + 1] = s.id end
    if #segs < 100 then
      return ids, sizes, resp.body
    end
  end
  error("listing never ended")
end

describe("braze-mock", function()
  local mock
  setup(function() mock = helpers.start_mock{ segments = 250 } end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  describe("encode_json", function()
    local enc = braze_mock.encode_json
    it("writes integers without a fraction and keeps big ones exact", function()
      assert.are.equal("[1,-2,5000000000,9007199254740991,0.5]", enc({ 1, -2, 5e9, 2^53 - 1, 0.5 }))
    end)
    it("escapes quotes, backslashes and control characters, not UTF-8", function()
      local s = 'q"b\\n\n\r\t\1\0\31 Café ☕'
      local text = enc(s)
      assert.are.equal('"q\\"b\\\\n\\n\\r\\t\\u0001\\u0000\\u001f Café ☕"', text)
      assert.are.equal(s, cjson.decode(text))
    end)
    it("keeps object key order and tells empty arrays from empty objects", function()
      local o = braze_mock.object("z", 1, "a", braze_mock.null, "m", braze_mock.array())
      assert.are.equal('{"z":1,"a":null,"m":[]}', enc(o))
      assert.are.equal('{"b":true,"c":{}}', enc({ c = {}, b = true }))
    end)
  end)

  describe("start-up", function()
    it("prints one line with its loopback URL and a live pid", function()
      assert.matches("^braze%-mock listening on http://127%.0%.0%.1:%d+ pid %d+$", mock.line)
      assert.is_true(mock.port > 0)
      assert.is_true(helpers.alive(mock.pid))
    end)

    it("refuses a non-loopback host and exits non-zero", function()
      local out = run_cli("--host 0.0.0.0")
      assert.matches("loopback", out)
      assert.matches("rc=1", out)
    end)

    it("finds its module without LUA_PATH", function()
      local p = io.popen("env -u LUA_PATH " .. helpers.lua .. " " .. helpers.root .. "/bin/braze-mock --help 2>&1")
      local out = p:read("*a")
      p:close()
      assert.matches("Usage: braze%-mock", out)
      assert.matches("%-%-rate%-limit", out)
    end)
  end)

  describe("/segments/list", function()
    it("answers Braze's shape with message last and the standard headers", function()
      local before = os.time()
      local resp = assert(mock:api("/segments/list"))
      assert.are.equal(200, resp.status)
      assert.matches('^{"segments":%[', resp.body)
      assert.matches('%],"message":"success"}$', resp.body)
      assert.are.equal("application/json; charset=utf-8", resp.headers["content-type"])
      assert.are.equal(#resp.body, tonumber(resp.headers["content-length"]))
      assert.are.equal("250000", resp.headers["x-ratelimit-limit"])
      assert.are.equal("249999", resp.headers["x-ratelimit-remaining"])
      local reset = tonumber(resp.headers["x-ratelimit-reset"])
      assert.are.equal(0, reset % 3600) -- the next full UTC hour
      assert.is_true(reset > before and reset <= os.time() + 3600)
      assert.matches("^mock%-%d+%-%x+$", resp.headers["x-request-id"])
      assert.are.equal("close", resp.headers["connection"]) -- helpers.request asks for it
      local body = decode(resp)
      assert.are.equal("success", body.message)
      assert.are.equal(100, #body.segments)
      for _, s in ipairs(body.segments) do
        assert.matches(UUID, s.id)
        assert.are.equal("string", type(s.name))
        assert.are.equal("boolean", type(s.analytics_tracking_enabled))
        assert.are.equal("table", type(s.tags))
        assert.is_true(#s.tags <= 3)
      end
    end)

    it("has names with commas, quotes, newlines and UTF-8, and varied fields", function()
      local names, tracking, tag_counts = {}, {}, {}
      for _, s in ipairs(decode(assert(mock:api("/segments/list"))).segments) do
        names[#names + 1] = s.name
        tracking[s.analytics_tracking_enabled] = true
        tag_counts[#s.tags] = true
      end
      local all = table.concat(names, "\0")
      assert.truthy(all:find(",", 1, true))
      assert.truthy(all:find('"', 1, true))
      assert.truthy(all:find("\n", 1, true))
      assert.truthy(all:find("Café ☕ fans", 1, true))
      assert.is_true(tracking[true] and tracking[false])
      assert.is_true(tag_counts[0] and tag_counts[3])
    end)

    it("gives every response its own X-Request-Id", function()
      local seen = {}
      for _ = 1, 5 do
        local id = assert(mock:api("/segments/list?page=2")).headers["x-request-id"]
        assert.is_nil(seen[id])
        seen[id] = true
      end
    end)

    for _, bad in ipairs({ "page=-1", "page=abc", "page=1.5", "page=", "sort_direction=up", "sort_direction=ASCX" }) do
      it("rejects " .. bad .. " with 400 and an errors list", function()
        local resp = assert(mock:api("/segments/list?" .. bad))
        assert.are.equal(400, resp.status)
        local body = decode(resp)
        assert.matches(bad:match("^[^=]+"), body.message)
        assert.are.equal(body.message, body.errors[1])
      end)
    end
  end)

  describe("paging", function()
    local expected_sizes = {
      [0] = { 0 }, [1] = { 1 }, [99] = { 99 }, [100] = { 100, 0 },
      [101] = { 100, 1 }, [250] = { 100, 100, 50 },
    }
    for _, n in ipairs({ 0, 1, 99, 100, 101, 250 }) do
      it("returns all " .. n .. " segments exactly once, asc and desc", function()
        local m = helpers.start_mock{ segments = n }
        finally(function() m:stop() end)
        local asc, asc_sizes, last_body = list_all(m, "asc")
        local desc, desc_sizes = list_all(m, "desc")
        assert.are.same(expected_sizes[n], asc_sizes)
        assert.are.same(expected_sizes[n], desc_sizes)
        local want, seen = {}, {}
        for i = 1, n do want[i] = braze_mock.segment_id(i) end
        assert.are.same(want, asc) -- oldest first; ids do not depend on n
        for k, id in ipairs(desc) do
          assert.are.equal(want[n - k + 1], id)
          assert.is_nil(seen[id])
          seen[id] = true
        end
        if #asc % 100 == 0 then
          assert.are.equal('{"segments":[],"message":"success"}', last_body)
        end
      end)
    end

    it("generates unique uuid-shaped ids", function()
      local seen = {}
      for i = 1, 20000 do
        local id = braze_mock.segment_id(i)
        assert.matches(UUID, id)
        assert.is_nil(seen[id])
        seen[id] = true
      end
    end)
  end)

  describe("/segments/details", function()
    local function details(i)
      return assert(mock:api("/segments/details?segment_id=" .. braze_mock.segment_id(i)))
    end

    it("answers Braze's shape", function()
      local resp = details(1)
      assert.are.equal(200, resp.status)
      assert.matches('^{"message":"success","created_at":', resp.body)
      assert.matches('"tags":%[%]', resp.body) -- an empty array, not {}
      local body = decode(resp)
      assert.matches(ISO_MS, body.created_at)
      assert.matches(ISO_MS, body.updated_at)
      assert.is_true(body.updated_at > body.created_at)
      assert.are.equal("Lapsed Users - 7 days", body.name)
      assert.are.equal("string", type(body.description))
      assert.are.equal("string", type(body.text_description))
      assert.are.equal("table", type(body.teams))
    end)

    it("has a null description for some segments", function()
      assert.are.equal(cjson.null, decode(details(5)).description)
      assert.matches('"description":null', details(10).body)
    end)

    it("agrees with the listing and orders creation times", function()
      local listed = decode(assert(mock:api("/segments/list"))).segments
      local previous = ""
      for i = 1, 5 do
        local body = decode(details(i))
        assert.are.equal(listed[i].name, body.name)
        assert.are.same(listed[i].tags, body.tags)
        assert.is_true(body.created_at > previous)
        previous = body.created_at
      end
    end)

    it("rejects a missing, unknown or malformed segment_id with 400", function()
      local missing = assert(mock:api("/segments/details"))
      assert.are.equal(400, missing.status)
      assert.are.equal("segment_id is required", decode(missing).message)
      for _, id in ipairs({ braze_mock.segment_id(251), "nope", braze_mock.segment_id(1):upper() }) do
        local resp = assert(mock:api("/segments/details?segment_id=" .. id))
        assert.are.equal(400, resp.status)
        assert.matches("^Invalid segment_id", decode(resp).message)
      end
    end)
  end)

  describe("/segments/data_series", function()
    local id1 = braze_mock.segment_id(1)
    local function series(query)
      return assert(mock:api("/segments/data_series?" .. query))
    end

    it("returns `length` days ending on ending_at, oldest first", function()
      local resp = series("segment_id=" .. braze_mock.segment_id(7) .. "&length=7&ending_at=2024-03-10")
      assert.are.equal(200, resp.status)
      assert.matches('^{"message":"success","data":%[', resp.body)
      local data = decode(resp).data
      assert.are.equal(7, #data)
      for k, entry in ipairs(data) do
        assert.are.equal(string.format("2024-03-%02d", 3 + k), entry.time)
        assert.are.equal(math.floor(entry.size), entry.size)
        assert.is_true(entry.size > 0)
      end
    end)

    it("keeps segment 1's sizes above 2^32, exact in the JSON text", function()
      local resp = series("segment_id=" .. id1 .. "&length=3&ending_at=2024-01-31T10:00:00Z")
      local day = 1706659200 / 86400 - 2 -- 2024-01-29, in days since 1970
      local count = 0
      for digits in resp.body:gmatch('"size":(%d+)') do
        local n = tonumber(digits) -- exact: below 2^53
        assert.is_true(n > 4294967296)
        assert.are.equal(braze_mock.series_size(1, day + count), n)
        count = count + 1
      end
      assert.are.equal(3, count)
    end)

    local cases = {
      { "2024-03-10T12:00:00Z", "2024-03-10" },
      { "2024-03-10T12:00:00.123Z", "2024-03-10" },
      { "2024-03-10T23:30:00-05:00", "2024-03-11" }, -- UTC day of the instant
      { "2024-03-10T01:00:00+02:00", "2024-03-09" },
      { "2024-02-29", "2024-02-29" },
    }
    for _, c in ipairs(cases) do
      it("ends on " .. c[2] .. " for ending_at=" .. c[1], function()
        local data = decode(series("segment_id=" .. id1 .. "&length=2&ending_at=" .. helpers.url_encode(c[1]))).data
        assert.are.equal(2, #data)
        assert.are.equal(c[2], data[2].time)
      end)
    end

    it("defaults ending_at to today (UTC)", function()
      local data = decode(series("segment_id=" .. id1 .. "&length=1")).data
      local today, yesterday = os.date("!%Y-%m-%d"), os.date("!%Y-%m-%d", os.time() - 86400)
      assert.is_true(data[1].time == today or data[1].time == yesterday)
    end)

    local bad = {
      { "length=7", "segment_id is required" },
      { "segment_id=" .. id1, "length is required" },
      { "segment_id=" .. id1 .. "&length=0", "length must be" },
      { "segment_id=" .. id1 .. "&length=101", "length must be" },
      { "segment_id=" .. id1 .. "&length=1.5", "length must be" },
      { "segment_id=" .. id1 .. "&length=abc", "length must be" },
      { "segment_id=" .. id1 .. "&length=1&ending_at=2024-13-01", "ending_at" },
      { "segment_id=" .. id1 .. "&length=1&ending_at=2024-02-30", "ending_at" },
      { "segment_id=" .. id1 .. "&length=1&ending_at=yesterday", "ending_at" },
      { "segment_id=" .. id1 .. "&length=1&ending_at=2024-03-10T25:00:00Z", "ending_at" },
      { "segment_id=nope&length=1", "Invalid segment_id" },
    }
    for _, b in ipairs(bad) do
      it("rejects " .. b[1] .. " with 400", function()
        local resp = series(b[1])
        assert.are.equal(400, resp.status)
        local body = decode(resp)
        assert.matches(b[2], body.message, 1, true)
        assert.are.equal(body.message, body.errors[1])
      end)
    end

    it("lists every problem in errors", function()
      local body = decode(series("length=500&ending_at=never"))
      assert.are.equal(3, #body.errors)
    end)
  end)

  describe("authentication", function()
    local function assert_empty_rate_headers(resp)
      local present = {}
      for _, h in ipairs(resp.header_list) do
        if h[1]:lower():find("^x%-ratelimit%-") then
          assert.are.equal("", h[2])
          present[h[1]:lower()] = true
        end
      end
      assert.is_true(present["x-ratelimit-limit"] and present["x-ratelimit-remaining"]
        and present["x-ratelimit-reset"])
    end

    it("echoes a wrong key in a 401 with empty rate-limit headers", function()
      local resp = assert(mock:api("/segments/list", { auth = "wrong-key" }))
      assert.are.equal(401, resp.status)
      assert.are.equal('{"message":"Invalid API key: wrong-key"}', resp.body)
      assert_empty_rate_headers(resp)
    end)

    it("answers 401 with an empty key when there is no Authorization", function()
      local resp = assert(mock:api("/segments/details?segment_id=x", { auth = false }))
      assert.are.equal(401, resp.status)
      assert.are.equal("Invalid API key: ", decode(resp).message)
      assert_empty_rate_headers(resp)
    end)
  end)

  describe("routing", function()
    it("answers unknown paths with 404 Invalid URL", function()
      for _, path in ipairs({ "/", "/segments/nope", "/segments/list/", "/_mock/nope" }) do
        local resp = assert(mock:api(path))
        assert.are.equal(404, resp.status)
        assert.are.equal("Invalid URL", decode(resp).message)
      end
    end)

    it("answers non-GET methods with 405 and reads their body", function()
      local resp = assert(mock:api("/segments/list", {
        method = "POST", headers = { ["Content-Length"] = "5" }, body = "hello",
      }))
      assert.are.equal(405, resp.status)
      assert.are.equal("GET", resp.headers["allow"])
      assert.matches("GET", decode(resp).message)
    end)
  end)

  describe("query strings", function()
    it("percent-decodes every byte and logs the query byte-exact", function()
      local weird = "a&b=c#d?e%f/g h\"i'j\r\nk Café ☕\0z"
      local raw = "segment_id=" .. helpers.url_encode(weird)
      local resp = assert(mock:api("/segments/details?" .. raw))
      assert.are.equal(400, resp.status)
      local log = mock:requests()
      assert.are.equal(1, #log)
      assert.are.equal(weird, log[1].query.segment_id)
      assert.are.equal(raw, log[1].raw_query)
      assert.are.equal("/segments/details", log[1].path)
    end)

    it("treats + as a space, keeps bad escapes and lets the last key win", function()
      assert(mock:api("/segments/list?x=a+b%2Bc&y=100%zz&page=5&page=0"))
      local q = mock:requests()[1].query
      assert.are.equal("a b+c", q.x)
      assert.are.equal("100%zz", q.y)
      assert.are.equal("0", q.page)
    end)
  end)

  describe("HTTP/1.1", function()
    it("serves several requests on one keep-alive connection", function()
      local sock = connect(mock)
      finally(function() sock:close() end)
      for page = 0, 1 do
        assert(sock:send(raw_get("/segments/list?page=" .. page, mock.api_key)))
        local resp = assert(helpers.read_response(sock))
        assert.are.equal(200, resp.status)
        assert.are.equal("keep-alive", resp.headers["connection"])
        assert.are.equal(100, #decode(resp).segments)
      end
      local stats = mock:stats()
      assert.are.equal(2, stats.requests)
      assert.are.equal(2, stats.connections) -- the keep-alive one + this stats call
    end)

    it("answers pipelined requests in order", function()
      local sock = connect(mock)
      finally(function() sock:close() end)
      assert(sock:send(raw_get("/segments/list?page=2", mock.api_key) .. raw_get("/nope", mock.api_key)))
      assert.are.equal(200, assert(helpers.read_response(sock)).status)
      assert.are.equal(404, assert(helpers.read_response(sock)).status)
    end)

    it("honours Connection: close", function()
      local sock = connect(mock)
      finally(function() sock:close() end)
      assert(sock:send(raw_get("/segments/list?page=2", mock.api_key, "Connection: close\r\n")))
      local resp = assert(helpers.read_response(sock))
      assert.are.equal("close", resp.headers["connection"])
      local more, err = sock:receive(1)
      assert.is_nil(more)
      assert.are.equal("closed", err)
    end)

    it("closes HTTP/1.0 connections by default", function()
      local sock = connect(mock)
      finally(function() sock:close() end)
      assert(sock:send("GET /segments/list?page=9 HTTP/1.0\r\nAuthorization: Bearer " .. mock.api_key .. "\r\n\r\n"))
      local resp = assert(helpers.read_response(sock))
      assert.are.equal(200, resp.status)
      assert.are.equal("close", resp.headers["connection"])
    end)

    local abuse = {
      { "an over-long request line", "GET /segments/list?x=" .. ("a"):rep(9000) .. " HTTP/1.1\r\n\r\n", 414 },
      { "over-large headers", "GET / HTTP/1.1\r\nX-A: " .. ("a"):rep(40000) .. "\r\n\r\n", 431 },
      { "a malformed request line", "HELLO\r\n\r\n", 400 },
      { "a malformed header", "GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400 },
    }
    for _, a in ipairs(abuse) do
      it("answers " .. a[1] .. " with " .. a[3] .. " and closes", function()
        local sock = connect(mock)
        finally(function() sock:close() end)
        sock:send(a[2])
        local resp = assert(helpers.read_response(sock))
        assert.are.equal(a[3], resp.status)
        assert.are.equal("close", resp.headers["connection"])
        assert.is_nil((sock:receive(1)))
      end)
    end
  end)

  describe("concurrency", function()
    it("answers 20 connections delayed 300 ms in parallel", function()
      local slow = helpers.start_mock{ latency = 300 }
      finally(function() slow:stop() end)
      local started = socket.gettime()
      local socks = {}
      for k = 1, 20 do
        socks[k] = connect(slow)
        assert(socks[k]:send(raw_get("/segments/list?page=" .. (k % 3), slow.api_key)))
      end
      for k = 1, 20 do
        local resp = assert(helpers.read_response(socks[k]))
        assert.are.equal(200, resp.status)
        socks[k]:close()
      end
      local elapsed = socket.gettime() - started
      assert.is_true(elapsed >= 0.3, "took " .. elapsed)
      assert.is_true(elapsed < 2, "took " .. elapsed) -- one at a time would take 6 s
    end)

    it("keeps serving others while a connection hangs", function()
      mock:fault{ type = "hang" }
      local hung = connect(mock, 0.5)
      finally(function() hung:close() end)
      assert(hung:send(raw_get("/segments/list", mock.api_key)))
      socket.sleep(0.05) -- let the mock take the fault for this connection
      local resp, elapsed = assert(mock:api("/segments/list?page=1"))
      assert.are.equal(200, resp.status)
      assert.is_true(elapsed < 0.5)
      local got, err = hung:receive(1)
      assert.is_nil(got)
      assert.are.equal("timeout", err)
    end)
  end)

  describe("faults", function()
    it("429 sends Retry-After when asked, and is used up once", function()
      assert.are.same({ queued = 1 }, mock:fault{ type = "429", retry_after = 7, reset_in = 30 })
      local resp = assert(mock:api("/segments/list"))
      assert.are.equal(429, resp.status)
      assert.are.equal("7", resp.headers["retry-after"])
      assert.are.equal("0", resp.headers["x-ratelimit-remaining"])
      assert.are.equal("250000", resp.headers["x-ratelimit-limit"])
      local reset = tonumber(resp.headers["x-ratelimit-reset"])
      assert.is_true(math.abs(reset - (os.time() + 30)) <= 2)
      assert.matches("[Rr]ate limit", decode(resp).message)
      assert.are.equal(200, assert(mock:api("/segments/list")).status)
    end)

    it("429 without retry_after has no Retry-After", function()
      mock:fault{ type = "429" }
      local resp = assert(mock:api("/segments/list"))
      assert.are.equal(429, resp.status)
      assert.is_nil(resp.headers["retry-after"])
      assert.is_true(tonumber(resp.headers["x-ratelimit-reset"]) - os.time() <= 2)
    end)

    it("leaves path-less faults for the real endpoints", function()
      mock:fault{ type = "500" }
      assert.are.equal(404, assert(mock:api("/segments/typo")).status)
      assert.are.equal(500, assert(mock:api("/segments/list")).status)
    end)

    it("applies faults to their path only, oldest first, count times", function()
      assert.are.same({ queued = 2 }, mock:fault{ type = "503", count = 2, path = "/segments/details" })
      mock:fault{ type = "504", path = "/segments/details" }
      assert.are.equal(200, assert(mock:api("/segments/list")).status)
      local target = "/segments/details?segment_id=" .. braze_mock.segment_id(2)
      assert.are.equal(503, assert(mock:api(target)).status)
      assert.are.equal(503, assert(mock:api(target)).status)
      local r504 = assert(mock:api(target))
      assert.are.equal(504, r504.status)
      assert.are.equal("Gateway Timeout", decode(r504).message)
      assert.are.equal(200, assert(mock:api(target)).status)
    end)

    it("502 is an HTML page, like a proxy's", function()
      mock:fault{ type = "502" }
      local resp = assert(mock:api("/segments/list"))
      assert.are.equal(502, resp.status)
      assert.matches("^text/html", resp.headers["content-type"])
      assert.matches("<title>502 Bad Gateway</title>", resp.body, 1, true)
      assert.is_false(pcall(cjson.decode, resp.body))
    end)

    it("status sends any code with a JSON message; 403 says Access Denied", function()
      mock:fault{ type = "status", code = 418, message = "teapot" }
      mock:fault{ type = "403" }
      local r418 = assert(mock:api("/segments/list"))
      assert.are.equal(418, r418.status)
      assert.are.equal("teapot", decode(r418).message)
      local r403 = assert(mock:api("/segments/list"))
      assert.are.equal(403, r403.status)
      assert.are.equal('{"message":"Access Denied"}', r403.body)
    end)

    it("close sends the full Content-Length but half the body", function()
      mock:fault{ type = "close" }
      local sock = connect(mock)
      finally(function() sock:close() end)
      assert(sock:send(raw_get("/segments/list", mock.api_key)))
      local resp, err, partial = helpers.read_response(sock)
      assert.is_nil(resp)
      assert.are.equal("closed", err)
      assert.is_true(#partial > 1000)
      assert.is_true(#partial < 10000) -- a full page is about 12 kB
    end)

    it("reset closes the connection without a byte", function()
      mock:fault{ type = "reset" }
      local sock = connect(mock)
      finally(function() sock:close() end)
      assert(sock:send(raw_get("/segments/list", mock.api_key)))
      -- The mock sends an RST; LuaSocket reports ECONNRESET as "closed" too,
      -- and an orderly close would make receive("*a") succeed instead.
      local got, err, partial = sock:receive("*a")
      assert.is_nil(got)
      assert.are.equal("closed", err)
      assert.are.equal("", partial)
    end)

    it("trickle sends the response a byte at a time", function()
      mock:fault{ type = "trickle", ms = 2 }
      local target = "/segments/data_series?segment_id=" .. braze_mock.segment_id(3) .. "&length=1&ending_at=2024-01-01"
      local resp, elapsed = assert(mock:api(target))
      assert.are.equal(200, resp.status)
      assert.are.equal("2024-01-01", decode(resp).data[1].time)
      local bytes = #resp.body + 200 -- the head is well over 200 bytes
      assert.is_true(elapsed >= bytes * 0.002, "took " .. elapsed)
      assert.is_true(elapsed < 5, "took " .. elapsed)
    end)

    it("delay waits, then answers normally", function()
      mock:fault{ type = "delay", ms = 400 }
      local resp, elapsed = assert(mock:api("/segments/list"))
      assert.are.equal(200, resp.status)
      assert.is_true(elapsed >= 0.4 and elapsed < 2, "took " .. elapsed)
    end)

    it("truncate and malformed give 200s that are not JSON", function()
      mock:fault{ type = "truncate" }
      mock:fault{ type = "malformed" }
      local truncated = assert(mock:api("/segments/list"))
      assert.are.equal(200, truncated.status)
      assert.are.equal(#truncated.body, tonumber(truncated.headers["content-length"]))
      assert.is_false(pcall(cjson.decode, truncated.body))
      local malformed = assert(mock:api("/segments/list"))
      assert.are.equal('{"segments":[1,2,}', malformed.body)
      assert.is_false(pcall(cjson.decode, malformed.body))
    end)

    it("content_type and html200 send text/html", function()
      mock:fault{ type = "content_type" }
      mock:fault{ type = "html200" }
      local ct = assert(mock:api("/segments/list"))
      assert.are.equal("text/html", ct.headers["content-type"])
      assert.are.equal(100, #decode(ct).segments)
      local html = assert(mock:api("/segments/list"))
      assert.are.equal(200, html.status)
      assert.matches("<html>", html.body, 1, true)
    end)

    it("huge streams a valid document of about the asked size", function()
      local size = 3 * 1048576
      mock:fault{ type = "huge", bytes = size }
      local resp = assert(mock:api("/segments/list"))
      assert.are.equal(#resp.body, tonumber(resp.headers["content-length"]))
      assert.is_true(math.abs(#resp.body - size) < 200)
      local segs = decode(resp).segments
      assert.is_true(#segs > 20000)
      assert.matches(UUID, segs[#segs].id)
    end)

    for _, framing in ipairs({ "close", "chunked" }) do
      it("nolength_huge streams without Content-Length (" .. framing .. ")", function()
        mock:fault{ type = "nolength_huge", bytes = 200000, framing = framing }
        local resp = assert(mock:api("/segments/list"))
        assert.is_nil(resp.headers["content-length"])
        if framing == "chunked" then
          assert.are.equal("chunked", resp.headers["transfer-encoding"])
        else
          assert.are.equal("close", resp.headers["connection"])
        end
        assert.is_true(math.abs(#resp.body - 200000) < 200)
        assert.are.equal("success", decode(resp).message)
      end)
    end

    it("deep, hugestring, badutf8 and lonesurrogate send hostile JSON", function()
      mock:fault{ type = "deep", depth = 5000 }
      mock:fault{ type = "hugestring", bytes = 200000 }
      mock:fault{ type = "badutf8" }
      mock:fault{ type = "lonesurrogate" }
      assert.are.equal(("["):rep(5000) .. ("]"):rep(5000), assert(mock:api("/segments/list")).body)
      assert.are.equal(200000, #decode(assert(mock:api("/segments/list"))).segments[1].name)
      assert.truthy(assert(mock:api("/segments/list")).body:find("\255\254", 1, true))
      local lone = assert(mock:api("/segments/list")).body
      assert.truthy(lone:find("\\ud800", 1, true))
      assert.falsy(lone:find("\\ud800\\ud[c-f]"))
    end)

    it("redirect, badheaders and raw send what they are told", function()
      mock:fault{ type = "redirect", location = "http://127.0.0.1:1/elsewhere" }
      mock:fault{ type = "badheaders" }
      mock:fault{ type = "raw", body = '{"segments":[],"message":"success","extra":1e400}' }
      local redirect = assert(mock:api("/segments/list"))
      assert.are.equal(302, redirect.status)
      assert.are.equal("http://127.0.0.1:1/elsewhere", redirect.headers["location"])
      local bad = assert(mock:api("/segments/list"))
      assert.are.equal("garbage", bad.headers["x-ratelimit-remaining"])
      assert.are.equal("-", bad.headers["x-ratelimit-reset"])
      assert.are.equal(100, #decode(bad).segments)
      local raw = assert(mock:api("/segments/list"))
      assert.are.equal('{"segments":[],"message":"success","extra":1e400}', raw.body)
    end)

    it("401 fault echoes the key that was sent", function()
      mock:fault{ type = "401" }
      local resp = assert(mock:api("/segments/list"))
      assert.are.equal(401, resp.status)
      assert.are.equal("Invalid API key: " .. mock.api_key, decode(resp).message)
    end)

    it("after=N lets the first N matching requests through, then faults", function()
      mock:fault{ type = "500", path = "/segments/details", after = 2, count = 2 }
      local target = "/segments/details?segment_id=" .. braze_mock.segment_id(4)
      local got = {}
      for k = 1, 5 do got[k] = assert(mock:api(target)).status end
      assert.are.same({ 200, 200, 500, 500, 200 }, got)
    end)

    it("after=149 makes the 150th details call fail, and only it", function()
      mock:fault{ type = "503", path = "/segments/details", after = 149 }
      local sock = connect(mock)
      finally(function() sock:close() end)
      local failed = {}
      for k = 1, 152 do
        local id = braze_mock.segment_id(k % 250 + 1)
        assert(sock:send(raw_get("/segments/list?page=0", mock.api_key)
          .. raw_get("/segments/details?segment_id=" .. id, mock.api_key)))
        assert.are.equal(200, assert(helpers.read_response(sock)).status) -- lists never match
        local resp = assert(helpers.read_response(sock))
        if resp.status ~= 200 then failed[#failed + 1] = k .. ":" .. resp.status end
      end
      assert.are.same({ "150:503" }, failed)
    end)

    it("segment_id matches only requests for that segment, on any endpoint", function()
      local id2 = braze_mock.segment_id(2)
      mock:fault{ type = "503", segment_id = id2, count = 2 }
      local other = "/segments/details?segment_id=" .. braze_mock.segment_id(1)
      assert.are.equal(200, assert(mock:api(other)).status)
      assert.are.equal(200, assert(mock:api("/segments/list")).status)
      assert.are.equal(503, assert(mock:api("/segments/details?segment_id=" .. id2)).status)
      assert.are.equal(503, assert(mock:api("/segments/data_series?length=1&segment_id=" .. id2)).status)
      assert.are.equal(200, assert(mock:api("/segments/details?segment_id=" .. id2)).status)
    end)

    it("combines segment_id, path and after", function()
      local id3 = braze_mock.segment_id(3)
      mock:fault{ type = "500", segment_id = id3, path = "/segments/data_series", after = 1 }
      local series3 = "/segments/data_series?length=1&segment_id=" .. id3
      local series4 = "/segments/data_series?length=1&segment_id=" .. braze_mock.segment_id(4)
      assert.are.equal(200, assert(mock:api("/segments/details?segment_id=" .. id3)).status) -- other path
      assert.are.equal(200, assert(mock:api(series4)).status) -- other segment
      assert.are.equal(200, assert(mock:api(series3)).status) -- the one let through
      assert.are.equal(200, assert(mock:api(series4)).status)
      assert.are.equal(500, assert(mock:api(series3)).status)
      assert.are.equal(200, assert(mock:api(series3)).status)
    end)

    it("counts a request for after even when another fault answers it", function()
      mock:fault{ type = "status", code = 418, after = 2 } -- oldest, but waiting
      mock:fault{ type = "503" }
      mock:fault{ type = "500", after = 1 }
      local got = {}
      for k = 1, 4 do got[k] = assert(mock:api("/segments/list")).status end
      -- The 503 answers the first request, which the 500 counts as its one.
      assert.are.same({ 503, 500, 418, 200 }, got)
    end)

    it("rejects unknown types and bad parameters", function()
      assert.has_error(function() mock:fault{ type = "explode" } end)
      assert.has_error(function() mock:fault{ type = "status" } end) -- code is required
      assert.has_error(function() mock:fault{ type = "delay", ms = "soon" } end)
      assert.has_error(function() mock:fault{ type = "500", count = 0 } end)
      assert.has_error(function() mock:fault{ type = "500", after = -1 } end)
      assert.has_error(function() mock:fault{ type = "500", after = "later" } end)
      assert.has_error(function() mock:fault{ type = "500", segment_id = "" } end)
    end)
  end)

  describe("rate limit", function()
    it("counts down X-RateLimit-Remaining and answers 429 at 0 until reset", function()
      local limited = helpers.start_mock{ rate_limit = 3 }
      finally(function() limited:stop() end)
      for remaining = 2, 0, -1 do
        local resp = assert(limited:api("/segments/list"))
        assert.are.equal(200, resp.status)
        assert.are.equal("3", resp.headers["x-ratelimit-limit"])
        assert.are.equal(tostring(remaining), resp.headers["x-ratelimit-remaining"])
      end
      local over = assert(limited:api("/segments/list"))
      assert.are.equal(429, over.status)
      assert.are.equal("0", over.headers["x-ratelimit-remaining"])
      assert.are.equal(0, tonumber(over.headers["x-ratelimit-reset"]) % 3600)
      limited:reset()
      assert.are.equal("2", assert(limited:api("/segments/list")).headers["x-ratelimit-remaining"])
    end)

    -- Waits for the next window twice: about 4 s.
    it("ends each window at a multiple of rate_window, then counts again", function()
      local m = helpers.start_mock{ rate_limit = 2, rate_window = 2 }
      finally(function() m:stop() end)
      local before = socket.gettime()
      local reset = tonumber(assert(m:api("/segments/list")).headers["x-ratelimit-reset"])
      assert.are.equal(0, reset % 2)
      assert.is_true(reset > before - 1 and reset <= socket.gettime() + 2, "reset " .. reset)
      while socket.gettime() < reset + 0.05 do socket.sleep(0.05) end -- a fresh window
      local next_reset = tostring(reset + 2)
      for remaining = 1, 0, -1 do
        local resp = assert(m:api("/segments/list"))
        assert.are.equal(200, resp.status)
        assert.are.equal(tostring(remaining), resp.headers["x-ratelimit-remaining"])
        assert.are.equal(next_reset, resp.headers["x-ratelimit-reset"])
      end
      local over = assert(m:api("/segments/list"))
      assert.are.equal(429, over.status)
      assert.are.equal("0", over.headers["x-ratelimit-remaining"])
      assert.are.equal(next_reset, over.headers["x-ratelimit-reset"])
      assert.is_nil(over.headers["retry-after"])
      while socket.gettime() < reset + 2.05 do socket.sleep(0.05) end -- the next one
      local again = assert(m:api("/segments/list"))
      assert.are.equal(200, again.status)
      assert.are.equal("1", again.headers["x-ratelimit-remaining"])
      assert.are.equal(tostring(reset + 4), again.headers["x-ratelimit-reset"])
    end)

    it("checks rate_window and offers --rate-window", function()
      local srv, err = braze_mock.new({ rate_window = 0 })
      assert.is_nil(srv)
      assert.matches("rate_window must be an integer from 1", err)
      assert.is_nil((braze_mock.new({ rate_window = 1.5 })))
      assert.are.equal(3600, braze_mock.DEFAULTS.rate_window)
      local out = run_cli("--rate-window 0")
      assert.matches("rate_window must be", out)
      assert.matches("rc=1", out)
    end)
  end)

  describe("control API", function()
    it("counts API requests by path", function()
      mock:api("/segments/list")
      mock:api("/segments/list?page=1")
      mock:api("/segments/details")
      local stats = mock:stats()
      assert.are.equal(3, stats.requests)
      assert.are.same({ ["/segments/list"] = 2, ["/segments/details"] = 1 }, stats.by_path)
    end)

    it("logs authorization and user agent of each request", function()
      mock:api("/segments/list", { headers = { ["User-Agent"] = "spec/1.0" } })
      mock:api("/segments/list", { auth = false })
      local log = mock:requests()
      assert.are.equal(2, #log)
      assert.are.equal("Bearer " .. mock.api_key, log[1].authorization)
      assert.are.equal("spec/1.0", log[1].user_agent)
      assert.are.equal("GET", log[1].method)
      assert.are.equal(cjson.null, log[2].authorization)
    end)

    it("reset clears queued faults and counters", function()
      mock:fault{ type = "500", count = 3 }
      mock:api("/segments/list")
      mock:reset()
      assert.are.equal(200, assert(mock:api("/segments/list")).status)
      assert.are.equal(1, mock:stats().requests)
      assert.are.equal(1, #mock:requests())
    end)

    it("config changes the number of segments while running; reset keeps it", function()
      local m = helpers.start_mock{ segments = 250 }
      finally(function() m:stop() end)
      assert.are.same({ segments = 3, latency = 0, rate_limit = 250000, rate_window = 3600 },
        m:config{ segments = 3 })
      local listed = decode(assert(m:api("/segments/list"))).segments
      assert.are.equal(3, #listed)
      assert.are.equal(braze_mock.segment_id(3), listed[3].id)
      local gone = assert(m:api("/segments/details?segment_id=" .. braze_mock.segment_id(4)))
      assert.are.equal(400, gone.status)
      m:reset()
      assert.are.equal(3, #decode(assert(m:api("/segments/list"))).segments)
      assert.are.equal(3, m:config().segments) -- no parameters: just the settings
      m:config{ segments = 150 }
      assert.are.equal(50, #decode(assert(m:api("/segments/list?page=1"))).segments)
    end)

    it("config changes the rate limit; Remaining never goes below 0", function()
      local m = helpers.start_mock{ rate_limit = 10 }
      finally(function() m:stop() end)
      for _ = 1, 3 do assert(m:api("/segments/list")) end
      local now = m:config{ rate_limit = 2, latency = 5 }
      assert.are.equal(2, now.rate_limit)
      assert.are.equal(5, now.latency)
      local over = assert(m:api("/segments/list")) -- 3 used of 2: the count stays
      assert.are.equal(429, over.status)
      assert.are.equal("2", over.headers["x-ratelimit-limit"])
      assert.are.equal("0", over.headers["x-ratelimit-remaining"])
      local other = assert(m:api("/segments/nope")) -- a 404 shows the count without using it
      assert.are.equal(404, other.status)
      assert.are.equal("0", other.headers["x-ratelimit-remaining"])
      assert.are.equal(3, m:config{ rate_window = 3 }.rate_window) -- a new window, nothing counted
      local resp = assert(m:api("/segments/list"))
      assert.are.equal(200, resp.status)
      assert.are.equal("1", resp.headers["x-ratelimit-remaining"])
      assert.are.equal(0, tonumber(resp.headers["x-ratelimit-reset"]) % 3)
    end)

    it("config rejects bad values and unknown names, changing nothing", function()
      for _, bad in ipairs({ "segments=-1", "segments=1000001", "segments=x", "latency=1.5",
        "rate_window=0", "rate_limit=", "port=1", "segments=2&colour=red" }) do
        local resp = assert(helpers.request(mock, "/_mock/config?" .. bad))
        assert.are.equal(400, resp.status, bad)
        assert.matches(bad:match("([%a_]+)=[^&]*$"), decode(resp).message, 1, true)
      end
      assert.are.equal(250, mock:config().segments)
    end)

    it("shutdown answers, then the process exits", function()
      local m = helpers.start_mock{ segments = 1 }
      finally(function() m:stop() end)
      local resp = assert(helpers.request(m, "/_mock/shutdown"))
      assert.are.equal(200, resp.status)
      local deadline = socket.gettime() + 2
      while helpers.alive(m.pid) and socket.gettime() < deadline do socket.sleep(0.02) end
      assert.is_false(helpers.alive(m.pid))
    end)

    it("exits 0 on SIGINT", function()
      local cmd = "sh -c '" .. helpers.lua .. " " .. helpers.root .. "/bin/braze-mock >/dev/null & pid=$!; "
        .. "sleep 0.3; kill -INT $pid; wait $pid; echo rc=$?'"
      local p = io.popen(cmd)
      local out = p:read("*a")
      p:close()
      assert.matches("rc=0", out)
    end)
  end)
end)
