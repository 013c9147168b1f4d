-- braze-segments' flags take their ranges, defaults and help from
-- braze.options: --reserve accepts what the library accepts (fractions, up
-- to 1e9), and no help line says its default twice.
local helpers = require("spec.support.helpers")
local support = require("spec.cli.support")

describe("#lua53 braze-segments flags from braze.options", function()
  local mock, env
  setup(function()
    mock = helpers.start_mock({ segments = 120 })
    env = { BRAZE_API_KEY = mock.api_key, BRAZE_REST_ENDPOINT = mock.url }
  end)
  teardown(function() if mock then mock:stop() end end)

  it("--reserve takes a fraction of the window, as braze.new does", function()
    local r = support.run({ "--quiet", "export", "--reserve", "0.5" }, env)
    assert.equal(0, r.code, r.stderr)
    local lines = select(2, r.stdout:gsub("\n", "\n"))
    assert.equal(120, lines)
  end)

  it("--reserve takes a count above the old 1e6 bound, up to the library's 1e9", function()
    local r = support.run({ "--quiet", "export", "--reserve", "1000001", "--concurrency", "1" },
      { BRAZE_API_KEY = mock.api_key, BRAZE_REST_ENDPOINT = "http://127.0.0.1:1" })
    assert.not_matches("--reserve must", r.stderr, 1, true)
    r = support.run({ "export", "--reserve", "1000000001" }, env)
    assert.equal(2, r.code)
    assert.matches("--reserve must be a number in [0, 1000000000]", r.stderr, 1, true)
  end)

  it("--reserve 1.5 is refused with the library's words", function()
    local r = support.run({ "export", "--reserve", "1.5" }, env)
    assert.equal(2, r.code)
    assert.matches("--reserve must be a whole number of requests, or a fraction below 1", r.stderr, 1, true)
  end)

  it("help shows each range and default once, from the table", function()
    local r = support.run({ "export", "--help" }, env)
    assert.equal(0, r.code)
    local text = r.stdout:gsub("%s+", " ")
    local reserve = assert(text:match("%-%-reserve <n> (Requests.-%(default %d+%)%.)"), text)
    assert.matches("[0, 1000000000] (default 0).", reserve, 1, true)
    assert.not_matches("(default: 0)", text, 1, true)
    assert.matches("integer in 1..64 (default 8).", (r.stdout:gsub("%s+", " ")), 1, true)
    r = support.run({ "--help" }, env)
    assert.matches("[0.001, 86400] (default 30).", (r.stdout:gsub("%s+", " ")), 1, true)
    r = support.run({ "series", "--help" }, env)
    assert.matches("integer in 1..100 (default 30).", (r.stdout:gsub("%s+", " ")), 1, true)
  end)
end)
