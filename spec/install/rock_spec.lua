-- Installing the three rocks with `luarocks --lua-version=5.4 --tree T make
-- --deps-mode=none [ROCKSPEC]`, offline: the library, then cli/ and mock/),
-- from a copy of the sources, into one tree: both commands run from the
-- tree against the mock; without argparse each names what is missing; a
-- Lua 5.1 tree's braze-segments runs with lua5.4 or says how to get one that
-- does; nothing installed reads a build directory. Then the README's layout
-- run as written (one tree per Lua, the LuaJIT tree's commands run luajit),
-- and the versioned library rockspec checked against the scm one. Needs
-- Debian's luarocks and luajit. Tagged #rock (a few seconds of builds;
-- .busted leaves it out of the quick loop):
--   lua5.4 /usr/bin/busted --exclude-tags= --tags=rock spec/install/rock_spec.lua
local helpers = require("spec.support.helpers")

local q = helpers.shell_quote
local read_file = helpers.read_file

local ROOT = helpers.abs_root()

local sh = helpers.sh

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
    -- a 5.4 tree of its own, not this one (two Luas in one tree share bin/)
    assert.matches("luarocks --lua-version=5.4 make --tree " .. T51 .. "-5.4,", r.stderr, 1, true)
    assert.matches("run " .. T51 .. "-5.4/bin/braze-segments.", r.stderr, 1, true)
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
    -- every module under lua/ is installed, by the scm and the versioned rockspec alike
    local released = assert(read_file(ROOT .. "/lua-braze-0.1.0-1.rockspec"))
    for file in helpers.read_pipe("cd " .. q(ROOT) .. " && git ls-files -co --exclude-standard 'lua/*.lua'")
      :gmatch("[^\n]+") do
      assert.matches('"' .. file .. '"', rockspec, 1, true)
      assert.matches('"' .. file .. '"', released, 1, true)
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

-- A rockspec is Lua assignments: run it into a table.
local function load_rockspec(path)
  local env = {}
  assert(load(assert(read_file(path)), "@" .. path, "t", env))()
  return env
end

describe("#rock the two library rockspecs", function()
  it("lua-braze-0.1.0-1 installs the same modules, built the same way, as lua-braze-scm-0", function()
    local scm = load_rockspec(ROOT .. "/lua-braze-scm-0.rockspec")
    local released = load_rockspec(ROOT .. "/lua-braze-0.1.0-1.rockspec")
    assert.equal("0.1.0-1", released.version)
    assert.same(scm.build.install, released.build.install)
    assert.equal(scm.build.build_command, released.build.build_command)
    assert.same(scm.dependencies, released.dependencies)
    assert.same(scm.external_dependencies, released.external_dependencies)
  end)
end)

-- The README's "Install and build" as written, run from a copy of the
-- sources: its install block (a Lua 5.4 tree and a LuaJIT tree), then its
-- block that runs a program with each tree's paths and interpreter.
describe("#rock the README's layout, one tree per Lua", function()
  local tmp, src, T54, TJ, install, run_lines

  -- The sh blocks of the README's "Install and build" section.
  local function readme_blocks()
    local readme = assert(read_file(ROOT .. "/README.md"))
    local section = assert(readme:match("\n## Install and build\n(.-)\n## "), "no Install and build section")
    local blocks = {}
    for block in section:gmatch("```sh\n(.-)```") do blocks[#blocks + 1] = block end
    return blocks
  end

  -- Run `command` with sh in the sources' copy; returns code, stdout, stderr.
  local function in_src(command, env)
    return run(tmp, env or {}, "sh -c " .. q("cd " .. q(src) .. " && " .. command))
  end

  -- The bin/ entries of a tree, sorted, one a line.
  local function bin_of(tree)
    return helpers.read_pipe("ls -A " .. q(tree .. "/bin") .. " 2>/dev/null | sort")
  end

  setup(function()
    assert(sh("command -v luarocks >/dev/null && command -v luajit >/dev/null"), "needs luarocks and luajit")
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-layout.XXXXXX"):gsub("\n$", "")
    src = tmp .. "/src"
    assert(sh("mkdir " .. q(src) .. " && cd " .. q(ROOT) .. " && git ls-files -co --exclude-standard -z"
      .. " | xargs -0 tar -c | tar -x -C " .. q(src)))
    for _, block in ipairs(readme_blocks()) do
      if block:find("luarocks ", 1, true) and block:find(" make ", 1, true) then install = install or block end
      if block:find("path)", 1, true) then run_lines = run_lines or block end
    end
    assert.is_string(install, "the README has no install block")
    local t54 = install:match("%-%-lua%-version=5%.4 %-%-tree (%S+)")
    local tj = install:match("%-%-lua%-version=5%.1 %-%-tree (%S+)")
    assert.is_string(t54, "the README's install block makes no Lua 5.4 tree")
    assert.is_string(tj, "the README's install block makes no LuaJIT (5.1) tree")
    T54, TJ = src .. "/" .. t54, src .. "/" .. tj
    helpers.write_file(tmp .. "/install.sh", install)
    local r = in_src("sh -e " .. q(tmp .. "/install.sh"))
    assert(r.code == 0, "the README's install block failed:\n" .. r.stdout .. r.stderr)
  end)

  teardown(function()
    if tmp and tmp:match("^/tmp/braze%-layout") then sh("rm -rf " .. q(tmp)) end
  end)

  it("makes two trees whose bin/ hold each command once, none renamed to ~", function()
    assert.equal("braze-mock\nbraze-segments\n", bin_of(T54))
    assert.equal("braze-mock\n", bin_of(TJ))
    assert.are_not.equal(T54, TJ, "one tree for two Luas")
  end)

  it("the LuaJIT tree's commands run luajit, the 5.4 tree's lua5.4", function()
    for _, case in ipairs({ { T54, "Lua 5.4" }, { TJ, "LuaJIT" } }) do
      local tree, want = case[1], case[2]
      local wrapper = assert(read_file(tree .. "/bin/braze-mock"))
      local interp = wrapper:match("exec '([^']+)'")
      assert.is_string(interp, wrapper)
      local r = run(tmp, {}, q(interp) .. " -e " .. q("io.write(rawget(_G, 'jit') and 'LuaJIT' or _VERSION)"))
      assert.equal(want, r.stdout, tree)
    end
  end)

  it("answers --version from each tree's bin/", function()
    local version = assert(load_rockspec(ROOT .. "/lua-braze-0.1.0-1.rockspec").version):match("^(.-)%-")
    local ran = 0
    for _, tree in ipairs({ T54, TJ }) do
      for name in bin_of(tree):gmatch("[^\n]+") do
        local r = run(tmp, {}, q(tree .. "/bin/" .. name) .. " --version")
        assert.equal(0, r.code, tree .. "/bin/" .. name .. ": " .. r.stderr)
        assert.matches("^" .. name:gsub("%-", "%%-") .. " " .. version:gsub("%.", "%%.") .. "[ \n]", r.stdout)
        ran = ran + 1
      end
    end
    assert.equal(3, ran) -- braze-mock from both, braze-segments (Lua 5.3+) from the 5.4 tree
  end)

  it("on LuaJIT, a command missing braze.core gives the README's LuaJIT tree as the fix", function()
    local code = "package.path = " .. string.format("%q", ROOT .. "/cli/lua/?.lua;" .. ROOT .. "/cli/lua/?/init.lua")
      .. " package.cpath = '' local p = require('braze_segments.launch').problem({ name = 'x', core = true })"
      .. " io.write(table.concat(p.text, '\\n'))"
    local r = run(tmp, {}, "luajit -e " .. q(code))
    assert.equal(0, r.code, r.stderr)
    local hint = r.stdout:match("Build it: ([^\n]-) make")
    assert.is_string(hint, r.stdout)
    assert.matches("--tree", hint, 1, true)
    assert.matches("\n" .. hint .. " make --deps-mode=none\n", install, 1, true)
  end)

  it("the 5.4 tree's braze-segments reads the LuaJIT tree's braze-mock", function()
    local url, pid, pipe = start_mock(q(TJ .. "/bin/braze-mock"))
    assert.is_string(url, "the LuaJIT tree's braze-mock did not start")
    finally(function()
      sh("kill " .. pid .. " 2>/dev/null")
      pipe:close()
    end)
    local r = run(tmp, { BRAZE_API_KEY = helpers.api_key, BRAZE_REST_ENDPOINT = url },
      q(T54 .. "/bin/braze-segments") .. " --quiet list --format csv")
    assert.equal(0, r.code, r.stderr)
    assert.matches("^id,name,analytics_tracking_enabled,tags\r?\n", r.stdout)
  end)

  -- my_script.lua: braze and braze.core, and which Lua and core.so it got.
  local SCRIPT = [[
local braze = require("braze")
local core = require("braze.core")
local decoded = core.decode('{"n":[1,2,3]}')
local so = package.searchpath("braze.core", package.cpath)
print(braze._VERSION, rawget(_G, "jit") and "LuaJIT" or _VERSION, #decoded.n, so)
]]

  local function run_script(line)
    helpers.write_file(src .. "/my_script.lua", SCRIPT)
    return in_src(line, { LUA_PATH = false, LUA_CPATH = false, LUA_PATH_5_4 = false, LUA_CPATH_5_4 = false })
  end

  it("runs a program with require('braze') and braze.core through each tree with its interpreter", function()
    assert.is_string(run_lines, "the README has no block that runs a program with a tree's paths")
    local seen = {}
    for line in run_lines:gmatch("[^\n]+") do
      local version, tree = line:match("%-%-lua%-version=(%S+) %-%-tree (%S+)")
      if tree then
        local r = run_script(line)
        assert.equal(0, r.code, line .. "\n" .. r.stderr)
        local want = version == "5.4" and "Lua 5.4\t3\t" .. T54 .. "/lib/lua/5.4/braze/core.so"
          or "LuaJIT\t3\t" .. TJ .. "/lib/lua/5.1/braze/core.so"
        assert.equal("lua-braze 0.1.0\t" .. want .. "\n", r.stdout)
        seen[version] = true
      end
    end
    assert.is_true(seen["5.4"], "no line runs the 5.4 tree")
    assert.is_true(seen["5.1"], "no line runs the LuaJIT tree")
  end)

  it("removing a rock from one tree leaves the other tree's commands and programs working", function()
    local r = in_src("luarocks --lua-version=5.1 --tree " .. q(TJ) .. " remove braze-mock")
    assert.equal(0, r.code, r.stderr)
    assert.equal("braze-mock\nbraze-segments\n", bin_of(T54))
    r = run(tmp, {}, q(T54 .. "/bin/braze-mock") .. " --version")
    assert.equal(0, r.code, r.stderr)
    assert.equal("", bin_of(TJ))
    -- and the LuaJIT tree gone altogether
    assert(sh("rm -rf " .. q(TJ)))
    for line in run_lines:gmatch("[^\n]+") do
      if line:find("--lua-version=5.4 ", 1, true) then
        r = run_script(line)
        assert.equal(0, r.code, r.stderr)
        assert.matches("Lua 5.4\t3\t", r.stdout, 1, true)
      end
    end
    r = run(tmp, {}, q(T54 .. "/bin/braze-segments") .. " --version")
    assert.equal(0, r.code, r.stderr)
  end)
end)
