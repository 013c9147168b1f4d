-- braze.new{ window = require("braze.window.shdict").new("braze") } in a
-- real nginx with 4 workers and a client made per request: together they
-- keep one workspace window against the mock's compressed window
-- (--rate-limit 300 --rate-window 3). Handlers: spec/window/nginx/.
-- Needs what spec/window/shdict_spec.lua needs. Run:
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=nginx spec/window/nginx_shared_spec.lua
local nginx = require("spec.support.nginx_workers")
local recording = require("spec.support.recording_transport")
local helpers = require("spec.support.helpers")
local cjson = require("cjson")
local socket = require("socket")
local window = require("braze.window")

local last_messages -- of the last request that had failures
local function run_paced(srv, count, query)
  local targets = {}
  for i = 1, count do targets[i] = "/paced?first=" .. ((i - 1) * 100 + 1) .. "&" .. query end
  local out = helpers.concurrent(srv.port, targets, nil, 120)
  local all, pids = { statuses = {}, lowest = {} }, {}
  local ok = 0
  for i, r in ipairs(out) do
    assert(r.status == 200 and type(r.body) == "table",
      "request " .. i .. ": " .. tostring(r.status) .. " " .. tostring(r.body))
    ok = ok + r.body.ok
    if next(r.body.messages or {}) then last_messages = cjson.encode(r.body.messages) end
    pids[r.body.pid] = true
    recording.merge(all, r.body)
  end
  local workers = 0
  for _ in pairs(pids) do workers = workers + 1 end
  return ok, all, workers
end

describe("#nginx braze.window.shdict shared by 4 nginx workers", function()
  local srv, mock, mock2, mock3, dir

  setup(function()
    mock = helpers.start_mock{ segments = 250, rate_limit = 300, rate_window = 3, latency = 20 }
    -- another workspace (another endpoint) for clients without the store: a
    -- worker's clients of one workspace share its window, store and all
    mock2 = helpers.start_mock{ segments = 250, rate_limit = 300, rate_window = 3, latency = 20 }
    mock3 = helpers.start_mock{ segments = 20, rate_limit = 300, rate_window = 3, latency = 4000 }
    local ids = {}
    for page = 0, 2 do
      local doc = cjson.decode(assert(mock:api("/segments/list?page=" .. page)).body)
      for _, s in ipairs(doc.segments) do ids[#ids + 1] = s.id end
    end
    local p = io.popen("mktemp -d /tmp/braze-ids.XXXXXX")
    dir = p:read("*l")
    p:close()
    helpers.write_file(dir .. "/ids", table.concat(ids, "\n") .. "\n")
    srv = nginx.start{ workers = 4, vars = {
      braze_endpoint = mock.url, braze_endpoint2 = mock2.url, braze_endpoint3 = mock3.url,
      braze_api_key = mock.api_key, braze_ids_file = dir .. "/ids" } }
  end)
  teardown(function()
    if srv then srv:stop() end
    if mock then mock:stop() end
    if mock2 then mock2:stop() end
    if mock3 then mock3:stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)
  before_each(function() mock:reset(); mock2:reset() end)
  after_each(function()
    assert.is_nil(srv:lua_errors())
    for line in srv:error_log():gmatch("[^\n]+") do
      if line:find("[error]", 1, true) then error("nginx logged: " .. line) end
    end
  end)

  it("12 per-request clients, details_many of 100 at 16 each, reserve 30: all succeed, 0 429s, "
    .. "at most 270 per window", function()
    local started = socket.gettime()
    local ok, all, workers = run_paced(srv, 12, "n=100&concurrency=16&reserve=30&store=shdict")
    assert.equal(1200, ok)
    assert.is_nil(all.statuses[429])
    assert.equal(1200, all.statuses[200])
    local most = recording.most_used(all, 300)
    assert.is_true(most <= 270, "used " .. most .. " of 300 in one window")
    assert.is_true(most >= 200, "used only " .. most .. ": the test did not press the window")
    assert.is_true(workers >= 2, "ran in " .. workers .. " worker(s)")
    -- 1,200 requests at 270 a window need at least 4 windows: the pace held
    assert.is_true(socket.gettime() - started > 9)
  end)

  it("a worker SIGKILLed with requests in flight: its reservations lapse within one window", function()
    local slow = mock3
    local ws = helpers.url_encode(window.workspace(slow.url, slow.api_key))
    srv:get("/merge?ws=" .. ws .. "&limit=300&remaining=300&reset=" .. (os.time() + 2))
    -- a request whose 16 details wait 4 s at the mock, its answer never read
    local c = assert(socket.connect("127.0.0.1", srv.port))
    finally(function() c:close() end)
    c:send("GET /paced?mock=3&n=16&concurrency=16&reserve=0&store=shdict HTTP/1.1\r\nHost: x\r\n\r\n")
    local state
    for _ = 1, 50 do
      socket.sleep(0.05)
      state = srv:get("/state?ws=" .. ws)
      if state.state.inflight == 16 then break end
    end
    assert.equal(16, state.state.inflight)
    assert.is_number(state.paced_pid)
    local killed = socket.gettime()
    os.execute(string.format("kill -KILL %d", state.paced_pid))
    repeat
      socket.sleep(0.1)
      state = srv:get("/state?ws=" .. ws)
    until state.state.inflight == 0 or socket.gettime() - killed > 8
    assert.equal(0, state.state.inflight)
    -- the reservations lived to the window's reset + 1 s, not to the 30 s deadline
    assert.is_true(socket.gettime() - killed < 4.5, "lapsed after " .. (socket.gettime() - killed) .. " s")
    srv:get("/merge?ws=" .. ws .. "&limit=300&remaining=300&reset=" .. (os.time() + 3))
    assert.equal(100, srv:get("/hold?ws=" .. ws .. "&n=100&ttl=1").held) -- full width again
  end)

  it("#redis nginx workers and a plain Lua process share one window through Redis: 0 429s, at most 270", function()
    -- nginx side: sequential calls
    local redis_server = require("spec.support.redis_server")
    local rsrv = redis_server.start()
    local go = os.tmpname()
    os.remove(go)
    finally(function() rsrv:stop(); os.remove(go) end) -- (busted keeps one finally per test)
    local cmd = "BRAZE_CPATH=" .. helpers.shell_quote(package.cpath) .. " exec " .. helpers.interpreter()
      .. " spec/support/window_child.lua export " .. rsrv.port
      .. " - " .. helpers.shell_quote(mock.url) .. " " .. helpers.shell_quote(mock.api_key) .. " 30 " .. go
    local kid = assert(io.popen(cmd .. " </dev/null", "r"))
    assert.equal("ready", kid:read("*l"))
    helpers.write_file(go, "")
    local ok, all = run_paced(srv, 6, "n=100&sequential=1&reserve=30&store=redis&redis_port=" .. rsrv.port)
    local line = kid:read("*l")
    kid:close()
    local doc = cjson.decode(line)
    assert.same({ 250, 0 }, { doc.segments, doc.failed })
    local st = {}
    for k, v in pairs(all.statuses) do st[#st + 1] = k .. "=" .. v end
    assert.equal(600, ok, table.concat(st, " ") .. " " .. tostring(last_messages))
    recording.merge(all, doc)
    assert.is_nil(all.statuses[429])
    local most = recording.most_used(all, 300)
    assert.is_true(most <= 270, "used " .. most .. " of 300 in one window")
    assert.is_true(most >= 200, "used only " .. most .. ": the test did not press the window")
  end)

  it("#redis details_many at 16 in nginx workers paced through Redis (the store's cosockets between "
    .. "the batch's polls): all succeed, 0 429s, at most 270 per window", function()
    -- lua-nginx-module 0.10.23 ended these batches with "already waited or killed" while the
    -- batch collected its light threads with ngx.thread.wait
    local redis_server = require("spec.support.redis_server")
    local rsrv = redis_server.start()
    finally(function() rsrv:stop() end)
    local ok, all = run_paced(srv, 6, "n=100&concurrency=16&reserve=30&store=redis&redis_port=" .. rsrv.port)
    local st = {}
    for k, v in pairs(all.statuses) do st[#st + 1] = k .. "=" .. v end
    assert.equal(600, ok, table.concat(st, " ") .. " " .. tostring(last_messages))
    assert.is_nil(all.statuses[429])
    local most = recording.most_used(all, 300)
    assert.is_true(most <= 270, "used " .. most .. " of 300 in one window")
    assert.is_true(most >= 200, "used only " .. most .. ": the test did not press the window")
  end)

  it("braze.transport.ngx's batch survives a yield of the request while it runs: a pipelined each "
    .. "whose loop body calls ngx.sleep(0.001) gets all 250 segments", function()
    -- Debian's lua-nginx-module 0.10.23 ended it with "the transport raised: already waited or
    -- killed" after ~200 of 250 while the batch collected its light threads with ngx.thread.wait
    local doc = srv:get("/eachsleep?sleep=1", 60)
    assert.is_nil(doc.err)
    assert.equal(250, doc.count)
  end)

  it("without the store, the same load overshoots the reserve (what the store is for)", function()
    local ok, all = run_paced(srv, 12, "n=100&concurrency=16&reserve=30&store=none&mock=2")
    assert.equal(1200, ok) -- retries get them all through
    local most = recording.most_used(all, 300)
    local n429 = all.statuses[429] or 0
    assert.is_true(most > 270 or n429 > 0, "used " .. most .. ", " .. n429 .. " 429s")
  end)
end)
