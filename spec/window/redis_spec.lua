-- braze.window.redis against a real redis-server (Debian `redis-server`,
-- started here on a free 127.0.0.1 port) through redis-lua (Debian
-- `lua-redis`): the store contract, atomicity across processes, expiry of a
-- killed process's reservations, and failure without an error for the caller.
-- Run (.busted excludes #redis by default):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=redis spec/window/redis_spec.lua
local redis_server = require("spec.support.redis_server")
local helpers = require("spec.support.helpers")
local wstore = require("braze.window.store")
local socket = require("socket")

redis_server.lua_path()
local redis_store = require("braze.window.redis")

local q = helpers.shell_quote

-- A child (spec/support/window_child.lua) in the background: its pipe and pid.
local function child(args)
  local cmd = "echo $$; BRAZE_CPATH=" .. q(package.cpath) .. " exec " .. helpers.interpreter()
    .. " spec/support/window_child.lua "
    .. table.concat(args, " ")
  local pipe = assert(io.popen("exec sh -c " .. q(cmd) .. " </dev/null", "r"))
  local pid = tonumber(pipe:read("*l"))
  return { pipe = pipe, pid = pid }
end

describe("#redis braze.window.redis", function()
  local srv, store, ws
  local n = 0

  setup(function() srv = redis_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function()
    n = n + 1
    ws = wstore.workspace("http://127.0.0.1:1", "key-" .. n)
    store = redis_store.new{ port = srv.port }
  end)
  after_each(function() store:close() end)

  describe("the window", function()
    it("merges answers as braze.window does: lowest remaining, later reset, late answers ignored", function()
      local s = assert(store:merge(ws, 300, 200, 1000, 1.5))
      assert.same({ 300, 200, 1000, 1.5, 0 }, { s.limit, s.remaining, s.reset, s.offset, s.inflight })
      assert.equal(200, store:merge(ws, 300, 250, 1000).remaining) -- same window: the lowest
      assert.equal(150, store:merge(ws, 300, 150, 1000).remaining)
      assert.equal(150, store:merge(ws, 300, 10, 900).remaining)   -- an earlier window: late
      s = store:merge(ws, 300, 299, 2000)                          -- a new window
      assert.same({ 299, 2000, 1.5 }, { s.remaining, s.reset, s.offset })
      s = assert(store:state(ws))
      assert.same({ 300, 299, 2000 }, { s.limit, s.remaining, s.reset })
    end)

    it("grants the room above the reserve less what is in flight, and a release gives it back", function()
      store:merge(ws, 300, 200, os.time() + 60)
      local g, id, s = store:acquire(ws, 100, 30, 10, os.time())
      assert.same({ 100, 100 }, { g, s.inflight })
      local g2, id2 = store:acquire(ws, 100, 30, 10, os.time())
      assert.equal(70, g2)                   -- 200 - 30 - 100
      assert.equal(0, (store:acquire(ws, 1, 30, 10, os.time())))
      assert.is_true(store:release(ws, id, 40))
      assert.equal(130, store:state(ws).inflight)
      assert.is_true(store:release(ws, id2, 70))
      assert.is_true(store:release(ws, id, 100)) -- more than is left: only the 60 left
      assert.equal(0, store:state(ws).inflight)
    end)

    it("settles an answer in one step: the request leaves the in-flight count, its window is merged", function()
      store:merge(ws, 300, 200, os.time() + 60)
      local _, id = store:acquire(ws, 10, 0, 10, os.time())
      local s = assert(store:settle(ws, id, 1, 300, 180, os.time() + 60, 0.5))
      assert.same({ 9, 180, 0.5 }, { s.inflight, s.remaining, s.offset })
      s = assert(store:settle(ws, false, 1, 300, 170, os.time() + 60))
      assert.same({ 9, 170 }, { s.inflight, s.remaining })
    end)

    it("takes a fractional reserve of the limit", function()
      store:merge(ws, 300, 100, os.time() + 60)
      assert.equal(70, (store:acquire(ws, 500, 0.1, 10, os.time()))) -- 100 - ceil(30)
    end)

    it("grants `blind` requests while the window is unknown or its reset has passed", function()
      assert.equal(1, (store:acquire(ws, 16, 30, 10, os.time(), 1)))
      assert.equal(0, (store:acquire(ws, 16, 30, 10, os.time(), 1))) -- one learns it
      store:merge(ws, 300, 5, os.time() - 1)
      local g = store:acquire(ws, 16, 30, 10, os.time(), 16)
      assert.equal(15, g) -- 16 blind, 1 in flight
    end)

    it("grants nothing while a hold lasts (Braze's clock, as the caller gives it)", function()
      store:merge(ws, 300, 200, 5000)
      assert.equal(4000, store:hold(ws, 4000).hold_until)
      assert.equal(4000, store:hold(ws, 3000).hold_until) -- a hold only grows
      assert.equal(0, (store:acquire(ws, 5, 0, 10, 3999)))
      assert.equal(5, (store:acquire(ws, 5, 0, 10, 4000.5)))
    end)

    it("lets reservations expire after their ttl (on Redis's clock)", function()
      store:merge(ws, 300, 200, os.time() + 60)
      assert.equal(50, (store:acquire(ws, 50, 0, 0.3, os.time())))
      assert.equal(50, store:state(ws).inflight)
      socket.sleep(0.5)
      assert.equal(0, store:state(ws).inflight)
      assert.equal(200, (store:acquire(ws, 500, 0, 10, os.time())))
    end)

    it("keeps the key out of Redis: keys and values carry only its fingerprint", function()
      local secret = "0f4f2bf6-6a53-4f1d-9d0b-3f7f4a1c2e9d"
      local wsk = wstore.workspace("https://rest.iad-01.braze.com", secret)
      assert.equal("https://rest.iad-01.braze.com#" .. wstore.fingerprint(secret), wsk)
      assert.matches("^%x+$", wstore.fingerprint(secret))
      assert.equal(12, #wstore.fingerprint(secret))
      store:merge(wsk, 300, 200, os.time() + 60)
      store:acquire(wsk, 5, 0, 10, os.time())
      local keys = helpers.read_pipe("redis-cli -p " .. srv.port .. " --no-raw keys '*'")
      local dump = helpers.read_pipe("redis-cli -p " .. srv.port .. " --scan | while read k; do "
        .. "redis-cli -p " .. srv.port .. " dump \"$k\"; done")
      assert.matches(wstore.fingerprint(secret), keys, 1, true)
      assert.is_nil(keys:find(secret, 1, true))
      assert.is_nil(dump:find(secret, 1, true))
      assert.is_nil(keys:find(secret:sub(1, 8), 1, true))
    end)

    it("tells workspaces apart by endpoint and by key", function()
      local a = wstore.workspace("http://e1", "k1")
      assert.are_not.equal(a, wstore.workspace("http://e1", "k2"))
      assert.are_not.equal(a, wstore.workspace("http://e2", "k1"))
      assert.equal(a, wstore.workspace("http://e1", "k1"))
      -- FNV-1a 32 test vector (the first 8 hex digits): "a" -> e40c292c
      assert.equal("e40c292c", wstore.fingerprint("a"):sub(1, 8))
    end)
  end)

  describe("shared by processes", function()
    it("never grants more than the room, however many processes acquire at once", function()
      local now = os.time()
      store:merge(ws, 300, 200, now + 60)
      local go = os.tmpname()
      os.remove(go)
      local kids = {}
      for i = 1, 4 do
        kids[i] = child({ "grab", srv.port, q(ws), tostring(i % 3 + 1), "30", tostring(now), go })
      end
      for _, k in ipairs(kids) do assert.equal("ready", k.pipe:read("*l")) end
      helpers.write_file(go, "")
      local total, took_part = 0, 0
      for _, k in ipairs(kids) do
        local line = k.pipe:read("*l")
        k.pipe:close()
        local got = tonumber((line or ""):match("^granted (%d+)$"))
        assert(got, "child said: " .. tostring(line))
        if got > 0 then took_part = took_part + 1 end
        total = total + got
      end
      -- They ran together (on a loaded 2-core machine one process may be
      -- scheduled too late to get any room: 1 run in 9 of CI saw it).
      assert.is_true(took_part >= 2, took_part .. " of 4 processes got room")
      os.remove(go)
      assert.equal(170, total) -- 200 - 30, exactly
      assert.equal(170, store:state(ws).inflight)
    end)

    it("lets a SIGKILLed process's reservations lapse by their ttl", function()
      store:merge(ws, 300, 200, os.time() + 60)
      local k = child({ "hold", srv.port, q(ws), "120", "1" })
      assert.equal("held 120", k.pipe:read("*l"))
      assert.equal(120, store:state(ws).inflight)
      assert.equal(80, (store:acquire(ws, 500, 0, 10, os.time())))
      os.execute("kill -KILL " .. k.pid)
      k.pipe:close()
      local started = socket.gettime()
      while store:state(ws).inflight > 80 and socket.gettime() - started < 3 do socket.sleep(0.05) end
      assert.equal(80, store:state(ws).inflight)
      assert.is_true(socket.gettime() - started < 2.5) -- ttl 1 s, and a wide margin
      assert.equal(120, (store:acquire(ws, 500, 0, 10, os.time())))
    end)
  end)

  describe("read back by a client", function()
    it("ignores a reset or hold far ahead written into the store, and counts it as garbage", function()
      local braze = require("braze")
      local window = require("braze.window")
      local mock = helpers.start_mock{ segments = 5, api_key = "redis-garbage-key" }
      local ok, err = pcall(function()
        local mws = window.workspace(mock.url, mock.api_key)
        assert(store:merge(mws, 100, 0, 99999999999))
        assert(store:hold(mws, 99999999999))
        local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, window = store, max_retries = 0 }
        assert.is_nil(c:rate_limit())
        local res, cerr = c:list{}
        assert.is_nil(cerr)
        assert.is_table(res)
        assert.is_true(store.garbage > 0)
        c:close()
      end)
      mock:stop()
      if not ok then error(err, 0) end
    end)
  end)

  describe("when Redis fails", function()
    it("never started: every operation returns nil, err at once, reported once", function()
      local reports = {}
      local dead = redis_store.new{ port = redis_server.free_port(), retry_after = 60,
        on_error = function(err) reports[#reports + 1] = err end }
      local started = socket.gettime()
      for _ = 1, 50 do
        local g, err = dead:acquire(ws, 1, 0, 10, os.time())
        assert.is_nil(g)
        assert.matches("^braze.window.redis: ", err)
        assert.is_nil((dead:merge(ws, 300, 200, os.time() + 60)))
        assert.is_nil((dead:state(ws)))
      end
      assert.is_true(socket.gettime() - started < 1, "a down Redis is not tried again at once")
      assert.equal(1, #reports)
      assert.matches("connection", reports[1])
      assert.equal(1, dead.errors) -- the others did not even try
    end)

    it("stopped mid-run: reported once, and used again once it is back", function()
      local own = redis_server.start()
      local again
      finally(function()
        own:stop()
        if again then again:stop() end
      end)
      local reports = {}
      local s = redis_store.new{ port = own.port, retry_after = 0.2,
        on_error = function(err) reports[#reports + 1] = err end }
      assert(s:merge(ws, 300, 200, os.time() + 60))
      assert.equal(5, (s:acquire(ws, 5, 0, 10, os.time())))
      own:stop(true)
      for _ = 1, 5 do
        assert.is_nil((s:acquire(ws, 5, 0, 10, os.time())))
        socket.sleep(0.1)
      end
      assert.equal(1, #reports)
      again = redis_server.start(own.port)
      socket.sleep(0.25)
      -- a new server: the window is gone; the store works again
      assert.equal(1, (s:acquire(ws, 5, 0, 10, os.time(), 1)))
      assert.is_nil(s.down_since)
      again:stop()
      socket.sleep(0.25)
      assert.is_nil((s:state(ws)))
      assert.equal(2, #reports) -- a new outage is reported again
      s:close()
    end)

    it("fails with a message naming the module and the package when redis-lua is missing", function()
      local saved, saved_path = package.loaded.redis, package.path
      package.loaded.redis = nil
      package.preload.redis = function() error("module 'redis' not found") end
      finally(function()
        package.preload.redis = nil
        package.loaded.redis, package.path = saved, saved_path
      end)
      local ok, err = pcall(redis_store.new, {})
      assert.is_false(ok)
      assert.matches("lua%-redis", err)
      assert.matches("luarocks install redis%-lua", err)
    end)

    it("refuses bad options with a message naming them", function()
      assert.has_error(function() redis_store.new{ port = "6379" } end,
        "braze.window.redis: port must be a number")
      assert.has_error(function() redis_store.new{ timeout = 0 } end,
        "braze.window.redis: timeout must be above 0")
      assert.has_error(function() redis_store.new{ on_error = 1 } end,
        "braze.window.redis: on_error must be a function")
    end)
  end)
end)
