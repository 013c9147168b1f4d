-- braze.new{ window = require("braze.window.shdict").new("braze") } in a
-- real nginx with 4 workers and a client made per request: together they
-- keep one workspace window against the mock's compressed window
-- (--rate-limit 300 --rate-window 3). Handlers: spec/window/nginx/.
-- Needs what spec/window/shdict_spec.lua needs. Run:
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=nginx spec/window/nginx_shared_spec.lua
local nginx = require("spec.support.nginx_workers")
local recording = require("spec.support.recording_transport")
local helpers = require("spec.helpers")
local cjson = require("cjson")
local socket = require("socket")

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
    pids[r.body.pid] = true
    recording.merge(all, r.body)
  end
  local workers = 0
  for _ in pairs(pids) do workers = workers + 1 end
  return ok, all, workers
end

describe("#nginx braze.window.shdict shared by 4 nginx workers", function()
  local srv, mock, mock2, dir

  setup(function()
    mock = helpers.start_mock{ segments = 250, rate_limit = 300, rate_window = 3, latency = 20 }
    -- another workspace (another endpoint) for clients without the store: a
    -- worker's clients of one workspace share its window, store and all
    mock2 = helpers.start_mock{ segments = 250, rate_limit = 300, rate_window = 3, latency = 20 }
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
      braze_endpoint = mock.url, braze_endpoint2 = mock2.url, braze_api_key = mock.api_key, braze_ids_file = dir .. "/ids" } }
  end)
  teardown(function()
    if srv then srv:stop() end
    if mock then mock:stop() end
    if mock2 then mock2:stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)
  before_each(function() mock:reset(); mock2:reset() end)
  after_each(function()
    assert.is_nil(srv:lua_errors())
    for line in srv:error_log():gmatch("[^\n]+") do
      if line:find("[error]", 1, true) then error("nginx logged: " .. line) end
    end
  end)

  it("12 per-request clients, details_many of 100 at 16 each, reserve 30: all succeed, 0 429s, at most 270 per window", function()
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

  it("without the store, the same load overshoots the reserve (what the store is for)", function()
    local ok, all = run_paced(srv, 12, "n=100&concurrency=16&reserve=30&store=none&mock=2")
    assert.equal(1200, ok) -- retries get them all through
    local most = recording.most_used(all, 300)
    local n429 = all.statuses[429] or 0
    assert.is_true(most > 270 or n429 > 0, "used " .. most .. ", " .. n429 .. " 429s")
  end)
end)
