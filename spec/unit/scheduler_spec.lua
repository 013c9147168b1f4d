-- braze.scheduler as a module: a single request and a runner over a
-- scripted transport (get only, or get and batch), without braze.new.
local scheduler = require("braze.scheduler")
local window = require("braze.window")

-- A client's private state around `conn`, as braze.new makes it.
local function state(conn, extra)
  local client = { conn = conn, base = "https://x", redact = function(s) return s end,
    max_retries = 2, retry_base = 0, retry_max = 0, max_wait = 60, sleep = function() end,
    reserve = 0, window = window.new() }
  for k, v in pairs(extra or {}) do client[k] = v end
  return client
end

local function ok(body, h) return { status = 200, headers = h or {}, body = body } end

describe("braze.scheduler", function()
  it("request: retries a 503, then gives the body", function()
    local n = 0
    local conn = { get = function()
      n = n + 1
      if n < 3 then return { status = 503, headers = {}, body = { message = "busy" } } end
      return ok({ message = "success", name = "x" })
    end }
    local body, err = scheduler.request(state(conn), "/segments/details", "?segment_id=a")
    assert.is_nil(err)
    assert.equal("x", body.name)
    assert.equal(3, n)
  end)

  it("request: an error object with the endpoint and attempts once the retries are spent", function()
    local conn = { get = function() return nil, "network", "refused" end }
    local body, err = scheduler.request(state(conn), "/segments/list", "")
    assert.is_nil(body)
    assert.equal("network", err.kind)
    assert.equal("/segments/list", err.endpoint)
    assert.equal(3, err.attempts)
  end)

  it("request: a closed client ends the call before any request", function()
    local client = state({ get = function() error("must not be called") end })
    client.conn = nil
    local _, err = scheduler.request(client, "/segments/list", "")
    assert.equal("closed", err.kind)
  end)

  for _, async in ipairs({ false, true }) do
    local how = async and "over batch" or "over get"
    it("runner " .. how .. ": every job done once, at most `concurrency` in flight", function()
      local flying, most, served = 0, 0, 0
      local conn = { get = function(_, url)
        served = served + 1
        return ok({ message = "success", name = url })
      end }
      if async then
        conn.batch = function(_, n)
          assert.equal(4, n)
          local pending = {}
          return {
            submit = function(_, url, tag)
              flying = flying + 1
              most = math.max(most, flying)
              pending[#pending + 1] = { url = url, tag = tag }
            end,
            poll = function()
              local r = table.remove(pending, 1)
              flying = flying - 1
              served = served + 1
              local out = ok({ message = "success", name = r.url })
              out.tag = r.tag
              return { out }
            end,
            close = function() end,
          }
        end
      end
      local queries = {}
      for i = 1, 20 do queries[i] = "?segment_id=s" .. i end
      local res, errs = scheduler.request_many(state(conn), "/segments/details", queries, 4)
      assert.same({}, errs)
      for i = 1, 20 do assert.equal("https://x/segments/details?segment_id=s" .. i, res[i].name) end
      assert.equal(20, served)
      if async then assert.equal(4, most) end
    end)
  end

  it("runner: urgent jobs start first", function()
    local order = {}
    local conn = { get = function(_, url)
      order[#order + 1] = url:match("q=(%w+)")
      return ok({ message = "success", segments = {} })
    end }
    local runner = scheduler.runner(state(conn), 1)
    local function done() end
    runner:add({ path = "/segments/details", query = "?q=late", done = done })
    runner:add({ path = "/segments/list", query = "?q=first", urgent = true, done = done })
    while runner:step() do end
    assert.same({ "first", "late" }, order)
  end)

  it("runner: never starts more than the window's room above the reserve", function()
    local remaining = 12
    local conn = { get = function()
      remaining = remaining - 1
      return ok({ message = "success" }, { ["x-ratelimit-limit"] = "12",
        ["x-ratelimit-remaining"] = tostring(remaining), ["x-ratelimit-reset"] = tostring(os.time() + 3600) })
    end }
    local client = state(conn, { max_wait = 1, reserve = 4 })
    local queries = {}
    for i = 1, 10 do queries[i] = "?segment_id=s" .. i end
    local res, errs = scheduler.request_many(client, "/segments/details", queries, 8)
    local done, limited = 0, 0
    for i = 1, 10 do
      if res[i] then done = done + 1 else
        assert.equal("rate_limited", errs[i].kind)
        limited = limited + 1
      end
    end
    assert.equal(8, done)
    assert.equal(2, limited)
    assert.equal(4, remaining)
  end)

  it("a hold longer than max_wait (set through a shared window) fails at once, without sleeping", function()
    local slept = 0
    local conn = { get = function() error("must not be called") end }
    local client = state(conn, { max_wait = 5, sleep = function(s) slept = slept + s end })
    client.window:hold(100) -- another client of the workspace got a 429 asking for 100 s
    local _, err = scheduler.request(client, "/segments/list", "")
    assert.equal("rate_limited", err.kind)
    assert.is_true(err.retry_after > 99)
    local res, errs = scheduler.request_many(client, "/segments/details", { "?segment_id=a", "?segment_id=b" }, 2)
    assert.same({}, res)
    assert.equal("rate_limited", errs[1].kind)
    assert.equal("rate_limited", errs[2].kind)
    assert.equal(0, slept)
  end)
end)

describe("braze.scheduler's rate_limited message", function()
  local function known(client, remaining)
    client.window:update({ ["x-ratelimit-limit"] = "100", ["x-ratelimit-remaining"] = tostring(remaining),
      ["x-ratelimit-reset"] = tostring(os.time() + 100) })
  end

  it("for a hold names no reserve (the remaining count is not the reserve)", function()
    local client = state({ get = function() error("must not be called") end }, { max_wait = 1, reserve = 5 })
    known(client, 50)
    client.window:hold(100)
    local _, err = scheduler.request(client, "/segments/list", "")
    assert.equal("rate_limited", err.kind)
    assert.is_nil(err.message:find("reserve", 1, true), err.message)
  end)

  it("for a window used up to the reserve names the reserve's size", function()
    local client = state({ get = function() error("must not be called") end }, { max_wait = 1, reserve = 5 })
    known(client, 3)
    local _, err = scheduler.request(client, "/segments/list", "")
    assert.equal("rate_limited", err.kind)
    assert.matches("its last 5 requests are the reserve", err.message, 1, true)
  end)
end)
