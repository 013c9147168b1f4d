-- details_many / data_series_many: results in input order, per-item
-- errors, the single-call retry policy, and the rate-limit window.
local braze = require("braze")
local helpers = require("spec.support.helpers")

local mock, ids

local function client(extra)
  local opts = { api_key = mock.api_key, endpoint = mock.url, sleep = function() end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return braze.new(opts)
end

setup(function()
  mock = helpers.start_mock{ segments = 250 }
  local c = client()
  ids = {}
  for seg in c:each() do ids[#ids + 1] = seg.id end
  c:close()
end)
teardown(function() mock:stop() end)
before_each(function() mock:reset() end)

describe("details_many", function()
  it("returns every segment's details in input order, same as details", function()
    local c = client()
    finally(function() c:close() end)
    local some = {}
    for i = 1, 40 do some[i] = ids[i * 6] end
    local res, errs = c:details_many(some, { concurrency = 16 })
    assert.is_nil(next(errs))
    assert.equal(40, #res)
    for i = 1, 40, 7 do
      assert.same(assert(c:details(some[i])).name, res[i].name)
    end
    assert.equal(40 + 6, mock:stats().by_path["/segments/details"])
  end)

  it("uses one connection per concurrent transfer, reused across calls", function()
    local c = client()
    finally(function() c:close() end)
    local before = mock:stats().connections
    c:details_many({ ids[1], ids[2], ids[3], ids[4] }, { concurrency = 4 })
    c:details_many({ ids[5], ids[6], ids[7], ids[8] }, { concurrency = 4 })
    local used = mock:stats().connections - before - 1 -- minus this stats call
    assert.is_true(used <= 4, "connections: " .. used)
  end)

  it("gives per-item errors next to the successes", function()
    local c = client()
    finally(function() c:close() end)
    local res, errs = c:details_many({ ids[1], "no-such-id", ids[2] })
    assert.truthy(res[1])
    assert.is_nil(res[2])
    assert.truthy(res[3])
    assert.equal("http", errs[2].kind)
    assert.equal(400, errs[2].status)
    assert.equal(1, errs[2].attempts)
    assert.is_nil(errs[1])
  end)

  it("retries transient failures and reports attempts", function()
    local c = client()
    finally(function() c:close() end)
    mock:fault{ type = "503", count = 2, path = "/segments/details" }
    mock:fault{ type = "close", count = 1, path = "/segments/details" }
    local some = { ids[1], ids[2], ids[3], ids[4], ids[5] }
    local res, errs = c:details_many(some, { concurrency = 5 })
    assert.is_nil(next(errs))
    for i = 1, 5 do assert.truthy(res[i]) end
    assert.equal(5 + 3, mock:stats().by_path["/segments/details"])
  end)

  it("gives up on an item after max_retries", function()
    local c = client{ max_retries = 1 }
    finally(function() c:close() end)
    mock:fault{ type = "500", count = 2, path = "/segments/details" }
    local res, errs = c:details_many({ ids[1] })
    assert.is_nil(res[1])
    assert.equal(500, errs[1].status)
    assert.equal(2, errs[1].attempts)
  end)

  it("never sends more requests than the rate-limit window has left", function()
    local m = helpers.start_mock{ segments = 30, rate_limit = 5 }
    local c = braze.new{ api_key = m.api_key, endpoint = m.url, sleep = function() end,
      max_wait = 1 }
    finally(function() c:close(); m:stop() end)
    local some = {}
    for i = 1, 12 do some[i] = ids[i] end
    assert(c:list()) -- learns the window: 4 requests left
    local res, errs = c:details_many(some, { concurrency = 16 })
    local ok, limited = 0, 0
    for i = 1, 12 do
      if res[i] then ok = ok + 1 end
      if errs[i] then
        assert.equal("rate_limited", errs[i].kind)
        limited = limited + 1
      end
    end
    assert.equal(4, ok)
    assert.equal(8, limited)
    assert.equal(5, m:stats().requests) -- no 429 was spent
  end)

  it("checks its arguments before any request", function()
    local c = client()
    finally(function() c:close() end)
    assert.has_error(function() c:details_many("x") end)
    assert.has_error(function() c:details_many({ ids[1], 7 }) end,
      "braze: details_many: ids[2] must be a non-empty string (got 7)")
    assert.has_error(function() c:details_many({ ids[1] }, { concurrency = 0 }) end)
    assert.has_error(function() c:details_many({ ids[1] }, { concurency = 2 }) end)
    assert.equal(0, mock:stats().requests)
  end)

  it("returns empty tables for no ids", function()
    local c = client()
    finally(function() c:close() end)
    local res, errs = c:details_many({})
    assert.same({}, res)
    assert.same({}, errs)
  end)
end)

describe("data_series_many", function()
  it("answers each request in order", function()
    local c = client()
    finally(function() c:close() end)
    local reqs = {}
    for i = 1, 10 do reqs[i] = { segment_id = ids[i], length = i, ending_at = "2026-11-01" } end
    local res, errs = c:data_series_many(reqs, { concurrency = 4 })
    assert.is_nil(next(errs))
    for i = 1, 10 do
      assert.equal(i, #res[i].data)
      assert.equal("2026-11-01", res[i].data[i].time)
    end
  end)

  it("names the bad request in argument errors", function()
    local c = client()
    finally(function() c:close() end)
    assert.has_error(function()
      c:data_series_many({ { segment_id = ids[1], length = 3 }, { segment_id = ids[2], length = 0 } })
    end, "braze: data_series_many: requests[2]: length must be an integer in 1..100 (got 0)")
    assert.equal(0, mock:stats().requests)
  end)
end)

describe("a transport with get only (no batch)", function()
  it("falls back to one request at a time", function()
    local urls = {}
    local t = { new = function()
      return {
        get = function(_, url)
          urls[#urls + 1] = url
          return { status = 200, headers = {}, body = { message = "success", name = url } }
        end,
        close = function() end,
      }
    end }
    local c = braze.new{ api_key = "k", instance = "US-01", transport = t }
    local res, errs = c:details_many({ "a", "b" })
    assert.is_nil(next(errs))
    assert.equal(2, #urls)
    assert.matches("segment_id=b$", res[2].name)
  end)
end)
