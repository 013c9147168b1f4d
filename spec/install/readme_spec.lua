-- The README's first screen as a new user follows it: the shell block that
-- starts the mock and sets the environment, then the first Lua example saved
-- as first.lua and run with lua5.4, from the clone's root. Nothing of the
-- example is changed; only the mock's port is swapped for a free one.
local helpers = require("spec.support.helpers")
local socket = require("socket")

local q = helpers.shell_quote
local ROOT = helpers.abs_root()

local readme = assert(helpers.read_file(ROOT .. "/README.md"))

local function free_port()
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  server:close()
  return tonumber(port)
end

-- The first ```sh block that starts bin/braze-mock, and the first ```lua block.
local function blocks()
  local shell, lua
  for lang, body in readme:gmatch("```(%w+)\n(.-)```") do
    if lang == "sh" and not shell and body:find("bin/braze-mock", 1, true) then shell = body end
    if lang == "lua" and not lua then lua = body end
  end
  return shell, lua
end

-- Run the shell block, wait for the mock, run `lua first.lua`; kill the mock.
local function follow(lua_cmd, cpath_build)
  local shell, lua = blocks()
  local port = tostring(free_port())
  local documented = shell:match("%-%-port (%d+)")
  local dir = helpers.read_pipe("mktemp -d /tmp/braze-readme.XXXXXX"):gsub("\n$", "")
  helpers.write_file(dir .. "/first.lua", lua)
  local script = table.concat({
    "cd " .. q(ROOT),
    (shell:gsub(documented, port)),
    cpath_build and ('export LUA_CPATH="' .. cpath_build .. '/?.so;;"') or "",
    -- a person types the next command a moment later; the script waits for the port
    "for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/" .. port .. ") 2>/dev/null && break; sleep 0.05; done",
    lua_cmd .. " " .. q(dir .. "/first.lua") .. " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err"),
    "echo $? >" .. q(dir .. "/code"),
    "kill %1 2>/dev/null",
  }, "\n")
  helpers.write_file(dir .. "/follow.sh", script)
  os.execute("bash " .. q(dir .. "/follow.sh") .. " </dev/null >/dev/null 2>&1")
  local result = {
    code = tonumber(helpers.read_file(dir .. "/code") or ""),
    out = helpers.read_file(dir .. "/out") or "",
    err = helpers.read_file(dir .. "/err") or "",
    documented = documented,
  }
  os.execute("rm -rf " .. q(dir))
  return result
end

describe("README's first example", function()
  it("has the mock's start-up and environment right above it", function()
    local shell, lua = blocks()
    assert.truthy(shell, "no sh block starting bin/braze-mock")
    assert.truthy(lua, "no lua block")
    assert.truthy(shell:find("BRAZE_API_KEY=braze-mock-key", 1, true))
    assert.truthy(shell:find("BRAZE_REST_ENDPOINT=http://127.0.0.1:%d+"))
    assert.truthy(readme:find(shell, 1, true) < readme:find(lua, 1, true))
  end)

  it("runs as pasted with lua5.4 against the mock", function()
    local r = follow("lua5.4")
    assert.equal(0, r.code, r.err)
    assert.matches("^250 segments; the newest is .+, %d+ users on %d%d%d%d%-%d%d%-%d%d\n$", r.out)
    assert.equal("", r.err)
  end)

  for _, v in ipairs({ { "lua5.1", "build-5.1" }, { "luajit", "build-luajit" } }) do
    local lua_cmd, build = v[1], v[2]
    local built = helpers.read_file(ROOT .. "/" .. build .. "/braze/core.so") ~= nil
    local run = built and it or pending
    run("runs as pasted with " .. lua_cmd .. " too (with " .. build .. "/)", function()
      local r = follow(lua_cmd, build)
      assert.equal(0, r.code, r.err)
      assert.matches("^250 segments; the newest is ", r.out)
    end)
  end
end)
