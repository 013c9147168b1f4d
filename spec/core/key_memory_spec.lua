-- The API key after session:close(): no "Bearer <key>" left anywhere in the
-- process's writable memory, freed heap blocks included (issue 18 item 5).
-- libcurl builds every request in buffers of its own; braze.core
-- initializes libcurl with allocation functions that wipe each block it
-- frees (csrc/process.c), and wipes its own copy of the header on close.
-- Scanned by spec/c/memscan.c, in a child interpreter over HTTP (the mock)
-- and HTTPS (an nginx TLS front), through get and both batch modes.
local helpers = require("spec.support.helpers")
local tls = require("spec.support.tls_nginx")
local child = require("spec.core.child")

local mock, dir, memscan_so

-- pkg-config's name for the Lua running this spec.
local function lua_pkg()
  if jit then return "luajit" end
  return ({ ["Lua 5.4"] = "lua5.4", ["Lua 5.3"] = "lua5.3", ["Lua 5.1"] = "lua5.1" })[_VERSION]
end

setup(function()
  mock = helpers.start_mock{ segments = 3 }
  dir = tls.tempdir("braze-keymem")
  memscan_so = dir .. "/memscan.so"
  local msg = helpers.read_pipe("cc -shared -fPIC -std=c99 -o " .. tls.quote(memscan_so) .. " "
    .. tls.quote(helpers.root .. "/spec/c/memscan.c") .. " $(pkg-config --cflags " .. lua_pkg() .. ") 2>&1")
  assert(helpers.read_file(memscan_so), "cannot build memscan: " .. msg)
end)

teardown(function()
  if mock then mock:stop() end
  if dir then tls.remove(dir) end
end)

-- A key the mock does not know (its answers are 401s: the header is sent
-- all the same), made at run time so no Lua string holds "Bearer <key>".
local function fresh_key()
  return "scan-" .. string.format("%08x", math.floor((os.time() * 7919) % 2^31)) .. "-zq"
end

local CHUNK = [[
local memscan = assert(package.loadlib(MEMSCAN, "luaopen_memscan"))()
local core = require("braze.core")
local key, base, ca = ...
local s = core.session{ api_key = key, timeout = 5, ca_file = ca ~= "" and ca or nil }
local url = base .. "/segments/list"
for _ = 1, 3 do assert(s:get(url).status == 401) end
for _, mode in ipairs({ "poll", "sockets" }) do
  local b = s:batch(2, mode)
  b:submit(url, 1)
  b:submit(url, 2)
  local n, fds = 0, {}
  for _ = 1, 2000 do
    if mode == "poll" then n = n + #b:poll(5)
    else -- no event loop: every watched socket is offered as ready, and the timer fired
      for _, w in ipairs(b:updates()) do fds[w.fd] = w.what ~= "remove" or nil end
      n = n + #b:action()
      for fd in pairs(fds) do n = n + #b:action(fd, "rw") end
      if n < 2 then os.execute("sleep 0.005") end
    end
    if n == 2 then break end
  end
  assert(n == 2, mode .. ": " .. n .. " answers")
  b:close()
end
print("open=" .. memscan.count("Bearer ", key))
s:close()
collectgarbage()
collectgarbage()
print("closed=" .. memscan.count("Bearer ", key))
]]

local function scan(base, ca)
  local out, code = child.run("local MEMSCAN = " .. string.format("%q", memscan_so) .. "\n" .. CHUNK,
    { args = { fresh_key(), base, ca or "" } })
  assert.equal(0, code, out)
  local open, closed = out:match("open=(%d+)"), out:match("closed=(%d+)")
  assert(open and closed, out)
  -- The scan finds the session's own copy while it is open (so it can
  -- find one), and nothing once it is closed.
  assert.is_true(tonumber(open) >= 1, out)
  assert.equal(0, tonumber(closed), out)
end

describe("the API key after close()", function()
  it("is in no memory of the process: plain HTTP", function()
    scan(mock.url)
  end)

  it("is in no memory of the process: HTTPS", function()
    local tdir = dir .. "/tls"
    assert(tls.sh("mkdir -p " .. tls.quote(tdir)))
    local ca = tls.make_ca(tdir, "ca")
    tls.make_cert(tdir, "localhost", "ca", "DNS:localhost,IP:127.0.0.1")
    local front = tls.start_nginx(tdir, { good = { cert = "localhost", upstream = mock.url } })
    finally(function() front:stop() end)
    scan("https://localhost:" .. front.ports.good, ca)
  end)
end)
