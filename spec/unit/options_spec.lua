-- braze.options: the one table of options, and what reads it (braze.new,
-- the calls' concurrency and length, the command's flags).
local options = require("braze.options")
local braze = require("braze")
local helpers = require("spec.support.helpers")

describe("braze.options", function()
  it("gives every option a name, a kind and a one-line doc; numbers a default inside their range", function()
    for _, list in ipairs({ options.LIST, options.CALL }) do
      for _, option in ipairs(list) do
        assert.is_string(option.name)
        assert.is_string(option.kind)
        assert.is_string(option.doc)
        assert.is_nil(option.doc:find("\n"), option.name)
        if option.min then
          assert.is_number(option.default, option.name)
          assert.is_true(option.default >= option.min and option.default <= option.max, option.name)
          assert.equal(option.default, options.check_value(option.name, option.default))
        end
      end
    end
    assert.equal(100, options.PAGE_SIZE)
  end)

  it("NAMES is braze.new's set of options, the one its typo check uses", function()
    local ok, err = pcall(braze.new, { api_key = "k", endpoint = "https://x.invalid", timout = 5 })
    assert.is_false(ok)
    assert.matches("unknown option \"timout\" to braze.new (did you mean 'timeout'?)", err, 1, true)
    for name in pairs(options.NAMES) do assert.is_truthy(options.BY_NAME[name]) end
  end)

  it("check applies the defaults and rejects values out of range, naming the range", function()
    local resolved = options.check({})
    assert.equal(30, resolved.timeout)
    assert.equal(8, resolved.retry_max)
    assert.equal(0, resolved.reserve)
    assert.equal(5, options.check({ timeout = 5 }).timeout)
    local ok, err = pcall(options.check, { timeout = 0 })
    assert.is_false(ok)
    assert.matches("braze: timeout must be a number in [0.001, 86400] (got 0)", err, 1, true)
    ok, err = pcall(options.check, { reserve = 2e9 })
    assert.is_false(ok)
    assert.matches("reserve must be a number in [0, 1000000000] (got", err, 1, true)
    ok, err = pcall(options.check, { reserve = 1.5 })
    assert.is_false(ok)
    assert.matches("reserve must be a whole number of requests, or a fraction below 1", err, 1, true)
    assert.equal(0.25, options.check({ reserve = 0.25 }).reserve)
    ok, err = pcall(options.check, { max_depth = 0 / 0 })
    assert.is_false(ok)
    assert.matches("max_depth must be a number in [1, 10000]", err, 1, true)
  end)

  it("check_value checks integers (concurrency, length) and labels the message", function()
    assert.equal(64, options.check_value("concurrency", 64))
    local v, why = options.check_value("concurrency", 65, "each: concurrency")
    assert.is_nil(v)
    assert.equal("each: concurrency must be an integer in 1..64 (got 65)", why)
    v, why = options.check_value("length", 1.5)
    assert.is_nil(v)
    assert.equal("length must be an integer in 1..100 (got 1.5)", why)
    assert.is_nil((options.check_value("length", "7")))
  end)

  it("parse reads a flag's text with the option's range and names the flag", function()
    assert.equal(0.5, options.parse("reserve", "0.5", "--reserve"))
    assert.equal(2000000, options.parse("reserve", "2000000", "--reserve"))
    assert.equal(12, options.parse("concurrency", "12", "--concurrency"))
    local v, why = options.parse("timeout", "soon", "--timeout")
    assert.is_nil(v)
    assert.equal('--timeout must be a number in [0.001, 86400] (got "soon")', why)
    v, why = options.parse("concurrency", "0", "--concurrency")
    assert.is_nil(v)
    assert.equal('--concurrency must be an integer in 1..64 (got "0")', why)
  end)

  it("help writes the doc, the range and the default once", function()
    assert.equal("Seconds allowed: number in [0.001, 86400] (default 30).",
      options.help("timeout", "seconds allowed"))
    assert.equal("Requests: number in [0, 1000000000] (default 0).", options.help("reserve", "requests"))
  end)

  it("agrees with braze.Options' annotations (every option, every default)", function()
    local source = assert(helpers.read_file(helpers.root .. "/lua/braze/options.lua"))
    local block = assert(source:match("%-%-%-@class braze%.Options\n(.-)\n[^%-]"))
    local seen = {}
    for name, text in block:gmatch("%-%-%-@field ([%w_]+)%?? [^\n]-([^\n]*)\n") do
      seen[name] = true
      local option = assert(options.BY_NAME[name], "annotated but not in braze.options: " .. name)
      local default = text:match("%(default (%d[%d.]*)%)")
      if default and type(option.default) == "number" then
        assert.equal(option.default, tonumber(default), name)
      end
    end
    for name in pairs(options.NAMES) do assert.is_true(seen[name], "not annotated: " .. name) end
  end)
end)
