-- scripts/reference.lua: docs/reference.md from the LuaLS annotations, and
-- the doc-coverage check CI runs (scripts/lint.sh): on this tree, and on
-- fixture trees with an undocumented public function, a stale reference,
-- options that disagree with braze.Options.
local helpers = require("spec.support.helpers")

local root = helpers.root
local script = root .. "/scripts/reference.lua"
local reference = dofile(script)
local q = helpers.shell_quote

-- Run the script (with `interpreter`, default lua5.4): exit code and output.
local function run(args, interpreter)
  local out = helpers.read_pipe(string.format("%s %s %s 2>&1; echo \"exit:$?\"",
    interpreter or "lua5.4", q(script), args))
  local code = tonumber(out:match("exit:(%d+)%s*$"))
  return code, (out:gsub("exit:%d+%s*$", ""))
end

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir .. "/lua/braze") .. " " .. q(dir .. "/docs")))
  finally(function() os.execute("rm -rf " .. q(dir)) end)
  return dir
end

local function write(dir, path, text) helpers.write_file(dir .. "/" .. path, text) end

-- A small public module in the shape of lua/braze/init.lua.
local FIXTURE_INIT = [[
--- A fixture module.
local braze = {
  _VERSION = "fixture 1",
}

--- Documented: makes a client.
---@param opts table
---@return braze.Client
function braze.new(opts)
  return opts
end

function braze.forgotten(x)
  return x
end

---@class braze.Client
local Client = {}
Client.__index = Client

--- Documented method.
function Client:list() end

function Client:untold() end

function Client:__tostring() return "client" end

local function private_helper() end

braze.Client = Client
return braze
]]

local FIXTURE_ERRORS = [[
--- Fixture errors.
local M = {}
--- Is it one?
function M.is(v) return v end
return M
]]

local FIXTURE_TYPES = [[
---@meta
--- The module's values.
---@class braze
---@field _VERSION string the version
---@field Client braze.Client the class

return {}
]]

describe("scripts/reference.lua", function()
  it("passes --check on this tree: docs/reference.md is current, every public function documented", function()
    local code, out = run("--check")
    assert.equal(0, code, out)
    assert.matches("up to date", out)
  end)

  it("runs under bash as well as under Lua", function()
    local out = helpers.read_pipe("bash " .. q(script) .. " --stdout; echo \"exit:$?\"")
    assert.matches("exit:0%s*$", out)
    assert.equal(helpers.read_file(root .. "/docs/reference.md"), (out:gsub("exit:0%s*$", "")))
  end)

  it("writes the same reference under Lua 5.1 (BRAZE_DEPS=full installs it)", function()
    if not helpers.read_pipe("command -v lua5.1"):match("%S") then
      pending("lua5.1 is not installed")
      return
    end
    local c51, out51 = run("--stdout", "lua5.1")
    assert.equal(0, c51, out51)
    assert.equal(helpers.read_file(root .. "/docs/reference.md"), out51)
  end)

  it("fails on a tree with an undocumented public function, naming it and its line", function()
    local dir = tmpdir()
    write(dir, "lua/braze/init.lua", FIXTURE_INIT)
    write(dir, "lua/braze/errors.lua", FIXTURE_ERRORS)
    write(dir, "lua/braze/types.lua", FIXTURE_TYPES)
    assert.equal(1, (run("--root " .. q(dir)))) -- writes the reference, still reports
    local code, out = run("--check --root " .. q(dir))
    assert.equal(1, code, out)
    assert.matches("lua/braze/init.lua:13: braze.forgotten has no doc comment", out, 1, true)
    assert.matches("lua/braze/init.lua:24: braze.Client:untold has no doc comment", out, 1, true)
    -- Documented, private and metamethods are not reported; the reference is current.
    assert.not_matches("braze.new", out, 1, true)
    assert.not_matches("list", out, 1, true)
    assert.not_matches("__tostring", out, 1, true)
    assert.not_matches("private_helper", out, 1, true)
    assert.not_matches("stale", out, 1, true)

    -- Document them: clean.
    local fixed = FIXTURE_INIT:gsub("function braze.forgotten", "--- Now documented.\nfunction braze.forgotten")
      :gsub("function Client:untold", "--- Now told.\nfunction Client:untold")
    write(dir, "lua/braze/init.lua", fixed)
    assert.equal(0, (run("--root " .. q(dir))))
    code, out = run("--check --root " .. q(dir))
    assert.equal(0, code, out)
  end)

  it("fails on this tree's own modules plus one undocumented public function", function()
    local dir = tmpdir()
    for _, path in ipairs({ "lua/braze/init.lua", "lua/braze/errors.lua", "lua/braze/types.lua",
      "lua/braze/options.lua" }) do
      write(dir, path, assert(helpers.read_file(root .. "/" .. path)))
    end
    assert.equal(0, (run("--root " .. q(dir))))
    local init = helpers.read_file(dir .. "/lua/braze/init.lua")
    write(dir, "lua/braze/init.lua", init:gsub("\nreturn braze%s*$",
      "\nfunction braze.sneaky(x) return x end\nreturn braze\n"))
    local code, out = run("--check --root " .. q(dir))
    assert.equal(1, code, out)
    assert.matches("braze.sneaky has no doc comment", out, 1, true)
    assert.matches("docs/reference.md is stale", out, 1, true)
  end)

  it("fails when docs/reference.md is stale or missing", function()
    local dir = tmpdir()
    write(dir, "lua/braze/init.lua", FIXTURE_INIT:gsub("\nfunction braze.forgotten.-\nend\n", "\n")
      :gsub("\nfunction Client:untold%(%) end\n", "\n"))
    write(dir, "lua/braze/errors.lua", FIXTURE_ERRORS)
    write(dir, "lua/braze/types.lua", FIXTURE_TYPES)
    local code, out = run("--check --root " .. q(dir))
    assert.equal(1, code, out)
    assert.matches("docs/reference.md is stale", out, 1, true)
    assert.equal(0, (run("--root " .. q(dir))))
    assert.equal(0, (run("--check --root " .. q(dir))))
    write(dir, "docs/reference.md", helpers.read_file(dir .. "/docs/reference.md") .. "hand edit\n")
    code, out = run("--check --root " .. q(dir))
    assert.equal(1, code, out)
    assert.matches("stale", out)
  end)

  it("fails when a ---@param names no parameter", function()
    local dir = tmpdir()
    write(dir, "lua/braze/init.lua", FIXTURE_INIT:gsub("---@param opts table", "---@param options table"))
    write(dir, "lua/braze/errors.lua", FIXTURE_ERRORS)
    write(dir, "lua/braze/types.lua", FIXTURE_TYPES)
    local _, out = run("--check --root " .. q(dir))
    assert.matches("braze.new documents a parameter options it does not have", out, 1, true)
    -- Methods too.
    write(dir, "lua/braze/init.lua", FIXTURE_INIT:gsub("--- Documented method.\n",
      "--- Documented method.\n---@param opts? table\n"))
    _, out = run("--check --root " .. q(dir))
    assert.matches("braze.Client:list documents a parameter opts it does not have", out, 1, true)
  end)

  it("finds methods assigned to the class, documented or not", function()
    local dir = tmpdir()
    write(dir, "lua/braze/init.lua", FIXTURE_INIT:gsub("\nbraze.Client = Client\n", [[

--- Walk every page.
---@param opts? table
local function walk(self, opts) return self, opts end
Client.walk = walk
Client.__close = Client.close
Client.borrowed = require("other").thing

braze.Client = Client
]]))
    write(dir, "lua/braze/errors.lua", FIXTURE_ERRORS)
    write(dir, "lua/braze/types.lua", FIXTURE_TYPES)
    local code, out = run("--stdout --root " .. q(dir))
    assert.equal(1, code)
    assert.matches("### `client:walk(opts?)`\n\nWalk every page.", out, 1, true)
    assert.matches("braze.Client:borrowed has no doc comment", out, 1, true)
    assert.not_matches("__close", out, 1, true)
  end)

  it("links the transport contract when lua/braze/transport/README.md exists", function()
    local dir = tmpdir()
    write(dir, "lua/braze/init.lua", FIXTURE_INIT)
    write(dir, "lua/braze/errors.lua", FIXTURE_ERRORS)
    write(dir, "lua/braze/types.lua", FIXTURE_TYPES)
    local _, out = run("--stdout --root " .. q(dir))
    assert.not_matches("transport/README.md", out, 1, true)
    assert(os.execute("mkdir -p " .. q(dir .. "/lua/braze/transport")))
    write(dir, "lua/braze/transport/README.md", "# The transport contract\n")
    _, out = run("--stdout --root " .. q(dir))
    assert.matches("[lua/braze/transport/README.md](../lua/braze/transport/README.md)", out, 1, true)
  end)

  it("fails when an annotation names a braze type nobody declares", function()
    local dir = tmpdir()
    write(dir, "lua/braze/init.lua", FIXTURE_INIT:gsub("---@return braze.Client", "---@return braze.Cleint"))
    write(dir, "lua/braze/errors.lua", FIXTURE_ERRORS)
    write(dir, "lua/braze/types.lua", FIXTURE_TYPES)
    local _, out = run("--check --root " .. q(dir))
    assert.matches("braze.new: unknown type braze.Cleint (no ---@class braze.Cleint)", out, 1, true)
  end)

  it("renders the options of lua/braze/options.lua and holds braze.Options to them", function()
    local dir = tmpdir()
    write(dir, "lua/braze/init.lua", FIXTURE_INIT:gsub("---@class braze.Client",
      "---@class braze.Options\n---@field timeout? number seconds\n---@field stray? string gone\n"
      .. "local known = {}\n\n---@class braze.Client"))
    write(dir, "lua/braze/errors.lua", FIXTURE_ERRORS)
    write(dir, "lua/braze/types.lua", FIXTURE_TYPES)
    write(dir, "lua/braze/options.lua", [[
local check = require("braze.check") -- a Lua module of the tree
local core = require("braze.core")   -- a C module: never loaded
local M = {}
--- The options of `braze.new`, in order.
M.LIST = {
  { name = "timeout", kind = "number", default = 30, min = 0.001, max = 86400, doc = "seconds per attempt" },
  { name = "max_body", kind = "number", default = 32 * 1024 * 1024, min = 1, max = 2 ^ 40,
    doc = "largest body | in bytes" },
}
--- Options of the calls, not of `braze.new`.
M.CALL = { { name = "concurrency", kind = "integer", default = 8, min = 1, max = 64, doc = "at once" } }
M.show = check.show
M.sleep = core.sleep
return M
]])
    write(dir, "lua/braze/check.lua", "return { show = tostring }\n")
    local code, out = run("--stdout --root " .. q(dir))
    assert.equal(1, code)
    assert.matches("### Options of `braze.new`", out, 1, true)
    assert.matches("| `timeout` | number | `30` | [0.001, 86400] | seconds per attempt |", out, 1, true)
    assert.matches("| `max_body` | number | `33554432` | [1, 1099511627776] | largest body \\| in bytes |",
      out, 1, true)
    assert.matches("### Options of the calls", out, 1, true)
    assert.matches("| `concurrency` | integer | `8` | 1..64 | at once |", out, 1, true)
    assert.matches("option max_body has no ---@field in class braze.Options", out, 1, true)
    assert.matches("braze.Options declares stray, which the LIST of lua/braze/options.lua lacks", out, 1, true)
  end)

  describe("the reference of this tree", function()
    local text = helpers.read_file(root .. "/docs/reference.md") or ""

    it("is clean: no luacheck directives, no LDoc tags, each return listed once", function()
      assert.not_matches("luacheck", text, 1, true)
      assert.not_matches("\n@%a+", text)
      assert.not_matches("@treturn", text, 1, true)
      local decode = assert(text:match("### `braze%.decode%(.-\n(.-)\n### "))
      local _, values = decode:gsub("`value`", "")
      assert.equal(1, values)
    end)

    it("covers the public API: functions, values, options, methods, errors, types", function()
      for _, heading in ipairs({ "### `braze.new(opts)`", "### `braze.decode(text, max_depth?)`",
        "`braze.null`", "`braze.instances`", "`braze._VERSION`", "## Options", "`timeout",
        "### `client:list(opts?)`", "### `client:details(segment_id)`", "### `client:data_series(opts)`",
        "### `client:each(opts?)`", "### `client:details_many(ids, opts?)`",
        "### `client:data_series_many(requests, opts?)`", "### `client:rate_limit()`",
        "### `client:close()`", "### `braze.errors.is(v)`", "### `braze.Segment`",
        "### `braze.SegmentPage`", "### `braze.SegmentDetails`", "### `braze.DataSeries`",
        "### `braze.DataPoint`", "### `braze.Error`", "| `segment_id?` |", "| `page?` |" }) do
        assert.matches(heading, text, 1, true)
      end
    end)

    it("lists no internal module", function()
      for _, internal in ipairs({ "braze.scheduler", "braze.args", "braze.retry", "braze.shape",
        "braze.mock", "braze.cli", "braze.pipeline", "braze.window", "braze.launch" }) do
        assert.not_matches("## Module `" .. internal, text, 1, true)
        assert.not_matches("### `" .. internal .. ".", text, 1, true)
      end
    end)
  end)

  describe("split_type (LuaLS types may hold spaces)", function()
    local cases = {
      { "fun(): braze.Segment, integer", "fun(): braze.Segment, integer", "" },
      { "braze.SegmentPage|nil page the page", "braze.SegmentPage|nil", "page the page" },
      { '"asc"|"desc" order', '"asc"|"desc"', "order" },
      { "{limit: integer?, reset: integer?}|nil", "{limit: integer?, reset: integer?}|nil", "" },
      { "table<string, string> names", "table<string, string>", "names" },
      { "string[]? list", "string[]?", "list" },
      { "fun(seconds: number) how to wait", "fun(seconds: number)", "how to wait" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local t, rest = reference.split_type(case[1])
        assert.equal(case[2], t)
        assert.equal(case[3], rest)
      end)
    end
  end)
end)
