-- bin/braze-segments and bin/braze-mock started the ways a new user starts
-- them from a checkout: with whatever `lua` is, with a Lua the build is not
-- for, without argparse. Each either runs (re-running itself with a
-- suitable Lua) or names exactly what is missing and how to get it.
-- (The same from a LuaRocks tree: spec/install/rock_spec.lua.)
local helpers = require("spec.support.helpers")

local q = helpers.shell_quote
local read_file = helpers.read_file

local ROOT = helpers.abs_root()

local sh = helpers.sh

local function which(cmd)
  local path = helpers.read_pipe("command -v " .. q(cmd) .. " 2>/dev/null"):gsub("\n$", "")
  return path ~= "" and path or nil
end

-- Run `lua script args` with env (a table; string values set, false unsets).
-- Returns { code, stdout, stderr }.
local function run(dir, lua, script, args, env)
  local parts, sets = { "env" }, {}
  for k, v in pairs(env or {}) do -- env takes its -u options before any NAME=VALUE
    if v then sets[#sets + 1] = q(k .. "=" .. v) else parts[#parts + 1] = "-u " .. k end
  end
  for _, s in ipairs(sets) do parts[#parts + 1] = s end
  parts[#parts + 1] = q(lua)
  parts[#parts + 1] = q(script)
  for _, a in ipairs(args or {}) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err")
    .. " </dev/null; echo $?"
  local code = tonumber(helpers.read_pipe(cmd):match("%d+"))
  return { code = code, stdout = read_file(dir .. "/out") or "", stderr = read_file(dir .. "/err") or "" }
end

-- A checkout as a fresh clone has it after the README's build: bin/, lua/,
-- cli/, mock/ and build/ (Lua 5.4) only; the bin scripts copied, the rest linked.
local function fresh_checkout(dir)
  assert(sh("mkdir -p " .. q(dir .. "/bin") .. " && cp " .. q(ROOT .. "/bin/braze-segments") .. " "
    .. q(ROOT .. "/bin/braze-mock") .. " " .. q(dir .. "/bin/") .. " && ln -s " .. q(ROOT .. "/lua") .. " "
    .. q(dir .. "/lua") .. " && ln -s " .. q(ROOT .. "/cli") .. " " .. q(dir .. "/cli")
    .. " && ln -s " .. q(ROOT .. "/mock") .. " " .. q(dir .. "/mock")
    .. " && ln -s " .. q(ROOT .. "/build") .. " " .. q(dir .. "/build")
    .. " && cp " .. q(ROOT .. "/CMakeLists.txt") .. " " .. q(dir .. "/")))
end

-- A directory for PATH holding only the named interpreters.
local function path_with(dir, names)
  assert(sh("mkdir -p " .. q(dir)))
  for _, name in ipairs(names) do
    local real = assert(which(name), name .. " is not installed")
    assert(sh("ln -sf " .. q(real) .. " " .. q(dir .. "/" .. name)))
  end
  return dir
end

describe("#lua53 the commands started from a checkout", function()
  local tmp, checkout, segments

  setup(function()
    assert(read_file(ROOT .. "/build/braze/core.so"), "build/ (Lua 5.4) is needed: bash scripts/build.sh build")
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-launch.XXXXXX"):gsub("\n$", "")
    checkout = tmp .. "/clone"
    fresh_checkout(checkout)
    segments = checkout .. "/bin/braze-segments"
  end)

  teardown(function()
    if tmp and tmp:match("^/tmp/braze%-launch") then sh("rm -rf " .. q(tmp)) end
  end)

  it("braze-segments with a Lua 5.3 that has no build re-runs itself with lua5.4", function()
    local path = path_with(tmp .. "/path-53-54", { "lua5.3", "lua5.4" })
    local r = run(tmp, "lua5.3", segments, { "--help" }, { PATH = path })
    assert.equal(0, r.code, r.stderr)
    assert.matches("Usage: braze%-segments", r.stdout)
  end)

  it("braze-segments with Lua 5.1 (needs 5.3+) re-runs itself with lua5.4", function()
    local path = path_with(tmp .. "/path-51-54", { "lua5.1", "lua5.4" })
    local r = run(tmp, "lua5.1", segments, { "--help" }, { PATH = path })
    assert.equal(0, r.code, r.stderr)
    assert.matches("Usage: braze%-segments", r.stdout)
  end)

  it("braze-segments with only the wrong Lua says which Lua the build is for and the loader's whole error",
    function()
      local path = path_with(tmp .. "/path-53", { "lua5.3" })
      local r = run(tmp, "lua5.3", segments, { "--help" }, { PATH = path })
      assert.equal(2, r.code)
      assert.matches("built for Lua 5%.4", r.stderr)
      assert.matches("this is Lua 5%.3", r.stderr)
      assert.matches("Run it with lua5%.4", r.stderr)
      -- the actual reason, which the first line of the loader's error does not hold
      assert.matches("undefined symbol: lua_newuserdatauv", r.stderr)
      assert.not_matches("Build it first", r.stderr)
    end)

  it("braze-segments with only Lua 5.1 says it needs 5.3+ and to run it with lua5.4", function()
    local path = path_with(tmp .. "/path-51", { "lua5.1" })
    local r = run(tmp, "lua5.1", segments, { "--help" }, { PATH = path })
    assert.equal(2, r.code)
    assert.matches("needs Lua 5%.3 or later; this is Lua 5%.1", r.stderr)
    assert.matches("lua5%.4 ", r.stderr)
  end)

  it("braze-segments run as lua5.4 bin/braze-segments still works", function()
    local r = run(tmp, "lua5.4", segments, { "--help" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("Usage: braze%-segments", r.stdout)
  end)

  -- LUA_PATH without Debian's /usr/share/lua: argparse (pure Lua) is gone,
  -- LuaSocket stays (socket.lua is linked in, socket/core.so is on the cpath).
  local function without_argparse(lua)
    local v = lua == "luajit" and "5.1" or lua:match("%d+%.%d+")
    local dir = tmp .. "/hide-" .. v
    sh("mkdir -p " .. q(dir) .. " && ln -sf /usr/share/lua/" .. v .. "/socket.lua " .. q(dir .. "/socket.lua"))
    return { LUA_PATH = dir .. "/?.lua", LUA_PATH_5_3 = false, LUA_PATH_5_4 = false }
  end

  for _, cmd in ipairs({ "braze-segments", "braze-mock" }) do
    it(cmd .. " without argparse names it, its Debian package and its rock", function()
      local lua = helpers.interpreter()
      local r = run(tmp, lua, ROOT .. "/bin/" .. cmd, { "--help" }, without_argparse(lua))
      assert.equal(2, r.code)
      assert.matches(cmd .. ": needs the Lua module 'argparse'", r.stderr, 1, true)
      assert.matches("apt-get install lua-argparse", r.stderr, 1, true)
      assert.matches("install argparse", r.stderr, 1, true)
      assert.not_matches("stack traceback", r.stderr, 1, true)
      assert.not_matches("cmake", r.stderr, 1, true)
    end)
  end

  it("braze-mock without LuaSocket or argparse names both", function()
    local r = run(tmp, "lua5.4", ROOT .. "/bin/braze-mock", { "--help" },
      { LUA_PATH = "/nonexistent/?.lua", LUA_PATH_5_4 = false })
    assert.equal(2, r.code)
    assert.matches("'socket' and 'argparse'", r.stderr, 1, true)
    assert.matches("apt-get install lua-socket lua-argparse", r.stderr, 1, true)
    assert.matches("install luasocket argparse", r.stderr, 1, true)
  end)
end)

describe("#lua53 README", function()
  it("the mock's section and manual name the key the mock accepts by default", function()
    local readme = assert(read_file(ROOT .. "/README.md"))
    local section = assert(readme:match("\n## The mock\n(.-)$"))
    local manual = assert(read_file(ROOT .. "/docs/mock.md"))
    local key = require("braze_mock").DEFAULTS.api_key
    assert.matches("`" .. key .. "`", section, 1, true)
    assert.matches("`" .. key .. "`", manual, 1, true)
    assert.matches("BRAZE_API_KEY=" .. key, manual, 1, true)
  end)
end)
