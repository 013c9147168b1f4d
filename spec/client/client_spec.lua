-- The public API of issue 2 against the local mock: shapes, paging,
-- argument errors, HTTP errors, error objects, rate-limit state, lifetime.
local braze = require("braze")
local helpers = require("spec.support.helpers")
local cjson = require("cjson")

local function new_client(mock, extra)
  local opts = { api_key = mock.api_key, endpoint = mock.url, sleep = function() end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return braze.new(opts)
end

local recording_transport = helpers.recording_transport

describe("braze.new", function()
  it("raises on a missing API key, naming what to set", function()
    assert.has_error(function() braze.new{ api_key = "", endpoint = "https://rest.iad-01.braze.com" } end,
      "braze: no API key: set api_key = \"...\" or the BRAZE_API_KEY environment variable")
  end)

  it("raises on an unknown option and suggests the right name", function()
    local ok, err = pcall(braze.new, { api_key = "k", instance = "US-01", timout = 5 })
    assert.is_false(ok)
    assert.matches("unknown option \"timout\" to braze.new %(did you mean 'timeout'%?%)", err)
  end)

  it("resolves instances case-insensitively", function()
    local t = recording_transport()
    local c = braze.new{ api_key = "k", instance = "eu-01", transport = t }
    assert.equal("https://rest.fra-01.braze.eu", c.endpoint)
    assert.truthy(c:list())
    assert.equal("https://rest.fra-01.braze.eu/segments/list", t.urls[1])
  end)

  it("raises on an unknown instance and lists the known ones", function()
    local ok, err = pcall(braze.new, { api_key = "k", instance = "US-09" })
    assert.is_false(ok)
    assert.matches("unknown instance \"US%-09\" %(one of AU%-01, EU%-01", err)
  end)

  it("raises when both endpoint and instance are given", function()
    assert.has_error(function()
      braze.new{ api_key = "k", instance = "US-01", endpoint = "https://x.example" }
    end, "braze: give endpoint or instance, not both")
  end)

  it("keeps an endpoint's path prefix and drops a trailing slash", function()
    local t = recording_transport()
    local c = braze.new{ api_key = "k", endpoint = "https://gw.example.com:8443/braze/", transport = t }
    c:details("abc")
    assert.equal("https://gw.example.com:8443/braze/segments/details?segment_id=abc", t.urls[1])
  end)

  for _, bad in ipairs({ "rest.iad-01.braze.com", "ftp://x.example", "https://", "https://h:99999",
    "https://user:pw@h.example", "https://h.example/?a=1", 42 }) do
    it("raises on the malformed endpoint " .. tostring(bad), function()
      local ok, err = pcall(braze.new, { api_key = "k", endpoint = bad })
      assert.is_false(ok)
      assert.matches("endpoint", err)
    end)
  end

  it("raises on bad numeric options", function()
    local ok, err = pcall(braze.new, { api_key = "k", instance = "US-01", timeout = -1 })
    assert.is_false(ok)
    assert.matches("timeout must be a number in", err)
  end)

  it("passes timeouts and the user agent to the transport", function()
    local t = recording_transport()
    braze.new{ api_key = "k", instance = "US-01", transport = t, timeout = 2.5,
      connect_timeout = 1, user_agent = "my-app/1.0" }
    assert.equal(2.5, t.configs[1].timeout)
    assert.equal(1, t.configs[1].connect_timeout)
    assert.equal("my-app/1.0", t.configs[1].user_agent)
  end)

  describe("from the environment", function()
    local function run(env, code)
      -- the interpreter running this spec, with the build it loaded
      local lua = helpers.interpreter()
      local cmd = string.format("env -u BRAZE_API_KEY -u BRAZE_REST_ENDPOINT %s LUA_PATH='lua/?.lua;lua/?/init.lua;;' "
        .. "LUA_CPATH='%s' %s -e %q 2>&1", env, package.cpath, lua, code)
      local p = io.popen(cmd)
      local out = p:read("*a")
      p:close()
      return out
    end

    it("reads BRAZE_API_KEY and an instance name in BRAZE_REST_ENDPOINT", function()
      local out = run("BRAZE_API_KEY=abcdefghijklmnop BRAZE_REST_ENDPOINT=us-03",
        "print(require('braze').new().endpoint)")
      assert.equal("https://rest.iad-03.braze.com\n", out)
    end)

    it("reads a URL in BRAZE_REST_ENDPOINT", function()
      local out = run("BRAZE_API_KEY=abcdefghijklmnop BRAZE_REST_ENDPOINT=https://rest.fra-02.braze.eu/",
        "print(require('braze').new().endpoint)")
      assert.equal("https://rest.fra-02.braze.eu\n", out)
    end)

    it("says what to set when no endpoint is configured", function()
      local out = run("BRAZE_API_KEY=abcdefghijklmnop", "print(pcall(require('braze').new))")
      assert.matches("no endpoint: set endpoint", out)
    end)
  end)
end)

describe("against the mock", function()
  local mock, client

  setup(function()
    mock = helpers.start_mock{ segments = 250 }
    client = new_client(mock)
  end)

  teardown(function()
    client:close()
    mock:stop()
  end)

  before_each(function() mock:reset() end)

  describe("list", function()
    it("returns the decoded page with message and 100 segments", function()
      local page = assert(client:list())
      assert.equal("success", page.message)
      assert.equal(100, #page.segments)
      local s = page.segments[1]
      assert.is_string(s.id)
      assert.is_string(s.name)
      assert.is_boolean(s.analytics_tracking_enabled)
      assert.is_table(s.tags)
    end)

    it("sends page and sort_direction as query parameters", function()
      local page = assert(client:list{ page = 2, sort_direction = "desc" })
      assert.equal(50, #page.segments)
      local req = mock:requests()[1]
      assert.same({ page = "2", sort_direction = "desc" }, req.query)
    end)

    it("gives the same segments as the raw response decoded by cjson", function()
      local mine = assert(client:list{ page = 1 })
      local raw = mock:api("/segments/list?page=1")
      local theirs = cjson.decode(raw.body)
      assert.equal(#theirs.segments, #mine.segments)
      for i, s in ipairs(theirs.segments) do
        assert.equal(s.id, mine.segments[i].id)
        assert.equal(s.name, mine.segments[i].name)
        assert.same(s.tags, mine.segments[i].tags)
      end
    end)

    for _, case in ipairs({
      { { page = -1 }, "page must be a non%-negative integer %(got %-1%)" },
      { { page = 1.5 }, "page must be a non%-negative integer %(got 1.5%)" },
      { { page = "2" }, "page must be a non%-negative integer %(got \"2\"%)" },
      { { sort_direction = "up" }, "sort_direction must be \"asc\" or \"desc\" %(got \"up\"%)" },
      { { pages = 2 }, "unknown option \"pages\" to list %(did you mean 'page'%?%)" },
    }) do
      it("raises on " .. cjson.encode(case[1]) .. " and sends nothing", function()
        local ok, err = pcall(client.list, client, case[1])
        assert.is_false(ok)
        assert.matches(case[2], err)
        assert.equal(0, mock:stats().requests)
      end)
    end
  end)

  describe("details", function()
    it("returns a segment's details", function()
      local id = assert(client:list()).segments[3].id
      local d = assert(client:details(id))
      assert.equal("success", d.message)
      assert.is_string(d.name)
      assert.is_table(d.tags)
      assert.is_table(d.teams)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", d.created_at)
      assert.equal(id, mock:requests()[2].query.segment_id)
    end)

    it("gives braze.null for a null description", function()
      local seg5 = assert(client:list()).segments[5]
      local d = assert(client:details(seg5.id))
      assert.equal(braze.null, d.description)
    end)

    for _, bad in ipairs({ { nil, "got nil" }, { "", "got \"\"" }, { 42, "got number" } }) do
      it("raises on segment_id " .. tostring(bad[1]) .. " and sends nothing", function()
        local ok, err = pcall(client.details, client, bad[1])
        assert.is_false(ok)
        assert.matches("details: segment_id must be a non%-empty string %(" .. bad[2]:gsub("%p", "%%%0") .. "%)", err)
        assert.equal(0, mock:stats().requests)
      end)
    end

    it("returns an http error object with Braze's message for an unknown id", function()
      local d, err = client:details("no-such-segment")
      assert.is_nil(d)
      assert.equal("http", err.kind)
      assert.equal(400, err.status)
      assert.is_string(err.message)
      assert.is_string(err.request_id)
      assert.equal("/segments/details", err.endpoint)
      assert.equal(1, err.attempts)
    end)
  end)

  describe("data_series", function()
    local id
    before_each(function() id = id or assert(client:list()).segments[1].id end)

    it("returns length points ending at ending_at, integers exact", function()
      local s = assert(client:data_series{ segment_id = id, length = 14, ending_at = "2026-11-01T00:00:00Z" })
      assert.equal("success", s.message)
      assert.equal(14, #s.data)
      assert.equal("2026-11-01", s.data[14].time)
      assert.equal("2026-10-19", s.data[1].time)
      for _, point in ipairs(s.data) do
        if math.type then assert.equal("integer", math.type(point.size)) end
        assert.is_true(point.size > 2 ^ 32) -- segment 1 is big: exactness matters
      end
    end)

    it("sends numeric ending_at as UTC YYYY-MM-DDTHH:MM:SSZ", function()
      assert(client:data_series{ segment_id = id, length = 3, ending_at = 1764547200 })
      local reqs = mock:requests()
      assert.equal("2025-12-01T00:00:00Z", reqs[#reqs].query.ending_at)
      assert.equal("3", reqs[#reqs].query.length)
    end)

    it("omits ending_at when not given", function()
      assert(client:data_series{ segment_id = id, length = 1 })
      local reqs = mock:requests()
      assert.is_nil(reqs[#reqs].query.ending_at)
    end)

    for _, case in ipairs({
      { { length = 0 }, "length must be an integer in 1%.%.100 %(got 0%)" },
      { { length = 101 }, "length must be an integer in 1%.%.100 %(got 101%)" },
      { { length = 2.5 }, "length must be an integer in 1%.%.100 %(got 2.5%)" },
      { { length = "7" }, "length must be an integer in 1%.%.100 %(got \"7\"%)" },
      { { length = 7, ending_at = "yesterday" }, "ending_at must be an ISO 8601 date%-time %(got \"yesterday\"" },
      { { length = 7, ending_at = "2026-02-30" }, "day out of range" },
      { { length = 7, ending_at = "2026-01-01T25:00:00Z" }, "time out of range" },
      { { length = 7, ending_at = -5 }, "ending_at must be epoch seconds" },
      { { length = 7, ending_at = {} }, "ending_at must be an ISO 8601 string or epoch seconds %(got table%)" },
      { { length = 7, segment_id = "" }, "segment_id must be a non%-empty string" },
      { { length = 7, end_at = "2026-01-01" }, "unknown option \"end_at\" to data_series" },
    }) do
      it("raises on " .. cjson.encode(case[1]) .. " and sends nothing", function()
        local opts = { segment_id = id }
        for k, v in pairs(case[1]) do opts[k] = v end
        local ok, err = pcall(client.data_series, client, opts)
        assert.is_false(ok)
        assert.matches(case[2], err)
        assert.equal(0, mock:stats().requests)
      end)
    end

    it("accepts ISO 8601 forms with offsets and fractions", function()
      for _, v in ipairs({ "2026-11-01", "2026-11-01T10:00", "2026-11-01T10:00:00.123Z",
        "2026-11-01T10:00:00+05:30", "2026-11-01T10:00:00-0800" }) do
        assert.truthy(client:data_series{ segment_id = id, length = 2, ending_at = v })
      end
    end)
  end)

  describe("HTTP errors", function()
    it("401 names the status, redacts the echoed key and hints at the instance", function()
      local key = "secret-key-0123456789abcdef"
      local c = new_client(mock, { api_key = key })
      local res, err = c:list()
      c:close()
      assert.is_nil(res)
      assert.equal("http", err.kind)
      assert.equal(401, err.status)
      assert.matches("^Invalid API key: secr%.%.%.", err.message)
      assert.matches("wrong instance", err.message)
      assert.is_nil(tostring(err):find(key, 1, true))
      assert.matches("^braze: HTTP 401 on /segments/list: Invalid API key", tostring(err))
    end)

    it("records the 401's present-but-empty rate-limit headers as nil fields", function()
      local c = new_client(mock, { api_key = "wrong-key-0123456789" })
      c:list()
      local rl = c:rate_limit()
      c:close()
      assert.same({}, rl) -- every field nil
    end)

    it("403 carries Braze's message", function()
      mock:fault{ type = "403" }
      local _, err = client:list()
      assert.equal(403, err.status)
      assert.equal("Access Denied", err.message)
    end)

    it("404 is an http error, not retried", function()
      mock:fault{ type = "status", code = 404, message = "Invalid URL" }
      local _, err = client:list()
      assert.equal("http", err.kind)
      assert.equal(404, err.status)
      assert.equal(1, mock:stats().requests)
    end)

    it("400 carries Braze's message and errors", function()
      local _, err = client:data_series{ segment_id = "nope", length = 3 }
      assert.equal(400, err.status)
      assert.is_string(err.message)
    end)

    it("a non-JSON 502 page is an http error with its status, not a decode error", function()
      local c = new_client(mock, { max_retries = 0 })
      mock:fault{ type = "502" }
      local _, err = c:list()
      c:close()
      assert.equal("http", err.kind)
      assert.equal(502, err.status)
      assert.matches("non%-JSON body %(text/html.*%): 502 Bad Gateway", err.message)
    end)

    it("error objects concatenate with strings", function()
      mock:fault{ type = "403" }
      local _, err = client:list()
      assert.matches("^failed: braze: HTTP 403 on /segments/list: Access Denied %[request id mock%-", "failed: " .. err)
      assert.matches("^braze: HTTP 403 .*%]!$", err .. "!")
      assert.is_true(braze.errors.is(err))
    end)
  end)

  describe("rate_limit", function()
    -- A workspace of its own (clients of one key and endpoint share its window).
    local function fresh_workspace() return { endpoint = mock.url:gsub("127%.0%.0%.1", "localhost") } end

    it("is nil before any response", function()
      local c = new_client(mock, fresh_workspace())
      assert.is_nil(c:rate_limit())
      c:close()
    end)

    it("reflects the last response's headers as numbers", function()
      assert(client:list())
      local rl = client:rate_limit()
      assert.equal(250000, rl.limit)
      assert.is_number(rl.remaining)
      assert.is_true(rl.remaining < 250000)
      assert.is_true(rl.reset > os.time())
    end)

    it("treats garbage header values as absent", function()
      local c = new_client(mock, fresh_workspace())
      finally(function() c:close() end)
      mock:fault{ type = "badheaders" }
      assert(c:list())
      local rl = c:rate_limit()
      assert.is_nil(rl.limit)
      assert.is_nil(rl.remaining)
      assert.is_nil(rl.reset)
    end)

    it("keeps what it knew of the window when a response's headers are garbage", function()
      assert(client:list())
      local before = client:rate_limit()
      mock:fault{ type = "badheaders" }
      assert(client:list())
      assert.same(before, client:rate_limit())
    end)
  end)

  describe("lifetime", function()
    it("close is idempotent and later calls raise", function()
      local c = new_client(mock)
      assert(c:list())
      c:close()
      c:close()
      assert.has_error(function() c:list() end, "braze: client is closed")
      assert.matches("closed", tostring(c))
    end)

    it("closes on leaving a <close> scope", function()
      if _VERSION ~= "Lua 5.4" then return pending("<close> needs Lua 5.4") end
      local chunk = assert(load([[
        local braze, opts = ...
        local outer
        do
          local c <close> = braze.new(opts)
          outer = c
          assert(c:list())
        end
        return outer
      ]]))
      local c = chunk(braze, { api_key = mock.api_key, endpoint = mock.url })
      assert.has_error(function() c:list() end, "braze: client is closed")
    end)

    it("collects dropped clients and their sessions", function()
      local weak = setmetatable({}, { __mode = "v" })
      for i = 1, 20 do
        local c = new_client(mock)
        assert(c:list())
        weak[i] = c
      end
      collectgarbage()
      collectgarbage()
      assert.is_nil(next(weak))
    end)

    it("tostring shows the endpoint and a masked key only", function()
      local key = "abcdef0123456789abcdef"
      local c = new_client(mock, { api_key = key })
      local s = tostring(c)
      c:close()
      assert.matches("^braze%.Client%(http://127%.0%.0%.1:%d+, key abcd%.%.%.%)$", s)
      assert.is_nil(s:find(key, 1, true))
    end)
  end)

  it("reuses one connection across calls (keep-alive)", function()
    local before = mock:stats().connections
    local c = new_client(mock)
    for _ = 1, 5 do assert(c:list()) end
    c:close()
    local after = mock:stats().connections
    -- one API connection, plus the control connection of the stats call
    assert.equal(2, after - before)
  end)
end)

describe("each", function()
  for _, n in ipairs({ 0, 1, 99, 100, 101, 250 }) do
    for _, dir in ipairs({ "asc", "desc" }) do
      it(("visits all %d segments once, %s, page numbers in order"):format(n, dir), function()
        local mock = helpers.start_mock{ segments = n }
        finally(function() mock:stop() end)
        local c = new_client(mock)
        local ids, seen, pages = {}, {}, {}
        for seg, page_no in c:each{ sort_direction = dir } do
          assert.is_nil(seen[seg.id])
          seen[seg.id] = true
          ids[#ids + 1] = seg.id
          pages[#pages + 1] = page_no
        end
        c:close()
        assert.equal(n, #ids)
        for i, p in ipairs(pages) do assert.equal(math.floor((i - 1) / 100), p) end
        -- pages requested: n/100 full pages plus the short (maybe empty) last one
        assert.equal(math.floor(n / 100) + 1, mock:stats().by_path["/segments/list"])
        -- the same order as the raw pages
        local raw = {}
        for p = 0, math.floor(n / 100) do
          local r = cjson.decode(mock:api("/segments/list?sort_direction=" .. dir .. "&page=" .. p).body)
          for _, s in ipairs(r.segments) do raw[#raw + 1] = s.id end
        end
        assert.same(raw, ids)
      end)
    end
  end

  describe("on one mock", function()
    local mock
    setup(function() mock = helpers.start_mock{ segments = 250 } end)
    teardown(function() mock:stop() end)
    before_each(function() mock:reset() end)

    it("requests the next page only when the current one is used up", function()
      local c = new_client(mock)
      local it = c:each()
      for _ = 1, 100 do assert.truthy(it()) end
      assert.equal(1, mock:stats().requests)
      assert.truthy(it())
      assert.equal(2, mock:stats().requests)
      c:close()
    end)

    it("raises the error object when a page fails: never ends silently", function()
      local c = new_client(mock, { max_retries = 0 })
      mock:fault{ type = "403", path = "/segments/list", count = 1 }
      local ok, err = pcall(function()
        for _ in c:each() do end
      end)
      c:close()
      assert.is_false(ok)
      assert.is_true(braze.errors.is(err))
      assert.equal(403, err.status)
    end)

    it("starts at a given page, to resume", function()
      local c = new_client(mock)
      local first
      local count = 0
      for _, page_no in c:each{ page = 2 } do
        first = first or page_no
        count = count + 1
      end
      c:close()
      assert.equal(2, first)
      assert.equal(50, count)
    end)

    it("stops with an error after max_pages", function()
      local c = new_client(mock)
      local ok, err = pcall(function() for _ in c:each{ max_pages = 1 } do end end)
      c:close()
      assert.is_false(ok)
      assert.matches("max_pages %(1%)", err)
    end)

    it("rejects bad options before any request", function()
      local c = new_client(mock)
      assert.has_error(function() c:each{ sort_direction = "sideways" } end)
      assert.has_error(function() c:each{ max_page = 3 } end)
      c:close()
      assert.equal(0, mock:stats().requests)
    end)
  end)
end)
