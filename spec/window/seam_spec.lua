-- braze.new{ window = store } with an in-memory store that keeps the store
-- contract (lua/braze/window/README.md) and records every call: how a client
-- uses its store, and that a failing store never fails a call. No Redis, no
-- nginx: the stores themselves are specced in redis_spec.lua and
-- shdict_spec.lua.
local braze = require("braze")
local window = require("braze.window")
local wstore = require("braze.window.store")
local helpers = require("spec.support.helpers")

-- A store in this Lua state: one workspace table per ws; `calls` lists the
-- operations in order; `fail = true` makes every operation fail.
local function memory_store()
  local st = { calls = {}, spaces = {}, seq = 0, errors = 0, id = "memory:" .. tostring({}) }
  local function space(ws)
    local s = st.spaces[ws]
    if not s then
      s = { res = {} }
      st.spaces[ws] = s
    end
    return s
  end
  local function inflight(s)
    local n = 0
    for _, k in pairs(s.res) do n = n + k end
    return n
  end
  local function snapshot(s)
    return { limit = s.limit, remaining = s.remaining, reset = s.reset, offset = s.offset,
      hold_until = s.hold_until, inflight = inflight(s) }
  end
  local function call(name, ...)
    st.calls[#st.calls + 1] = name
    if st.fail then
      st.errors = st.errors + 1
      return false
    end
    return true, ...
  end
  function st.merge(_, ws, l, r, t, o)
    if not call("merge") then return nil, "down" end
    local s = space(ws)
    wstore.merge(s, l, r, t)
    if o then s.offset = o end
    return snapshot(s)
  end
  function st.acquire(_, ws, want, reserve, _, now, blind)
    if not call("acquire") then return nil, "down" end
    local s = space(ws)
    local g = wstore.grant(s, inflight(s), want, reserve, now, blind)
    local id = false
    if g > 0 then
      st.seq = st.seq + 1
      id = st.seq
      s.res[id] = g
    end
    return g, id, snapshot(s)
  end
  function st.release(_, ws, id, k)
    if not call("release") then return nil, "down" end
    local s = space(ws)
    if s.res[id] then
      s.res[id] = s.res[id] - k
      if s.res[id] <= 0 then s.res[id] = nil end
    end
    return true
  end
  function st.settle(_, ws, id, k, l, r, t, o)
    if not call("settle") then return nil, "down" end
    local s = space(ws)
    if id and s.res[id] then
      s.res[id] = s.res[id] - k
      if s.res[id] <= 0 then s.res[id] = nil end
    end
    wstore.merge(s, l, r, t)
    if o then s.offset = o end
    return snapshot(s)
  end
  function st.hold(_, ws, u)
    if not call("hold") then return nil, "down" end
    local s = space(ws)
    if not s.hold_until or u > s.hold_until then s.hold_until = u end
    return snapshot(s)
  end
  function st.state(_, ws)
    if not call("state") then return nil, "down" end
    return snapshot(space(ws))
  end
  function st.count(name)
    local n = 0
    for _, c in ipairs(st.calls) do if c == name then n = n + 1 end end
    return n
  end
  return st
end

describe("braze.new{ window = store }", function()
  -- a mock (so a workspace) of its own per test: its key is new
  local mock
  local n = 0
  before_each(function()
    n = n + 1
    mock = helpers.start_mock{ segments = 30, api_key = "seam-key-" .. n }
  end)
  after_each(function() mock:stop() end)

  local function fresh(store, opts)
    local o = { api_key = mock.api_key, endpoint = mock.url, window = store, max_retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local c = braze.new(o)
    return c, window.workspace(c.endpoint, mock.api_key)
  end

  it("asks the store before every request and settles every answer with its window", function()
    local st = memory_store()
    local c = fresh(st)
    assert(c:list{})
    assert(c:list{})
    assert.equal(2, st.count("acquire"))
    assert.equal(2, st.count("settle"))
    local ws = next(st.spaces)
    assert.is_string(ws)
    assert.equal(0, st:state(ws).inflight) -- given back
    local s = st.spaces[ws]
    assert.equal(c:rate_limit().remaining, s.remaining)
    c:close()
  end)

  it("starts only what the store grants: details_many waits for room taken elsewhere", function()
    local st = memory_store()
    local _, ws = fresh(st, { reserve = 0 })
    local ids = {}
    for i, s in ipairs(require("cjson").decode(mock:api("/segments/list").body).segments) do
      if i <= 10 then ids[i] = s.id end
    end
    mock:reset()
    -- another state holds all the room until this client has slept 4 times
    st:merge(ws, 1000, 10, os.time() + 7200)
    local _, other = st:acquire(ws, 10, 0, 30, os.time(), 1)
    local released = false
    local sleeps = 0
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = st, max_retries = 0,
      sleep = function(s)
        sleeps = sleeps + 1
        if not released and sleeps > 3 then st:release(ws, other, 10); released = true end
        require("socket").sleep(s)
      end }
    local res = c:details_many(ids, { concurrency = 8 })
    for i = 1, #ids do assert.is_table(res[i]) end
    assert.is_true(released, "it waited for the other state's requests")
    assert.equal(10, mock:stats().requests)
    c:close()
  end)

  it("a fresh client adopts the window the store knows", function()
    local st = memory_store()
    local reset = os.time() + 100
    st:merge(window.workspace(mock.url, mock.api_key), 500, 77, reset)
    local c = fresh(st)
    assert.same({ limit = 500, remaining = 77, reset = reset }, c:rate_limit())
    c:close()
  end)

  it("a store that fails never fails a call: the in-process window goes on", function()
    local st = memory_store()
    st.fail = true
    local c = fresh(st, { reserve = 5 })
    for _ = 1, 5 do assert(c:list{}) end
    assert.is_true(st.errors > 0)
    assert.equal(5, mock:stats().requests)
    c:close()
  end)

  it("clients naming the same store share a window; without a store, another", function()
    local st = memory_store()
    local a = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = st }
    local b = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = st }
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url }
    assert(a:list{})
    assert.same(a:rate_limit(), b:rate_limit())
    assert.equal(1, st.count("acquire"))
    assert(c:list{})
    assert.equal(1, st.count("acquire")) -- c's window has no store
    a:close(); b:close(); c:close()
  end)

  it("refuses a window option that is not a store", function()
    for _, bad in ipairs({ 5, "redis", {}, { acquire = 1 } }) do
      assert.has_error(function() braze.new{ api_key = "k", endpoint = mock.url, window = bad } end,
        "braze: window must be a window store (braze.window.shdict or braze.window.redis)")
    end
  end)
end)

describe("what a window store says, sanity-checked", function()
  local mock
  local n = 0
  before_each(function()
    n = n + 1
    mock = helpers.start_mock{ segments = 5, api_key = "sane-key-" .. n }
  end)
  after_each(function() mock:stop() end)

  local function planted(fields)
    local st = memory_store()
    local ws = window.workspace(mock.url, mock.api_key)
    st.spaces[ws] = { res = {} }
    for k, v in pairs(fields) do st.spaces[ws][k] = v end
    return st
  end

  it("a reset far ahead (written into the store by hand) is garbage: not adopted, counted", function()
    local st = planted{ limit = 100, remaining = 0, reset = 99999999999 }
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = st, max_retries = 0 }
    assert.is_nil(c:rate_limit())
    assert(c:list{})
    assert.is_true(c:rate_limit().reset < os.time() + 7200)
    assert.is_true(st.garbage > 0)
    c:close()
  end)

  it("a hold far ahead is garbage: calls go on instead of failing for good", function()
    local st = planted{ hold_until = 99999999999 }
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = st, max_retries = 0 }
    local res, err = c:list{}
    assert.is_nil(err)
    assert.is_table(res)
    assert.is_true(st.garbage > 0)
    c:close()
  end)

  it("a remaining above the limit is garbage", function()
    local st = planted{ limit = 100, remaining = 5000, reset = os.time() + 100 }
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = st, max_retries = 0 }
    assert.is_nil(c:rate_limit())
    assert.is_true(st.garbage > 0)
    c:close()
  end)

  it("a hold within reach is still adopted", function()
    local st = planted{ hold_until = os.time() + 100 }
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = st, max_retries = 0,
      max_wait = 1 }
    local res, err = c:list{}
    assert.is_nil(res)
    assert.equal("rate_limited", err.kind)
    assert.equal(0, mock:stats().requests)
    c:close()
  end)
end)
