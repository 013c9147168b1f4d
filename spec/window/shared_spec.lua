-- braze.new{ window = store }: clients in several processes share one
-- workspace window through a real redis-server (started here), against the
-- mock's compressed window (--rate-limit 300 --rate-window 3). What the
-- answers said of the window is recorded by spec/support/recording_transport.
-- Run (.busted excludes #redis by default):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=redis spec/window/shared_spec.lua
local braze = require("braze")
local window = require("braze.window")
local redis_server = require("spec.support.redis_server")
local recording = require("spec.support.recording_transport")
local helpers = require("spec.support.helpers")
local cjson = require("cjson")
local socket = require("socket")

redis_server.lua_path()
local redis_store = require("braze.window.redis")

local q = helpers.shell_quote

local function child(args)
  local cmd = "echo $$; BRAZE_CPATH=" .. q(package.cpath) .. " exec " .. helpers.interpreter()
    .. " spec/support/window_child.lua "
    .. table.concat(args, " ")
  local pipe = assert(io.popen("exec sh -c " .. q(cmd) .. " </dev/null", "r"))
  return { pipe = pipe, pid = tonumber(pipe:read("*l")) }
end

-- Fetch `n` segment ids from the mock (then forget the count).
local function segment_ids(mock, n)
  local ids, page = {}, 0
  while #ids < n do
    local res = assert(mock:api("/segments/list?page=" .. page))
    local doc = cjson.decode(res.body)
    if #doc.segments == 0 then break end
    for _, s in ipairs(doc.segments) do ids[#ids + 1] = s.id end
    page = page + 1
  end
  mock:reset()
  return ids
end

describe("#redis braze.new{ window = braze.window.redis }", function()
  local srv, mock
  local n = 0
  local function key()
    n = n + 1
    return "shared-spec-key-" .. n .. "-" .. os.time()
  end

  setup(function()
    srv = redis_server.start()
    mock = helpers.start_mock{ segments = 250, rate_limit = 300, rate_window = 3, latency = 5 }
  end)
  teardown(function()
    if mock then mock:stop() end
    if srv then srv:stop() end
  end)
  before_each(function() mock:reset() end)

  it("refuses a window that is not a store, naming the option", function()
    assert.has_error(function() braze.new{ api_key = "k", endpoint = mock.url, window = 5 } end,
      "braze: window must be a window store (braze.window.shdict or braze.window.redis)")
  end)

  it("a fresh client finds the window the store knows, before its first request", function()
    local k = key()
    local store = redis_store.new{ port = srv.port }
    finally(function() store:close() end)
    local reset = os.time() + 60
    store:merge(window.workspace(mock.url, k), 300, 123, reset)
    local c = braze.new{ api_key = k, endpoint = mock.url, window = store }
    assert.same({ limit = 300, remaining = 123, reset = reset }, c:rate_limit())
    c:close()
  end)

  it("a request that got no answer is given back to the store by the next call", function()
    local k = key()
    local m = helpers.start_mock{ segments = 10, api_key = k }
    local store = redis_store.new{ port = srv.port }
    finally(function() m:stop(); store:close() end)
    local c = braze.new{ api_key = k, endpoint = m.url, window = store, max_retries = 0, timeout = 0.5 }
    local ws = window.workspace(m.url, k)
    assert(c:list{})
    m:fault{ type = "hang", path = "/segments/list" }
    local res, err = c:list{}
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.equal(1, store:state(ws).inflight) -- not settled: no answer to settle it with
    assert(c:list{})
    assert.equal(0, store:state(ws).inflight)
    c:close()
  end)

  it("a 429's hold reaches the other clients of the workspace through the store", function()
    local k = key()
    local m = helpers.start_mock{ segments = 10, api_key = k }
    local store = redis_store.new{ port = srv.port }
    finally(function() m:stop(); store:close() end)
    local slept = {}
    local c = braze.new{ api_key = k, endpoint = m.url, window = store, max_retries = 1,
      sleep = function(s) slept[#slept + 1] = s end }
    m:fault{ type = "429", retry_after = "2", path = "/segments/list" }
    local before = os.time()
    assert(c:list{})
    local s = store:state(window.workspace(m.url, k))
    assert.is_number(s.hold_until) -- only a hold puts it there
    assert.is_true(s.hold_until >= before, "hold until " .. tostring(s.hold_until))
    c:close()
  end)

  it("3 processes exporting 250 segments with details and series: 0 429s, at most 270 used per window", function()
    local k = "braze-mock-key"
    local go = os.tmpname()
    os.remove(go)
    local kids = {}
    for i = 1, 3 do
      kids[i] = child({ "export", srv.port, "-", q(mock.url), q(k), "30", go })
    end
    finally(function() os.remove(go) end)
    for _, kid in ipairs(kids) do assert.equal("ready", kid.pipe:read("*l")) end
    helpers.write_file(go, "")
    local all = { statuses = {}, lowest = {} }
    for _, kid in ipairs(kids) do
      local line = kid.pipe:read("*l")
      kid.pipe:close()
      local ok, doc = pcall(cjson.decode, line or "")
      assert(ok, "child said: " .. tostring(line))
      assert.is_nil(doc.error)
      assert.same({ 250, 0 }, { doc.segments, doc.failed })
      assert.same({}, doc.reports) -- the store never failed
      recording.merge(all, doc)
    end
    assert.is_nil(all.statuses[429])
    assert.equal(3 * (250 * 2 + 3), all.statuses[200]) -- 3 list pages, details and series each
    local most = recording.most_used(all, 300)
    assert.is_true(most <= 270, "used " .. most .. " of 300 in one window")
    assert.is_true(most >= 200, "used only " .. most .. ": the test did not press the window")
  end)

  it("Redis never started: every call succeeds with the in-process window, reported once", function()
    local reports = {}
    local store = redis_store.new{ port = redis_server.free_port(), on_error = function(e)
      reports[#reports + 1] = e end }
    local k = key()
    local own = helpers.start_mock{ segments = 60, api_key = k, rate_limit = 300, rate_window = 3 }
    finally(function() own:stop() end)
    local c = braze.new{ api_key = k, endpoint = own.url, window = store, reserve = 30 }
    local ids = segment_ids(own, 60)
    local res, errs = c:details_many(ids, { concurrency = 8 })
    for i = 1, #ids do assert(res[i], errs[i] and tostring(errs[i])) end
    for _ = 1, 5 do assert(c:list{}) end
    assert.equal(1, #reports)
    assert.matches("^braze.window.redis: ", reports[1])
    c:close()
  end)

  it("Redis stopped mid-run: every call succeeds, the fallback reported once", function()
    local own = redis_server.start()
    local reports = {}
    local store = redis_store.new{ port = own.port, on_error = function(e) reports[#reports + 1] = e end }
    local k = key()
    local m = helpers.start_mock{ segments = 40, api_key = k, rate_limit = 300, rate_window = 3 }
    finally(function() own:stop(); store:close(); m:stop() end)
    local c = braze.new{ api_key = k, endpoint = m.url, window = store, reserve = 30 }
    local ids = segment_ids(m, 40)
    local res = c:details_many(ids, { concurrency = 8 })
    for i = 1, #ids do assert.is_table(res[i]) end
    assert.equal(0, #reports)
    local s = assert(store:state(window.workspace(m.url, k)))
    assert.same({ 300, 0 }, { s.limit, s.inflight }) -- the store was used, and given back
    own:stop()
    local errs
    res, errs = c:details_many(ids, { concurrency = 8 })
    for i = 1, #ids do assert(res[i], errs[i] and tostring(errs[i])) end
    for _ = 1, 5 do assert(c:list{}) end
    assert.equal(1, #reports)
    c:close()
  end)
end)

describe("#redis braze.window.redis, a SIGKILLed process", function()
  it("its reservations lapse within one window, and the others get full width again", function()
    local srv = redis_server.start()
    local store = redis_store.new{ port = srv.port }
    finally(function() store:close(); srv:stop() end)
    local ws = window.workspace("http://127.0.0.1:1", "kill-spec")
    local reset = os.time() + 3
    store:merge(ws, 300, 250, reset)
    -- the child reserves like a client does: ttl = time to the reset + 1 s
    local kid = child({ "hold", srv.port, q(ws), "200", tostring(reset - os.time() + 1) })
    assert.equal("held 200", kid.pipe:read("*l"))
    os.execute("kill -KILL " .. kid.pid)
    kid.pipe:close()
    assert.equal(50, (store:acquire(ws, 100, 0, 1, os.time()))) -- the dead one's 200 still count
    local started = socket.gettime()
    while store:state(ws).inflight > 0 and socket.gettime() - started < 6 do socket.sleep(0.1) end
    assert.equal(0, store:state(ws).inflight)
    assert.is_true(socket.gettime() - started < 5, "lapsed after " .. (socket.gettime() - started) .. " s")
    store:merge(ws, 300, 300, os.time() + 3) -- the next window
    assert.equal(300, (store:acquire(ws, 300, 0, 1, os.time())))
  end)
end)
