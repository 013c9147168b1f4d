-- braze-segments' messages lead somewhere: a negative value is named as a
-- bad value of its flag (not "unknown option '-1'" and another command's
-- help), a name that is no instance lists the instances however it came, a
-- bare host gets https:// suggested, a rate-limit wait beyond the limit names
-- --max-wait (a flag the command has), and --help lists exit status 130.
local helpers = require("spec.support.helpers")
local support = require("spec.cli.support")

describe("#lua53 braze-segments messages", function()
  local mock, env
  setup(function()
    mock = helpers.start_mock({ segments = 20 })
    env = { BRAZE_API_KEY = mock.api_key, BRAZE_REST_ENDPOINT = mock.url }
  end)
  teardown(function() if mock then mock:stop() end end)

  it("names a negative value as a bad value of its flag", function()
    local cases = {
      { { "--timeout", "-1", "list" }, '--timeout must be a number in [0.001, 86400] (got "-1")' },
      { { "--max-retries", "-2", "list" }, '--max-retries must be a number in [0, 100] (got "-2")' },
      { { "export", "--reserve", "-1" }, '--reserve must be a number in [0, 1000000000] (got "-1")' },
      { { "series", "x", "--days", "-3" }, '--days must be an integer in 1..100 (got "-3")' },
    }
    for _, c in ipairs(cases) do
      local r = support.run(c[1], env)
      assert.equal(2, r.code, table.concat(c[1], " "))
      assert.matches(c[2], r.stderr, 1, true)
      assert.not_matches("unknown option", r.stderr, 1, true)
      assert.not_matches("Try 'braze-segments list --help'", r.stderr, 1, true)
    end
  end)

  it("lists the instances for BRAZE_REST_ENDPOINT=EU-07 as for --instance US-99", function()
    local r = support.run({ "list" }, { BRAZE_API_KEY = "k", BRAZE_REST_ENDPOINT = "EU-07" })
    assert.equal(2, r.code)
    assert.matches('"EU-07"', r.stderr, 1, true)
    assert.matches("one of AU-01, EU-01, EU-02, ID-01, US-01", r.stderr, 1, true)
    r = support.run({ "--instance", "US-99", "list" }, { BRAZE_API_KEY = "k" })
    assert.equal(2, r.code)
    assert.matches("one of AU-01, EU-01, EU-02, ID-01, US-01", r.stderr, 1, true)
  end)

  it("suggests https:// for --endpoint rest.iad-01.braze.com", function()
    local r = support.run({ "--endpoint", "rest.iad-01.braze.com", "list" }, { BRAZE_API_KEY = "k" })
    assert.equal(2, r.code)
    assert.matches('did you mean "https://rest.iad-01.braze.com"?', r.stderr, 1, true)
  end)

  it("names --max-wait when a 429 asks for a longer wait, and --max-wait is a flag", function()
    mock:fault({ type = "429", retry_after = 100 })
    local r = support.run({ "list" }, env)
    assert.equal(1, r.code)
    assert.matches("longer than --max-wait (60 s)", r.stderr, 1, true)
    mock:reset()
    mock:fault({ type = "429", retry_after = 100 })
    r = support.run({ "--max-wait", "0.5", "list" }, env)
    assert.equal(1, r.code)
    assert.matches("longer than --max-wait (0.5 s)", r.stderr, 1, true)
    mock:reset()
  end)

  it("--help lists every exit status, 130 included", function()
    local r = support.run({ "--help" }, env)
    assert.equal(0, r.code)
    assert.matches("Exit status: 0 ok, 1 API/network/file error, 2 usage error, 130 interrupted",
      (r.stdout:gsub("%s+", " ")), 1, true)
  end)
end)
