-- Issue 4, security: verified TLS, no secret ever leaks, hostile input is
-- inert. SECURITY.md names the `it` below that backs each guarantee.
--
-- Starts, all on 127.0.0.1 and stopped in teardown: two braze-mocks (A, the
-- API; B, a redirect target / proxy), a Debian nginx terminating TLS in
-- front of A (CA and certificates made with openssl in a temp dir, see
-- spec/support/tls_nginx.lua), and a tiny "canned" server that sends hostile raw
-- HTTP responses the mock cannot produce. The #tls describe runs in the
-- default suite (.busted excludes only #nginx).
local braze = require("braze")
local errors = require("braze.errors")
local canned_server = require("spec.support.canned_server")
local helpers = require("spec.support.helpers")
local tls = require("spec.support.tls_nginx")

-- A distinctive key: any occurrence of it in a string is a leak.
local KEY = "sk-Secret-0123456789abcdefXYZ"

local function has_key(s)
  return type(s) == "string" and s:find(KEY, 1, true) ~= nil
end

-- Every string reachable from v (keys, values, nested tables), plus
-- tostring of error objects.
local function strings_in(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    if errors.is(v) then out[#out + 1] = tostring(v) end
    for k, x in pairs(v) do
      strings_in(k, out, seen)
      strings_in(x, out, seen)
    end
  end
  return out
end

local function assert_no_key(v, what)
  for _, s in ipairs(strings_in(v)) do
    assert(not has_key(s), (what or "value") .. " leaks the key: " .. s)
  end
end

local function client_for(url, extra)
  local opts = { api_key = KEY, endpoint = url, max_retries = 0, sleep = function() end,
    timeout = 5 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return braze.new(opts)
end

-- Expect a clean failure: nil and a braze.Error of `kind` (any kind when nil).
local function expect_error(kind, res, err)
  assert.is_nil(res)
  assert.is_true(errors.is(err), "not an error object: " .. tostring(err))
  if kind then assert.equal(kind, err.kind, tostring(err)) end
  assert.is_string(tostring(err))
  return err
end

local recording_transport = helpers.recording_transport
local read_pipe = helpers.read_pipe

local own_interpreter = helpers.interpreter

local mock_a, mock_b

setup(function()
  mock_a = helpers.start_mock{ api_key = KEY, segments = 150 }
  mock_b = helpers.start_mock{ api_key = KEY, segments = 3 }
end)

teardown(function()
  if mock_a then mock_a:stop() end
  if mock_b then mock_b:stop() end
end)

before_each(function()
  mock_a:reset()
  mock_b:reset()
end)

describe("#tls verified TLS against a real TLS front (nginx + test CA)", function()
  local dir, front, ca_file, ca_path

  setup(function()
    dir = tls.tempdir("braze-security")
    ca_file = tls.make_ca(dir, "ca")
    tls.make_ca(dir, "otherca")
    tls.make_cert(dir, "localhost", "ca", "DNS:localhost,IP:127.0.0.1")
    tls.make_cert(dir, "other", "ca", "DNS:other.example")
    tls.make_cert(dir, "foreign", "otherca", "DNS:localhost,IP:127.0.0.1")
    ca_path = tls.make_ca_dir(dir, "capath", { "ca" })
    front = tls.start_nginx(dir, {
      good = { cert = "localhost", upstream = mock_a.url },
      other = { cert = "other", upstream = mock_a.url },
      foreign = { cert = "foreign", upstream = mock_a.url },
    })
  end)

  teardown(function()
    if front then front:stop() end
    tls.remove(dir)
  end)

  local function url(name) return "https://localhost:" .. front.ports[name] end

  it("refuses a certificate it cannot verify (no ca_file): a network error, and no request reaches the server", function()
    local err = expect_error("network", client_for(url("good")):list())
    assert.matches("certificate", err.message)
    assert.matches("unable to get local issuer certificate", err.message, 1, true)
    assert.equal(0, mock_a:stats().requests)
  end)

  it("with ca_file = the test CA the request succeeds and the key arrives as a Bearer header", function()
    local res = assert(client_for(url("good"), { ca_file = ca_file }):list())
    assert.equal(100, #res.segments)
    local log = mock_a:requests()
    assert.equal(1, #log)
    assert.equal("Bearer " .. KEY, log[1].authorization)
  end)

  it("with ca_path = a hashed directory holding the test CA the request succeeds", function()
    local res = assert(client_for(url("good"), { ca_path = ca_path }):list())
    assert.equal(100, #res.segments)
  end)

  it("also verifies an IP address endpoint against the certificate's IP SAN", function()
    local res = assert(client_for("https://127.0.0.1:" .. front.ports.good, { ca_file = ca_file }):list())
    assert.equal(100, #res.segments)
  end)

  it("refuses a valid certificate for another host name: a network error about the name", function()
    local err = expect_error("network", client_for(url("other"), { ca_file = ca_file }):list())
    assert.matches("host name", err.message)
    assert.matches("localhost", err.message)
    assert.equal(0, mock_a:stats().requests)
  end)

  it("refuses a certificate for the right name from a CA that is not trusted", function()
    local err = expect_error("network", client_for(url("foreign"), { ca_file = ca_file }):list())
    assert.matches("certificate", err.message)
    assert.equal(0, mock_a:stats().requests)
  end)

  it("the concurrent transfers of details_many verify TLS the same way", function()
    local c = client_for(url("good"))
    if not c.details_many then pending("no details_many in this version") return end
    local ids = { "x1", "x2", "x3" }
    local res, errs = c:details_many(ids, { concurrency = 3 })
    for i = 1, 3 do
      assert.is_nil(res[i])
      assert.equal("network", errs[i].kind)
      assert.matches("certificate", errs[i].message)
    end
    assert.equal(0, mock_a:stats().requests)
    local page = assert(client_for(url("good"), { ca_file = ca_file }):list())
    res, errs = client_for(url("other"), { ca_file = ca_file }):details_many({ page.segments[1].id })
    assert.is_nil(res[1]) -- nothing came back from the host whose name does not match
    assert.equal("network", errs[1].kind)
    assert.matches("host name", errs[1].message)
    res, errs = client_for(url("good"), { ca_file = ca_file }):details_many(
      { page.segments[1].id, page.segments[2].id }, { concurrency = 2 })
    assert.same({}, errs)
    assert.equal(page.segments[2].name, res[2].name)
  end)

  it("a ca_file that cannot be read is a network error, never a fallback to no verification", function()
    local err = expect_error("network", client_for(url("good"), { ca_file = dir .. "/missing.pem" }):list())
    assert.matches("missing.pem", err.message, 1, true)
    assert.equal(0, mock_a:stats().requests)
  end)
end)

describe("no option turns verification off", function()
  for _, opt in ipairs({
    { ssl_verify = false }, { insecure = true }, { verify = false }, { ssl_verify_peer = false },
    { tls_verify = false }, { verify_host = false },
  }) do
    local name = next(opt)
    it("braze.new rejects " .. name .. " = " .. tostring(opt[name]) .. " as an unknown option", function()
      local o = { api_key = KEY, endpoint = "https://localhost:1" }
      o[name] = opt[name]
      local ok, err = pcall(braze.new, o)
      assert.is_false(ok)
      assert.matches("unknown option \"" .. name .. "\" to braze.new", err, 1, true)
    end)
  end
end)

describe("plain http only to loopback", function()
  for _, url in ipairs({ "http://10.0.0.1", "http://example.com", "http://192.168.1.10:8080/braze",
    "http://127.0.0.1.nip.io", "http://localhost.example.com", "http://2130706433",
    "HTTP://rest.iad-01.braze.com" }) do
    it("rejects " .. url .. " at braze.new", function()
      local t = recording_transport()
      local ok, err = pcall(braze.new, { api_key = KEY, endpoint = url, transport = t })
      assert.is_false(ok)
      assert.matches("plain http is only allowed for loopback hosts", err, 1, true)
      assert.equal(0, #t.configs) -- no transport, let alone a request
    end)
  end

  for _, url in ipairs({ "http://127.0.0.1@evil.example", "http://evil.example#@127.0.0.1",
    "http://127.0.0.1\\@evil.example", "http://127.0.0.1%2f.evil.example", "http://127.0.0.1 .evil.example",
    "http://127.0.0.1\r\nHost: evil.example" }) do
    it("rejects the disguised endpoint " .. url:gsub("%c", "?") .. " at braze.new", function()
      local ok, err = pcall(braze.new, { api_key = KEY, endpoint = url, transport = recording_transport() })
      assert.is_false(ok)
      assert.matches("endpoint", err)
    end)
  end

  for _, url in ipairs({ "http://localhost", "http://127.0.0.5", "http://[::1]", "http://LOCALHOST:8080",
    "http://127.255.255.254:1/prefix" }) do
    it("accepts the loopback endpoint " .. url, function()
      local t = recording_transport()
      local c = braze.new{ api_key = KEY, endpoint = url, transport = t }
      assert.truthy(c:list())
      assert.equal(url .. "/segments/list", t.urls[1])
    end)
  end

  it("allow_http = true allows plain http to other hosts", function()
    for _, url in ipairs({ "http://10.0.0.1", "http://example.com" }) do
      local t = recording_transport()
      local c = braze.new{ api_key = KEY, endpoint = url, transport = t, allow_http = true }
      assert.truthy(c:list())
      assert.equal(url .. "/segments/list", t.urls[1])
    end
  end)

  it("allow_http must be a boolean: \"false\" or 0 do not quietly allow http", function()
    for _, v in ipairs({ "false", "true", 0, 1 }) do
      local ok, err = pcall(braze.new, { api_key = KEY, endpoint = "http://10.0.0.1", allow_http = v,
        transport = recording_transport() })
      assert.is_false(ok)
      assert.matches("allow_http must be true or false", err, 1, true)
    end
  end)
end)

describe("the key is sent only in the Authorization header", function()
  it("every API request carries Bearer <key> and the key is in no path, query or user agent", function()
    local c = client_for(mock_a.url)
    local page = assert(c:list{ page = 0, sort_direction = "desc" })
    assert(c:details(page.segments[1].id))
    assert(c:data_series{ segment_id = page.segments[1].id, length = 3, ending_at = "2024-01-31" })
    local n = 0
    for _ in c:each() do n = n + 1 end
    assert.equal(150, n)
    local log = mock_a:requests()
    assert.equal(5, #log)
    for _, req in ipairs(log) do
      assert.equal("Bearer " .. KEY, req.authorization)
      assert.is_false(has_key(req.path))
      assert.is_false(has_key(req.raw_query))
      assert.is_false(has_key(req.user_agent))
      assert_no_key(req.query, "query")
      assert.is_nil(req.query.api_key)
      assert.matches("^lua%-braze/", req.user_agent)
    end
  end)

  it("the client's public table and tostring(client) do not hold the key", function()
    local c = client_for(mock_a.url)
    assert(c:list())
    assert.is_false(has_key(tostring(c)))
    assert_no_key(c, "client")
    assert_no_key(getmetatable(c), "client metatable")
  end)
end)

describe("redirects are not followed", function()
  it("a 302 to another server is an http error with status 302; the other server gets nothing", function()
    mock_a:fault{ type = "redirect", location = mock_b.url .. "/segments/list" }
    local err = expect_error("http", client_for(mock_a.url, { max_retries = 3 }):list())
    assert.equal(302, err.status)
    assert.equal(1, err.attempts)
    assert.matches("redirects are not followed", err.message, 1, true)
    assert.equal(1, mock_a:stats().requests)
    local b = mock_b:stats()
    assert.equal(0, b.requests)
    assert.equal(1, b.connections) -- only this stats request
  end)

  it("the concurrent transfers of details_many do not follow redirects either", function()
    local c = client_for(mock_a.url)
    if not c.details_many then pending("no details_many in this version") return end
    mock_a:fault{ type = "redirect", location = mock_b.url .. "/segments/details", count = 2 }
    local _, errs = c:details_many({ "a", "b" }, { concurrency = 2 })
    assert.equal(302, errs[1].status)
    assert.equal(302, errs[2].status)
    assert.equal(0, mock_b:stats().requests)
  end)

  it("a redirect to an https URL is not followed either", function()
    mock_a:fault{ type = "redirect", location = "https://127.0.0.1:" .. mock_b.port .. "/segments/list" }
    local err = expect_error("http", client_for(mock_a.url):list())
    assert.equal(302, err.status)
    assert.equal(1, mock_b:stats().connections) -- only this stats request
  end)
end)

describe("redaction", function()
  local function check_redacted(err)
    assert.is_false(has_key(err.message), err.message)
    assert.is_false(has_key(tostring(err)))
    assert.is_false(has_key("x" .. err))
    assert.is_false(has_key(err .. "x"))
    assert_no_key(err.errors, "err.errors")
    assert_no_key(err, "err")
  end

  it("a 401 that echoes the key: message, tostring, concatenation, errors and the client never show it", function()
    mock_a:fault{ type = "401" }
    local c = client_for(mock_a.url)
    local err = expect_error("http", c:list())
    assert.equal(401, err.status)
    -- the mock really echoed it
    assert.equal("Bearer " .. KEY, mock_a:requests()[1].authorization)
    check_redacted(err)
    assert.matches("Invalid API key: sk-S...", err.message, 1, true)
    assert.is_false(has_key(tostring(c)))
  end)

  it("a key echoed in a 400 message (status fault) is redacted", function()
    mock_a:fault{ type = "status", code = 400, message = "segment_id is bad; your key " .. KEY .. " is fine" }
    local err = expect_error("http", client_for(mock_a.url):details("x"))
    assert.equal(400, err.status)
    check_redacted(err)
    assert.matches("your key sk-S... is fine", err.message, 1, true)
  end)

  it("a key echoed in a 500 body's message and errors (raw fault) is redacted", function()
    mock_a:fault{ type = "raw", code = 500, body = '{"message":"boom for ' .. KEY .. '","errors":["again '
      .. KEY .. '",{"nested":"' .. KEY .. '"},"API key: ' .. KEY .. '"]}' }
    local err = expect_error("http", client_for(mock_a.url):list())
    assert.equal(500, err.status)
    check_redacted(err)
    assert.equal("again sk-S...", err.errors[1])
    assert.equal("sk-S...", err.errors[2].nested)
  end)

  it("a key in an HTML error page's title is redacted", function()
    mock_a:fault{ type = "raw", code = 502, body = "<html><head><title>Bad gateway for " .. KEY
      .. "</title></head></html>" }
    local err = expect_error("http", client_for(mock_a.url):list())
    assert.equal(502, err.status)
    check_redacted(err)
    assert.matches("Bad gateway for sk-S...", err.message, 1, true)
  end)

  it("a key in X-Request-Id, non-string errors entries or a transport message is redacted", function()
    local answers = {
      { status = 500, headers = { ["x-request-id"] = "req-" .. KEY, ["content-type"] = KEY },
        body = { message = "m", errors = { { KEY }, { [KEY] = true } } } },
      { status = 200, headers = { ["x-request-id"] = KEY, ["content-type"] = "text/" .. KEY },
        decode_error = "bad", decode_position = 1 },
    }
    local i = 0
    local t = recording_transport(function()
      i = i + 1
      if answers[i] then return answers[i] end
      return nil, "network", "could not connect with " .. KEY
    end)
    local c = braze.new{ api_key = KEY, endpoint = "https://h.example", transport = t, max_retries = 0 }
    for _ = 1, 3 do check_redacted(expect_error(nil, c:list())) end
  end)

  it("a short key is masked completely, not shown in part", function()
    local short = "k3y-SHORT"
    local t = recording_transport({ status = 401, headers = {}, body = { message = "Invalid API key: " .. short } })
    local c = braze.new{ api_key = short, endpoint = "https://h.example", transport = t }
    local err = expect_error("http", c:list())
    assert.is_nil(tostring(err):find(short, 1, true))
    assert.is_nil(tostring(err):find("k3y", 1, true))
    assert.is_nil(tostring(c):find("k3y", 1, true))
  end)

  it("no error string produced by any kind of failure contains the key (errors.new scan)", function()
    local made = {}
    local original = errors.new
    errors.new = function(fields, redact)
      local e = original(fields, redact)
      made[#made + 1] = e
      return e
    end
    finally(function() errors.new = original end)

    local a = mock_a.url
    local function call(kind, fault, opts, method)
      if fault then mock_a:fault(fault) end
      local c = client_for(opts and opts.endpoint or a, opts and opts.client)
      local res, err
      if method == "details" then res, err = c:details("no-such-" .. KEY)
      elseif method == "series" then res, err = c:data_series{ segment_id = KEY, length = 2 }
      else res, err = c:list() end
      c:close()
      expect_error(kind, res, err)
    end
    -- network
    call("network", nil, { endpoint = "http://127.0.0.1:" .. tls.free_port() })
    call("network", { type = "close" })
    call("network", { type = "reset" })
    -- timeout
    call("timeout", { type = "hang" }, { client = { timeout = 0.3 } })
    call("timeout", { type = "delay", ms = 2000 }, { client = { timeout = 0.3 } })
    -- http
    call("http", { type = "401" })
    call("http", { type = "403" })
    call("http", nil, nil, "details") -- 400: unknown segment id (the id holds the key)
    call("http", nil, nil, "series")
    call("http", nil, { endpoint = a .. "/" .. KEY }) -- 404 for a path holding the key
    call("http", { type = "status", code = 418, message = "teapot " .. KEY })
    call("http", { type = "raw", code = 500, body = '{"errors":["' .. KEY .. '"]}' })
    call("http", { type = "raw", code = 503, body = "<title>" .. KEY .. "</title>" })
    call("http", { type = "raw", code = 400, body = '{"message":"m","errors":[{"field":"' .. KEY .. '"}]}' })
    call("http", { type = "redirect", location = "http://" .. KEY .. ".example/" })
    -- decode
    call("decode", { type = "malformed" })
    call("decode", { type = "raw", body = '{"message":"' .. KEY .. '"' })
    call("decode", { type = "raw", body = '"' .. KEY .. '"' })
    call("decode", { type = "html200" })
    call("decode", { type = "deep" })
    call("decode", { type = "badutf8" })
    -- rate_limited
    -- (a workspace of its own: its window says "none left for an hour" to every client of it)
    call("rate_limited", { type = "429", reset_in = 3600 },
      { client = { max_wait = 1 }, endpoint = a:gsub("127%.0%.0%.1", "localhost") })
    call("rate_limited", { type = "raw", code = 429, body = '{"message":"slow down ' .. KEY .. '"}' })
    -- too_large
    call("too_large", { type = "huge", bytes = 100000 }, { client = { max_body = 1000 } })
    call("too_large", { type = "nolength_huge", bytes = 100000, framing = "chunked" },
      { client = { max_body = 1000 } })
    -- the concurrent calls make their errors the same way
    local many = client_for(a)
    if many.details_many then
      mock_a:fault{ type = "status", code = 400, message = "many " .. KEY }
      mock_a:fault{ type = "hang" }
      local _, errs = client_for(a, { timeout = 0.3 }):details_many({ KEY, "y" }, { concurrency = 2 })
      assert.equal(2, #errs)
    end
    -- each raises the error object
    mock_a:fault{ type = "401" }
    local ok, raised = pcall(function() for _ in client_for(a):each() do end end)
    assert.is_false(ok)
    assert.is_true(errors.is(raised))

    local kinds = {}
    for _, e in ipairs(made) do
      kinds[e.kind] = true
      assert_no_key(e, "error " .. tostring(e.kind))
      assert.is_false(has_key("x" .. e))
    end
    assert.same({ network = true, timeout = true, http = true, decode = true, rate_limited = true,
      too_large = true }, kinds)
    assert.is_true(#made >= 25)
  end)
end)

describe("control characters", function()
  local controls = { CR = "\r", LF = "\n", NUL = "\0", TAB = "\t", ESC = "\27", DEL = "\127",
    BEL = "\7", CRLF = "\r\nX-Injected: 1" }
  local names = {}
  for name in pairs(controls) do names[#names + 1] = name end
  table.sort(names)

  for _, name in ipairs(names) do
    local c = controls[name]
    it("an api_key containing " .. name .. " raises at new without echoing the key", function()
      local key = "abcdEFGH1234" .. c .. "wxyz5678"
      local t = recording_transport()
      local ok, err = pcall(braze.new, { api_key = key, endpoint = "https://h.example", transport = t })
      assert.is_false(ok)
      assert.matches("api_key contains a control character", err, 1, true)
      assert.is_nil(err:find("abcdEFGH", 1, true))
      assert.is_nil(err:find("wxyz5678", 1, true))
      assert.equal(0, #t.configs)
    end)

    it("a user_agent containing " .. name .. " raises at new", function()
      local ok, err = pcall(braze.new, { api_key = KEY, endpoint = "https://h.example",
        user_agent = "agent/1" .. c .. "x", transport = recording_transport() })
      assert.is_false(ok)
      assert.matches("user_agent must be a string without control characters", err, 1, true)
      assert.is_false(has_key(err))
    end)
  end

  it("ca_file, ca_path and proxy with CR or LF raise at new", function()
    for _, opt in ipairs({ "ca_file", "ca_path", "proxy" }) do
      for _, c in ipairs({ "\r", "\n", "\0" }) do
        local o = { api_key = KEY, endpoint = "https://h.example", transport = recording_transport() }
        o[opt] = "/tmp/x" .. c .. "y"
        local ok, err = pcall(braze.new, o)
        assert.is_false(ok)
        assert.matches(opt .. " must be a string without control characters", err, 1, true)
      end
    end
  end)

  for _, key in ipairs({ "abcd 1234efgh5678", '"abcd1234efgh5678"', "'abcd1234efgh5678'", " abcd1234efgh5678" }) do
    it("an api_key with spaces or quotes (" .. key .. ") raises with a hint, without echoing it", function()
      local ok, err = pcall(braze.new, { api_key = key, endpoint = "https://h.example",
        transport = recording_transport() })
      assert.is_false(ok)
      assert.matches("spaces or quotes (was it pasted with them?)", err, 1, true)
      assert.is_nil(err:find("1234efgh", 1, true))
    end)
  end

  it("the C session refuses a key with a control character even if the Lua check is bypassed", function()
    local core = require("braze.core")
    local ok, err = pcall(core.session, { api_key = "abcd1234\r\nX-Evil: 1" })
    assert.is_false(ok)
    assert.matches("control character", err)
    assert.is_nil(err:find("abcd1234", 1, true))
  end)
end)

describe("percent-encoding", function()
  local HOSTILE = "a&b=c#d?e%f/g+h i\"j'k\r\nl\0m\té☕;n<>%41%2B..\\z"

  local function only_param(req, want)
    local keys = {}
    for k in pairs(req.query) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same(want, keys)
    -- nothing but unreserved characters, escapes and the separators we put there
    assert.matches("^[%w%-%._~%%=&]*$", req.raw_query)
  end

  it("a hostile segment_id reaches details as exactly that one parameter", function()
    expect_error("http", client_for(mock_a.url):details(HOSTILE)) -- unknown id: 400
    local req = mock_a:requests()[1]
    assert.equal("/segments/details", req.path)
    assert.equal(HOSTILE, req.query.segment_id)
    only_param(req, { "segment_id" })
  end)

  it("a hostile segment_id reaches data_series as exactly that one parameter", function()
    expect_error("http", client_for(mock_a.url):data_series{ segment_id = HOSTILE, length = 7 })
    local req = mock_a:requests()[1]
    assert.equal("/segments/data_series", req.path)
    assert.equal(HOSTILE, req.query.segment_id)
    assert.equal("7", req.query.length)
    only_param(req, { "length", "segment_id" })
  end)

  it("every single byte 0..255 as a segment_id arrives intact", function()
    local c = client_for(mock_a.url)
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    local id = table.concat(all)
    expect_error("http", c:details(id))
    local req = mock_a:requests()[1]
    assert.equal(id, req.query.segment_id)
    only_param(req, { "segment_id" })
  end)

  it("ending_at cannot smuggle parameters: a string with & or # is rejected", function()
    local c = client_for(mock_a.url)
    for _, v in ipairs({ "2024-01-01T00:00:00Z&api_key=x", "2024-01-01#x", "2024-01-01T00:00\r\n" }) do
      assert.has_error(function() c:data_series{ segment_id = "s", length = 1, ending_at = v } end)
    end
    assert.equal(0, mock_a:stats().requests)
  end)
end)

describe("hostile responses end in a clean error", function()
  local server

  local JSON_OK = '{"message":"success","segments":[]}'

  local response = canned_server.response

  setup(function()
    local cases = {}
    local junk = {}
    for i = 1, 3000 do junk[i] = string.format("X-Junk-%d: %s", i, ("j"):rep(60)) end
    cases.giantheader = response("HTTP/1.1 200 OK", { "Content-Type: application/json",
      "X-Request-Id: " .. ("A"):rep(200000), "Content-Length: " .. #JSON_OK }, JSON_OK)
    cases.longheaders = response("HTTP/1.1 200 OK", { "Content-Type: application/json",
      "X-Request-Id: " .. ("R"):rep(50000), "X-RateLimit-Limit: " .. ("9"):rep(50000),
      "X-RateLimit-Remaining: " .. ("1"):rep(30), "X-RateLimit-Reset: -" .. ("9"):rep(400),
      "Content-Length: " .. #JSON_OK }, JSON_OK)
    local many = { "Content-Type: application/json", "Content-Length: " .. #JSON_OK }
    for _, j in ipairs(junk) do many[#many + 1] = j end
    cases.manyheaders = response("HTTP/1.1 200 OK", many, JSON_OK)
    local body500 = '{"message":"line one\\r\\nbraze: FORGED line\\u001b[2J\\u0007","errors":["e\\nx"]}'
    cases.controls = response("HTTP/1.1 500 Internal Server Error", { "Content-Type: application/json",
      "X-Request-Id: ab\1cd\27[31mef", "Content-Length: " .. #body500 }, body500)
    cases.nulheader = response("HTTP/1.1 200 OK", { "X-Request-Id: a\0b", "Content-Length: " .. #JSON_OK }, JSON_OK)
    cases.negativelength = response("HTTP/1.1 200 OK", { "Content-Length: -5" }, JSON_OK)
    cases.hugelength = response("HTTP/1.1 200 OK", { "Content-Length: 99999999999999999999999999" }, JSON_OK)
    cases.twolengths = response("HTTP/1.1 200 OK", { "Content-Length: 10", "Content-Length: 36" }, JSON_OK)
    cases.http09 = JSON_OK
    cases.empty = ""
    cases.badstatus = response("HTTP/1.1 2000000 OK", { "Content-Length: " .. #JSON_OK }, JSON_OK)
    cases.badchunk = response("HTTP/1.1 200 OK", { "Transfer-Encoding: chunked" }, "zz\r\n" .. JSON_OK .. "\r\n0\r\n\r\n")
    cases.retryforever = response("HTTP/1.1 429 Too Many Requests", { "Retry-After: 99999999999999",
      "X-RateLimit-Remaining: 0", "X-RateLimit-Reset: 99999999999999", "Content-Length: 2" }, "{}")
    -- 16 MiB of zeros, gzipped: about 16 KiB on the wire
    local gz = read_pipe("head -c 16777216 /dev/zero | gzip -1")
    cases.gzipbomb = response("HTTP/1.1 200 OK", { "Content-Type: application/json",
      "Content-Encoding: gzip", "Content-Length: " .. #gz }, gz)
    server = canned_server.start(cases)
  end)

  teardown(function()
    if server then server:stop() end
  end)

  local function canned(case, extra)
    return client_for("http://127.0.0.1:" .. server.port .. "/" .. case, extra)
  end

  it("badheaders (garbage X-RateLimit-* values) leaves a usable response and no rate-limit numbers", function()
    mock_a:fault{ type = "badheaders" }
    local c = client_for(mock_a.url)
    -- The window belongs to the workspace (endpoint + key), which earlier
    -- specs' clients may have taught already: garbage must change nothing.
    local before = c:rate_limit() or {}
    local res = assert(c:list())
    assert.equal(100, #res.segments)
    assert.same(before, c:rate_limit() or {})
  end)

  it("a 200 KB header line is a clean too_large error, not retried", function()
    local err = expect_error("too_large", canned("giantheader", { max_retries = 3 }):list())
    assert.equal("response header line longer than 100 KB", err.message)
    assert.equal(1, err.attempts)
  end)

  it("50 KB header values are cut, not trusted: the response is used, the rate-limit numbers dropped", function()
    local c = canned("longheaders")
    local res = assert(c:list())
    assert.same({}, res.segments)
    local rl = c:rate_limit()
    assert.is_nil(rl.limit)
    assert.is_nil(rl.reset)
    assert.is_nil(rl.remaining) -- 30 digits: not a count we can trust
  end)

  it("3000 response headers are read and ignored", function()
    assert.same({}, assert(canned("manyheaders"):list()).segments)
  end)

  it("CR, LF, BEL and ESC from the server never reach tostring(err) raw: one inert line", function()
    local err = expect_error("http", canned("controls"):list())
    assert.equal(500, err.status)
    local line = tostring(err)
    assert.is_nil(line:find("%c"), line)
    assert.matches("line one\\r\\nbraze: FORGED line\\027[2J\\007", line, 1, true)
    assert.is_nil(err.request_id:find("%c"))
    assert.equal("ab?cd?[31mef", err.request_id)
  end)

  it("a negative or a doubled Content-Length is a network error", function()
    for _, case in ipairs({ "negativelength", "twolengths" }) do
      expect_error("network", canned(case):list())
    end
  end)

  it("a Content-Length of 10^26 is refused before any body is buffered: too_large", function()
    expect_error("too_large", canned("hugelength"):list())
  end)

  it("an HTTP/0.9 answer, an empty reply, a bad status code, a NUL in a header and a bad chunk are network errors", function()
    for _, case in ipairs({ "http09", "empty", "badstatus", "nulheader", "badchunk" }) do
      expect_error("network", canned(case):list())
    end
  end)

  it("a Retry-After of 3 million years is a rate_limited error, not a sleep", function()
    local slept = {}
    local err = expect_error("rate_limited", canned("retryforever", {
      max_retries = 5, sleep = function(s) slept[#slept + 1] = s end }):list())
    assert.same({}, slept)
    assert.is_true(err.retry_after > 1e12)
  end)

  it("a gzip bomb stops at max_body counted after decompression: too_large", function()
    local err = expect_error("too_large", canned("gzipbomb", { max_body = 1048576 }):list())
    assert.matches("max_body", err.message)
  end)

  it("Content-Length larger than the body, then close: a network error", function()
    mock_a:fault{ type = "close" }
    expect_error("network", client_for(mock_a.url):list())
  end)

  it("a body bigger than max_body, with or without Content-Length: too_large", function()
    mock_a:fault{ type = "huge", bytes = 300000 }
    expect_error("too_large", client_for(mock_a.url, { max_body = 100000 }):list())
    mock_a:fault{ type = "nolength_huge", bytes = 300000, framing = "close" }
    expect_error("too_large", client_for(mock_a.url, { max_body = 100000 }):list())
  end)

  it("100000 levels of nesting: a decode error, no stack overflow", function()
    mock_a:fault{ type = "deep", depth = 100000 }
    local err = expect_error("decode", client_for(mock_a.url):list())
    assert.matches("nesting", err.message)
  end)

  it("invalid UTF-8 and a lone surrogate are decode errors", function()
    mock_a:fault{ type = "badutf8" }
    assert.matches("UTF%-8", expect_error("decode", client_for(mock_a.url):list()).message)
    mock_a:fault{ type = "lonesurrogate" }
    assert.matches("surrogate", expect_error("decode", client_for(mock_a.url):list()).message)
  end)

  it("an embedded \\u0000 decodes with the bytes after it kept", function()
    mock_a:fault{ type = "raw", body = '{"message":"success","segments":[{"id":"a\\u0000b","name":"x"}]}' }
    local res = assert(client_for(mock_a.url):list())
    local id = res.segments[1].id
    assert.equal(3, #id)
    assert.equal("a\0b", id)
  end)

  it("a 1 MB string decodes whole", function()
    mock_a:fault{ type = "hugestring", bytes = 1048576 }
    local res = assert(client_for(mock_a.url):list())
    assert.equal(1048576, #res.segments[1].name)
  end)

  it("a 200 whose JSON is not an object is a decode error", function()
    for _, body in ipairs({ "null", '"text"', "42", "" }) do
      mock_a:fault{ type = "raw", body = body }
      expect_error("decode", client_for(mock_a.url):list())
    end
  end)
end)

describe("proxy", function()
  local script

  setup(function()
    script = os.tmpname()
    tls.write_file(script, table.concat({
      "package.path = " .. string.format("%q", package.path),
      "package.cpath = " .. string.format("%q", package.cpath),
      "local braze = require('braze')",
      "local opts = { api_key = arg[1], endpoint = arg[2], max_retries = 0, timeout = 5 }",
      "if arg[3] ~= '' then opts.proxy = arg[3] end",
      "local res, err = braze.new(opts):list()",
      "io.write(res and ('ok ' .. #res.segments) or ('error ' .. err.kind .. ' ' .. tostring(err)))",
    }, "\n"))
  end)

  teardown(function() if script then os.remove(script) end end)

  -- Run a client in a child process with the proxy variables pointing at B.
  local function child(proxy_opt, no_proxy)
    local b = "http://127.0.0.1:" .. mock_b.port
    local env = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" }
    local cmd = { "env -u no_proxy -u NO_PROXY" }
    for _, name in ipairs(env) do cmd[#cmd + 1] = name .. "=" .. tls.quote(b) end
    if no_proxy then cmd[#cmd + 1] = "no_proxy=" .. tls.quote(no_proxy) end
    cmd[#cmd + 1] = tls.quote(own_interpreter()) .. " " .. tls.quote(script) .. " " .. tls.quote(KEY) .. " "
      .. tls.quote(mock_a.url) .. " " .. tls.quote(proxy_opt or "") .. " 2>&1"
    return read_pipe(table.concat(cmd, " "))
  end

  it("by default ignores http_proxy/HTTPS_PROXY/ALL_PROXY from the environment", function()
    local out = child(nil)
    assert.equal("ok 100", out)
    assert.equal(1, mock_a:stats().requests)
    local b = mock_b:stats()
    assert.equal(0, b.requests)
    assert.equal(1, b.connections) -- only this stats request
  end)

  it("with proxy = \"env\" uses the environment's proxy (B gets the absolute-URI request)", function()
    local out = child("env")
    -- B is a mock too: it strips the absolute URI and answers from its own 3 segments
    assert.equal("ok 3", out)
    assert.equal(0, mock_a:stats().requests)
    local b = mock_b:stats()
    assert.equal(1, b.requests)
    assert.equal(1, b.by_path["/segments/list"])
    assert.is_true(b.connections >= 2)
    assert.equal("Bearer " .. KEY, mock_b:requests()[1].authorization)
  end)

  it("with proxy = \"env\" honours no_proxy", function()
    assert.equal("ok 100", child("env", "127.0.0.1"))
    assert.equal(1, mock_a:stats().requests)
    assert.equal(0, mock_b:stats().requests)
  end)

  it("an explicit proxy URL is used without any environment", function()
    local res = assert(client_for(mock_a.url, { proxy = "http://127.0.0.1:" .. mock_b.port }):list())
    assert.equal(3, #res.segments)
    assert.equal(0, mock_a:stats().requests)
    assert.equal(1, mock_b:stats().requests)
  end)
end)
