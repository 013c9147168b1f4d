-- braze.core's batches (session:batch): requests that start at once and
-- are collected as they finish, in poll mode; their lifetime against the
-- session's (close, a close from a finalizer, the collector).
local core = require("braze.core")
local helpers = require("spec.support.helpers")

local mock

setup(function() mock = helpers.start_mock{ segments = 30 } end)
teardown(function() mock:stop() end)
before_each(function() mock:reset() end)

local function session() return core.session{ api_key = mock.api_key, timeout = 5 } end
local function url(page) return mock.url .. "/segments/list?page=" .. (page or 0) end

-- Poll until `n` outcomes came back (or a poll returns none twice).
local function collect(b, n)
  local outs, empty = {}, 0
  while #outs < n and empty < 2 do
    local got = b:poll(5)
    if #got == 0 then empty = empty + 1 end
    for _, o in ipairs(got) do outs[#outs + 1] = o end
  end
  return outs
end

describe("session:batch", function()
  it("gives every request back once, with its tag, whatever the order", function()
    local s = session()
    finally(function() s:close() end)
    local b = s:batch(8)
    local tags = {}
    for i = 1, 8 do
      tags[i] = { i = i }
      b:submit(url(i % 2), tags[i])
    end
    local outs = collect(b, 8)
    assert.equal(8, #outs)
    local seen = {}
    for _, o in ipairs(outs) do
      assert.is_nil(seen[o.tag])
      seen[o.tag] = true
      assert.equal(200, o.status)
      assert.equal(o.tag.i % 2 == 0 and 30 or 0, #o.body.segments)
    end
    for i = 1, 8 do assert.is_true(seen[tags[i]]) end
    assert.equal(8, mock:stats().requests)
  end)

  it("reports a failed request as { error =, message = } with its tag", function()
    local s = session()
    finally(function() s:close() end)
    local b = s:batch(2)
    b:submit("http://127.0.0.1:9/segments/list", "refused")
    local outs = collect(b, 1)
    assert.equal("refused", outs[1].tag)
    assert.equal("network", outs[1].error)
    assert.is_string(outs[1].message)
  end)

  it("poll with a timeout returns an empty array when nothing finished in time", function()
    local s = session()
    finally(function() s:close() end)
    mock:fault{ type = "delay", ms = 1500 }
    local b = s:batch(1)
    b:submit(url(), "slow")
    local t0 = core.monotonic()
    assert.same({}, b:poll(0.1))
    assert.is_true(core.monotonic() - t0 < 1)
    assert.equal("slow", collect(b, 1)[1].tag)
  end)

  it("poll with nothing in flight returns at once", function()
    local s = session()
    finally(function() s:close() end)
    assert.same({}, s:batch(1):poll())
  end)

  it("refuses more requests than its size", function()
    local s = session()
    finally(function() s:close() end)
    local b = s:batch(1)
    b:submit(url(), 1)
    assert.has_error(function() b:submit(url(), 2) end, "braze: batch is full (1 requests in flight)")
    collect(b, 1)
    b:submit(url(), 3) -- a collected slot is free again
    assert.equal(3, collect(b, 1)[1].tag)
  end)

  it("checks its arguments", function()
    local s = session()
    finally(function() s:close() end)
    assert.has_error(function() s:batch(0) end)
    assert.has_error(function() s:batch(65) end)
    assert.has_error(function() s:batch(2, "nope") end)
    local b = s:batch(1)
    assert.has_error(function() b:submit(url()) end) -- no tag
    assert.has_error(function() b:action() end, "braze: action() is for a batch in socket mode")
  end)

  it("shares the session's connections between batches (keep-alive)", function()
    local s = session()
    finally(function() s:close() end)
    local before = mock:stats().connections
    for _ = 1, 4 do
      local b = s:batch(2)
      b:submit(url(), 1)
      b:submit(url(), 2)
      collect(b, 2)
      b:close()
    end
    local used = mock:stats().connections - before - 1 -- minus this stats call
    assert.is_true(used <= 2, "connections: " .. used)
  end)

  it("runs beside another batch on the same session without losing either's answers", function()
    local s = session()
    finally(function() s:close() end)
    mock:fault{ type = "delay", ms = 300, path = "/segments/details" }
    -- A's slow request goes on while B's fast ones finish.
    local a, b = s:batch(2), s:batch(2)
    a:submit(mock.url .. "/segments/details?segment_id=x", "slow")
    b:submit(url(), 1)
    b:submit(url(1), 2)
    local fast = collect(b, 2)
    assert.equal(2, #fast)
    for _, o in ipairs(fast) do assert.equal(200, o.status) end
    local outs = collect(a, 1)
    assert.equal("slow", outs[1].tag)
    assert.equal(400, outs[1].status)
    -- And the other way: A's fast request can finish while B's poll waits
    -- for its slow one (the shared multi handle reports it to B's poll); A
    -- still gets it, once.
    b:submit(mock.url .. "/segments/details?segment_id=y", "slow")
    a:submit(url(), "fast")
    outs = collect(b, 1)
    assert.equal(1, #outs)
    assert.equal("slow", outs[1].tag)
    outs = collect(a, 1)
    assert.equal(1, #outs)
    assert.equal("fast", outs[1].tag)
    assert.equal(200, outs[1].status)
    assert.same({}, a:poll(0))
  end)

  it("is closed with its session, and a closed batch says so", function()
    local s = session()
    local b = s:batch(2)
    b:submit(url(), 1)
    s:close()
    assert.has_error(function() b:poll() end, "braze: batch is closed")
    assert.has_error(function() b:submit(url(), 2) end, "braze: batch is closed")
    b:close()
    b:close() -- idempotent
    assert.matches("closed", tostring(b))
  end)

  it("close drops what is in flight; the session goes on", function()
    local s = session()
    finally(function() s:close() end)
    mock:fault{ type = "hang" }
    local b = s:batch(1)
    b:submit(url(), 1)
    assert.same({}, b:poll(0.3)) -- the request reached the server, which holds it
    assert.equal(1, mock:stats().requests)
    b:close()
    assert.equal(200, s:get(url()).status)
  end)

  it("a batch left to the collector releases its handles", function()
    local s = session()
    finally(function() s:close() end)
    local weak = setmetatable({}, { __mode = "k" })
    do
      local b = s:batch(4)
      b:submit(url(), 1)
      weak[b] = true
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
    assert.equal(200, s:get(url()).status)
  end)

  it("a finalizer closing the session during poll waits for the poll's end", function()
    local s = session()
    local b = s:batch(4)
    for i = 1, 4 do b:submit(url(), i) end
    local ran = false
    -- (5.1 and LuaJIT have no __gc on tables: a newproxy there)
    local gc = function() s:close(); ran = true end
    if newproxy then getmetatable(newproxy(true)).__gc = gc  -- luacheck: ignore 143
    else setmetatable({}, { __gc = gc }) end
    collectgarbage("setpause", 0)
    if _VERSION == "Lua 5.4" then collectgarbage("incremental", 0, 400) end
    local ok, outs = pcall(collect, b, 4)
    helpers.default_gc()
    assert.is_true(ran)
    -- Whether the close landed before, during or after the poll, nothing
    -- was freed under it (ASan/valgrind say so), and the session is closed.
    if ok then
      for _, o in ipairs(outs) do assert.equal(200, o.status) end
    else
      assert.matches("closed", tostring(outs))
    end
    assert.matches("closed", tostring(s))
  end)
end)
