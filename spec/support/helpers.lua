-- Shared test helpers: start a braze-mock process and talk raw HTTP to it.
--
--   local helpers = require("spec.support.helpers")
--   local mock
--   setup(function() mock = helpers.start_mock{ segments = 250 } end)
--   teardown(function() mock:stop() end)
--
-- Every network call here has a timeout, so a broken mock fails a test
-- instead of hanging the run.

local socket = require("socket")
local cjson = require("cjson")

local helpers = {
  api_key = "braze-mock-key", -- the mock's default key
  lua = os.getenv("LUA") or "lua5.4", -- interpreter for the mock process
  timeout = 5, -- seconds, for every helper request
}

-- The repository root, from this file's own path, so the helpers work
-- whatever the current directory is.
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/support/helpers.lua"
-- (this file is spec/support/helpers.lua: the root is two folders up)
local support_dir = here:match("^(.*)/[^/]*$") or "."
local spec_dir = support_dir:match("^(.*)/[^/]*$") or "."
helpers.root = spec_dir:match("^(.*)/[^/]*$") or "."
if spec_dir == "spec" then helpers.root = "." end

--- The interpreter running the specs (lua5.3 under `lua5.3 busted`, and
--- lua5.4, not valgrind's tool, under `valgrind lua5.4 busted`), for child
--- processes that must load the same build of braze.core.
function helpers.interpreter()
  return (arg and arg[-1]) or helpers.lua
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
helpers.shell_quote = shell_quote

--- A file's bytes, or nil when it cannot be read.
function helpers.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function helpers.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- Everything a shell command prints on stdout.
function helpers.read_pipe(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

--- Run a shell command; true when it exited 0 (on every Lua's os.execute).
function helpers.sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

--- The repository root as an absolute path (for child processes that cd elsewhere).
function helpers.abs_root()
  if helpers.root:sub(1, 1) == "/" then return helpers.root end
  return (helpers.read_pipe("cd " .. shell_quote(helpers.root) .. " && pwd"):gsub("\n$", ""))
end

--- Put the collector back as Lua starts it, after a spec that tuned it
--- (a pause or step multiplier left behind slows every spec after it:
--- `collectgarbage("incremental")` alone keeps 5.4's values).
function helpers.default_gc()
  collectgarbage("restart")
  if _VERSION == "Lua 5.4" then
    collectgarbage("incremental", 200, 100, 13)
  else
    collectgarbage("setpause", 200)
    collectgarbage("setstepmul", 200)
  end
  collectgarbage()
end

--- A transport (braze.new's `transport` option) that records the URLs and
--- configs it is given and answers `answer`: a response table, or a
--- function(url) returning what session:get would (default: an empty page).
--- For checks of what would be sent, without a server.
function helpers.recording_transport(answer)
  local t = { urls = {}, configs = {} }
  function t.new(config)
    t.configs[#t.configs + 1] = config
    return {
      get = function(_, url)
        t.urls[#t.urls + 1] = url
        if type(answer) == "function" then return answer(url) end
        return answer or { status = 200, headers = {}, body = { message = "success", segments = {} } }
      end,
      close = function() t.closed = true end,
    }
  end
  return t
end

--- Percent-encode every byte but the unreserved ones (RFC 3986).
function helpers.url_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

--- "a=1&b=2" from a table (keys sorted, so the result is stable).
function helpers.query(params)
  local keys, parts = {}, {}
  for k in pairs(params or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = helpers.url_encode(k) .. "=" .. helpers.url_encode(params[k])
  end
  return table.concat(parts, "&")
end

--- Read one HTTP response from a connected socket (its timeout already set).
--- Returns { status, reason, headers (lower-case names), header_list
--- ({name, value} in order, values as sent), body, closed (server closed
--- after the body) } or nil, err, partial_bytes.
function helpers.read_response(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local status, reason = line:match("^HTTP/1%.[01] (%d%d%d) ?(.*)$")
  if not status then return nil, "bad status line: " .. line end
  local resp = { status = tonumber(status), reason = reason, headers = {}, header_list = {} }
  while true do
    local h, herr = sock:receive("*l")
    if not h then return nil, herr end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s?(.*)$")
    resp.header_list[#resp.header_list + 1] = { name, value }
    resp.headers[name:lower()] = value
  end
  local len = resp.headers["content-length"]
  local body, berr, partial
  if len then
    body, berr, partial = sock:receive(tonumber(len))
  elseif (resp.headers["transfer-encoding"] or ""):lower() == "chunked" then
    local parts = {}
    while true do
      local size_line = sock:receive("*l")
      local size = size_line and tonumber(size_line:match("^%x+"), 16)
      if not size then return nil, "bad chunk size", table.concat(parts) end
      if size == 0 then sock:receive("*l"); break end
      parts[#parts + 1] = sock:receive(size)
      sock:receive("*l")
    end
    body = table.concat(parts)
  else
    body, berr, partial = sock:receive("*a")
  end
  if not body then return nil, berr, partial end
  resp.body = body
  return resp
end

--- A raw request on a fresh connection. opts: method, headers (table), body,
--- timeout, auth (api key to send as Bearer, or false). Returns a response
--- as read_response does, plus the elapsed seconds.
function helpers.request(mock, target, opts)
  opts = opts or {}
  local sock = socket.tcp()
  sock:settimeout(opts.timeout or helpers.timeout)
  local ok, err = sock:connect(mock.host, mock.port)
  if not ok then sock:close(); return nil, err end
  local lines = { (opts.method or "GET") .. " " .. target .. " HTTP/1.1", "Host: " .. mock.host .. ":" .. mock.port }
  if opts.auth then lines[#lines + 1] = "Authorization: Bearer " .. opts.auth end
  for k, v in pairs(opts.headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  lines[#lines + 1] = "Connection: close"
  local started = socket.gettime()
  local sent, serr = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (opts.body or ""))
  if not sent then sock:close(); return nil, serr end
  local resp, rerr, partial = helpers.read_response(sock)
  sock:close()
  if not resp then return nil, rerr, partial end
  return resp, socket.gettime() - started
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("*l") or ""
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z" -- a zombie has already exited
end
helpers.alive = alive

local Mock = {}
Mock.__index = Mock

--- An API request with this mock's key (opts.auth overrides it; false: none).
function Mock:api(target, opts)
  opts = opts or {}
  if opts.auth == nil then opts.auth = self.api_key end
  return helpers.request(self, target, opts)
end

--- GET /_mock/<name>?params; returns the decoded JSON body (errors raise).
function Mock:control(name, params)
  local q = helpers.query(params)
  local resp, err = helpers.request(self, "/_mock/" .. name .. (q ~= "" and "?" .. q or ""))
  if not resp then error("braze-mock control " .. name .. ": " .. tostring(err), 2) end
  if resp.status ~= 200 then
    error("braze-mock control " .. name .. ": HTTP " .. resp.status .. " " .. resp.body, 2)
  end
  return cjson.decode(resp.body)
end

function Mock:fault(params) return self:control("fault", params) end
function Mock:stats() return self:control("stats") end
function Mock:requests() return self:control("requests").requests end
function Mock:reset() return self:control("reset") end
--- GET /_mock/config: change segments, latency, rate_limit, rate_window while
--- the mock runs; returns the settings now in force.
function Mock:config(params) return self:control("config", params) end

--- Stop the mock: ask politely, then TERM, then KILL. Never hangs.
function Mock:stop()
  if self.stopped then return end
  self.stopped = true
  local saved = helpers.timeout
  helpers.timeout = 2
  pcall(helpers.request, self, "/_mock/shutdown")
  helpers.timeout = saved
  local function wait_gone(seconds)
    local deadline = socket.gettime() + seconds
    while alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.02) end
    return not alive(self.pid)
  end
  for _, sig in ipairs({ false, "TERM", "KILL" }) do
    if sig then os.execute("kill -" .. sig .. " " .. self.pid .. " 2>/dev/null") end
    if wait_gone(2) then break end
  end
  if self.pipe then self.pipe:close(); self.pipe = nil end
end

--- Start `bin/braze-mock --port 0 ...` in the background. args: a table
--- ({segments = 250, rate_limit = 3, latency = 300}; underscores become
--- dashes, true means a bare flag) or a string of extra arguments.
--- Returns a mock with url, host, port, pid, api_key and the methods above.
function helpers.start_mock(args)
  local cmd = { helpers.lua, shell_quote(helpers.root .. "/bin/braze-mock") }
  if not (type(args) == "table" and args.port) then cmd[#cmd + 1] = "--port 0" end
  local api_key = helpers.api_key
  if type(args) == "table" then
    local keys = {}
    for k in pairs(args) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      cmd[#cmd + 1] = "--" .. k:gsub("_", "-")
      if args[k] ~= true then cmd[#cmd + 1] = shell_quote(args[k]) end
    end
    api_key = args.api_key or api_key
  elseif type(args) == "string" then
    cmd[#cmd + 1] = args
    api_key = args:match("%-%-api%-key[= ]+(%S+)") or api_key
  end
  -- `&`: the shell returns at once and the mock keeps our pipe as its stdout;
  -- we read just its first line (URL and pid). A mock that fails to start
  -- exits, which closes the pipe, so this read cannot block forever.
  local command = table.concat(cmd, " ") .. " </dev/null &"
  local pipe = assert(io.popen(command, "r"))
  local line = pipe:read("*l")
  local url, pid = (line or ""):match("^braze%-mock listening on (http://%S+) pid (%d+)$")
  if not url then
    pipe:close()
    error("braze-mock did not start (" .. command .. "): " .. tostring(line), 2)
  end
  local host, port = url:match("^http://(.-):(%d+)$")
  return setmetatable({
    url = url, host = host, port = tonumber(port), pid = tonumber(pid),
    api_key = api_key, pipe = pipe, line = line, command = command,
  }, Mock)
end

--- Send all requests at once on separate connections and read the answers as
--- they come (LuaSocket, non-blocking). During the wait, `probe` (a target)
--- is fetched every 100 ms on its own connection. Returns the responses (in
--- request order, each {status=, body=, done=seconds}), the probe timings
--- and the total time.
function helpers.concurrent(port, targets, probe, limit)
  local started = socket.gettime()
  local conns, pending = {}, {}
  for i, target in ipairs(targets) do
    local c = assert(socket.tcp())
    c:settimeout(2)
    assert(c:connect("127.0.0.1", port))
    assert(c:send("GET " .. target .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    c:settimeout(0)
    conns[i] = { sock = c, parts = {} }
    pending[#pending + 1] = c
  end
  local by_sock = {}
  for i, c in ipairs(conns) do by_sock[c.sock] = i end
  local probes, next_probe, left = {}, started + 0.1, #targets
  while left > 0 and socket.gettime() - started < limit do
    local readable = socket.select(pending, nil, 0.02)
    for _, s in ipairs(readable) do
      local c = conns[by_sock[s]]
      local data, err, partial = s:receive(65536)
      data = data or partial
      if data and data ~= "" then c.parts[#c.parts + 1] = data end
      if err == "closed" then
        c.done = socket.gettime() - started
        s:close()
        left = left - 1
        for k, p in ipairs(pending) do
          if p == s then table.remove(pending, k) break end
        end
      end
    end
    if probe and left > 0 and socket.gettime() >= next_probe then
      local t0 = socket.gettime()
      local res = helpers.request({ host = "127.0.0.1", port = port }, probe, { timeout = 2 })
      probes[#probes + 1] = { at = t0 - started, took = socket.gettime() - t0, status = res and res.status }
      next_probe = socket.gettime() + 0.1
    end
  end
  local total = socket.gettime() - started
  local out = {}
  for i, c in ipairs(conns) do
    if not c.done then c.sock:close() end
    local raw = table.concat(c.parts)
    local status = tonumber(raw:match("^HTTP/1%.%d (%d%d%d)"))
    local head, body = raw:match("^(.-\r\n)\r\n(.*)$")
    if head and head:lower():find("transfer%-encoding: chunked") then
      local chunks, pos = {}, 1
      while true do
        local size_hex, after = body:match("^(%x+)[^\r\n]*\r\n()", pos)
        local size = size_hex and tonumber(size_hex, 16)
        if not size or size == 0 then break end
        chunks[#chunks + 1] = body:sub(after, after + size - 1)
        pos = after + size + 2
      end
      body = table.concat(chunks)
    end
    local ok, doc = pcall(cjson.decode, body or "")
    out[i] = { status = status, body = ok and doc or body, done = c.done }
  end
  return out, probes, total
end

return helpers
