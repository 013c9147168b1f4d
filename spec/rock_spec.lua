-- Installing as a rock, as the README says (`luarocks --lua-version=5.4
-- --tree T make`, offline), from a copy of the sources: both commands run
-- from the tree against the mock; without argparse each names what is
-- missing; a Lua 5.1 tree's braze-segments runs with lua5.4 or says how to
-- get one that does. Needs Debian's luarocks. Tagged #rock (a few seconds
-- of builds; .busted leaves it out of the quick loop):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=rock spec/rock_spec.lua
local helpers = require("spec.helpers")

local q = helpers.shell_quote
local read_file = helpers.read_file

local ROOT = helpers.root
if ROOT:sub(1, 1) ~= "/" then ROOT = helpers.read_pipe("cd " .. q(ROOT) .. " && pwd"):gsub("\n$", "") end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- Run a shell command line with env (string values set, false unsets).
local function run(dir, env, command)
  local parts, sets = { "env" }, {}
  for k, v in pairs(env or {}) do
    if v then sets[#sets + 1] = q(k .. "=" .. v) else parts[#parts + 1] = "-u " .. k end
  end
  for _, s in ipairs(sets) do parts[#parts + 1] = s end
  parts[#parts + 1] = command
  local cmd = table.concat(parts, " ") .. " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err")
    .. " </dev/null; echo $?"
  local code = tonumber(helpers.read_pipe(cmd):match("%d+"))
  return { code = code, stdout = read_file(dir .. "/out") or "", stderr = read_file(dir .. "/err") or "" }
end

-- The README's install command, in `src`, into `tree`.
local function luarocks_make(src, version, tree)
  local log = tree .. ".log"
  assert(sh("cd " .. q(src) .. " && luarocks --lua-version=" .. version .. " --tree " .. q(tree)
    .. " make >" .. q(log) .. " 2>&1"), "luarocks make failed:\n" .. tostring(read_file(log)))
end

-- Start a braze-mock command line in the background; returns url, pid.
local function start_mock(command)
  local pipe = assert(io.popen(command .. " --port 0 --segments 250 </dev/null &", "r"))
  local line = pipe:read("*l")
  local url, pid = (line or ""):match("^braze%-mock listening on (http://%S+) pid (%d+)$")
  if not url then pipe:close() end
  return url, pid, pipe
end

describe("#rock lua-braze installed with luarocks make", function()
  local tmp, src, T54, T51

  setup(function()
    assert(sh("command -v luarocks >/dev/null"), "needs luarocks (apt-get install luarocks)")
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-rock.XXXXXX"):gsub("\n$", "")
    src = tmp .. "/src"
    -- the sources as a fresh clone has them (tracked and new files, no build dirs)
    assert(sh("mkdir " .. q(src) .. " && cd " .. q(ROOT) .. " && git ls-files -co --exclude-standard -z"
      .. " | xargs -0 tar -c | tar -x -C " .. q(src)))
    T54, T51 = tmp .. "/tree54", tmp .. "/tree51"
    luarocks_make(src, "5.4", T54)
    luarocks_make(src, "5.1", T51)
  end)

  teardown(function()
    if tmp and tmp:match("^/tmp/braze%-rock") then sh("rm -rf " .. q(tmp)) end
  end)

  it("runs braze-mock and braze-segments from the tree's bin/", function()
    local url, pid, pipe = start_mock(q(T54 .. "/bin/braze-mock"))
    assert.is_string(url, "the tree's braze-mock did not start")
    finally(function()
      sh("kill " .. pid .. " 2>/dev/null")
      pipe:close()
    end)
    local r = run(tmp, { BRAZE_API_KEY = helpers.api_key, BRAZE_REST_ENDPOINT = url },
      q(T54 .. "/bin/braze-segments") .. " --quiet list --format csv")
    assert.equal(0, r.code, r.stderr)
    assert.matches("^id,name,analytics_tracking_enabled,tags\r?\n", r.stdout)
    local first = r.stdout:match("\n([%x-]+),")
    assert.is_string(first)
    r = run(tmp, { BRAZE_API_KEY = helpers.api_key, BRAZE_REST_ENDPOINT = url },
      q(T54 .. "/bin/braze-segments") .. " --quiet details " .. q(first) .. " --format json")
    assert.equal(0, r.code, r.stderr)
    assert.matches('"name"', r.stdout, 1, true)
  end)

  -- LUA_PATH without Debian's /usr/share/lua hides argparse (pure Lua);
  -- socket.lua is linked back in so that only argparse is missing.
  for _, cmd in ipairs({ "braze-mock", "braze-segments" }) do
    it(cmd .. " without argparse names it, its Debian package and its rock", function()
      local hide = tmp .. "/hide"
      sh("mkdir -p " .. q(hide) .. " && ln -sf /usr/share/lua/5.4/socket.lua " .. q(hide .. "/socket.lua"))
      local r = run(tmp, { LUA_PATH_5_4 = false, LUA_PATH = hide .. "/?.lua" },
        q(T54 .. "/bin/" .. cmd) .. " --help")
      assert.equal(2, r.code)
      assert.matches(cmd .. ": needs the Lua module 'argparse'", r.stderr, 1, true)
      assert.matches("apt-get install lua-argparse", r.stderr, 1, true)
      assert.matches("luarocks --lua-version=5.4 install argparse", r.stderr, 1, true)
      assert.not_matches("stack traceback", r.stderr, 1, true)
      assert.not_matches("cmake", r.stderr, 1, true)
    end)
  end

  it("a Lua 5.1 tree's braze-mock works", function()
    local url, pid, pipe = start_mock(q(T51 .. "/bin/braze-mock"))
    assert.is_string(url, "the 5.1 tree's braze-mock did not start")
    sh("kill " .. pid .. " 2>/dev/null")
    pipe:close()
  end)

  it("a Lua 5.1 tree's braze-segments, with no Lua 5.3+ to run it, says how to get one", function()
    -- PATH without lua5.4/lua5.3: the wrapper runs /usr/bin/lua5.1 by its full path
    local path = tmp .. "/path51"
    sh("mkdir -p " .. q(path) .. " && ln -sf /usr/bin/lua5.1 " .. q(path .. "/lua5.1"))
    local r = run(tmp, { PATH = path }, q(T51 .. "/bin/braze-segments") .. " --help")
    assert.equal(2, r.code)
    assert.matches("needs Lua 5.3 or later; this is Lua 5.1", r.stderr, 1, true)
    assert.matches("luarocks --lua-version=5.4 make --tree " .. T51, r.stderr, 1, true)
  end)

  it("a Lua 5.1 tree's braze-segments runs with lua5.4 once lua-braze is installed for 5.4 there", function()
    luarocks_make(src, "5.4", T51)
    -- LuaRocks keeps the 5.1 wrapper as braze-segments~ when the 5.4 one takes its name
    local wrapper = read_file(T51 .. "/bin/braze-segments~") and (T51 .. "/bin/braze-segments~")
      or (T51 .. "/bin/braze-segments")
    local r = run(tmp, {}, "/usr/bin/lua5.1 " .. q(T51 .. "/lib/luarocks/rocks-5.1/lua-braze/scm-0/bin/braze-segments")
      .. " --help")
    assert.equal(0, r.code, r.stderr)
    assert.matches("Usage: braze%-segments", r.stdout)
    r = run(tmp, {}, q(wrapper) .. " --help")
    assert.equal(0, r.code, r.stderr)
    assert.matches("Usage: braze%-segments", r.stdout)
  end)
end)
