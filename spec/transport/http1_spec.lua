-- braze.transport.http1 (the HTTP/1.1 reader of the nginx transport) over a
-- scripted socket, in plain Lua: framing, interim answers, limits, the
-- deadline, and a body of 1-byte chunks held in few pieces.
local http1 = require("braze.transport.http1")
local core = require("braze.core")

-- A socket whose receiveany hands out `pieces` in order (at most n bytes at
-- a time), then "closed"; a piece `false` answers "timeout".
local function socket_of(pieces)
  local sock = { taken = 0, timeouts = {} }
  local i, rest = 1, nil
  function sock.settimeout(_, ms) sock.timeouts[#sock.timeouts + 1] = ms end
  function sock.receiveany(_, n)
    if not rest then
      if i > #pieces then return nil, "closed" end
      rest = pieces[i]
      i = i + 1
      if rest == false then rest = nil return nil, "timeout" end
    end
    local out = rest:sub(1, n)
    rest = #rest > n and rest:sub(n + 1) or nil
    sock.taken = sock.taken + #out
    return out
  end
  return sock
end

local function read(pieces, max_body, opts)
  opts = opts or {}
  local now = core.monotonic()
  local r = http1.reader(socket_of(pieces), now + (opts.timeout or 5), now, opts.yield)
  local head, kind, msg = http1.read_head(r)
  if not head then return nil, kind, msg, r end
  local body
  body, kind, msg = http1.read_body(r, head, max_body or 1e6)
  if not body then return nil, kind, msg, r end
  return head, body, nil, r
end

describe("braze.transport.http1", function()
  it("reads a Content-Length answer, keeping core.HEADERS only, cut and cleaned", function()
    local head, body = read({ "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "X-Request-Id: a\1b\r\nX-RateLimit-Remaining: " .. string.rep("9", 300) .. "\r\n"
      .. "X-Other: no\r\nContent-Length: 2\r\n\r\n{}" })
    assert.equal(200, head.status)
    assert.equal("{}", body)
    assert.same({ ["content-type"] = "application/json", ["x-request-id"] = "a?b",
      ["x-ratelimit-remaining"] = string.rep("9", 255), ["content-length"] = "2" }, head.headers)
    assert.is_true(head.keepalive)
  end)

  it("skips 100 Continue and 103 Early Hints before the answer", function()
    local head, body = read({ "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\n",
      "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nnull" })
    assert.equal(201, head.status)
    assert.equal("null", body)
  end)

  it("joins a body of 100,000 1-byte chunks into few pieces and yields while reading", function()
    local payload = string.rep("abcdefghij", 10000)
    local wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. payload:gsub(".", "1\r\n%0\r\n") .. "0\r\n\r\n"
    local pieces = {}
    for i = 1, #wire, 4096 do pieces[#pieces + 1] = wire:sub(i, i + 4095) end
    local yields = 0
    local saved = http1.YIELD_EVERY
    http1.YIELD_EVERY = 0
    local ok, head, body = pcall(read, pieces, 1e6, { yield = function() yields = yields + 1 end })
    http1.YIELD_EVERY = saved
    assert(ok, head)
    assert.equal(200, head.status)
    assert.equal(payload, body)
    assert.is_true(yields >= 100000, "yields: " .. yields)
  end)

  it("keeps a chunked body in about one piece per 1,024 chunks", function()
    -- the pieces the body is kept in while it is read: count them through
    -- the chunked reader's table (its pieces are the array part)
    local wire = string.rep("1\r\nx\r\n", 5000) .. "0\r\n\r\n"
    local now = core.monotonic()
    local r = http1.reader(socket_of({ wire }), now + 5, now)
    local concat = table.concat
    local largest = 0
    table.concat = function(t, sep, i, j) -- luacheck: ignore 122
      largest = math.max(largest, (j or #t) - (i or 1) + 1)
      return concat(t, sep, i, j)
    end
    local ok, body = pcall(http1.chunked_body, r, 1e6)
    table.concat = concat -- luacheck: ignore 122
    assert(ok, body)
    assert.equal(string.rep("x", 5000), body)
    assert.is_true(largest <= 1024, "joined " .. largest .. " pieces at once")
  end)

  it("a status line over 64 KiB is too_large at once, without reading the rest", function()
    local pieces = { "HTTP/1.1 200 " }
    for i = 2, 100 do pieces[i] = string.rep("a", 65536) end
    local head, kind, msg, r = read(pieces)
    assert.is_nil(head)
    assert.equal("too_large", kind)
    assert.equal("response status line longer than 65536 bytes", msg)
    assert.is_true(r.sock.taken < 3 * 65536, "read " .. r.sock.taken .. " bytes")
  end)

  it("more than 200 header lines are too_large", function()
    local _, kind, msg = read({ "HTTP/1.1 200 OK\r\n" .. string.rep("X-A: 1\r\n", 201) .. "\r\n" })
    assert.equal("too_large", kind)
    assert.equal("more than 200 response header lines", msg)
  end)

  it("a body cut mid-chunk, or shorter than its Content-Length, is network", function()
    local _, kind, msg = read({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{\"a\":" })
    assert.equal("network", kind)
    assert.equal("reading the body: closed", msg)
    _, kind = read({ "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"a\":" })
    assert.equal("network", kind)
  end)

  it("a chunked body over max_body is too_large before its bytes are read", function()
    local _, kind, msg = read({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "400\r\n" .. string.rep("x", 1024) .. "\r\n400\r\n" }, 1500)
    assert.equal("too_large", kind)
    assert.equal("response body larger than max_body (1500 bytes)", msg)
  end)

  it("a trailer line starting with HTTP/ is a trailer; a trailer Content-Length changes nothing", function()
    local head, body = read({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
      .. "0\r\nHTTP/1.1 500 Oops: x\r\nContent-Length: 99999999999\r\n\r\n" })
    assert.equal(200, head.status)
    assert.equal("{}", body)
  end)

  it("a body without a length ends when the server closes; the connection is not kept", function()
    local head, body = read({ "HTTP/1.1 200 OK\r\n\r\n{\"a\"", ":1}" })
    assert.equal("{\"a\":1}", body)
    assert.is_false(head.keepalive)
  end)

  it("every read waits only for what is left of the deadline; past it, timeout", function()
    local _, kind, msg, r = read({ "HTTP/1.1 200 OK\r\n", false }, nil, { timeout = 0.2 })
    assert.equal("timeout", kind)
    assert.matches("^timed out reading the headers after", msg)
    for _, ms in ipairs(r.sock.timeouts) do assert.is_true(ms <= 200, "timeout " .. ms) end
  end)
end)
