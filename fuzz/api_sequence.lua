--- fuzz/api_sequence.lua: random sequences of braze.core calls, valid and
--- invalid, on sessions and batches (both modes) and the decoder, with the
--- collector stepping between them, finalizers that call back into the API
--- (closing, polling, making batches), coroutines abandoned or closed
--- between calls, and to-be-closed variables (5.4). Every call is
--- protected: a Lua error is an answer; only a crash, a sanitizer report or
--- a hang fails. Run by fuzz/api.sh under ASan.
---
---   lua5.4 fuzz/api_sequence.lua SECONDS [SEED]
local core = require("braze.core")
local canned = require("spec.support.canned_server")

local seconds = tonumber(arg[1] or "10")
local seed = tonumber(arg[2] or "") or os.time()
math.randomseed(seed)
io.stdout:write("api_sequence: seed ", seed, ", ", seconds, " s\n")
io.stdout:flush()

local JSON = '{"message":"success","segments":[' .. ('{"id":"a","n":1.5,"t":[true,null]},'):rep(300) .. '{}]}'
local server = canned.start{
  ok = canned.response("HTTP/1.1 200 OK", { "Content-Length: " .. #JSON }, JSON),
  bad = canned.response("HTTP/1.1 500 Oops", { "Content-Length: 9" }, "not json!"),
  chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[1,2]\r\n0\r\nHTTP/1.1: x\r\n\r\n",
  big = canned.response("HTTP/1.1 200 OK", { "Content-Length: 999999999" }, ""),
}
-- A socket that listens and never answers: requests hang until their timeout.
local socket = require("socket")
local silent = assert(socket.bind("127.0.0.1", 0))
local _, silent_port = silent:getsockname()

local URLS = {
  function() return server:url("ok") end,
  function() return server:url("bad") end,
  function() return server:url("chunked") end,
  function() return server:url("big") end,
  function() return "http://127.0.0.1:" .. silent_port .. "/segments/list" end,
  function() return "http://127.0.0.1:9/refused" end,
  function() return server:url("ok") .. "\0&evil" end,
  function() return "not a url" end,
  function() return "http://127.0.0.1:9/" .. ("x"):rep(math.random(1, 9) * 10000) end,
  function() return math.random(1, 100) end,
  function() return {} end,
}
local function any_url() return URLS[math.random(#URLS)]() end
local function any_value()
  local r = math.random(6)
  if r == 1 then return nil elseif r == 2 then return math.random() elseif r == 3 then return "s"
  elseif r == 4 then return {} elseif r == 5 then return -math.random(1, 100) end
  return math.huge
end

local sessions, batches = {}, {}
local function pick(t)
  if #t == 0 then return nil end
  return t[math.random(#t)]
end

local ops -- forward: finalizers call them too

-- A garbage object whose finalizer runs f.
local function finalizer_of(f)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = f
  else
    setmetatable({}, { __gc = f })
  end
end

-- A finalizer that makes random calls (fewer the deeper it is).
local function finalizer(depth)
  finalizer_of(function()
    if depth < 3 then
      for _ = 1, math.random(1, 3) do pcall(ops[math.random(#ops)], depth + 1) end
    end
  end)
end

-- The collector stepping at (nearly) every allocation, or back to normal.
local function aggressive(on)
  if _VERSION == "Lua 5.4" then
    if on then collectgarbage("incremental", 1, 1000) else collectgarbage("incremental", 200, 100) end
  else
    collectgarbage("setpause", on and 1 or 200)
    collectgarbage("setstepmul", on and 1000 or 200)
  end
end

ops = {
  function() -- a session
    if #sessions > 6 then table.remove(sessions, 1) end
    local ok, s = pcall(core.session, { api_key = "k", timeout = 0.05 + math.random() * 0.25,
      max_body = math.random(1, 3) == 1 and math.random(1, 5000) or nil,
      max_depth = math.random(1, 4) == 1 and math.random(0, 20) or nil })
    if ok then sessions[#sessions + 1] = s end
  end,
  function() local s = pick(sessions); if s then s:close() end end,
  function() local s = pick(sessions); if s then s:get(any_url()) end end,
  function() -- a batch, with the collector running around it
    local s = pick(sessions)
    if not s then return end
    if #batches > 8 then table.remove(batches, 1) end
    -- The collector runs continuously while the batch is made, and a
    -- finalizer may close its session (or call anything else) meanwhile.
    aggressive(true)
    collectgarbage() -- the next cycle starts at once (pause 1)
    finalizer(1)
    if math.random(2) == 1 then finalizer_of(function() s:close() end) end
    local modes = { "poll", "sockets", "poll", "nope" }
    local ok, b
    for _ = 1, 3 do
      ok, b = pcall(s.batch, s, math.random(0, 5) == 0 and math.random(-1, 70) or math.random(1, 4),
        modes[math.random(#modes)])
      if ok then batches[#batches + 1] = b end
    end
    aggressive(false)
    if not ok then error(b, 0) end
  end,
  function() local b = pick(batches); if b then b:submit(any_url(), any_value() or "t") end end,
  function() -- poll, action or updates with the collector running and a finalizer closing
    local b, s = pick(batches), pick(sessions)
    if not b then return end
    aggressive(true)
    collectgarbage()
    finalizer_of(function() if math.random(2) == 1 then b:close() elseif s then s:close() end end)
    local ok, err = pcall(function()
      local r = math.random(3)
      if r == 1 then b:poll(0) elseif r == 2 then b:updates() else b:action() end
    end)
    aggressive(false)
    if not ok then error(err, 0) end
  end,
  function()
    local b = pick(batches)
    if b then b:poll(({ 0, 0.01, 0.05, -1 })[math.random(4)] == -1 and 0.1 or math.random() * 0.05) end
  end,
  function() local b = pick(batches); if b then b:updates() end end,
  function()
    local b = pick(batches)
    if not b then return end
    if math.random(2) == 1 then b:action() else b:action(math.random(0, 64), ({ "r", "w", "rw", "" })[math.random(4)]) end
  end,
  function() local b = pick(batches); if b then b:close() end end,
  function() -- the decoder on a cut or bent document
    local doc = JSON:sub(1, math.random(1, 400))
    if math.random(2) == 1 then doc = doc:gsub(".", function(c) return math.random(40) == 1 and "\\" or c end) end
    core.decode(doc, math.random(1, 30))
  end,
  function() collectgarbage(({ "step", "collect", "step" })[math.random(3)]) end,
  function() finalizer(1) end,
  function() -- a coroutine that calls into the API and is dropped (or closed) midway
    local co = coroutine.create(function()
      for _ = 1, 4 do
        pcall(ops[math.random(#ops)], 2)
        coroutine.yield()
      end
    end)
    coroutine.resume(co)
    if coroutine.close and math.random(2) == 1 then coroutine.close(co) end
  end,
  function() -- tostring and the protected metatables
    local o = pick(math.random(2) == 1 and sessions or batches)
    if o then
      tostring(o)
      local mt = getmetatable(o)
      assert(type(mt) == "string", "metatable not protected")
    end
  end,
}

-- To-be-closed variables (5.4): a session and batch closed by a raise.
if _VERSION == "Lua 5.4" then
  local tbc = load([[
    local core, url = ...
    local s <close> = core.session{ api_key = "k", timeout = 0.1 }
    local b <close> = s:batch(2)
    b:submit(url, 1)
    if math.random(2) == 1 then error("midway") end
    b:poll(0.05)
  ]])
  ops[#ops + 1] = function() tbc(core, any_url()) end
end

local deadline = os.time() + seconds
local calls, errors = 0, 0
while os.time() < deadline do
  for _ = 1, 50 do
    local ok = pcall(ops[math.random(#ops)], 1)
    calls = calls + 1
    if not ok then errors = errors + 1 end
  end
end
for _, b in ipairs(batches) do b:close() end
for _, s in ipairs(sessions) do s:close() end
sessions, batches = nil, nil
collectgarbage()
collectgarbage()
silent:close()
server:stop()
print(string.format("api_sequence: %d calls, %d raised, no crash", calls, errors))
