-- Pacing under the rate-limit window: a client clock that disagrees with
-- Braze's, several runners of one client, garbage resets, a reserve that
-- leaves nothing. Transports here are fakes that play Braze exactly; the
-- clock-skew case runs on a virtual clock (Braze's time advances with each
-- answer and with every sleep of the client).
local fake_braze = require("spec.support.fake_braze")
local helpers = require("spec.support.helpers")

-- A key of its own for every client: clients of one key share their
-- workspace's rate-limit window, and each fake here is a workspace of its own.
local keys_made = 0
local function fresh_key()
  keys_made = keys_made + 1
  return "k" .. keys_made
end

local floor = math.floor

-- The braze modules loaded afresh with `os.time` and `braze.core.monotonic`
-- replaced (modules keep the clocks they found when loaded), then restored.
-- Returns the fresh `braze`.
local BRAZE_MODULES = { "braze", "braze.scheduler", "braze.retry", "braze.window", "braze.each",
  "braze.pipeline", "braze.errors", "braze.shape" }
local function with_clocks(wall, monotonic, body)
  local core = require("braze.core")
  local saved_time, saved_monotonic = os.time, core.monotonic
  local saved = {}
  for _, name in ipairs(BRAZE_MODULES) do saved[name] = package.loaded[name]; package.loaded[name] = nil end
  os.time, core.monotonic = wall, monotonic -- luacheck: ignore 122 (a clock injected on purpose)
  local ok, err = pcall(function() body(require("braze")) end)
  os.time, core.monotonic = saved_time, saved_monotonic -- luacheck: ignore 122
  for _, name in ipairs(BRAZE_MODULES) do package.loaded[name] = saved[name] end
  if not ok then error(err, 0) end
end

-- Braze on a virtual clock `t.now` (epoch seconds, fractional): windows of
-- `limit` requests, `length` seconds long, aligned on multiples of it as
-- Braze's hourly windows are; every answer takes 5 ms and carries `Date`.
local function virtual_braze(limit, length)
  local t = { now = 1764000000, served = 0, limited = 0, start = nil, used = 0, max_used = 0 }
  local function answer(url)
    t.now = t.now + 0.005
    local start = floor(t.now / length) * length
    if start ~= t.start then t.start, t.used = start, 0 end
    t.served = t.served + 1
    local headers = { date = os.date("!%a, %d %b %Y %H:%M:%S GMT", floor(t.now)),
      ["x-ratelimit-limit"] = tostring(limit), ["x-ratelimit-reset"] = tostring(start + length) }
    if t.used >= limit then
      t.limited = t.limited + 1
      headers["x-ratelimit-remaining"] = "0"
      return { status = 429, headers = headers, body = { message = "rate limited" } }
    end
    t.used = t.used + 1
    if t.used > t.max_used then t.max_used = t.used end
    headers["x-ratelimit-remaining"] = tostring(limit - t.used)
    return { status = 200, headers = headers,
      body = { message = "success", name = url:match("segment_id=([^&]+)") } }
  end
  local conn = { get = function(_, url) return answer(url) end, close = function() end }
  function conn.batch()
    local pending = {}
    return {
      submit = function(_, url, tag) pending[#pending + 1] = { url = url, tag = tag } end,
      poll = function()
        local outs = {}
        for i = 1, math.min(3, #pending) do
          local r = table.remove(pending, 1)
          local out = answer(r.url)
          out.tag = r.tag
          outs[i] = out
        end
        return outs
      end,
      close = function() pending = {} end,
    }
  end
  t.transport = { new = function() return conn end }
  return t
end

local function ids(n)
  local out = {}
  for i = 1, n do out[i] = "seg-" .. i end
  return out
end

describe("a client clock ahead of Braze's", function()
  for _, skew in ipairs({ 1, 3 }) do
    it("(+" .. skew .. " s) spends no 429 storm: one shared hold, and the offset learned from Date", function()
      local braze_t = virtual_braze(20, 10)
      local results, errs
      with_clocks(function() return floor(braze_t.now + skew) end, function() return braze_t.now end,
        function(braze)
          local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = braze_t.transport,
            max_wait = 60, sleep = function(s) braze_t.now = braze_t.now + s end }
          results, errs = c:details_many(ids(200), { concurrency = 8 })
        end)
      assert.same({}, errs)
      assert.equal(200, #results)
      -- Before: hundreds of 429s, most items failed. A 429 now and then is
      -- allowed where the Date's one-second grain meets a window's edge.
      assert.is_true(braze_t.limited <= 2, "429s: " .. braze_t.limited)
      assert.equal(20, braze_t.max_used)
    end)
  end

  it("one 429 holds every request of the client, not only the one that got it", function()
    local braze_t = virtual_braze(10, 10)
    local results, errs
    with_clocks(function() return floor(braze_t.now + 2) end, function() return braze_t.now end,
      function(braze)
        -- A transport without Date: the offset cannot be learned, and the
        -- reset looks past when the window is used up.
        local inner = braze_t.transport.new()
        local conn = { close = function() end }
        local function strip(res) if res then res.headers.date = nil end return res end
        function conn.get(_, url) return strip(inner:get(url)) end
        function conn.batch()
          local b = inner.batch()
          return { submit = b.submit, close = b.close, poll = function(self, timeout)
            local outs = b.poll(self, timeout)
            for _, out in ipairs(outs) do strip(out) end
            return outs
          end }
        end
        local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = { new = function() return conn end },
          max_wait = 60, max_retries = 6, retry_base = 0.5, retry_max = 4,
          sleep = function(s) braze_t.now = braze_t.now + s end }
        results, errs = c:details_many(ids(60), { concurrency = 8 })
      end)
    assert.same({}, errs)
    assert.equal(60, #results)
    -- Each turnover costs a few probes at most, never a round of 8.
    assert.is_true(braze_t.limited <= 30, "429s: " .. braze_t.limited)
  end)
end)

describe("every request of a client counts against its window", function()
  it("two pipelines consumed alternately keep the reserve and spend no 429", function()
    local fake = fake_braze.new{ segments = 250, mode = "async",
      window = { limit = 300, remaining = 300, reset = os.time() + 1800 } }
    local braze = require("braze")
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = fake.transport,
      reserve = 20, max_wait = 1, sleep = function() end }
    local a = c:each{ details = true, concurrency = 16 }
    local b = c:each{ details = true, concurrency = 16, page = 1 }
    local live = { a, b }
    local errs = {}
    while #live > 0 do
      for i = #live, 1, -1 do
        local ok, seg = pcall(live[i])
        if not ok then errs[#errs + 1] = seg end
        if not ok or seg == nil then table.remove(live, i) end
      end
    end
    assert.equal(0, fake.served_429)
    assert.equal(20, fake.window.remaining)
    assert.equal(280, #fake.log)
    for _, err in ipairs(errs) do assert.equal("rate_limited", err.kind) end
  end)

  it("a single call beside a pipeline with requests in flight waits for the window", function()
    local fake = fake_braze.new{ segments = 250, mode = "async",
      window = { limit = 150, remaining = 150, reset = os.time() + 1800 } }
    local braze = require("braze")
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = fake.transport,
      reserve = 5, max_wait = 1, sleep = function() end }
    local it = c:each{ details = true, concurrency = 16 }
    assert(it()) -- page 0 done; the pipeline's pool is full again (page 1)
    local singles = 0
    while c:details("seg-00001") do singles = singles + 1 end
    while true do -- the pipeline's requests in flight land
      local ok, seg = pcall(it)
      if not ok or seg == nil then break end
    end
    assert.is_true(singles > 0)
    assert.equal(0, fake.served_429)
    assert.equal(5, fake.window.remaining)
  end)
end)

describe("X-RateLimit-Reset implausibly far ahead", function()
  local function scripted(answers)
    local n = 0
    return helpers.recording_transport(function()
      n = n + 1
      local a = answers[n] or answers[#answers]
      return { status = 200, headers = { ["x-ratelimit-limit"] = "100",
        ["x-ratelimit-remaining"] = tostring(a[1]), ["x-ratelimit-reset"] = tostring(a[2]) },
        body = { message = "success", segments = {} } }
    end)
  end

  it("is garbage: it neither starts a window nor hides the real ones", function()
    local braze = require("braze")
    local now = os.time()
    local far, real = now + 10 * 365 * 86400, now + 600
    local t = scripted{ { 99, far }, { 50, real }, { 49, real }, { 98, far }, { 48, real } }
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t, sleep = function() end }
    assert(c:list())
    assert.is_nil(c:rate_limit())
    assert(c:list())
    assert(c:list())
    assert.same({ limit = 100, remaining = 49, reset = real }, c:rate_limit())
    assert(c:list()) -- garbage again: nothing changes
    assert.same({ limit = 100, remaining = 49, reset = real }, c:rate_limit())
    assert(c:list())
    assert.equal(48, c:rate_limit().remaining)
  end)
end)

describe("a reserve at or above the window's limit", function()
  for _, reserve in ipairs({ 200, 1000, 0.999 }) do
    it("(" .. reserve .. " of 200) fails rate_limited at once, naming the reserve", function()
      local braze = require("braze")
      local served, slept = 0, 0
      local t = helpers.recording_transport(function()
        served = served + 1
        return { status = 200, headers = { ["x-ratelimit-limit"] = "200",
          ["x-ratelimit-remaining"] = tostring(200 - served), ["x-ratelimit-reset"] = tostring(os.time() + 5) },
          body = { message = "success", segments = {} } }
      end)
      local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t, reserve = reserve,
        max_wait = 60, sleep = function() slept = slept + 1 end }
      assert(c:list()) -- the first answer tells the limit
      local res, err = c:list()
      assert.is_nil(res)
      assert.equal("rate_limited", err.kind)
      assert.matches("reserve", err.message)
      assert.matches("limit %(200%)", err.message)
      local _, errs = c:details_many({ "a", "b", "c" }, { concurrency = 2 })
      for i = 1, 3 do assert.equal("rate_limited", errs[i].kind) end
      assert.has_error(function() for _ in c:each{ details = true } do end end)
      assert.equal(1, served)
      assert.equal(0, slept)
    end)
  end
end)

describe("Braze's clock through libcurl", function()
  it("braze.core keeps the Date header, and the window learns the offset from it", function()
    local canned = require("spec.support.canned_server")
    local core = require("braze.core")
    local window = require("braze.window")
    local body = '{"message":"success","segments":[]}'
    local server = canned.start{ dated = canned.response("HTTP/1.1 200 OK", {
      "Date: Thu, 01 Jan 2026 00:00:00 GMT", "Content-Type: application/json",
      "Content-Length: " .. #body }, body) }
    finally(function() server:stop() end)
    local s = core.session{ api_key = "k" }
    finally(function() s:close() end)
    local res = assert(s:get(server:url("dated")))
    assert.equal("Thu, 01 Jan 2026 00:00:00 GMT", res.headers.date)
    local w = window.new()
    w:update(res.headers)
    assert.near(1767225600 - os.time(), w.offset, 2) -- Braze's clock, as that answer told it
  end)
end)
