-- The library's promises at their edges (issue 11, items 1-5, 7, 8):
-- answers that arrive out of order, clocks that disagree, a close during a
-- wait, error objects that outlive the call, bodies of the wrong shape.
-- Transports here are fakes that play a server exactly; the mock covers the
-- same rows over real HTTP where it can.
local braze = require("braze")
local retry = require("braze.retry")
local window = require("braze.window")
local helpers = require("spec.support.helpers")

-- A key of its own for every client: clients of one key share their
-- workspace's rate-limit window, and each fake here is a workspace of its own.
local keys_made = 0
local function fresh_key()
  keys_made = keys_made + 1
  return "k" .. keys_made
end

local FAR = os.time() + 3600 -- a window reset well in the future

-- A fake server with one rate-limit window of `limit` requests, reset at
-- `reset`: it answers 429 once the window is used up, and its batch
-- answers the last request submitted first, so the first job carries the
-- highest `remaining` (what an out-of-order server does to in-order judging).
local function window_transport(limit, reset)
  local t = { served = 0, limited = 0, remaining = limit }
  local function answer(url)
    t.served = t.served + 1
    local headers = { ["x-ratelimit-limit"] = tostring(limit), ["x-ratelimit-reset"] = tostring(reset) }
    if t.remaining == 0 then
      t.limited = t.limited + 1
      headers["x-ratelimit-remaining"] = "0"
      return { status = 429, headers = headers, body = { message = "rate limited" } }
    end
    t.remaining = t.remaining - 1
    headers["x-ratelimit-remaining"] = tostring(t.remaining)
    local body = url:find("/segments/list", 1, true) and { message = "success", segments = {} }
      or { message = "success", name = url:match("segment_id=([^&]+)") }
    return { status = 200, headers = headers, body = body }
  end
  function t.new()
    return {
      get = function(_, url) return answer(url) end,
      batch = function()
        local pending = {}
        return {
          submit = function(_, url, tag) pending[#pending + 1] = { url = url, tag = tag } end,
          poll = function()
            local outs = {}
            for k = #pending, 1, -1 do
              local out = answer(pending[k].url)
              out.tag = pending[k].tag
              outs[#outs + 1] = out
              pending[k] = nil
            end
            return outs
          end,
          close = function() pending = {} end,
        }
      end,
      close = function() end,
    }
  end
  return t
end

local function ids(n)
  local out = {}
  for i = 1, n do out[i] = "seg-" .. i end
  return out
end

describe("the rate-limit window under concurrency", function()
  it("keeps the lowest remaining of answers out of order: no 429 is spent", function()
    local t = window_transport(10, FAR)
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t, max_wait = 1,
      sleep = function() end }
    assert(c:list()) -- learns the window: 9 left
    local res, errs = c:details_many(ids(30), { concurrency = 16 })
    local ok, limited = 0, 0
    for i = 1, 30 do
      if res[i] then ok = ok + 1 end
      if errs[i] then
        assert.equal("rate_limited", errs[i].kind)
        limited = limited + 1
      end
    end
    assert.equal(9, ok)
    assert.equal(21, limited)
    assert.equal(0, t.limited) -- the server never had to answer 429
    assert.equal(10, t.served)
    assert.equal(0, c:rate_limit().remaining)
  end)

  it("merges windows: lowest remaining within one reset, a later reset starts anew", function()
    local a = { limit = 10, remaining = 3, reset = 100 }
    assert.same({ limit = 10, remaining = 3, reset = 100 },
      window.merge(a, { limit = 10, remaining = 7, reset = 100 }))
    assert.same({ limit = 10, remaining = 1, reset = 100 },
      window.merge(a, { limit = 10, remaining = 1, reset = 100 }))
    assert.same({ limit = 10, remaining = 9, reset = 200 },
      window.merge(a, { limit = 10, remaining = 9, reset = 200 }))
    -- A late answer from the window before changes nothing.
    assert.same(a, window.merge(a, { limit = 10, remaining = 0, reset = 50 }))
    -- Garbage headers (all absent) forget nothing that is known.
    assert.same(a, window.merge(a, {}))
    assert.same(a, window.merge(nil, a))
  end)
end)

describe("a 429 whose reset is now or past (a client clock ahead of Braze's)", function()
  it("backs off instead of retrying at once", function()
    local served = 0
    local t = helpers.recording_transport(function()
      served = served + 1
      return { status = 429, headers = { ["x-ratelimit-remaining"] = "0",
        ["x-ratelimit-reset"] = tostring(os.time() - 30) }, body = { message = "slow down" } }
    end)
    local waits = {}
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t, max_retries = 3,
      retry_base = 0.5, sleep = function(s) waits[#waits + 1] = s end }
    local res, err = c:list()
    assert.is_nil(res)
    assert.equal("rate_limited", err.kind)
    assert.equal(4, served)
    assert.equal(3, #waits)
    for _, w in ipairs(waits) do assert.is_true(w > 0 and w <= 8, "wait " .. w) end
  end)

  it("takes Retry-After: 0 as no answer and falls back to the reset, then the backoff", function()
    local now = 1000
    assert.is_nil(retry.rate_limit_wait({ ["retry-after"] = "0" }, now))
    assert.equal(5, retry.rate_limit_wait({ ["retry-after"] = "0", ["x-ratelimit-reset"] = "1005" }, now))
    assert.is_nil(retry.rate_limit_wait({ ["x-ratelimit-reset"] = "1000" }, now))
    assert.is_nil(retry.rate_limit_wait({ ["x-ratelimit-reset"] = "990" }, now))
    assert.equal(7, retry.rate_limit_wait({ ["retry-after"] = "7", ["x-ratelimit-reset"] = "990" }, now))
  end)
end)

describe("close() during a retry wait", function()
  local function failing_then(c_ref)
    return helpers.recording_transport(function()
      return { status = 503, headers = {}, body = { message = "busy" } }
    end), function() c_ref.c:close() end
  end

  it("ends a single call with a clear 'client is closed' error", function()
    local ref = {}
    local t, sleep = failing_then(ref)
    ref.c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t, sleep = sleep }
    local res, err = ref.c:details("abc")
    assert.is_nil(res)
    assert.is_true(braze.errors.is(err))
    assert.equal("closed", err.kind)
    assert.matches("client is closed", tostring(err))
    assert.equal(1, #t.urls)
  end)

  it("ends every pending item of a batch with that error", function()
    local ref = {}
    local t, sleep = failing_then(ref)
    ref.c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t, sleep = sleep }
    local res, errs = ref.c:details_many({ "a", "b", "c" })
    for i = 1, 3 do
      assert.is_nil(res[i])
      assert.equal("closed", errs[i].kind)
      assert.equal(1, errs[i].attempts)
    end
  end)

  it("ends a wait for the rate-limit window too", function()
    local ref = {}
    local t = window_transport(1, os.time() + 5)
    ref.c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t,
      sleep = function() ref.c:close() end }
    assert(ref.c:list()) -- the window is now used up
    local res, err = ref.c:list()
    assert.is_nil(res)
    assert.equal("closed", err.kind)
    assert.equal(1, t.served)
  end)
end)

describe("an each loop on a closed client", function()
  it("raises 'client is closed' at the caller's line, not inside the library", function()
    local t = helpers.recording_transport()
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t }
    local it = c:each()
    c:close()
    local ok, msg = pcall(function()
      for _ in it do end
    end)
    assert.is_false(ok)
    assert.matches("braze: each: client is closed", msg)
    assert.is_nil(msg:find("braze/init.lua", 1, true), msg)
    assert.matches("^spec/client/edges_spec.lua:%d+: ", msg)
  end)
end)

describe("err.rate_limit", function()
  local function scripted(answers)
    local n = 0
    return helpers.recording_transport(function()
      n = n + 1
      local a = answers[n] or answers[#answers]
      local headers = { ["x-ratelimit-limit"] = "100", ["x-ratelimit-remaining"] = tostring(a[2]),
        ["x-ratelimit-reset"] = tostring(a[3]) }
      return { status = a[1], headers = headers, body = { message = "m", segments = {} } }
    end)
  end

  it("is a snapshot: writing to it changes nothing of the client's pacing", function()
    local t = scripted{ { 400, 50, FAR }, { 200, 49, FAR } }
    local slept = 0
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t,
      sleep = function() slept = slept + 1 end }
    local _, err = c:list()
    assert.equal(50, err.rate_limit.remaining)
    err.rate_limit.remaining = 0 -- would make the client wait an hour for the window
    assert(c:list())
    assert.equal(0, slept)
    assert.equal(49, c:rate_limit().remaining)
  end)

  it("is a snapshot: later calls do not change it", function()
    local soon = os.time() + 2
    local t = scripted{ { 400, 0, soon }, { 200, 99, soon + 3600 } }
    local c = braze.new{ api_key = fresh_key(), instance = "US-01", transport = t, sleep = function() end }
    local _, err = c:list()
    assert.equal(0, err.rate_limit.remaining)
    assert(c:list()) -- waits for the window, which turns it over
    assert.same({ limit = 100, remaining = 0, reset = soon }, err.rate_limit)
  end)
end)

describe("a success status with a body of the wrong shape", function()
  local mock
  setup(function() mock = helpers.start_mock{ segments = 250 } end)
  teardown(function() mock:stop() end)
  before_each(function() mock:reset() end)

  local function client()
    return braze.new{ api_key = mock.api_key, endpoint = mock.url, sleep = function() end }
  end

  local rows = {
    { "/segments/list", "[1,2,3]", "expected a JSON object, got an array" },
    { "/segments/list", "null", "expected a JSON object, got null" },
    { "/segments/list", '"success"', "expected a JSON object, got a string" },
    { "/segments/list", "{}", '"segments" is missing' },
    { "/segments/list", '{"message":"success"}', '"segments" is missing' },
    { "/segments/list", '{"segments":{"x":1}}', '"segments" is not an array %(got an object%)' },
    { "/segments/list", '{"segments":7}', '"segments" is not an array %(got a number%)' },
    { "/segments/list", '{"segments":[{"id":"a"},3]}', '"segments%[2%]" is not an object' },
    { "/segments/list", '{"segments":[{"id":"a"},""]}', '"segments%[2%]" is not an object %(got a string%)' },
    { "/segments/list", '{"segments":[{"id":"a"},"x"]}', '"segments%[2%]" is not an object %(got a string%)' },
    { "/segments/list", '{"segments":[{"id":"a"},[1]]}', '"segments%[2%]" is not an object %(got an array%)' },
    { "/segments/list", '{"segments":[{"id":"a"},{"id":"b"},null]}', '"segments%[3%]" is not an object %(got null%)' },
    { "/segments/list", '{"segments":[{"id":"a"},true]}', '"segments%[2%]" is not an object %(got a boolean%)' },
    { "/segments/list", '{"segments":[{"id":"a","len":1},{"1":"b"},[]]}', nil },
    { "/segments/details", "[]", nil },
    { "/segments/details", "[{}]", "expected a JSON object, got an array" },
    { "/segments/data_series", '{"message":"success"}', '"data" is missing' },
    { "/segments/data_series", '{"data":{"time":1}}', '"data" is not an array' },
  }
  local calls = {
    ["/segments/list"] = function(c) return c:list() end,
    ["/segments/details"] = function(c) return c:details("x") end,
    ["/segments/data_series"] = function(c) return c:data_series{ segment_id = "x", length = 3 } end,
  }
  for _, row in ipairs(rows) do
    local path, body, message = row[1], row[2], row[3]
    it(path .. " answering 200 " .. body .. (message and " is a decode error" or " is accepted"), function()
      local c = client()
      finally(function() c:close() end)
      mock:fault{ type = "raw", path = path, body = body }
      local res, err = calls[path](c)
      if not message then
        assert.is_nil(err)
        assert.is_table(res)
        return
      end
      assert.is_nil(res)
      assert.equal("decode", err.kind)
      assert.equal(200, err.status)
      assert.equal(path, err.endpoint)
      assert.equal(1, err.attempts)
      assert.matches(message, err.message)
      assert.equal(1, mock:stats().requests) -- not retried
    end)
  end

  it("each raises at the broken page instead of ending early, with the page to resume at", function()
    local c = client()
    finally(function() c:close() end)
    local seen = {}
    local ok, err = pcall(function()
      for segment in c:each() do
        seen[#seen + 1] = segment.id
        -- page 1 comes back as a success without "segments"
        if #seen == 1 then mock:fault{ type = "raw", path = "/segments/list", body = '{"message":"success"}' } end
      end
    end)
    assert.is_false(ok)
    assert.equal("decode", err.kind)
    assert.equal(1, err.page)
    assert.equal(100, #seen)
    for segment in c:each{ page = err.page } do seen[#seen + 1] = segment.id end
    assert.equal(250, #seen)
    local unique = {}
    for _, id in ipairs(seen) do unique[id] = true end
    local n = 0
    for _ in pairs(unique) do n = n + 1 end
    assert.equal(250, n)
  end)
end)

describe("messages a user reads", function()
  it("tostring says Braze's message once when its errors array only repeats it", function()
    local err = braze.errors.new{ kind = "http", status = 400, endpoint = "/segments/details",
      message = "Invalid segment_id", errors = { "Invalid segment_id" } }
    assert.equal("braze: HTTP 400 on /segments/details: Invalid segment_id", tostring(err))
    err = braze.errors.new{ kind = "http", status = 400, endpoint = "/segments/details",
      message = "bad", errors = { "bad", "length too long" } }
    assert.equal("braze: HTTP 400 on /segments/details: bad (length too long)", tostring(err))
  end)

  it("braze.new suggests the instance a near-miss name meant", function()
    assert.has_error(function() braze.new{ api_key = fresh_key(), instance = "us01" } end,
      "braze: unknown instance \"us01\": did you mean US-01?")
    local ok, msg = pcall(braze.new, { api_key = fresh_key(), endpoint = "US-1" })
    assert.is_false(ok)
    assert.matches('did you mean instance = "US%-01"%?', msg)
  end)
end)

describe("retry jitter", function()
  it("differs between processes started alike (LuaJIT and nginx workers do not seed math.random)", function()
    local script = "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path; "
      .. "package.cpath = '" .. (package.cpath:match("^[^;]+") or "build/?.so") .. ";' .. package.cpath; "
      .. "local r = require('braze.retry'); local t = {}; "
      .. "for i = 1, 4 do t[i] = string.format('%.6f', r.backoff(4, 1, 8)) end; print(table.concat(t, ' '))"
    local cmd = helpers.interpreter() .. " -e " .. helpers.shell_quote(script)
    local a = helpers.read_pipe(cmd)
    local b = helpers.read_pipe(cmd)
    assert.matches("^[%d. ]+\n$", a)
    assert.are_not.equal(a, b)
    for w in a:gmatch("%S+") do
      local v = tonumber(w)
      assert.is_true(v >= 0 and v <= 8)
    end
  end)
end)

describe("a single call whose transport raises", function()
  it("raises what the transport raised (the contract: only a programming error raises)", function()
    local t = { new = function()
      return { get = function() error("boom: the transport broke") end, close = function() end }
    end }
    local c = braze.new{ api_key = "raise-key-1", endpoint = "https://h.example", transport = t }
    local ok, msg = pcall(c.list, c, {})
    assert.is_false(ok)
    assert.matches("boom: the transport broke", tostring(msg), 1, true)
    c:close()
  end)

  it("an over-long segment id is an argument error naming segment_id and its length", function()
    local c = braze.new{ api_key = "raise-key-2", endpoint = "https://h.example",
      transport = helpers.recording_transport() }
    local ok, msg = pcall(c.details, c, string.rep("y", 9e6))
    assert.is_false(ok)
    assert.matches("details: segment_id is 9000000 bytes long", msg, 1, true)
    ok, msg = pcall(c.data_series, c, { segment_id = string.rep("y", 5000), length = 1 })
    assert.is_false(ok)
    assert.matches("segment_id is 5000 bytes long", msg, 1, true)
    c:close()
  end)

  it("libcurl: a 9 MB segment id never reaches libcurl (it refused the URL with a raise)", function()
    local c = braze.new{ api_key = "raise-key-3", endpoint = "http://127.0.0.1:9" }
    local ok, msg = pcall(c.details, c, string.rep("y", 9e6))
    assert.is_false(ok)
    assert.matches("segment_id is 9000000 bytes long", msg, 1, true)
    assert.is_nil(msg:find("libcurl", 1, true))
    c:close()
  end)
end)

describe("argument checks of list and the *_many calls", function()
  local c
  before_each(function()
    c = braze.new{ api_key = "args-key", endpoint = "https://h.example", transport = helpers.recording_transport() }
  end)
  after_each(function() c:close() end)

  it("list's page is at most 2^52, as each's", function()
    assert(c:list{ page = 2 ^ 52 })
    local ok, msg = pcall(c.list, c, { page = 2 ^ 53 })
    assert.is_false(ok)
    assert.matches("braze: list: page must be at most 2^52", msg, 1, true)
  end)

  it("details_many and data_series_many refuse a table that is not an array, naming the argument", function()
    local ok, msg = pcall(c.details_many, c, { x = "a" })
    assert.is_false(ok)
    assert.matches("braze: details_many: ids must be an array", msg, 1, true)
    ok, msg = pcall(c.data_series_many, c, { x = { segment_id = "a", length = 1 } })
    assert.is_false(ok)
    assert.matches("braze: data_series_many: requests must be an array", msg, 1, true)
    assert.same({}, (c:details_many({}))) -- an empty array is fine
  end)

  it("details_many's ids are checked as details' segment_id (length too)", function()
    local ok, msg = pcall(c.details_many, c, { "a", string.rep("y", 5000) })
    assert.is_false(ok)
    assert.matches("details_many: ids[2]: segment_id is 5000 bytes long", msg, 1, true)
  end)

  it("an unknown option of details_many / data_series_many points at the caller", function()
    -- (not tail calls: the caller's line must stay on the stack)
    for _, call in ipairs({ function() local r = c:details_many({ "a" }, { concurency = 2 }); return r end,
      function() local r = c:data_series_many({ { segment_id = "a", length = 1 } }, { concurency = 2 }); return r end }) do
      local ok, msg = pcall(call)
      assert.is_false(ok)
      assert.matches("unknown option \"concurency\"", msg, 1, true)
      assert.matches("^spec/client/edges_spec%.lua:%d+:", msg)
    end
  end)
end)
