-- Issue 11, the C core's hardening: option strings kept alive while the
-- constructor runs, sub-millisecond timeouts, NUL bytes in options, the
-- max_body clamp, a batch after a failed handle copy, closing
-- a session from a finalizer mid-call, two threads loading the module,
-- giant header lines, core.random, and fork.
--
-- Run these under ASan too (see .ci/run): several cases are use-after-free
-- checks that only a sanitizer turns into a hard failure.
--
-- Servers, all on 127.0.0.1: a braze-mock, a listening socket in this
-- process that never accepts (a server that never answers), and a "canned"
-- child process that answers /<case>/... with a prepared raw response.
local core = require("braze.core")
local helpers = require("spec.support.helpers")
local canned = require("spec.support.canned_server")
local tls = require("spec.support.tls_nginx")
local socket = require("socket")

local LUA54 = _VERSION == "Lua 5.4"

local JSON_OK = '{"message":"success","segments":[]}'

local response = canned.response

local dir, server, mock

local function canned_url(case) return server:url(case) end

setup(function()
  mock = helpers.start_mock{ segments = 20 }
  dir = tls.tempdir("braze-core")
  local cases = {
    giantheader = response("HTTP/1.1 200 OK", { "Content-Type: application/json",
      "X-Request-Id: " .. ("A"):rep(200000), "Content-Length: " .. #JSON_OK }, JSON_OK),
    -- 2^63: one more than the largest max_body (2^63 - 1 bytes)
    length2p63 = response("HTTP/1.1 200 OK", { "Content-Length: 9223372036854775808" }, JSON_OK),
    ok = response("HTTP/1.1 200 OK", { "Content-Type: application/json",
      "Content-Length: " .. #JSON_OK }, JSON_OK),
  }
  server = canned.start(cases)
end)

teardown(function()
  if mock then mock:stop() end
  if server then server:stop() end
  if dir then tls.remove(dir) end
end)

-- The user agent the mock saw on its last recorded request.
local function last_user_agent()
  local reqs = mock:requests()
  return reqs[#reqs].user_agent
end

describe("#lua53 core.session options", function()
  after_each(function() helpers.default_gc() end)

  it("keeps an options table's __index strings alive while a collection runs between reads", function()
    -- Fresh long strings (not interned), each made garbage as soon as the
    -- constructor has read it, and a full collection before every read.
    local agent_prefix = "agent-" .. ("x"):rep(60)
    local backing = { api_key = mock.api_key, timeout = 5 }
    local opts = setmetatable({}, { __index = function(_, k)
      collectgarbage()
      if k == "user_agent" then return agent_prefix .. tostring(12345) end
      if k == "proxy" or k == "ca_file" or k == "ca_path" then return nil end
      return backing[k]
    end })
    for _ = 1, 20 do
      local s = core.session(opts)
      collectgarbage()
      local res = assert(s:get(mock.url .. "/segments/list"))
      assert.equal(200, res.status)
      assert.equal(agent_prefix .. "12345", last_user_agent())
      s:close()
    end
  end)

  it("keeps a number option converted to a string alive (user_agent = 12345)", function()
    collectgarbage("setpause", 0) -- collect continuously
    if LUA54 then collectgarbage("incremental", 0, 1) end
    for i = 1, 20 do
      local n = 7000000000000 + i
      local s = core.session{ api_key = mock.api_key, user_agent = n, timeout = 5 }
      local junk = {} -- luacheck: ignore 241 (only there to reuse freed memory)
      for j = 1, 200 do junk[j] = ("j"):rep(80) .. j end -- reuse freed memory
      assert(s:get(mock.url .. "/segments/list"))
      assert.equal(tostring(n), last_user_agent())
      s:close()
    end
  end)

  it("rejects a NUL byte in a string option, naming the option and not echoing the value", function()
    for _, name in ipairs({ "api_key", "user_agent", "ca_file", "ca_path", "proxy" }) do
      local opts = { api_key = "key-SECRET" }
      opts[name] = "abc-SECRET\0def"
      local ok, err = pcall(core.session, opts)
      assert.is_false(ok, name)
      assert.matches(name .. " contains a NUL byte", err, 1, true)
      assert.is_nil(err:find("SECRET", 1, true), err)
    end
  end)

  it("rejects a non-string option with a message naming it", function()
    local ok, err = pcall(core.session, { api_key = "k", user_agent = {} })
    assert.is_false(ok)
    assert.matches("user_agent must be a string", err, 1, true)
    ok, err = pcall(core.session, { api_key = "k", timeout = "soon" })
    assert.is_false(ok)
    assert.matches("timeout must be a number", err, 1, true)
  end)

  it("a timeout under 1 ms is 1 ms, not 'no timeout': a silent server times out promptly", function()
    -- A child that listens and never accepts nor answers, and exits after
    -- 4 s (so a client without a timeout fails late instead of hanging).
    local pipe = assert(io.popen(helpers.lua .. [[ -e 'local socket = require("socket")
      local srv = assert(socket.bind("127.0.0.1", 0)); local _, port = srv:getsockname()
      io.stdout:write(port, "\n"); io.stdout:flush(); socket.sleep(4)' </dev/null &]], "r"))
    local port = tonumber(pipe:read("*l"))
    finally(function() pipe:close() end)
    assert(port, "silent server did not start")
    for _, t in ipairs({ 0.0004, 0.0000001 }) do
      local s = core.session{ api_key = "k", timeout = t }
      local started = socket.gettime()
      local res, kind, msg = s:get("http://127.0.0.1:" .. port .. "/segments/list")
      local elapsed = socket.gettime() - started
      s:close()
      assert.is_nil(res)
      assert.equal("timeout", kind, msg)
      assert.is_true(elapsed < 3, "took " .. elapsed .. " s")
    end
  end)

  it("a connect_timeout under 1 ms is 1 ms too (the session still works)", function()
    local s = core.session{ api_key = mock.api_key, connect_timeout = 0.0004, timeout = 5 }
    finally(function() s:close() end)
    -- Loopback connects are immediate; what matters is that it was accepted.
    local res, kind = s:get(mock.url .. "/segments/list")
    assert.is_true(res ~= nil or kind == "timeout")
  end)

  it("max_body of exactly 2^63 is clamped: a Content-Length of 2^63 is too_large at once", function()
    local s = core.session{ api_key = "k", max_body = 2^63, timeout = 5 }
    finally(function() s:close() end)
    local res, kind, msg = s:get(canned_url("length2p63"))
    assert.is_nil(res)
    assert.equal("too_large", kind, msg)
    assert.matches("9223372036854775807 bytes", msg, 1, true)
  end)
end)

-- A C file from spec/c/ built into a shared object in `into`; returns its path.
local function build_c(name, into, flags)
  local out = into .. "/" .. name .. ".so"
  local cmd = "cc -shared -fPIC -o " .. tls.quote(out) .. " " .. tls.quote(helpers.root .. "/spec/c/" .. name .. ".c")
    .. " " .. (flags or "") .. " 2>&1"
  local msg = helpers.read_pipe(cmd)
  assert(helpers.read_file(out), "cannot build " .. name .. ": " .. msg)
  return out
end

-- Run a Lua chunk in a child interpreter that loads the same braze.core as
-- this run, with extra environment assignments; returns its output.
local function run_child(chunk, env)
  local file = dir .. "/child.lua"
  tls.write_file(file, "package.cpath = " .. string.format("%q", package.cpath) .. "\n"
    .. "package.path = " .. string.format("%q", package.path) .. "\n" .. chunk)
  return helpers.read_pipe((env or "") .. " " .. helpers.interpreter() .. " " .. tls.quote(file) .. " 2>&1")
end

describe("#lua53 a batch whose handle copy fails", function()
  it("raises, leaves no half-made batch behind, and the next batch works", function()
    local so = build_c("fail_duphandle", dir, "-ldl")
    local preload = ((os.getenv("LD_PRELOAD") or "") .. " " .. so):gsub("^ ", "")
    local out = run_child([[
      local core = require("braze.core")
      local url = ]] .. string.format("%q", mock.url .. "/segments/list") .. [[

      local s = core.session{ api_key = ]] .. string.format("%q", mock.api_key) .. [[, timeout = 5 }
      local ok, err = pcall(s.batch, s, 3) -- its second handle copy fails
      print("first", ok, err)
      collectgarbage() -- the half-made batch is collected
      collectgarbage()
      local b = s:batch(3)
      for i = 1, 3 do b:submit(url, i) end
      local res = {}
      for _ = 1, 10 do
        for _, o in ipairs(b:poll(5)) do res[o.tag] = o end
        if res[1] and res[2] and res[3] then break end
      end
      for i = 1, 3 do print("second", i, res[i].status or res[i].error, res[i].message) end
      print("get", s:get(url).status)
      s:close()
    ]], "BRAZE_FAIL_DUPHANDLE=2 LD_PRELOAD=" .. tls.quote(preload))
    assert.matches("first\tfalse\tbraze: cannot make a transfer handle", out, 1, true)
    for i = 1, 3 do assert.matches("second\t" .. i .. "\t200\t", out, 1, true) end
    assert.matches("get\t200", out, 1, true)
  end)
end)

describe("#lua53 a finalizer that closes the session in the middle of a call", function()
  -- Each trial: an object whose __gc closes the session (and then calls it)
  -- becomes garbage just before the call, with the collector running
  -- continuously, so the finalizer runs while the body is being decoded (at
  -- least once in the trials; before the call in others, when the call must
  -- say "closed"). The trials run in a child interpreter, whose heap is
  -- small: in the whole suite's heap a collection cycle outlasts the call
  -- (and sizing the body from that heap made the valgrind run crawl). The
  -- sanitizer run preloads ASan into the child too.
  local TRIALS = [==[
local core = require("braze.core")
local URL, OK_URL, WHICH = ...
local LUA54 = _VERSION == "Lua 5.4"
local function check_big(res)
  assert(res.status == 200, "status " .. tostring(res.status))
  assert(#res.body.segments == 10000 and res.body.segments[10000].id == "last", "body")
end
local call = ({
  get = function(s) return s:get(URL) end,
  batch = function(s)
    local b = s:batch(2)
    b:submit(URL, 1)
    b:submit(URL, 2)
    -- What each poll gave, until both came back or a poll raised
    -- (the session was closed by the finalizer after an earlier poll).
    local res = {}
    while not (res[1] and res[2]) do
      local pok, got = pcall(b.poll, b, 10)
      if not pok then res.raised = tostring(got) break end
      assert(#got > 0, "poll returned nothing")
      for _, o in ipairs(got) do res[o.tag] = o end
    end
    b:close()
    return res
  end,
})[WHICH]
local check = ({
  get = check_big,
  -- Whatever a poll returned is intact; what it did not return, a later
  -- poll refused as closed (unless `whole`: both must be there).
  batch = function(res, whole)
    for tag = 1, 2 do
      if res[tag] then check_big(res[tag])
      else assert(not whole and res.raised and res.raised:find("closed", 1, true), tostring(res.raised)) end
    end
  end,
})[WHICH]
local during = 0
for i = 1, 60 do
  if during > 0 and i > 3 then break end
  local s = core.session{ api_key = "k", timeout = 10 }
  local phase, state, reentry = "before"
  collectgarbage()
  setmetatable({}, { __gc = function()
    s:close()
    state = phase .. " " .. tostring(s):match("%((%a+)%)")
    reentry = { pcall(s.get, s, OK_URL) } -- a call on the same session
  end })
  collectgarbage("setpause", 0)
  if LUA54 then collectgarbage("incremental", 0, 100 + (i % 4) * 100) end
  phase = "during"
  local ok, res = pcall(call, s)
  phase = "after"
  collectgarbage("setpause", 200)
  collectgarbage()
  assert(state ~= nil, "the finalizer did not run")
  if state == "during closed" and WHICH == "batch" then
    -- closed between the batch's calls (not busy then): the next call
    -- raised "closed", and nothing was freed under it
    if ok then check(res) else assert(tostring(res):find("closed", 1, true), tostring(res)) end
  elseif state:match("^during") then
    -- closed while busy: left open until the call finished on intact buffers, then released
    during = during + 1
    assert(state == "during open", state)
    assert(ok, tostring(res))
    check(res)
    -- and the call from the finalizer raised instead of reusing the buffers
    assert(reentry[1] == false and tostring(reentry[2]):find("braze: session is busy", 1, true),
      "reentry: " .. tostring(reentry[2]))
  elseif state:match("^before") then
    assert(not ok and tostring(res):find("session is closed", 1, true), tostring(res))
  else
    assert(ok, tostring(res))
    check(res, true)
  end
  assert(tostring(s):find("(closed)", 1, true), tostring(s))
  local gok, gerr = pcall(s.get, s, OK_URL)
  assert(not gok and tostring(gerr):find("session is closed", 1, true), tostring(gerr))
end
print("during=" .. during)
]==]

  local function trials(which)
    local json = '{"message":"success","segments":[' .. ('{"id":"seg","n":1},'):rep(9999)
      .. '{"id":"last","n":2}]}'
    server:add("big", response("HTTP/1.1 200 OK",
      { "Content-Type: application/json", "Content-Length: " .. #json }, json))
    local chunk = "local function main(...)\n" .. TRIALS .. "\nend\nmain("
      .. string.format("%q, %q, %q", canned_url("big"), canned_url("ok"), which) .. ")\n"
    local out = run_child(chunk)
    local during = tonumber(out:match("during=(%d+)"))
    assert(during, out)
    assert.is_true(during > 0, "no finalizer ran during a call: " .. out)
  end

  it("get: the close waits for the end of the call (and a call from the finalizer raises 'busy')", function()
    trials("get")
  end)

  it("batch: the close waits for the end of the poll", function()
    trials("batch")
  end)
end)

describe("#lua53 two threads, each with its own lua_State", function()
  -- pkg-config's name for the Lua running this spec (5.3/5.4 only: the
  -- harness uses luaL_openlibs and package.searchpath).
  local lua_pc = ({ ["Lua 5.4"] = "lua5.4", ["Lua 5.3"] = "lua5.3" })[_VERSION]
  local harness = helpers.root .. "/spec/c/threads.c"

  local function build(out, flags)
    local msg = helpers.read_pipe("cc -std=c99 -o " .. tls.quote(out) .. " " .. flags .. " 2>&1")
    return helpers.read_file(out) ~= nil, msg
  end

  it("load braze.core at once, decode and make sessions, and the module stays loaded after", function()
    assert(lua_pc, "needs Lua 5.3 or 5.4")
    local exe = dir .. "/threads"
    local ok, msg = build(exe, tls.quote(harness) .. " $(pkg-config --cflags --libs " .. lua_pc .. ") -lpthread -ldl")
    assert(ok, msg)
    -- LD_PRELOAD (the ASan runtimes in a sanitizer run) is inherited.
    local out = helpers.read_pipe(tls.quote(exe) .. " " .. tls.quote(package.cpath) .. " 200 2>&1; echo exit=$?")
    assert.equal("thread 1: 200 ok\nthread 2: 200 ok\npinned\nexit=0\n", out)
  end)

  it("no data race under ThreadSanitizer (braze.core linked into the harness)", function()
    assert(lua_pc, "needs Lua 5.3 or 5.4")
    local exe = dir .. "/threads-tsan"
    local sources = {}
    for f in helpers.read_pipe("ls " .. tls.quote(helpers.root) .. "/csrc/*.c"):gmatch("[^\n]+") do
      sources[#sources + 1] = tls.quote(f)
    end
    local ok, msg = build(exe, "-fsanitize=thread -g -O1 -D_DEFAULT_SOURCE -DBRAZE_STATIC " .. tls.quote(harness)
      .. " " .. table.concat(sources, " ") .. " $(pkg-config --cflags --libs " .. lua_pc .. " libcurl) -lpthread -ldl")
    if not ok and msg:find("sanitize", 1, true) then
      pending("cc cannot build with -fsanitize=thread here: " .. msg)
      return
    end
    assert(ok, msg)
    local out = helpers.read_pipe("env -u LD_PRELOAD TSAN_OPTIONS=halt_on_error=1:exitcode=66 "
      .. tls.quote(exe) .. " - 30 2>&1; echo exit=$?")
    assert.equal("thread 1: 30 ok\nthread 2: 30 ok\nexit=0\n", out)
  end)
end)

describe("#lua53 a response header line over 100 KB", function()
  it("is a too_large error that says so, not an out-of-memory network error", function()
    local s = core.session{ api_key = "k", timeout = 5 }
    finally(function() s:close() end)
    local res, kind, msg = s:get(canned_url("giantheader"))
    assert.is_nil(res)
    assert.equal("too_large", kind, msg)
    assert.equal("response header line longer than 100 KB", msg)
    -- the same through a batch
    local b = s:batch(1)
    b:submit(canned_url("giantheader"), "t")
    local many = b:poll(5)
    assert.same({ error = "too_large", message = "response header line longer than 100 KB", tag = "t" }, many[1])
  end)
end)

describe("#lua53 core.random", function()
  it("returns doubles in [0, 1) that vary", function()
    local seen = {}
    for _ = 1, 2000 do
      local x = core.random()
      assert.is_number(x)
      assert.is_true(x >= 0 and x < 1, tostring(x))
      seen[x] = true
    end
    local distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.is_true(distinct > 1990, distinct .. " distinct values")
  end)

  it("differs between two processes started the same way (unlike an unseeded math.random)", function()
    local chunk = "local core = require('braze.core') local t = {} "
      .. "for i = 1, 4 do t[i] = string.format('%.17g', core.random()) end print(table.concat(t, ' '))"
    local a = run_child(chunk)
    local b = run_child(chunk)
    for _, out in ipairs({ a, b }) do
      local n = 0
      for v in out:gmatch("%S+") do
        local x = assert(tonumber(v), out)
        assert.is_true(x >= 0 and x < 1, out)
        n = n + 1
      end
      assert.equal(4, n, out)
    end
    assert.are_not.equal(a, b)
  end)
end)

describe("#lua53 fork", function()
  local fk, fk_so

  setup(function()
    local lua_pc = ({ ["Lua 5.4"] = "lua5.4", ["Lua 5.3"] = "lua5.3" })[_VERSION]
    assert(lua_pc, "needs Lua 5.3 or 5.4")
    local so = build_c("forkhelper", dir, "-std=c99 -D_DEFAULT_SOURCE $(pkg-config --cflags " .. lua_pc .. ")")
    fk = assert(package.loadlib(so, "luaopen_forkhelper"))()
    fk_so = so
  end)

  -- Run f in a forked child; the child exits with f's result (0 = passed)
  -- and never returns into busted. Returns the child's pid.
  local function spawn(f)
    local pid = fk.fork()
    if pid == 0 then
      local ok, code = pcall(f)
      if not ok then io.stderr:write("child: ", tostring(code), "\n") end
      fk.exit(ok and code or 99)
    end
    assert(pid > 0, "fork failed")
    return pid
  end

  it("a child drops the inherited connections: parent and child never get each other's answers", function()
    local s = core.session{ api_key = mock.api_key, timeout = 10 }
    finally(function() s:close() end)
    local segments = assert(s:get(mock.url .. "/segments/list")).body.segments -- a kept-alive connection
    assert.is_true(#segments >= 10)
    local function details(k)
      return mock.url .. "/segments/details?segment_id=" .. segments[k].id
    end
    -- A batch's concurrent requests, collected by tag.
    local function both(b, k2, k)
      b:submit(details(k2), 1)
      b:submit(details(k), 2)
      local got = {}
      for _ = 1, 10 do
        for _, o in ipairs(b:poll(10)) do got[o.tag] = o end
        if got[1] and got[2] then break end
      end
      return got
    end
    -- The parent's batch, with kept-alive connections of its own (the
    -- session's multi handle), used before, between and after the children.
    local pb = s:batch(2)
    assert(both(pb, 1, 2)[2])
    -- Each process asks for its own segments, and counts answers about others.
    local function work(rounds, b)
      local mixups, failures = 0, 0
      local function check(res, k)
        if not (res and res.status == 200) then failures = failures + 1
        elseif res.body.name ~= segments[k].name then mixups = mixups + 1 end
      end
      for r = 1, rounds do
        local k = (fk.getpid() * 3 + r) % #segments + 1
        local k2 = k % #segments + 1
        check(s:get(details(k)), k)
        local many = both(b or s:batch(2), k2, k) -- the child: a batch of its own
        check(many[1], k2)
        check(many[2], k)
      end
      return mixups, failures
    end
    for _ = 1, 4 do
      local pid = spawn(function()
        local mixups, failures = work(25)
        -- The parent's batch is not the child's.
        local ok, err = pcall(pb.submit, pb, details(1), 1)
        if ok or not tostring(err):find("batch is closed", 1, true) then return 2 end
        s:close() -- must not touch the parent's sockets either
        return (mixups == 0 and failures == 0) and 0 or 1
      end)
      local mixups, failures = work(25, pb)
      assert.equal(0, fk.wait(pid), "the child saw mixups or failures")
      assert.equal(0, mixups)
      assert.equal(0, failures)
    end
    -- The parent's kept-alive connection survived the children: reused, not re-made.
    local before = mock:stats().connections
    for _ = 1, 5 do assert.equal(200, assert(s:get(mock.url .. "/segments/list")).status) end
    assert.equal(before + 1, mock:stats().connections) -- +1: the stats request itself
  end)

  it("a child's get and close never touch the parent's TLS connection (no close_notify on it)", function()
    local tdir = dir .. "/tls"
    assert(tls.sh("mkdir -p " .. tls.quote(tdir)))
    local ca = tls.make_ca(tdir, "ca")
    tls.make_cert(tdir, "localhost", "ca", "DNS:localhost,IP:127.0.0.1")
    local front = tls.start_nginx(tdir, { good = { cert = "localhost", upstream = mock.url } })
    local url = "https://localhost:" .. front.ports.good .. "/segments/list"
    local s = core.session{ api_key = mock.api_key, timeout = 10, ca_file = ca }
    finally(function() s:close(); front:stop() end) -- busted keeps one finally per test
    -- nginx logs this (info) when a client ends a kept-alive TLS connection,
    -- close_notify included.
    local function closed()
      local n = 0
      for _ in front:error_log():gmatch("closed keepalive connection") do n = n + 1 end
      return n
    end
    assert.equal(200, assert(s:get(url)).status) -- the parent's connection
    -- A child that only closes the session.
    assert.equal(0, fk.wait(spawn(function() s:close() return 0 end)))
    socket.sleep(0.3)
    assert.equal(0, closed())
    -- A child that makes its own connection, then closes it: that one only.
    assert.equal(0, fk.wait(spawn(function()
      local res = s:get(url)
      s:close()
      return (res and res.status == 200) and 0 or 1
    end)))
    socket.sleep(0.3)
    assert.equal(1, closed())
    -- The parent's connection is still open and in use.
    assert.equal(200, assert(s:get(url)).status)
    socket.sleep(0.3)
    assert.equal(1, closed())
  end)

  it("a child's batch close and its lua_close (os.exit(0, true)) never touch the parent's TLS connections", function()
    -- Issue 18 item 4: a child's batch:close() (and lua_close, which
    -- finalizes batches before sessions) cleaned up the batch's handles and
    -- multi handle on the parent's sockets: TLS close_notify on them.
    local tdir = dir .. "/tls-batch"
    assert(tls.sh("mkdir -p " .. tls.quote(tdir)))
    local ca = tls.make_ca(tdir, "ca")
    tls.make_cert(tdir, "localhost", "ca", "DNS:localhost,IP:127.0.0.1")
    local front = tls.start_nginx(tdir, { good = { cert = "localhost", upstream = mock.url } })
    finally(function() front:stop() end)
    local url = "https://localhost:" .. front.ports.good .. "/segments/list"
    local function closed()
      local n = 0
      for _ in front:error_log():gmatch("closed keepalive connection") do n = n + 1 end
      return n
    end
    -- In a child interpreter: a sockets-mode and a poll-mode batch, each
    -- with a kept-alive connection; fork; the child closes the batches (or
    -- exits through lua_close); the parent then reuses its connections.
    local out = run_child([[
local fk = assert(package.loadlib(]] .. string.format("%q", fk_so) .. [[, "luaopen_forkhelper"))()
local core = require("braze.core")
local url, ca = ]] .. string.format("%q, %q", url, ca) .. [[
local s = core.session{ api_key = ]] .. string.format("%q", mock.api_key) .. [[, timeout = 10, ca_file = ca }
-- Drive a sockets-mode batch without an event loop: every socket it
-- watches is offered as ready, and its timer fired, until the answer.
local function drive(b)
  local fds = {}
  for _ = 1, 2000 do
    local u = b:updates()
    for _, w in ipairs(u) do fds[w.fd] = w.what ~= "remove" or nil end
    local outs = b:action()
    for fd in pairs(fds) do
      for _, o in ipairs(b:action(fd, "rw")) do outs[#outs + 1] = o end
    end
    if #outs > 0 then return outs[1] end
    os.execute("sleep 0.005")
  end
  error("no answer")
end
local sb, pb = s:batch(1, "sockets"), s:batch(1)
sb:submit(url, 1)
local first = drive(sb)
assert(first.status == 200, tostring(first.status or first.message))
pb:submit(url, 2)
assert(pb:poll(10)[1].status == 200)
for _, mode in ipairs({ "close", "exit" }) do
  local pid = fk.fork()
  if pid == 0 then
    if mode == "close" then
      sb:close()
      pb:close()
      fk.exit(0)
    end
    os.exit(0, true) -- lua_close: finalizes the batches, then the session
  end
  print(mode, fk.wait(pid))
end
os.execute("sleep 0.3")
sb:submit(url, 3)
print("parent-sockets", drive(sb).status)
pb:submit(url, 4)
print("parent-poll", pb:poll(10)[1].status)
]], "")
    assert.matches("close	0", out, 1, true)
    assert.matches("exit	0", out, 1, true)
    assert.matches("parent-sockets	200", out, 1, true)
    assert.matches("parent-poll	200", out, 1, true)
    -- The children closed nothing of the parent's, and the parent's two
    -- connections were reused, not made again. (The parent's own exit, at
    -- the end of the child interpreter, closes them: that is 2.)
    assert.equal(2, closed(), front:error_log())
  end)

  it("core.random in a child does not repeat the parent's sequence", function()
    local file = dir .. "/random.txt"
    core.random()
    local pid = spawn(function()
      helpers.write_file(file, string.format("%.17g", core.random()))
      return 0
    end)
    local mine = string.format("%.17g", core.random())
    assert.equal(0, fk.wait(pid))
    assert.are_not.equal(mine, helpers.read_file(file))
  end)
end)
