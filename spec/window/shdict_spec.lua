-- braze.window.shdict in a real nginx with 4 workers and lua_shared_dict
-- (spec/support/nginx_workers.lua, handlers in spec/window/nginx/), and
-- braze.window.redis there through lua-resty-redis (Debian lua-nginx-redis)
-- sharing a real redis-server with a plain Lua process.
-- Needs nginx + libnginx-mod-http-lua, braze/core.so for LuaJIT in
-- build-luajit, redis-server, lua-nginx-redis, lua-redis. Run:
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=nginx spec/window/shdict_spec.lua
local nginx = require("spec.support.nginx_workers")
local redis_server = require("spec.support.redis_server")
local helpers = require("spec.support.helpers")
local wstore = require("braze.window.store")
local socket = require("socket")

local function enc(s) return helpers.url_encode(s) end

-- n concurrent GETs; their decoded bodies in order.
local function together(srv, targets)
  local out = helpers.concurrent(srv.port, targets, nil, 30)
  local docs = {}
  for i, r in ipairs(out) do
    assert(r.status == 200 and type(r.body) == "table",
      "request " .. i .. " answered " .. tostring(r.status) .. ": " .. tostring(r.body))
    docs[i] = r.body
  end
  return docs
end

describe("#nginx window stores in nginx with 4 workers", function()
  local srv, redis
  local n = 0
  local ws

  setup(function()
    srv = nginx.start{ workers = 4 }
    redis = redis_server.start()
  end)
  teardown(function()
    if srv then srv:stop() end
    if redis then redis:stop() end
  end)
  before_each(function()
    n = n + 1
    ws = enc(wstore.workspace("http://127.0.0.1:1", "key-" .. n))
  end)
  after_each(function()
    assert.is_nil(srv:lua_errors())
    -- e.g. a Redis command sent on a socket not connected yet (nginx logs the
    -- dead Redis's refused connects itself: those are expected)
    for line in srv:error_log():gmatch("[^\n]+") do
      if line:find("[error]", 1, true) and not line:find("connect() failed", 1, true) then
        error("nginx logged: " .. line)
      end
    end
  end)

  for _, kind in ipairs({ "shdict", "redis" }) do
    it(kind .. ": 12 requests acquiring at once in 4 workers never get more than the room", function()
      local extra = "&store=" .. kind .. "&redis_port=" .. redis.port
      local now = os.time()
      srv:get("/stop")
      local s = srv:get("/merge?ws=" .. ws .. "&limit=300&remaining=200&reset=" .. (now + 60) .. extra)
      assert.equal(200, s.state.remaining)
      local targets = {}
      for i = 1, 12 do
        targets[i] = "/grab?ws=" .. ws .. "&want=" .. (i % 3 + 1) .. "&reserve=30&now=" .. now .. extra
      end
      -- the grabs wait for /go; fire it from a child shortly after they start
      os.execute("(sleep 0.3; exec " .. helpers.interpreter() .. " -e " .. helpers.shell_quote(
        "package.path='./?.lua;'..package.path; require('spec.support.helpers').request("
        .. "{host='127.0.0.1',port=" .. srv.port .. "},'/go')") .. ") >/dev/null 2>&1 &")
      local docs = together(srv, targets)
      local total, pids = 0, {}
      for _, d in ipairs(docs) do
        assert.is_nil(d.err)
        total = total + d.granted
        pids[d.pid] = true
      end
      local workers = 0
      for _ in pairs(pids) do workers = workers + 1 end
      assert.is_true(workers >= 2, "the requests ran in " .. workers .. " worker(s)")
      assert.equal(170, total) -- 200 - 30, exactly
      assert.equal(170, srv:get("/state?ws=" .. ws .. extra).state.inflight)
    end)

    it(kind .. ": a SIGKILLed worker's reservations lapse by their ttl", function()
      local extra = "&store=" .. kind .. "&redis_port=" .. redis.port
      srv:get("/merge?ws=" .. ws .. "&limit=300&remaining=200&reset=" .. (os.time() + 60) .. extra)
      local h = srv:get("/hold?ws=" .. ws .. "&n=150&ttl=1" .. extra)
      assert.equal(150, h.held)
      assert.equal(150, srv:get("/state?ws=" .. ws .. extra).state.inflight)
      os.execute(string.format("kill -KILL %d", h.pid))
      local started = socket.gettime()
      local left
      repeat
        socket.sleep(0.1)
        left = srv:get("/state?ws=" .. ws .. extra).state.inflight
      until left == 0 or socket.gettime() - started > 4
      assert.equal(0, left)
      assert.is_true(socket.gettime() - started < 2.5)
    end)
  end

  it("redis: an nginx worker and a plain Lua process share one window", function()
    local now = os.time()
    local wsraw = wstore.workspace("http://127.0.0.1:1", "shared-" .. n)
    redis_server.lua_path()
    local plain = require("braze.window.redis").new{ port = redis.port }
    finally(function() plain:close() end)
    srv:get("/merge?ws=" .. enc(wsraw) .. "&limit=300&remaining=100&reset=" .. (now + 60)
      .. "&store=redis&redis_port=" .. redis.port)
    assert.equal(40, (plain:acquire(wsraw, 40, 30, 10, now)))
    local h = srv:get("/hold?ws=" .. enc(wsraw) .. "&n=100&ttl=10&store=redis&redis_port=" .. redis.port)
    assert.equal(60, h.held) -- 100 - 40 in flight from the plain process
    assert.equal(100, plain:state(wsraw).inflight)
    assert.equal(0, (plain:acquire(wsraw, 1, 30, 10, now)))
  end)

  it("redis in nginx: a dead Redis fails every acquire with nil, err, reported once (hook, else ngx.log)", function()
    local port = redis_server.free_port()
    local d = srv:get("/failing?hook=1&port=" .. port)
    for i = 1, 20 do assert.matches("^nil: braze.window.redis: ", d.results[i]) end
    assert.equal(1, #d.reports)
    assert.equal(1, d.errors)
    srv:get("/failing?port=" .. port)
    local log = srv:error_log()
    local _, count = log:gsub("braze.window.redis: [^\n]*pacing with the in%-process window", "")
    assert.equal(1, count)
  end)
end)
