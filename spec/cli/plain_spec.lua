-- Off a terminal the output is plain: a table written to a file or a pipe
-- is never cut; under a locale that is not UTF-8 tables and plots are drawn
-- in ASCII; progress into a file or on TERM=dumb is whole lines, with no
-- \r or escape sequence. Run as a user runs them: bin/braze-segments with
-- its output redirected.
local helpers = require("spec.support.helpers")

local q = helpers.shell_quote
local BIN = helpers.root .. "/bin/braze-segments"
local GLYPHS = { "…", "↵", "─", "█", "▁", "┤", "│", "└" }

describe("#lua53 braze-segments off a terminal", function()
  local mock, tmp
  setup(function()
    mock = helpers.start_mock({ segments = 250 })
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-plain.XXXXXX"):gsub("\n$", "")
  end)
  teardown(function()
    if mock then mock:stop() end
    if tmp and tmp:match("^/tmp/braze%-plain") then os.execute("rm -rf " .. q(tmp)) end
  end)

  -- `braze-segments ARGS >out 2>err` with env (a string of NAME=VALUE words).
  local function run(env, args)
    local code = helpers.read_pipe(table.concat({ "env -u COLUMNS -u LC_ALL -u LC_CTYPE -u LANG",
      q("BRAZE_API_KEY=" .. mock.api_key), q("BRAZE_REST_ENDPOINT=" .. mock.url), env, helpers.lua, q(BIN),
      args, ">" .. q(tmp .. "/out"), "2>" .. q(tmp .. "/err"), "</dev/null; echo $?" }, " "))
    return { code = tonumber(code), stdout = helpers.read_file(tmp .. "/out"), stderr = helpers.read_file(tmp .. "/err") }
  end

  it("writes a table to a file uncut", function()
    local r = run("LANG=C.UTF-8", "list")
    assert.equal(0, r.code, r.stderr)
    assert.is_nil(r.stdout:find("…", 1, true))
    local widest = 0
    for line in r.stdout:gmatch("[^\n]+") do widest = math.max(widest, utf8.len(line)) end
    assert.is_true(widest > 80, "widest line " .. widest)
    -- COLUMNS still asks for a width
    r = run("LANG=C.UTF-8 COLUMNS=60", "list")
    assert.matches("…", r.stdout, 1, true)
  end)

  it("draws tables and plots in ASCII under LC_ALL=C", function()
    local id = helpers.read_pipe(table.concat({ "env", q("BRAZE_API_KEY=" .. mock.api_key),
      q("BRAZE_REST_ENDPOINT=" .. mock.url), helpers.lua, q(BIN), "list --format csv | sed -n '2s/,.*//p'" }, " "))
      :gsub("\n$", "")
    for _, args in ipairs({ "list", "series " .. q(id) .. " --end 2026-06-30 --format plot",
      "series " .. q(id) .. " --end 2026-06-30" }) do
      local r = run("LC_ALL=C LANG=C.UTF-8 COLUMNS=60", args)
      assert.equal(0, r.code, r.stderr)
      for _, glyph in ipairs(GLYPHS) do
        assert.is_nil(r.stdout:find(glyph, 1, true), args .. " printed " .. glyph)
      end
    end
    local r = run("LC_ALL=C COLUMNS=60", "list")
    assert.matches("%.%.%.\n", r.stdout)     -- cut cells end in ...
    assert.matches("\n%-%-%-", r.stdout)     -- the rule under the titles
    r = run("LC_ALL=C", "series " .. q(id) .. " --end 2026-06-30 --format plot")
    assert.matches(" %+%-%-%-", r.stdout)    -- the x axis
  end)

  it("writes --progress into a file as plain lines", function()
    local r = run("LANG=C.UTF-8", "--progress export")
    assert.equal(0, r.code, r.stderr)
    assert.is_nil(r.stderr:find("\r", 1, true))
    assert.is_nil(r.stderr:find("\27", 1, true))
    assert.matches("250 segments of 250, 3 pages", r.stderr, 1, true)
  end)

  it("draws progress as plain lines on a dumb terminal", function()
    if not os.execute("command -v script >/dev/null") then return pending("needs script(1)") end
    local command = table.concat({ "env TERM=dumb", q("BRAZE_API_KEY=" .. mock.api_key),
      q("BRAZE_REST_ENDPOINT=" .. mock.url), helpers.lua, q(BIN), "export >/dev/null" }, " ")
    local out = helpers.read_pipe("script -qec " .. q(command) .. " /dev/null </dev/null")
    assert.matches("250 segments of 250", out, 1, true)
    assert.is_nil(out:find("\27[K", 1, true))
  end)
end)
