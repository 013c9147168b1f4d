-- The pipelined each{details, series, concurrency} and the scheduler's
-- pacing, on both ways a transport can be driven (one request at a time
-- over get, an async batch answering in a shuffled order), then
-- against the mock over real HTTP.
local braze = require("braze")
local fake_braze = require("spec.support.fake_braze")
local helpers = require("spec.support.helpers")

-- A key of its own for every client: clients of one key share their
-- workspace's rate-limit window, and each fake here is a workspace of its own.
local keys_made = 0
local function fresh_key()
  keys_made = keys_made + 1
  return "k" .. keys_made
end

local SERIES = { length = 3, ending_at = "2026-11-01" }

local function client(fake, extra)
  local opts = { api_key = fresh_key(), instance = "US-01", transport = fake.transport,
    sleep = function() end, max_retries = 2 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return braze.new(opts)
end

-- Run a pipelined loop to its end or its error: the ids seen, and the error.
local function drain(c, opts, fake)
  local seen = {}
  local ok, err = pcall(function()
    for seg, page_no in c:each(opts) do
      if fake then fake.consumed_page = page_no end
      seen[#seen + 1] = seg
    end
  end)
  return seen, (not ok) and err or nil
end

local function ids_of(segs)
  local t = {}
  for i, s in ipairs(segs) do t[i] = s.id end
  return t
end

local function expected_ids(from, to, fake)
  local t = {}
  for i = from, to do t[#t + 1] = fake.segment_id(i) end
  return t
end

for _, mode in ipairs({ "serial", "async" }) do
  describe("pipelined each (" .. mode .. " transport)", function()
    for _, n in ipairs({ 0, 1, 99, 100, 101, 1050 }) do
      it("yields all " .. n .. " segments in list order, exactly once, with details and series", function()
        local fake = fake_braze.new{ segments = n, mode = mode }
        local c = client(fake)
        local segs, err = drain(c, { details = true, series = SERIES, concurrency = 16 }, fake)
        assert.is_nil(err)
        assert.same(expected_ids(1, n, fake), ids_of(segs))
        for i, s in ipairs(segs) do
          assert.equal("Segment " .. i, s.details.name)
          assert.equal(3, #s.series.data)
          assert.equal(s.id, s.series.id)
        end
        -- One details and one series call per segment; list pages up to the
        -- first short one, plus at most the two requested ahead of it.
        assert.equal(n, fake.count("/segments/details"))
        assert.equal(n, fake.count("/segments/data_series"))
        local pages = math.floor(n / 100) + 1
        local lists = fake.count("/segments/list")
        assert.is_true(lists >= pages and lists <= pages + 2, "list requests: " .. lists)
        if mode == "async" then assert.is_true(fake.max_inflight <= 16) end
      end)
    end

    it("prefetches list pages with concurrency alone, and lists at most two pages ahead", function()
      local fake = fake_braze.new{ segments = 1050, mode = mode }
      local segs, err = drain(client(fake), { concurrency = 4 }, fake)
      assert.is_nil(err)
      assert.equal(1050, #segs)
      assert.is_nil(segs[1].details)
      assert.equal(0, fake.count("/segments/details"))
      assert.is_true(fake.max_list_ahead <= 3, "listed ahead: " .. fake.max_list_ahead)
    end)

    for _, where in ipairs({ "details", "series", "list" }) do
      it("a " .. where .. " failure mid-way raises before its page, and a resume loses and repeats nothing", function()
        local fake = fake_braze.new{ segments = 250, mode = mode }
        local bad = fake.segment_id(150)
        local key = ({ details = "/segments/details?" .. bad, series = "/segments/data_series?" .. bad,
          list = "/segments/list?1" })[where]
        fake.fail[key] = { status = 400 }
        local c = client(fake)
        local opts = { details = true, series = SERIES, concurrency = 8 }
        local first, err = drain(c, opts, fake)
        assert.is_true(braze.errors.is(err))
        assert.equal("http", err.kind)
        assert.equal(400, err.status)
        assert.equal(1, err.page)
        if where ~= "list" then assert.equal(bad, err.segment_id) end
        assert.same(expected_ids(1, 100, fake), ids_of(first))
        -- The loop stays failed: calling it again raises the same error.
        fake.fail[key] = nil
        opts.page = err.page
        local rest, err2 = drain(c, opts, fake)
        assert.is_nil(err2)
        assert.same(expected_ids(101, 250, fake), ids_of(rest))
      end)
    end

    it("retries a transient failure of one segment's call without losing its place", function()
      local fake = fake_braze.new{ segments = 120, mode = mode }
      fake.fail["/segments/details?" .. fake.segment_id(7)] = { status = 503, count = 2 }
      fake.fail["/segments/data_series?" .. fake.segment_id(110)] = { kind = "network", count = 1 }
      local segs, err = drain(client(fake), { details = true, series = SERIES }, fake)
      assert.is_nil(err)
      assert.same(expected_ids(1, 120, fake), ids_of(segs))
      assert.equal("Segment 7", segs[7].details.name)
      assert.equal(122, fake.count("/segments/details"))
    end)

    it("never spends a 429: learns the window with one request, then keeps the reserve", function()
      local fake = fake_braze.new{ segments = 250, mode = mode,
        window = { limit = 100, remaining = 100, reset = os.time() + 3600 } }
      local c = client(fake, { reserve = 10, max_wait = 1 })
      local segs, err = drain(c, { details = true, series = SERIES, concurrency = 16 }, fake)
      assert.equal(0, fake.served_429)
      assert.equal("rate_limited", err.kind)
      assert.matches("reserve", err.message)
      assert.equal(90, #fake.log) -- the window's 100 less the reserve's 10
      assert.equal(10, fake.window.remaining)
      assert.equal(0, #segs) -- page 0 needs 201 requests: it never completed
      assert.equal(0, err.page)
    end)

    it("survives full collections in the loop body (its state is not collected under it)", function()
      local fake = fake_braze.new{ segments = 250, mode = mode }
      local n = 0
      for seg in client(fake):each{ details = true, concurrency = 4 } do
        n = n + 1
        assert.equal(fake.segment_id(n), seg.id)
        if n % 10 == 0 then collectgarbage() end
      end
      assert.equal(250, n)
    end)

    if mode == "async" and _VERSION ~= "Lua 5.1" then
      it("a loop left early drops what is in flight", function()
        local fake = fake_braze.new{ segments = 250, mode = mode }
        local c = client(fake)
        local function first()
          for seg in c:each{ details = true, concurrency = 8 } do return seg end -- luacheck: ignore 512 (the first segment only)
        end
        assert.equal(fake.segment_id(1), first().id)
        collectgarbage()
        collectgarbage()
        assert.equal(1, fake.batches_closed)
        assert.equal(0, fake.inflight)
      end)
    end

    it("learns an unknown window with one request, then goes full width when no window is told", function()
      local fake = fake_braze.new{ segments = 40, mode = mode }
      local res, errs = client(fake):details_many(expected_ids(1, 40, fake), { concurrency = 8 })
      assert.same({}, errs)
      assert.equal(40, #res)
      if mode == "async" then assert.equal(8, fake.max_inflight) end
    end)

    it("a reserve below 1 is a fraction of the window's limit", function()
      local fake = fake_braze.new{ segments = 30, mode = mode,
        window = { limit = 40, remaining = 40, reset = os.time() + 3600 } }
      local c = client(fake, { reserve = 0.25, max_wait = 1 })
      local res, errs = c:details_many(expected_ids(1, 30, fake), { concurrency = 8 })
      local ok = 0
      for i = 1, 30 do if res[i] then ok = ok + 1 else assert.equal("rate_limited", errs[i].kind) end end
      assert.equal(30, ok) -- 30 requests fit above a reserve of 10 of 40
      assert.equal(10, fake.window.remaining)
      assert.is_nil(c:details("x")) -- the next one would eat into the reserve
      assert.equal(0, fake.served_429)
    end)
  end)
end

describe("pipelined each, arguments", function()
  local fake = fake_braze.new{ segments = 1 }
  local c = client(fake)
  it("checks its options before any request", function()
    assert.has_error(function() c:each{ details = "yes" } end,
      "braze: each: details must be true or false (got \"yes\")")
    assert.has_error(function() c:each{ series = 30 } end,
      "braze: each: series must be a table {length=, ending_at=} (got 30)")
    assert.has_error(function() c:each{ series = { length = 0 } } end)
    assert.has_error(function() c:each{ series = { length = 3, lenght = 4 } } end)
    assert.has_error(function() c:each{ concurrency = 65 } end)
    assert.equal(0, #fake.log)
  end)
  it("checks reserve in braze.new", function()
    assert.has_error(function() client(fake, { reserve = -1 }) end)
    assert.has_error(function() client(fake, { reserve = 2.5 }) end)
  end)
end)

describe("pipelined each against the mock", function()
  local mock
  setup(function() mock = helpers.start_mock{ segments = 250, latency = 5 } end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  it("keeps the reserve under the mock's rate limit and spends no 429", function()
    mock:config{ rate_limit = 100 }
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, reserve = 10, max_wait = 1 }
    finally(function() -- (busted keeps one finally per test)
      c:close()
      mock:config{ rate_limit = 250000 }
    end)
    local segs, err = drain(c, { details = true, series = { length = 3 }, concurrency = 16 })
    assert.equal("rate_limited", err.kind)
    assert.equal(0, #segs)
    assert.equal(90, mock:stats().requests) -- every request answered; a 429 would be one more
    assert.equal(10, c:rate_limit().remaining)
  end)

  it("raises at the page of a failed details call and resumes there, losing and repeating nothing", function()
    mock:fault{ type = "status", code = 400, message = "no", path = "/segments/details", after = 149 }
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url }
    finally(function() c:close() end)
    -- concurrency 1: the 150th details call is the 150th segment's
    local first, err = drain(c, { details = true, concurrency = 1 })
    assert.equal("http", err.kind)
    assert.equal(1, err.page)
    assert.equal(100, #first)
    local rest, err2 = drain(c, { details = true, concurrency = 16, page = err.page })
    assert.is_nil(err2)
    local ids, seen = {}, {}
    for _, s in ipairs(first) do ids[#ids + 1] = s.id end
    for _, s in ipairs(rest) do ids[#ids + 1] = s.id end
    for _, id in ipairs(ids) do assert.is_nil(seen[id]); seen[id] = true end
    assert.equal(250, #ids)
    assert.equal(err.segment_id, rest[50].id)
  end)

  it("gives every segment its details and series over real HTTP", function()
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url }
    finally(function() c:close() end)
    local segs, err = drain(c, { details = true, series = { length = 7, ending_at = "2026-11-01" },
      concurrency = 16 })
    assert.is_nil(err)
    assert.equal(250, #segs)
    local plain = {}
    for seg in c:each() do plain[#plain + 1] = seg.id end
    assert.same(plain, ids_of(segs))
    for _, s in ipairs(segs) do
      assert.equal(s.name, s.details.name)
      assert.equal(7, #s.series.data)
      assert.equal("2026-11-01", s.series.data[7].time)
    end
  end)
end)
