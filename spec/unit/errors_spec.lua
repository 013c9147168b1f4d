-- braze.errors: error objects, their one-line text, and redaction.
local errors = require("braze.errors")

describe("braze.errors", function()
  it("new makes an object that is(), with its kind, and redacts every string", function()
    local key = "0123456789abcdef0123"
    local redact = errors.redactor(key)
    local err = errors.new({ kind = "http", status = 401, endpoint = "/segments/list",
      message = "Invalid API key: " .. key, request_id = "rid " .. key,
      errors = { "bad " .. key, { nested = key } } }, redact)
    assert.is_true(errors.is(err))
    assert.is_false(errors.is({ kind = "http" }))
    assert.equal("http", err.kind)
    assert.equal("Invalid API key: 0123...", err.message)
    assert.equal("rid 0123...", err.request_id)
    assert.equal("bad 0123...", err.errors[1])
    assert.equal("0123...", err.errors[2].nested)
    assert.is_nil(tostring(err):find(key, 1, true))
  end)

  it("tostring is one line: kind, endpoint, message, other errors, attempts, request id", function()
    local err = errors.new({ kind = "http", status = 400, endpoint = "/segments/details",
      message = "Invalid segment_id", errors = { "Invalid segment_id", "other" }, attempts = 2,
      request_id = "r1" })
    assert.equal("braze: HTTP 400 on /segments/details: Invalid segment_id (other) after 2 attempts "
      .. "[request id r1]", tostring(err))
    assert.equal("x: braze: timeout on /segments/list: timeout",
      "x: " .. errors.new({ kind = "timeout", endpoint = "/segments/list" }))
    local forged = errors.new({ kind = "network", endpoint = "/x", message = "a\r\nb\027[31m" })
    assert.equal("braze: network error on /x: a\\r\\nb\\027[31m", tostring(forged))
  end)

  it("mask shows 4 characters of a long secret and nothing of a short one", function()
    assert.equal("abcd...", errors.mask("abcdefghijklmnop"))
    assert.equal("***", errors.mask("short"))
  end)

  it("a short key is masked only as a whole token, never inside a word", function()
    local redact = errors.redactor("k-1")
    assert.equal("key *** and xk-1y", redact("key k-1 and xk-1y"))
    assert.equal("the wrong instance", errors.redactor("wrong")("the wrong instance"))
    assert.equal("Invalid API key: othe...", redact("Invalid API key: otherkey-123456"))
  end)
end)

describe("an error about a long segment id", function()
  it("shows the id's first 64 bytes and its length, never the whole id", function()
    local id = string.rep("z", 5000)
    local err = errors.new({ kind = "http", status = 400, endpoint = "/segments/details", message = "bad" })
    err.segment_id = id
    local line = tostring(err)
    assert.is_true(#line < 300, #line)
    assert.matches("(segment " .. string.rep("z", 64) .. "...(5000 bytes)", line, 1, true)
    err.segment_id = "short-id"
    assert.matches("(segment short-id)", tostring(err), 1, true)
  end)
end)
