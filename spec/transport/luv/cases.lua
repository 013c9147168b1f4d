--- The cases of braze.transport.luv, written once and run by two hosts:
-- spec/transport/luv_spec.lua (busted, plain Lua with lua-luv) and
-- spec/transport/luv/neovim_runner.lua (inside `nvim --headless`, whose report
-- spec/transport/luv_spec.lua parses). Plain functions and plain checks, no busted.
--
--   local cases = require("spec.transport.luv.cases")
--   local list = cases.new{ uv = uv, fast = mock, slow = mock500, wait = wait,
--                           figure = function(name, value) end }
--   for _, case in ipairs(list) do cases.run(case, wait) end
--
-- `fast` is a braze-mock with 250 segments, `slow` one with --latency 500.
-- A case's `run()` is called inside a coroutine (or, with `main = true`,
-- in the main thread) and raises on failure.
local braze = require("braze")

local M = {}
local tiny_chunks_case

local format = string.format

-- Deep equality, for the decoded answers of two transports.
local function same(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.same = same

local function check(cond, fmt, ...)
  if not cond then error(format(fmt, ...), 2) end
end

--- Run `case` on the loop: its body in a coroutine (or the main thread),
-- the loop driven by `wait(seconds, done)` (the host's: uv.run or
-- vim.wait) until it ends. Raises the case's error, or when it does not end
-- within `case.limit` seconds (default 60).
function M.run(case, wait)
  local finished, err = false, nil
  local function body()
    local ok, e = xpcall(case.run, debug.traceback)
    finished, err = true, (not ok) and e or nil
  end
  if case.main then body() else coroutine.wrap(body)() end
  wait(case.limit or 60, function() return finished end)
  if not finished then error(format("%s: did not end within %d s", case.name, case.limit or 60)) end
  if err then error(err, 0) end
end

local tiny = require("spec.transport.luv.tiny_chunks")

-- Issue 18 item 19: libcurl asks for a 0 ms timer after each slice of work
-- while data waits, and a uv timer restarted at 0 ms from its own callback
-- runs again in the same pass of the loop's timers (libuv 1.44): a hostile
-- body of 1-byte chunks, sent faster than it is parsed, ran the whole
-- transfer without a turn of the loop (Neovim froze up to 1.6 s). A 5 ms
-- timer samples the loop's lateness and the process's memory meanwhile; the
-- lateness must stay within two slices of work (an idle action and a
-- socket action may share one turn), not the whole transfer.
local BYTES = 4 * 1000 * 1000
tiny_chunks_case = function(env, client, figure)
  return function()
    local uv = env.uv
    local server = tiny.start_server(BYTES)
    local work = { longest = 0, calls = 0 }
    local unwrap = tiny.time_drivers(uv.hrtime, work)
    local late, last = 0, uv.hrtime()
    local rss0 = tiny.rss()
    local peak = rss0
    local tick, ticks = uv.new_timer(), 0
    tick:start(5, 5, function()
      local now = uv.hrtime()
      late = math.max(late, (now - last) / 1e6 - 5)
      last = now
      peak = math.max(peak, tiny.rss())
      ticks = ticks + 1
    end)
    local c = client({ url = server.url, api_key = "k" }, { max_retries = 0, timeout = 60 })
    local t0 = uv.hrtime()
    local ok, doc, err = pcall(c.details, c, "x")
    local took = (uv.hrtime() - t0) / 1e6
    late = math.max(late, (uv.hrtime() - last) / 1e6 - 5) -- a stall up to the end counts
    tick:stop(); tick:close()
    unwrap()
    c:close()
    server.stop()
    check(ok, "details raised: %s", tostring(doc))
    check(doc, "details failed: %s", tostring(err))
    check(#doc.name == BYTES, "a name of %d bytes, not %d", #doc.name, BYTES)
    figure("1-byte chunks: transfer (ms)", format("%.0f", took))
    figure("1-byte chunks: calls into the batch, longest (ms)", format("%d, %.1f", work.calls,
      work.longest))
    figure("1-byte chunks: the loop's worst lateness (ms)", format("%.1f (%d ticks)", late, ticks))
    figure("1-byte chunks: memory growth / body bytes", format("%.2f", (peak - rss0) / BYTES))
    check(work.calls > 0, "the driver was not timed")
    check(late <= 2 * work.longest + 20, "the loop stalled %.0f ms while the longest call into "
      .. "the batch took %.1f ms: the transfer ran without letting the loop turn", late, work.longest)
    check(peak - rss0 <= 8 * BYTES, "memory grew by %.1f MB for a %.1f MB body",
      (peak - rss0) / 1e6, BYTES / 1e6)
  end
end

--- The cases for the mocks in `env`: { uv, fast, slow, wait (as M.run's),
-- figure(name, value) (a measured figure to report), walk (uv.walk works) }.
function M.new(env)
  local uv, fast, slow = env.uv, env.fast, env.slow
  local luv = require("braze.transport.luv")
  local figure = env.figure or function() end

  local function client(mock, opts)
    local o = { api_key = mock.api_key, endpoint = mock.url, transport = luv, retry_base = 0.01 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return braze.new(o)
  end
  -- The default (libcurl, blocking) transport, for comparison.
  local function plain(mock, opts)
    local o = { api_key = mock.api_key, endpoint = mock.url, sleep = function() end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return braze.new(o)
  end
  local function seconds() return uv.hrtime() / 1e9 end
  -- Run `fn` in `n` new coroutines at once; wait (yielding) until all end.
  -- Returns their results, each { ok, value... } in order.
  local function together(n, fn)
    local out, left = {}, n
    for i = 1, n do
      coroutine.wrap(function()
        out[i] = { pcall(fn, i) }
        left = left - 1
      end)()
    end
    while left > 0 do luv.sleep(0.005) end
    return out
  end
  -- Handles of the loop that are not closing, by tostring (uv.walk; not
  -- inside Neovim, whose own handles are not luv's: walking them aborts).
  local function open_handles()
    local set = {}
    if env.walk then
      uv.walk(function(h) if not h:is_closing() then set[tostring(h)] = true end end)
    end
    return set
  end
  -- Record every timer and poll handle made while `fn` runs.
  local function recording_handles(fn)
    local made, saved = {}, {}
    for _, name in ipairs({ "new_timer", "new_idle", "new_socket_poll", "new_poll" }) do
      local orig = uv[name]
      saved[name] = orig
      uv[name] = function(...)
        local h, e = orig(...)
        if h then made[#made + 1] = h end
        return h, e
      end
    end
    local ok, err = pcall(fn)
    for name, orig in pairs(saved) do uv[name] = orig end
    if not ok then error(err, 0) end
    return made
  end
  -- Is handle h closed or closing?
  local function closed(h)
    local ok, closing = pcall(h.is_closing, h)
    return not ok or closing
  end

  local cases = {}
  local function case(name, run, extra)
    local c = { name = name, run = run }
    for k, v in pairs(extra or {}) do c[k] = v end
    cases[#cases + 1] = c
  end

  case("list, details and data_series give what the libcurl transport gives", function()
    local c, p = client(fast), plain(fast)
    local page = assert(c:list())
    check(same(page, assert(p:list())), "list differs")
    check(#page.segments == 100, "a page of 100 segments, got %d", #page.segments)
    local id = page.segments[2].id
    check(same(assert(c:details(id)), assert(p:details(id))), "details differ")
    local q = { segment_id = id, length = 7 }
    check(same(assert(c:data_series(q)), assert(p:data_series(q))), "data_series differs")
    c:close(); p:close()
  end)

  case("calls reuse their connection (keep-alive across calls)", function()
    local c = client(fast)
    assert(c:list()) -- connects
    -- What asking for the stats costs (1 with LuaSocket, 0 through a kept connection).
    local first = fast:stats().connections
    local before = fast:stats().connections
    local own = before - first
    for _ = 1, 5 do assert(c:list()) end
    local opened = fast:stats().connections - before - own
    c:close()
    check(opened == 0, "5 calls opened %d connections", opened)
  end)

  case("a 500 ms call does not block the loop: a 10 ms timer keeps ticking", function()
    local c = client(slow)
    local ticks = 0
    local tick = uv.new_timer()
    tick:start(10, 10, function() ticks = ticks + 1 end)
    local t0 = seconds()
    local page, err = c:list()
    local took = seconds() - t0
    tick:stop(); tick:close()
    c:close()
    check(page, "list failed: %s", tostring(err))
    check(#page.segments == 100, "a page of 100 segments")
    figure("ticks during one 500 ms call", ticks)
    figure("one 500 ms call (s)", format("%.3f", took))
    check(ticks >= 30, "the timer ticked only %d times in %.2f s: the loop was blocked", ticks, took)
  end)

  case("20 concurrent 500 ms calls finish together (well under 20 x 500 ms)", function()
    local c = client(slow)
    local ticks = 0
    local tick = uv.new_timer()
    tick:start(10, 10, function() ticks = ticks + 1 end)
    local t0 = seconds()
    local outs = together(20, function() return c:list() end)
    local took = seconds() - t0
    tick:stop(); tick:close()
    c:close()
    for i = 1, 20 do
      check(outs[i][1] and outs[i][2], "call %d failed: %s", i, tostring(outs[i][3] or outs[i][2]))
      check(#outs[i][2].segments == 100, "call %d: a page of 100 segments", i)
    end
    figure("20 concurrent 500 ms calls (s)", format("%.3f", took))
    figure("ticks during 20 concurrent calls", ticks)
    check(took < 2, "20 concurrent calls took %.2f s", took)
    check(ticks >= 30, "the timer ticked only %d times", ticks)
  end)

  case("details_many runs its requests concurrently", function()
    local c, p = client(slow), plain(fast)
    local ids = {}
    for i, s in ipairs(assert(p:list()).segments) do if i <= 8 then ids[i] = s.id end end
    local t0 = seconds()
    local res, errs = c:details_many(ids, { concurrency = 8 })
    local took = seconds() - t0
    c:close()
    local _, first = next(errs)
    check(first == nil, "errors: %s", tostring(first))
    for i = 1, 8 do check(same(res[i], assert(p:details(ids[i]))), "details %d differ", i) end
    p:close()
    figure("details_many of 8 at 500 ms (s)", format("%.3f", took))
    check(took < 2, "8 details took %.2f s: not concurrent", took)
  end)

  case("the pipelined each gives all segments with details and series, as libcurl does", function()
    local c, p = client(fast), plain(fast)
    local opts = { details = true, series = { length = 3 }, concurrency = 8 }
    local got, want = {}, {}
    -- The 4th value (the closer) is held until the loop ends: Lua 5.2/5.3's
    -- generic for drops it, and a collection mid-loop would cancel the
    -- pipeline (braze.pipeline's __gc) and leave the loop spinning (reported).
    local iter, st, ctl, closer = c:each(opts)
    for seg, d, s in iter, st, ctl do got[#got + 1] = { seg.id, d, s } end
    local iter2, st2, ctl2, closer2 = p:each(opts)
    for seg, d, s in iter2, st2, ctl2 do want[#want + 1] = { seg.id, d, s } end
    c:close(); p:close()
    check(closer and closer2, "each returned its closer")
    check(#got == 250, "each gave %d segments, not 250", #got)
    check(same(got, want), "each differs from the libcurl transport's")
  end)

  -- The same failure through both transports: kind, status, attempts and
  -- message agree.
  local function both(fault, opts, call)
    call = call or function(c) return c:list() end
    fast:fault(fault)
    local c = client(fast, opts)
    local r1, e1 = call(c)
    c:close()
    fast:fault(fault)
    local p = plain(fast, opts)
    local r2, e2 = call(p)
    p:close()
    check(r1 == nil and e1, "the luv transport succeeded")
    check(r2 == nil and e2, "the libcurl transport succeeded")
    for _, k in ipairs({ "kind", "status", "attempts", "endpoint" }) do
      check(e1[k] == e2[k], "%s: %s (luv) vs %s (libcurl)", k, tostring(e1[k]), tostring(e2[k]))
    end
    return e1, e2
  end

  case("errors as the libcurl transport: 401", function()
    local e1, e2 = both({ type = "401" }, { max_retries = 0 })
    check(e1.kind == "http" and e1.status == 401, "kind %s status %s", e1.kind, tostring(e1.status))
    check(e1.message == e2.message, "messages differ: %s | %s", e1.message, e2.message)
    check(not tostring(e1):find(fast.api_key, 1, true), "the key is in the error")
  end)

  case("errors as the libcurl transport: 429 with a reset beyond max_wait", function()
    local e1 = both({ type = "429", reset_in = 30 }, { max_wait = 1 })
    check(e1.kind == "rate_limited", "kind %s", e1.kind)
  end)

  case("errors as the libcurl transport: 503 is retried (waits on a uv timer)", function()
    local e1 = both({ type = "503", count = 2 }, { max_retries = 1 })
    check(e1.kind == "http" and e1.status == 503 and e1.attempts == 2, "kind %s attempts %s",
      e1.kind, tostring(e1.attempts))
    fast:fault{ type = "503", count = 1 }
    local c = client(fast, { max_retries = 1, retry_base = 0.05 })
    local page, err = c:list()
    c:close()
    check(page and #page.segments == 100, "a retried 503 then 200 failed: %s", tostring(err))
  end)

  case("errors as the libcurl transport: 502 with an HTML page", function()
    local e1, e2 = both({ type = "502" }, { max_retries = 0 })
    check(e1.kind == "http" and e1.status == 502, "kind %s", e1.kind)
    check(e1.message == e2.message, "messages differ: %s | %s", e1.message, e2.message)
    check(e1.message:find("non%-JSON body"), "message: %s", e1.message)
  end)

  case("errors as the libcurl transport: a server that never answers is a timeout", function()
    local e1 = both({ type = "hang" }, { max_retries = 0, timeout = 0.5 })
    check(e1.kind == "timeout", "kind %s", e1.kind)
  end)

  case("errors as the libcurl transport: a body over max_body is too_large", function()
    local e1, e2 = both({ type = "huge", bytes = 200000 }, { max_retries = 0, max_body = 50000 })
    check(e1.kind == "too_large", "kind %s", e1.kind)
    check(e1.message == e2.message, "messages differ: %s | %s", e1.message, e2.message)
  end)

  case("a call outside a coroutine raises an error saying so", function()
    local c = client(fast)
    local ok, err = pcall(c.list, c)
    check(not ok, "a call in the main thread did not raise")
    check(tostring(err):find("must run inside a coroutine", 1, true), "error: %s", tostring(err))
    -- Directly in a loop callback (not a coroutine) too.
    local from_callback
    local t = uv.new_timer()
    t:start(0, 0, function()
      t:close()
      local ok2, err2 = pcall(c.list, c)
      from_callback = ok2 and "no error" or tostring(err2)
    end)
    env.wait(5, function() return from_callback ~= nil end)
    c:close()
    check(from_callback and from_callback:find("must run inside a coroutine", 1, true),
      "in a callback: %s", tostring(from_callback))
  end, { main = true })

  case("close() with requests in flight ends them and leaves no handle open", function()
    luv.sleep(0.02) -- let handles of earlier cases finish closing
    local before = open_handles()
    local c = client(slow, { max_retries = 0 })
    local outs, left = {}, 5
    local polls = 0
    local made = recording_handles(function()
      for i = 1, 5 do
        coroutine.wrap(function()
          outs[i] = { c:list() }
          left = left - 1
        end)()
      end
      luv.sleep(0.1) -- the requests are on the wire
    end)
    for _, h in ipairs(made) do
      if tostring(h):find("poll") and not closed(h) then polls = polls + 1 end
    end
    check(polls == 5, "%d sockets watched while 5 requests were in flight", polls)
    c:close()
    local deadline = seconds() + 5
    while left > 0 and seconds() < deadline do luv.sleep(0.01) end
    check(left == 0, "%d calls never ended after close()", left)
    for i = 1, 5 do
      local err = outs[i][2]
      check(outs[i][1] == nil and err, "call %d did not fail", i)
      check(err.kind == "network" or err.kind == "closed", "call %d: kind %s", i, err.kind)
    end
    luv.sleep(0.02)
    local extra = {}
    for _, h in ipairs(made) do if not closed(h) then extra[#extra + 1] = tostring(h) end end
    for h in pairs(open_handles()) do if not before[h] then extra[#extra + 1] = h end end
    check(#extra == 0, "handles left open: %s", table.concat(extra, ", "))
  end)

  case("a body of 1-byte chunks lets the loop turn between slices of work, memory as the bytes",
    tiny_chunks_case(env, client, figure), { limit = 120 })

  return cases
end

return M
