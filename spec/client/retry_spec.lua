-- Issue 3's fault matrix: every fault the mock can inject, against each of
-- the three endpoints and against `each` mid-way, with the exact outcome
-- and the number of requests the mock saw. Sleeps are recorded, not slept,
-- so the policy is checked without waiting for it.
local braze = require("braze")
local core = require("braze.core")
local helpers = require("spec.support.helpers")

local mock, seg_id

local function recorder()
  local waits = {}
  return waits, function(s) waits[#waits + 1] = s end
end

local function client(extra)
  local waits, sleep = recorder()
  local opts = { api_key = mock.api_key, endpoint = mock.url, sleep = sleep,
    timeout = 2, max_retries = 3 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return braze.new(opts), waits
end

local calls = {
  ["/segments/list"] = function(c) return c:list{ page = 0 } end,
  ["/segments/details"] = function(c) return c:details(seg_id) end,
  ["/segments/data_series"] = function(c)
    return c:data_series{ segment_id = seg_id, length = 7, ending_at = "2026-11-01" }
  end,
}
local paths = { "/segments/list", "/segments/details", "/segments/data_series" }

setup(function()
  mock = helpers.start_mock{ segments = 250 }
  seg_id = mock:api("/segments/list").body:match('"id":"([^"]+)"')
end)
teardown(function() mock:stop() end)
before_each(function() mock:reset() end)

local function requests(path) return mock:stats().by_path[path] or 0 end

-- Each row: the fault, then what the call must end with.
--   ok = true: data after `requests` requests; else the error's kind/status.
local matrix = {
  -- Retry-After: 0 is no answer: the wait comes from X-RateLimit-Reset (now + 1 s), or the
  -- backoff when that is already past.
  { fault = { type = "429", retry_after = 0 }, ok = true, requests = 2, wait_between = { 0, 1 } },
  { fault = { type = "429", reset_in = 1 }, ok = true, requests = 2, wait_between = { 0, 2 } },
  { fault = { type = "500" }, ok = true, requests = 2 },
  { fault = { type = "502" }, ok = true, requests = 2 },
  { fault = { type = "503", count = 2 }, ok = true, requests = 3 },
  { fault = { type = "504", count = 3 }, ok = true, requests = 4 },
  { fault = { type = "500", count = 4 }, kind = "http", status = 500, requests = 4, attempts = 4 },
  { fault = { type = "502", count = 4 }, kind = "http", status = 502, requests = 4, attempts = 4,
    message = "non%-JSON body %(text/html" },
  { fault = { type = "429", count = 4, retry_after = 0 }, kind = "rate_limited", status = 429,
    requests = 4, attempts = 4 },
  { fault = { type = "429", retry_after = 3600 }, kind = "rate_limited", status = 429,
    requests = 1, attempts = 1, retry_after = 3600, message = "longer than max_wait" },
  { fault = { type = "delay", ms = 50 }, ok = true, requests = 1 },
  { fault = { type = "close" }, ok = true, requests = 2 },
  { fault = { type = "reset" }, ok = true, requests = 2 },
  { fault = { type = "close", count = 4 }, kind = "network", requests = 4, attempts = 4 },
  { fault = { type = "truncate" }, kind = "decode", status = 200, requests = 1,
    message = "at byte %d+" },
  { fault = { type = "malformed" }, kind = "decode", status = 200, requests = 1,
    message = "expected a JSON value but found '}' at byte %d+" },
  { fault = { type = "content_type" }, ok = true, requests = 1 },
  { fault = { type = "html200" }, kind = "decode", status = 200, requests = 1,
    message = "content%-type text/html" },
  { fault = { type = "huge", bytes = 300000 }, kind = "too_large", requests = 1,
    opts = { max_body = 100000 }, message = "larger than max_body" },
  { fault = { type = "nolength_huge", bytes = 300000 }, kind = "too_large", requests = 1,
    opts = { max_body = 100000 } },
  { fault = { type = "nolength_huge", bytes = 300000, framing = "chunked" }, kind = "too_large",
    requests = 1, opts = { max_body = 100000 } },
  { fault = { type = "deep", depth = 5000 }, kind = "decode", status = 200, requests = 1,
    message = "nesting deeper than 1000 levels" },
  -- A list body: the right shape for list and details, not for data_series.
  { fault = { type = "hugestring", bytes = 1000000 }, ok = true, requests = 1,
    paths = { ["/segments/list"] = true, ["/segments/details"] = true } },
  { fault = { type = "hugestring", bytes = 1000000 }, kind = "decode", status = 200, requests = 1,
    message = '"data" is missing', paths = { ["/segments/data_series"] = true } },
  { fault = { type = "badutf8" }, kind = "decode", status = 200, requests = 1,
    message = "invalid UTF%-8" },
  { fault = { type = "lonesurrogate" }, kind = "decode", status = 200, requests = 1,
    message = "lone high surrogate" },
  { fault = { type = "redirect", location = "http://127.0.0.1:9/elsewhere" }, kind = "http",
    status = 302, requests = 1, message = "redirects are not followed" },
  { fault = { type = "401" }, kind = "http", status = 401, requests = 1 },
  { fault = { type = "403" }, kind = "http", status = 403, requests = 1 },
  { fault = { type = "status", code = 400, message = "bad" }, kind = "http", status = 400, requests = 1 },
  { fault = { type = "status", code = 501, message = "no" }, kind = "http", status = 501, requests = 1 },
  { fault = { type = "badheaders" }, ok = true, requests = 1 },
}

local function describe_fault(f)
  local keys, parts = {}, {}
  for k in pairs(f) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(f[k]) end
  return table.concat(parts, " ")
end

describe("fault matrix", function()
  for _, path in ipairs(paths) do
    describe(path, function()
      for _, row in ipairs(matrix) do
        if not row.paths or row.paths[path] then
        local outcome = row.ok and ("data after " .. row.requests .. " requests")
          or (row.kind .. " " .. tostring(row.status or "") .. " after " .. row.requests)
        it(describe_fault(row.fault) .. " -> " .. outcome, function()
          local c, waits = client(row.opts)
          finally(function() c:close() end)
          local fault = { path = path }
          for k, v in pairs(row.fault) do fault[k] = v end
          mock:fault(fault)
          local res, err = calls[path](c)
          assert.equal(row.requests, requests(path))
          if row.ok then
            assert.is_nil(err)
            assert.equal("success", res.message)
          else
            assert.is_nil(res)
            assert.is_true(braze.errors.is(err))
            assert.equal(row.kind, err.kind)
            assert.equal(row.status, err.status)
            assert.equal(path, err.endpoint)
            assert.equal(row.attempts or row.requests, err.attempts)
            if row.message then assert.matches(row.message, err.message) end
            if row.retry_after then assert.near(row.retry_after, err.retry_after, 2) end
          end
          if row.waits then assert.same(row.waits, waits) end
          if row.wait_between then
            assert.equal(1, #waits)
            assert.is_true(waits[1] >= row.wait_between[1] and waits[1] <= row.wait_between[2])
          end
          -- Backoff waits stay within [0, retry_max].
          for _, w in ipairs(waits) do assert.is_true(w >= 0 and w <= 8) end
        end)
        end
      end
    end)
  end
end)

describe("each mid-way", function()
  for _, f in ipairs({ { type = "500", count = 2 }, { type = "429", retry_after = 0 },
    { type = "close" }, { type = "502", count = 3 } }) do
    it("survives " .. describe_fault(f) .. " on page 1 without losing or repeating a segment", function()
      local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, sleep = function() end }
      finally(function() c:close() end)
      local seen, n, injected = {}, 0, false
      for seg, page_no in c:each() do
        assert.is_nil(seen[seg.id])
        seen[seg.id] = true
        n = n + 1
        if n == 100 and not injected then
          local fault = { path = "/segments/list" }
          for k, v in pairs(f) do fault[k] = v end
          mock:fault(fault)
          injected = true
        end
        assert.equal(math.floor((n - 1) / 100), page_no)
      end
      assert.equal(250, n)
      assert.equal(3 + (f.count or 1), requests("/segments/list"))
    end)
  end

  it("raises after the retries are spent, and resumes at the failed page", function()
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, sleep = function() end,
      max_retries = 1 }
    finally(function() c:close() end)
    local n = 0
    local ok, err = pcall(function()
      for _ in c:each() do
        n = n + 1
        if n == 100 then mock:fault{ type = "503", count = 2, path = "/segments/list" } end
      end
    end)
    assert.is_false(ok)
    assert.equal("http", err.kind)
    assert.equal(503, err.status)
    assert.equal(2, err.attempts)
    assert.equal(100, n)
    -- resume where it failed: the error names the page, nothing is lost
    local failed_page = err.page
    assert.equal(1, failed_page)
    for _ in c:each{ page = failed_page } do n = n + 1 end
    assert.equal(250, n)
  end)
end)

describe("rate limits", function()
  it("waits for the reset instead of spending a request on a certain 429", function()
    local m = helpers.start_mock{ segments = 10, rate_limit = 2 }
    local waits = {}
    local c = braze.new{ api_key = m.api_key, endpoint = m.url, max_wait = 0.5,
      sleep = function(s) waits[#waits + 1] = s end }
    finally(function() c:close(); m:stop() end)
    assert(c:list())
    assert(c:list())
    assert.equal(0, c:rate_limit().remaining)
    local res, err = c:list()
    assert.is_nil(res)
    assert.equal("rate_limited", err.kind)
    assert.equal(0, err.attempts) -- no request was spent
    assert.equal(2, m:stats().requests)
    assert.is_true(err.retry_after > 0.5)
    assert.same({}, waits)
    assert.matches("window resets in %d+ s", tostring(err))
  end)

  it("sleeps until the reset when it is within max_wait", function()
    local m = helpers.start_mock{ segments = 10, rate_limit = 1 }
    local waits = {}
    local c = braze.new{ api_key = m.api_key, endpoint = m.url, max_wait = 7200,
      max_retries = 0, sleep = function(s) waits[#waits + 1] = s end }
    finally(function() c:close(); m:stop() end)
    assert(c:list())
    local reset = c:rate_limit().reset
    c:list() -- the mock's window has not really turned over: only the wait matters here
    assert.equal(1, #waits)
    assert.near(reset - os.time(), waits[1], 2)
  end)

  it("honours Retry-After given as an HTTP date", function()
    local retry = require("braze.retry")
    local now = os.time()
    local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 30)
    assert.near(30, retry.retry_after(date, now), 1)
    assert.is_nil(retry.retry_after("soon", now))
    assert.is_nil(retry.retry_after("", now))
    assert.equal(0, retry.retry_after(os.date("!%a, %d %b %Y %H:%M:%S GMT", now - 30), now))
  end)

  it("backs off exponentially with full jitter, capped by retry_max", function()
    local retry = require("braze.retry")
    for attempt = 1, 10 do
      for _ = 1, 50 do
        local w = retry.backoff(attempt, 0.5, 8)
        assert.is_true(w >= 0 and w <= math.min(8, 0.5 * 2 ^ (attempt - 1)))
      end
    end
  end)
end)

describe("timeouts", function()
  for _, f in ipairs({ { type = "hang" }, { type = "trickle", ms = 1000 } }) do
    it(f.type .. " ends in a timeout error near the timeout, retried", function()
      local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, timeout = 0.5,
        max_retries = 1, sleep = function() end }
      finally(function() c:close() end)
      mock:fault{ type = f.type, ms = f.ms, count = 2 }
      local t0 = core.monotonic()
      local res, err = c:list()
      local elapsed = core.monotonic() - t0
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.equal(2, err.attempts)
      -- two attempts of 0.5 s each: bounded, not hung
      assert.is_true(elapsed >= 0.9 and elapsed < 5, "elapsed " .. elapsed)
    end)
  end

  it("a connection refused is a network error", function()
    local c = braze.new{ api_key = "k", endpoint = "http://127.0.0.1:9", max_retries = 2,
      sleep = function() end }
    finally(function() c:close() end)
    local _, err = c:list()
    assert.equal("network", err.kind)
    assert.equal(3, err.attempts)
    assert.is_nil(err.status)
  end)
end)

describe("the default sleep", function()
  it("really sleeps (plain Lua hosts)", function()
    local t0 = core.monotonic()
    core.sleep(0.05)
    assert.is_true(core.monotonic() - t0 >= 0.04)
  end)
end)
