-- What a PUC Lua 5.1 user sees when an error ends the script: the README's
-- two patterns (error(tostring(err)), and catching an each loop) print the
-- message, where a bare error(err) prints only "(error object is not a
-- string)" (5.1's interpreter calls no __tostring). Runs lua5.1 with the
-- 5.1 build (build-5.1/), against the mock.
local helpers = require("spec.support.helpers")

local q = helpers.shell_quote
local ROOT = helpers.abs_root()
local built = helpers.read_file(ROOT .. "/build-5.1/braze/core.so") ~= nil
  and helpers.read_pipe("command -v lua5.1") ~= ""

local function run51(mock, body)
  local script = os.tmpname()
  helpers.write_file(script, table.concat({
    'local braze = require("braze")',
    'local client = braze.new{ api_key = "wrong-key", endpoint = ' .. string.format("%q", mock.url) .. ',',
    '  max_retries = 0 }',
    body,
  }, "\n"))
  local out = os.tmpname()
  local cmd = "cd " .. q(ROOT) .. ' && LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build-5.1/?.so;;" '
    .. "lua5.1 " .. q(script) .. " >/dev/null 2>" .. q(out) .. "; echo $?"
  local code = tonumber(helpers.read_pipe(cmd):match("%d+"))
  local stderr = helpers.read_file(out) or ""
  os.remove(script)
  os.remove(out)
  return code, stderr
end

describe("errors on PUC Lua 5.1's standalone interpreter", function()
  local mock
  setup(function() mock = helpers.start_mock{ segments = 150 } end)
  teardown(function() if mock then mock:stop() end end)

  local test = built and it or pending

  test("error(tostring(err)) prints the error's line, the key redacted", function()
    local code, stderr = run51(mock, 'local page, err = client:list()\nif not page then error(tostring(err)) end')
    assert.equal(1, code)
    assert.matches("HTTP 401 on /segments/list", stderr, 1, true)
    assert.not_matches("wrong-key", stderr, 1, true)
  end)

  test("an each loop caught with pcall and raised as tostring(err) prints it, with the page", function()
    local code, stderr = run51(mock, table.concat({
      "local ok, err = pcall(function() for _ in client:each() do end end)",
      "if not ok then error(tostring(err), 0) end",
    }, "\n"))
    assert.equal(1, code)
    assert.matches("HTTP 401 on /segments/list", stderr, 1, true)
    assert.matches("page 0", stderr, 1, true)
  end)

  test("a bare error(err) is what the README warns of", function()
    local code, stderr = run51(mock, 'local page, err = client:list()\nif not page then error(err) end')
    assert.equal(1, code)
    assert.matches("error object is not a string", stderr, 1, true)
  end)
end)
