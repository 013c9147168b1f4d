-- Installing the three rocks as the README says (`luarocks --lua-version=5.4
-- --tree T make --deps-mode=none [ROCKSPEC]`, offline: the library, then
-- cli/ and mock/), from a copy of the sources, into one tree: both commands
-- run from the tree against the mock; without argparse each names what is
-- missing; a Lua 5.1 tree's braze-segments runs with lua5.4 or says how to
-- get one that does; nothing installed reads a build directory. Needs
-- Debian's luarocks. Tagged #rock (a few seconds of builds; .busted leaves
-- it out of the quick loop):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=rock spec/install/rock_spec.lua
local helpers = require("spec.support.helpers")

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

-- The README's install commands, in `src`, into `tree`: the library, the
-- command and the mock, each with --deps-mode=none (no LuaRocks server).
local ROCKSPECS = { "", "cli/braze-segments-scm-0.rockspec", "mock/braze-mock-scm-0.rockspec" }
local function luarocks_make(src, version, tree)
  local log = tree .. ".log"
  for _, rockspec in ipairs(ROCKSPECS) do
    assert(sh("cd " .. q(src) .. " && luarocks --lua-version=" .. version .. " --tree " .. q(tree)
      .. " make --deps-mode=none " .. rockspec .. " >" .. q(log) .. " 2>&1"),
      "luarocks make " .. rockspec .. " failed:\n" .. tostring(read_file(log)))
  end
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
  local tmp, src, T54, T51, before

  setup(function()
    assert(sh("command -v luarocks >/dev/null"), "needs luarocks (apt-get install luarocks)")
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-rock.XXXXXX"):gsub("\n$", "")
    src = tmp .. "/src"
    -- the sources as a fresh clone has them (tracked and new files, no build dirs)
    assert(sh("mkdir " .. q(src) .. " && cd " .. q(ROOT) .. " && git ls-files -co --exclude-standard -z"
      .. " | xargs -0 tar -c | tar -x -C " .. q(src)))
    T54, T51 = tmp .. "/tree54", tmp .. "/tree51"
    -- what a checkout built for Neovim has (cmake -DBRAZE_RUNTIMEPATH=ON): a
    -- git-ignored LuaJIT core.so under lua/, which no rock may pick up
    assert(sh("printf 'not a Lua 5.4 module' >" .. q(src .. "/lua/braze/core.so")))
    before = helpers.read_pipe("cd " .. q(src) .. " && find . -print | sort")
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
    local r = run(tmp, {}, "/usr/bin/lua5.1 " .. q(T51 .. "/lib/luarocks/rocks-5.1/braze-segments/scm-0/bin/braze-segments")
      .. " --help")
    assert.equal(0, r.code, r.stderr)
    assert.matches("Usage: braze%-segments", r.stdout)
    r = run(tmp, {}, q(wrapper) .. " --help")
    assert.equal(0, r.code, r.stderr)
    assert.matches("Usage: braze%-segments", r.stdout)
  end)

  it("the library rock holds the library only: no command, mock or launcher module", function()
    local rockspec = assert(read_file(ROOT .. "/lua-braze-scm-0.rockspec"))
    for _, name in ipairs({ "braze_segments", "braze_mock", "braze.cli", "braze.mock", "braze.launch" }) do
      assert.not_matches('["' .. name, rockspec, 1, true)
    end
    assert.matches('dependencies = { "lua >= 5.1" }', rockspec, 1, true)
    -- every module under lua/ is installed
    for file in helpers.read_pipe("cd " .. q(ROOT) .. " && git ls-files -co --exclude-standard 'lua/*.lua'")
      :gmatch("[^\n]+") do
      assert.matches('"' .. file .. '"', rockspec, 1, true)
    end
    local installed = helpers.read_pipe("cd " .. q(T54) .. " && find share lib -path '*braze*' -type f | sort")
    assert.matches("share/lua/5.4/braze.lua", installed, 1, true)
    assert.matches("lib/lua/5.4/braze/core.so", installed, 1, true)
    assert.not_matches("braze/cli", installed, 1, true)
    assert.not_matches("braze/mock", installed, 1, true)
    assert.not_matches("braze/launch", installed, 1, true)
  end)

  it("each command rock declares what it needs", function()
    local cli = assert(read_file(ROOT .. "/cli/braze-segments-scm-0.rockspec"))
    assert.matches('dependencies = { "lua >= 5.1", "lua-braze", "argparse" }', cli, 1, true)
    local mock = assert(read_file(ROOT .. "/mock/braze-mock-scm-0.rockspec"))
    assert.matches('dependencies = { "lua >= 5.1", "luasocket", "argparse" }', mock, 1, true)
    for dir, rockspec in pairs({ cli = cli, mock = mock }) do
      for file in helpers.read_pipe("cd " .. q(ROOT) .. " && git ls-files -co --exclude-standard '" .. dir
        .. "/lua/*.lua'"):gmatch("[^\n]+") do
        assert.matches('"' .. file .. '"', rockspec, 1, true)
      end
    end
  end)

  it("nothing installed reads a build directory or CMakeCache.txt", function()
    local hits = helpers.read_pipe("grep -rl CMakeCache " .. q(T54) .. " " .. q(T51)
      .. " --include='*.lua' --include='braze-*' 2>/dev/null; true")
    assert.equal("", hits)
  end)

  it("building the rocks leaves the sources as they were (no csrc/*.o, no braze/core.so at the root)", function()
    assert.equal(before, helpers.read_pipe("cd " .. q(src) .. " && find . -print | sort"))
  end)

  it("a core.so under the sources' lua/ (another Lua's) is not installed", function()
    local found = helpers.read_pipe("find " .. q(T54) .. " " .. q(T51) .. " -name core.so | sort")
    assert.equal(T51 .. "/lib/lua/5.1/braze/core.so\n" .. T51 .. "/lib/lua/5.4/braze/core.so\n"
      .. T54 .. "/lib/lua/5.4/braze/core.so\n", found)
  end)
end)
