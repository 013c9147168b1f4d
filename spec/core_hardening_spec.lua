-- Issue 11, the C core's hardening: option strings kept alive while the
-- constructor runs, sub-millisecond timeouts, NUL bytes in options, the
-- max_body clamp, the connection pool after a failed handle copy, closing
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
local helpers = require("spec.helpers")
local tls = require("spec.tls_nginx")
local socket = require("socket")

local LUA54 = _VERSION == "Lua 5.4"

-- A raw HTTP server in a child process: reads one request for /<case>/...,
-- sends dir/<case>.http byte for byte, closes. Leaves after 60 s idle.
local CANNED = [==[
local socket = require("socket")
local dir = arg[1]
local srv = assert(socket.bind("127.0.0.1", 0))
srv:settimeout(60)
local _, port = srv:getsockname()
local f = io.open("/proc/self/stat"); local pid = f and f:read("*l"):match("^%d+") or "?"; if f then f:close() end
io.stdout:write("canned ", port, " ", pid, "\n")
io.stdout:flush()
while true do
  local c = srv:accept()
  if not c then break end
  c:settimeout(5)
  local line = c:receive("*l") or ""
  repeat local h = c:receive("*l") until not h or h == ""
  local case = line:match("^GET /([%w_]+)/")
  if case == "quit" then c:close() break end
  local fh = case and io.open(dir .. "/" .. case .. ".http", "rb")
  local data = fh and fh:read("*a") or "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
  if fh then fh:close() end
  c:send(data)
  c:shutdown("send")
  c:settimeout(0.3)
  c:receive("*a")
  c:close()
end
]==]

local JSON_OK = '{"message":"success","segments":[]}'

local function response(status_line, headers, body)
  return status_line .. "\r\n" .. table.concat(headers, "\r\n") .. (#headers > 0 and "\r\n" or "")
    .. "\r\n" .. (body or "")
end

local dir, canned_port, canned_pid, canned_pipe, mock

local function canned_url(case)
  return "http://127.0.0.1:" .. canned_port .. "/" .. case .. "/segments/list"
end

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
  for name, data in pairs(cases) do tls.write_file(dir .. "/" .. name .. ".http", data) end
  local script = dir .. "/canned.lua"
  tls.write_file(script, CANNED)
  canned_pipe = assert(io.popen(helpers.lua .. " " .. tls.quote(script) .. " " .. tls.quote(dir)
    .. " </dev/null &", "r"))
  local line = canned_pipe:read("*l") or ""
  local port, pid = line:match("^canned (%d+) (%d+)$")
  assert(port, "canned server did not start: " .. line)
  canned_port, canned_pid = tonumber(port), pid
end)

teardown(function()
  if mock then mock:stop() end
  if canned_pid then
    pcall(helpers.request, { host = "127.0.0.1", port = canned_port }, "/quit/", { timeout = 1 })
    for _ = 1, 50 do
      if not helpers.alive(canned_pid) then break end
      socket.sleep(0.02)
    end
    if helpers.alive(canned_pid) then os.execute("kill -KILL " .. canned_pid .. " 2>/dev/null") end
  end
  if canned_pipe then canned_pipe:close() end
  if dir then tls.remove(dir) end
end)

-- The user agent the mock saw on its last recorded request.
local function last_user_agent()
  local reqs = mock:requests()
  return reqs[#reqs].user_agent
end

describe("core.session options", function()
  after_each(function()
    if LUA54 then collectgarbage("incremental") end
    collectgarbage("restart")
    collectgarbage()
  end)

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
      local junk = {}
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
