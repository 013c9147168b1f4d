--- braze.transport.cqueues inside a cqueues controller (Debian's lua-cqueues,
-- built for Lua 5.1-5.4; LuaJIT loads the 5.1 module): calls wait without
-- blocking the controller, failures come out as the libcurl transport's.
-- Runs on every Lua:
--   lua5.4 /usr/bin/busted --cpath='build/?.so' spec/transport/cqueues_spec.lua
local helpers = require("spec.support.helpers")
local braze = require("braze")

local has_cqueues, cqueues = pcall(require, "cqueues")
local cqt = has_cqueues and require("braze.transport.cqueues")

-- Deep equality, for the decoded answers of two transports.
local function same(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Run fn(cq) in a coroutine of a new controller and loop it until every
-- coroutine ended (raising what one raised), or fail after `seconds`.
local function within(seconds, fn)
  local cq = cqueues.new()
  local finished = false
  cq:wrap(function()
    fn(cq)
    finished = true
  end)
  local deadline = cqueues.monotime() + seconds
  while not cq:empty() and cqueues.monotime() < deadline do
    local ok, err = cq:step(0.05)
    if not ok then error(err, 0) end
  end
  assert(finished, "the controller's coroutine did not end within " .. seconds .. " s")
  assert.is_true(cq:empty(), "coroutines left in the controller")
end

-- Run fn(i) in n coroutines of cq at once; wait (polling) until all ended.
local function together(cq, n, fn)
  local out, left = {}, n
  for i = 1, n do
    cq:wrap(function()
      out[i] = { fn(i) }
      left = left - 1
    end)
  end
  while left > 0 do cqueues.sleep(0.005) end
  return out
end

-- A coroutine of cq that counts 10 ms ticks until stop() is called.
local function ticker(cq)
  local t = { ticks = 0, on = true }
  cq:wrap(function()
    while t.on do
      cqueues.sleep(0.01)
      t.ticks = t.ticks + 1
    end
  end)
  function t.stop() t.on = false end
  return t
end

describe("braze.transport.cqueues in a cqueues controller", function()
  if not has_cqueues then
    it("needs lua-cqueues (apt-get install lua-cqueues)", function() error(cqueues) end)
    return
  end
  local fast, slow
  setup(function()
    fast = helpers.start_mock{ segments = 250 }
    slow = helpers.start_mock{ latency = 500 }
  end)
  teardown(function()
    if fast then fast:stop() end
    if slow then slow:stop() end
  end)

  local function client(mock, opts)
    local o = { api_key = mock.api_key, endpoint = mock.url, transport = cqt, retry_base = 0.01 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return braze.new(o)
  end
  local function plain(mock, opts)
    local o = { api_key = mock.api_key, endpoint = mock.url, sleep = function() end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return braze.new(o)
  end

  it("list, details and data_series give what the libcurl transport gives", function()
    within(30, function()
      local c, p = client(fast), plain(fast)
      local page = assert(c:list())
      assert.is_true(same(page, assert(p:list())))
      assert.equal(100, #page.segments)
      local id = page.segments[2].id
      assert.is_true(same(assert(c:details(id)), assert(p:details(id))))
      local q = { segment_id = id, length = 7 }
      assert.is_true(same(assert(c:data_series(q)), assert(p:data_series(q))))
      c:close(); p:close()
    end)
  end)

  it("calls reuse their connection (keep-alive across calls)", function()
    within(30, function()
      local c = client(fast)
      assert(c:list())
      local first = fast:stats().connections
      local before = fast:stats().connections
      for _ = 1, 5 do assert(c:list()) end
      local opened = fast:stats().connections - before - (before - first)
      c:close()
      assert.equal(0, opened)
    end)
  end)

  it("a 500 ms call yields: another coroutine's 10 ms timer keeps ticking", function()
    within(30, function(cq)
      local c = client(slow)
      local tick = ticker(cq)
      local page, err = c:list()
      tick.stop()
      c:close()
      assert(page, tostring(err))
      assert.equal(100, #page.segments)
      assert.is_true(tick.ticks >= 30, "the timer ticked only " .. tick.ticks .. " times")
    end)
  end)

  it("20 concurrent 500 ms calls finish in under 1 s, the timer ticking", function()
    within(30, function(cq)
      local c = client(slow)
      local tick = ticker(cq)
      local t0 = cqueues.monotime()
      local outs = together(cq, 20, function() return c:list() end)
      local took = cqueues.monotime() - t0
      tick.stop()
      c:close()
      for i = 1, 20 do
        assert(outs[i][1], "call " .. i .. ": " .. tostring(outs[i][2]))
        assert.equal(100, #outs[i][1].segments)
      end
      print(("\n  cqueues figure: 20 concurrent 500 ms calls = %.3f s, %d ticks"):format(took,
        tick.ticks))
      assert.is_true(took < 1, ("took %.2f s"):format(took))
      assert.is_true(tick.ticks >= 30, "the timer ticked only " .. tick.ticks .. " times")
    end)
  end)

  it("details_many and the pipelined each run concurrently and give what libcurl gives", function()
    within(60, function()
      local c, p = client(slow), plain(fast)
      local ids = {}
      for i, s in ipairs(assert(p:list()).segments) do if i <= 8 then ids[i] = s.id end end
      local t0 = cqueues.monotime()
      local res, errs = c:details_many(ids, { concurrency = 8 })
      local took = cqueues.monotime() - t0
      c:close()
      assert.is_nil(next(errs))
      for i = 1, 8 do assert.is_true(same(res[i], assert(p:details(ids[i])))) end
      assert.is_true(took < 2, ("8 details at 500 ms took %.2f s"):format(took))
      c = client(fast)
      local opts = { details = true, series = { length = 3 }, concurrency = 8 }
      local got, want = {}, {}
      -- Called by hand: Lua 5.1's generic for cannot yield inside its iterator.
      local iter, st, _, closer = c:each(opts) -- the closer is held to the end
      repeat
        local seg, d, s = iter(st)
        if seg then got[#got + 1] = { seg.id, d, s } end
      until not seg
      local iter2, st2, ctl2, closer2 = p:each(opts)
      for seg, d, s in iter2, st2, ctl2 do want[#want + 1] = { seg.id, d, s } end
      c:close(); p:close()
      assert.is_truthy(closer and closer2)
      assert.equal(250, #got)
      assert.is_true(same(got, want))
    end)
  end)

  -- The same fault through both transports: kind, status, attempts agree.
  local function both(fault, opts)
    local e1, e2
    within(30, function()
      fast:fault(fault)
      local c = client(fast, opts)
      local r1
      r1, e1 = c:list()
      c:close()
      assert.is_nil(r1)
    end)
    fast:fault(fault)
    local p = plain(fast, opts)
    local r2
    r2, e2 = p:list()
    p:close()
    assert.is_nil(r2)
    for _, k in ipairs({ "kind", "status", "attempts", "endpoint" }) do
      assert.equal(e2[k], e1[k], k)
    end
    if e1.kind ~= "timeout" then assert.equal(e2.message, e1.message) end -- (not the ms taken)
    assert.is_nil(tostring(e1):find(fast.api_key, 1, true))
    return e1
  end

  it("errors as the libcurl transport: 401, 502 with HTML, 503 retried, 429 beyond max_wait",
    function()
      assert.equal(401, both({ type = "401" }, { max_retries = 0 }).status)
      assert.equal(502, both({ type = "502" }, { max_retries = 0 }).status)
      local e = both({ type = "503", count = 2 }, { max_retries = 1 })
      assert.same({ "http", 503, 2 }, { e.kind, e.status, e.attempts })
      assert.equal("rate_limited", both({ type = "429", reset_in = 30 }, { max_wait = 1 }).kind)
    end)

  it("errors as the libcurl transport: a silent server is a timeout, a big body too_large",
    function()
      assert.equal("timeout", both({ type = "hang" }, { max_retries = 0, timeout = 0.5 }).kind)
      assert.equal("too_large",
        both({ type = "huge", bytes = 200000 }, { max_retries = 0, max_body = 50000 }).kind)
    end)

  it("a retry wait yields to the controller", function()
    within(30, function(cq)
      fast:fault{ type = "429", reset_in = 1, count = 1 } -- one 429: wait for the window's reset
      local c = client(fast, { max_retries = 1 })
      local tick = ticker(cq)
      local t0 = cqueues.monotime()
      local page, err = c:list()
      local took = cqueues.monotime() - t0
      tick.stop()
      c:close()
      assert(page, tostring(err))
      assert.is_true(took >= 0.3, ("the call waited only %.2f s"):format(took))
      assert.is_true(tick.ticks >= took * 50, ("the timer ticked %d times in %.2f s"):format(
        tick.ticks, took))
    end)
  end)

  it("a call outside a controller's coroutine raises an error saying so", function()
    local c = client(fast)
    local ok, err = pcall(c.list, c)
    assert.is_false(ok)
    assert.matches("must run inside a coroutine of a cqueues controller", tostring(err), 1, true)
    within(10, function()
      local co = coroutine.wrap(function() return pcall(c.list, c) end)
      local ok2, err2 = co()
      assert.is_false(ok2)
      assert.matches("must run inside a coroutine", tostring(err2), 1, true)
    end)
    c:close()
  end)

  it("close() with calls in flight ends them with a network error, leaving no coroutine",
    function()
      within(10, function(cq)
        local c = client(slow, { max_retries = 0 })
        local outs, left = {}, 5
        for i = 1, 5 do
          cq:wrap(function()
            outs[i] = { c:list() }
            left = left - 1
          end)
        end
        cqueues.sleep(0.1) -- the requests are on the wire
        local t0 = cqueues.monotime()
        c:close()
        while left > 0 and cqueues.monotime() - t0 < 5 do cqueues.sleep(0.01) end
        assert.equal(0, left)
        assert.is_true(cqueues.monotime() - t0 < 0.3, "close() did not end the calls at once")
        for i = 1, 5 do
          assert.is_nil(outs[i][1])
          assert.equal("network", outs[i][2].kind)
        end
      end) -- within() asserts the controller is empty: no pump left behind
    end)

  -- Issue 18 item 19's hostile body (see spec/transport/luv/cases.lua): the polling
  -- coroutine yields to the controller after every call into the batch, so
  -- another coroutine's 5 ms timer is late by at most two such calls.
  it("a body of 1-byte chunks lets other coroutines run between slices of work", function()
    local tiny = require("spec.transport.luv.tiny_chunks")
    local BYTES = 4 * 1000 * 1000
    local server = tiny.start_server(BYTES)
    local function hrtime() return cqueues.monotime() * 1e9 end
    local work = { longest = 0, calls = 0 }
    local unwrap = tiny.time_drivers(hrtime, work)
    local late, ticks, rss0, peak = 0, 0, tiny.rss(), tiny.rss()
    local ok, err = pcall(within, 60, function(cq)
      local on, last = true, hrtime()
      cq:wrap(function()
        while on do
          cqueues.sleep(0.005)
          local now = hrtime()
          late, last, ticks = math.max(late, (now - last) / 1e6 - 5), now, ticks + 1
          peak = math.max(peak, tiny.rss())
        end
      end)
      local c = client({ url = server.url, api_key = "k" }, { max_retries = 0, timeout = 60 })
      local doc, derr = c:details("x")
      late = math.max(late, (hrtime() - last) / 1e6 - 5)
      on = false
      c:close()
      assert(doc, tostring(derr))
      assert.equal(BYTES, #doc.name)
    end)
    unwrap()
    server.stop()
    assert(ok, err)
    print(("\n  cqueues figure: 1-byte chunks: %d calls, longest %.1f ms; worst lateness %.1f ms "
      .. "(%d ticks); memory growth / body bytes %.2f"):format(work.calls, work.longest, late, ticks,
      (peak - rss0) / BYTES))
    assert.is_true(work.calls > 0, "the driver was not timed")
    assert.is_true(late <= 2 * work.longest + 20, ("the controller stalled %.0f ms while the "
      .. "longest call into the batch took %.1f ms"):format(late, work.longest))
    assert.is_true(peak - rss0 <= 8 * BYTES, "memory grew by " .. (peak - rss0) .. " bytes")
  end)

  it("an idle client keeps no coroutine in the controller", function()
    local c = client(fast)
    within(10, function() assert(c:list()) end) -- asserts cq:empty() after the call
    c:close()
  end)
end)
