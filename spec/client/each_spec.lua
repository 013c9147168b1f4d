-- The pipelined each at its edges: pages beyond exact arithmetic, a
-- transport that raises, list pages past the end, a finished loop called
-- again, and a fork in the middle of a loop.
local braze = require("braze")
local fake_braze = require("spec.support.fake_braze")
local helpers = require("spec.support.helpers")

-- A key of its own for every client: clients of one key share their
-- workspace's rate-limit window, and each fake here is a workspace of its own.
local keys_made = 0
local function fresh_key()
  keys_made = keys_made + 1
  return "k" .. keys_made
end

local function client(transport, extra)
  local opts = { api_key = fresh_key(), instance = "US-01", transport = transport,
    sleep = function() end, max_retries = 2 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return braze.new(opts)
end

-- Call `f` under an instruction budget: a loop that spins raises "spins"
-- instead of hanging the suite.
local function bounded(f, ...)
  debug.sethook(function() error("spins", 0) end, "", 2e8)
  local res = table.pack and table.pack(pcall(f, ...)) or { pcall(f, ...) }
  debug.sethook()
  return res[1], res[2]
end

-- `fake`'s transport, with `wrap(batch)` around each batch it makes.
local function wrapped(fake, wrap)
  local inner = fake.transport.new()
  local conn = {
    get = function(_, url) return inner:get(url) end,
    close = function() inner:close() end,
    batch = function(_, n) return wrap(inner:batch(n)) end,
  }
  return { new = function() return conn end }
end

describe("each{page}", function()
  it("is bounded to what page arithmetic keeps exact", function()
    local fake = fake_braze.new{ segments = 1, mode = "async" }
    local c = client(fake.transport)
    for _, opts in ipairs({ { page = 2 ^ 53, details = true }, { page = 2 ^ 53 }, { page = 2 ^ 60, concurrency = 2 } }) do
      local ok, msg = bounded(c.each, c, opts)
      assert.is_false(ok)
      assert.matches("braze: each: page must be at most 2%^52", msg)
    end
    local ok, msg = bounded(c.each, c, { max_pages = 2 ^ 53, details = true })
    assert.is_false(ok)
    assert.matches("max_pages must be at most 2%^52", msg)
    assert.equal(0, #fake.log)
    local it = c:each{ page = 2 ^ 52 - 1, details = true } -- the largest page still works
    assert.is_nil(it())
  end)
end)

describe("a transport that raises under the pipelined each", function()
  it("submit: an error object with the page and the segment, raised again on the next call", function()
    local fake = fake_braze.new{ segments = 250, mode = "async" }
    local bad = fake.segment_id(150)
    local t = wrapped(fake, function(b)
      return { poll = b.poll, close = b.close, submit = function(self, url, tag)
        if url:find(bad, 1, true) and url:find("/details", 1, true) then
          error("braze: bad URL (" .. url .. ")")
        end
        return b.submit(self, url, tag)
      end }
    end)
    local it = client(t):each{ details = true, concurrency = 8 }
    local seen = 0
    local ok, err = bounded(function() for _ in it do seen = seen + 1 end end)
    assert.is_false(ok)
    assert.is_true(braze.errors.is(err), tostring(err))
    assert.equal("network", err.kind)
    assert.equal(1, err.page)
    assert.equal(bad, err.segment_id)
    assert.matches("bad URL", err.message)
    assert.equal(100, seen)
    local ok2, err2 = bounded(it)
    assert.is_false(ok2)
    assert.equal(err, err2)
  end)

  it("poll: an error object with the page, and no spinning after it", function()
    local fake = fake_braze.new{ segments = 250, mode = "async" }
    local polls = 0
    local t = wrapped(fake, function(b)
      return { submit = b.submit, close = b.close, poll = function(self, timeout)
        polls = polls + 1
        if polls == 40 then error("a finalizer raised during poll") end
        return b.poll(self, timeout)
      end }
    end)
    local it = client(t):each{ details = true, concurrency = 8 }
    local ok, err = bounded(function() for _ in it do end end)
    assert.is_false(ok)
    assert.is_true(braze.errors.is(err), tostring(err))
    assert.matches("a finalizer raised during poll", err.message)
    assert.is_number(err.page)
    for _ = 1, 3 do
      local again, err2 = bounded(it)
      assert.is_false(again)
      assert.equal(err, err2)
    end
  end)

  it("get (a transport without batch): the same error object", function()
    local fake = fake_braze.new{ segments = 150, mode = "serial" }
    local inner = fake.transport.new()
    local t = { new = function()
      return { close = function() end, get = function(_, url)
        if url:find("page=1", 1, true) then error("braze: bad URL") end
        return inner:get(url)
      end }
    end }
    local seen = 0
    local ok, err = bounded(function() for _ in client(t):each{ concurrency = 2 } do seen = seen + 1 end end)
    assert.is_false(ok)
    assert.is_true(braze.errors.is(err), tostring(err))
    assert.equal(1, err.page)
    assert.equal(100, seen)
  end)
end)

describe("list pages past the end", function()
  for _, mode in ipairs({ "serial", "async" }) do
    it("are not sent once a short page came back (" .. mode .. ")", function()
      local fake = fake_braze.new{ segments = 5, mode = mode }
      local n = 0
      for _ in client(fake.transport):each{ details = true, concurrency = 1 } do n = n + 1 end
      assert.equal(5, n)
      assert.equal(1, fake.count("/segments/list"))
      assert.equal(5, fake.count("/segments/details"))
    end)
  end
end)

describe("a finished pipelined loop", function()
  it("returns nil when called again, as the plain each does", function()
    local fake = fake_braze.new{ segments = 120, mode = "async" }
    local it = client(fake.transport):each{ details = true, concurrency = 4 }
    local n = 0
    for _ in it do n = n + 1 end
    assert.equal(120, n)
    for _ = 1, 3 do
      local ok, v = bounded(it)
      assert.is_true(ok, tostring(v))
      assert.is_nil(v)
    end
  end)
end)

describe("fork in the middle of a pipelined loop", function()
  local fk, dir, mock
  local lua_pc = ({ ["Lua 5.4"] = "lua5.4", ["Lua 5.3"] = "lua5.3" })[_VERSION]

  setup(function()
    if not lua_pc then return end
    dir = helpers.read_pipe("mktemp -d"):gsub("%s+$", "")
    local so = dir .. "/forkhelper.so"
    local msg = helpers.read_pipe("cc -shared -fPIC -std=c99 -D_DEFAULT_SOURCE -o " .. so .. " "
      .. helpers.root .. "/spec/c/forkhelper.c $(pkg-config --cflags " .. lua_pc .. ") 2>&1")
    fk = assert(package.loadlib(so, "luaopen_forkhelper"), msg)()
    mock = helpers.start_mock{ segments = 250, latency = 2 }
  end)
  teardown(function()
    if mock then mock:stop() end
    if dir then os.execute("rm -rf " .. dir) end
  end)

  it("the child goes on, or raises an error object with the page to resume at", function()
    if not lua_pc then return pending("needs Lua 5.3 or 5.4 (the fork helper)") end
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url }
    finally(function() c:close() end)
    local it = c:each{ details = true, concurrency = 8 }
    local ids = {}
    for _ = 1, 50 do ids[#ids + 1] = it().id end -- page 1's calls are in flight now
    local pid = fk.fork()
    if pid == 0 then
      local code = 0
      local ok, why = pcall(function()
        local seen = {}
        for _, id in ipairs(ids) do seen[#seen + 1] = id end
        local went, err = pcall(function() for seg in it do seen[#seen + 1] = seg.id end end)
        if not went then
          if not (braze.errors.is(err) and type(err.page) == "number") then
            error("the child's loop raised " .. tostring(err) .. " without a page")
          end
          for seg in c:each{ details = true, concurrency = 8, page = err.page } do seen[#seen + 1] = seg.id end
        end
        local unique = {}
        for _, id in ipairs(seen) do
          if unique[id] then error("repeated " .. id) end
          unique[id] = true
        end
        if #seen ~= 250 then error("the child saw " .. #seen .. " segments") end
      end)
      if not ok then io.stderr:write("child: ", tostring(why), "\n"); code = 1 end
      fk.exit(code)
    end
    assert.is_true(pid > 0)
    assert.equal(0, fk.wait(pid))
    for seg in it do ids[#ids + 1] = seg.id end -- the parent goes on as well
    assert.equal(250, #ids)
  end)
end)
