-- braze.url: endpoints, query strings and URL splitting for Lua transports.
local url = require("braze.url")

describe("braze.url", function()
  it("escape keeps RFC 3986 unreserved characters only", function()
    assert.equal("a-b_c.d~e", url.escape("a-b_c.d~e"))
    assert.equal("a%20b%2Fc%3F%26%3D%C3%A9", url.escape("a b/c?&=é"))
  end)

  it("query joins pairs, skipping nil values", function()
    assert.equal("", url.query())
    assert.equal("", url.query("page", nil))
    assert.equal("?page=2&sort_direction=desc", url.query("page", 2, "sort_direction", "desc"))
    assert.equal("?segment_id=a%26b", url.query("page", nil, "segment_id", "a&b"))
  end)

  it("split_url gives scheme, host, port, Host header and target", function()
    assert.same({ "https", "rest.iad-01.braze.com", 443, "rest.iad-01.braze.com", "/segments/list?page=1" },
      { url.split_url("https://rest.iad-01.braze.com/segments/list?page=1") })
    assert.same({ "http", "::1", 8080, "[::1]:8080", "/" }, { url.split_url("HTTP://[::1]:8080") })
    assert.same({ "http", "127.0.0.1", 80, "127.0.0.1", "/x" }, { url.split_url("http://127.0.0.1/x") })
    local cases = {
      { "rest.iad-01.braze.com", "not an absolute URL" }, { "ftp://x/", "unsupported scheme ftp" },
      { "https:///x", "no host" }, { "https://x:port/", "bad port" },
      { "https://x/a b", "control characters or spaces in the URL" },
    }
    for _, c in ipairs(cases) do
      local ok, why = url.split_url(c[1])
      assert.is_nil(ok, c[1])
      assert.equal(c[2], why, c[1])
    end
  end)

  it("is_loopback knows localhost, 127/8 and ::1", function()
    assert.is_true(url.is_loopback("localhost"))
    assert.is_true(url.is_loopback("127.3.2.1"))
    assert.is_true(url.is_loopback("[::1]"))
    assert.is_false(url.is_loopback("128.0.0.1"))
    assert.is_false(url.is_loopback("127.0.0.256"))
    assert.is_false(url.is_loopback("example.com"))
  end)

  it("endpoint wants https (http for loopback or with allow_http) and strips a trailing /", function()
    assert.equal("https://rest.iad-01.braze.com", url.endpoint("https://rest.iad-01.braze.com/"))
    assert.equal("https://gw.example/braze", url.endpoint("https://gw.example/braze//"))
    assert.equal("http://127.0.0.1:8080", url.endpoint("http://127.0.0.1:8080"))
    assert.equal("http://example.com", url.endpoint("http://example.com", true))
    local cases = {
      { 5, "endpoint must be a string URL (got number)" },
      { "rest.iad-01.braze.com", "is not a URL: expected https://host[:port][/path]" },
      { "ftp://x", "scheme must be https (got ftp)" },
      { "https://x/?a=1", "must not carry a query or fragment" },
      { "https://user:pw@x", "must not carry credentials; use api_key" },
      { "https://x/a b", "path contains spaces or control characters" },
      { "https://:443", "has no host" },
      { "https://x:0", "has a bad port" },
      { "http://example.com", "plain http is only allowed for loopback hosts" },
    }
    for _, c in ipairs(cases) do
      local ok, why = url.endpoint(c[1])
      assert.is_nil(ok, tostring(c[1]))
      assert.matches("^braze: ", why)
      assert.matches(c[2], why, 1, true)
    end
    local ok, why = url.endpoint("http://example.com", "false")
    assert.is_nil(ok)
    assert.matches('allow_http must be true or false (got "false")', why, 1, true)
  end)
end)
