-- The header/body state machine of a libcurl transfer (csrc/transfer.c):
-- 1xx blocks before the final response, trailers after a chunked body,
-- and libcurl's own header limits, through session:get and a batch.
local core = require("braze.core")
local canned = require("spec.support.canned_server")
local child = require("spec.core.child")

local JSON = '{"message":"success","segments":[]}'
local BIG = '{"message":"success","segments":[' .. ('{"id":"x","n":1},'):rep(3000) .. '{"id":"y"}]}'

-- A chunked 200 with `trailers` (raw lines, each ending in CRLF) after the body.
local function chunked(body, trailers)
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    .. "X-Request-Id: headers\r\n\r\n" .. string.format("%x", #body) .. "\r\n" .. body .. "\r\n0\r\n"
    .. trailers .. "\r\n"
end

local server, s

setup(function()
  local pad = {}
  for i = 1, 4 do pad[i] = "X-Pad-" .. i .. ": " .. ("A"):rep(90000) end -- 360 KB, no line over 100 KB
  server = canned.start{
    trailer_status = chunked(JSON, "HTTP/1.1: 500\r\n"),
    trailer_length = chunked(JSON, "Content-Length: 99999999999999999999\r\n"),
    trailer_header = chunked(JSON, "X-Request-Id: trailer\r\n"),
    many_headers = canned.response("HTTP/1.1 200 OK", pad, JSON),
    big = canned.response("HTTP/1.1 200 OK", { "Content-Length: " .. #BIG }, BIG),
    interim = "HTTP/1.1 100 Continue\r\nX-Request-Id: interim\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n"
      .. canned.response("HTTP/1.1 200 OK", { "Content-Length: " .. #JSON, "X-Request-Id: final" }, JSON),
  }
  s = core.session{ api_key = "k", timeout = 5 }
end)

teardown(function()
  if s then s:close() end
  if server then server:stop() end
end)

-- The outcome of one request by get (as one table) and through a batch.
local function both(case)
  local res, kind, msg = s:get(server:url(case))
  local by_get = res or { error = kind, message = msg }
  local b = s:batch(1)
  b:submit(server:url(case), "t")
  local outs = b:poll(5)
  b:close()
  assert.equal(1, #outs)
  outs[1].tag = nil
  return by_get, outs[1]
end

describe("a chunked response's trailers", function()
  it("a trailer starting with HTTP/ is not a new status line: body and headers are kept", function()
    for _, res in ipairs({ both("trailer_status") }) do
      assert.equal(200, res.status)
      assert.is_nil(res.decode_error)
      assert.equal("success", res.body.message)
      assert.equal("headers", res.headers["x-request-id"])
    end
  end)

  it("a trailer Content-Length after a complete body announces nothing (not too_large)", function()
    for _, res in ipairs({ both("trailer_length") }) do
      assert.is_nil(res.error, res.message)
      assert.equal(200, res.status)
      assert.equal("success", res.body.message)
    end
  end)

  it("a trailer does not replace a header", function()
    for _, res in ipairs({ both("trailer_header") }) do
      assert.equal("headers", res.headers["x-request-id"])
    end
  end)
end)

describe("1xx responses before the final one", function()
  it("are skipped: the final response's status and headers", function()
    for _, res in ipairs({ both("interim") }) do
      assert.equal(200, res.status)
      assert.equal("final", res.headers["x-request-id"])
      assert.equal("success", res.body.message)
    end
  end)
end)

describe("a header block over libcurl's 300 KB (no line over 100 KB)", function()
  it("is too_large, whatever error code this libcurl reports it with", function()
    for _, res in ipairs({ both("many_headers") }) do
      assert.same({ error = "too_large", message = "response headers larger than libcurl accepts" }, res)
    end
  end)
end)

describe("an error raised while batch:poll builds its results", function()
  -- Issue 18 item 7: push_finished took a finished request's tag out of its
  -- slot, then built the response (allocations that can raise: out of
  -- memory, or a finalizer's error on 5.1-5.3), and only then released the
  -- tag's registry reference: one reference lost per raise. In a child
  -- interpreter: a small heap, so that a collection cycle ends inside poll.
  it("leaves no registry reference behind, and frees the slot", function()
    if _VERSION == "Lua 5.4" then
      pending("5.4 turns a finalizer's error into a warning; the out-of-memory path is "
        .. "fuzz/alloc_fail.c's (every allocation point of a batch)")
      return
    end
    local out, code = child.run([[
local core = require("braze.core")
local url = ...
local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end
local s = core.session{ api_key = "k", timeout = 5 }
local b = s:batch(1)
local registry = debug.getregistry()
local before = count(registry)
local raised = 0
for i = 1, 60 do
  b:submit(url, { i }) -- the one slot: free again after each raise
  os.execute("sleep 0.01") -- finished by the time poll runs
  local armed = true
  collectgarbage("setpause", 1)
  collectgarbage("setstepmul", 1000)
  on_gc(function() if armed then error("boom") end end)
  local ok, outs = pcall(b.poll, b, 5)
  armed = false
  collectgarbage("setpause", 200)
  collectgarbage("setstepmul", 200)
  if ok then assert(#outs == 1) else raised = raised + 1 end
  collectgarbage()
end
b:close()
s:close()
print("raised=" .. raised .. " growth=" .. (count(registry) - before))
]], { args = { server:url("big") } })
    assert.equal(0, code, out)
    local raised, growth = out:match("raised=(%d+) growth=(%-?%d+)")
    assert(raised, out)
    assert.is_true(tonumber(raised) >= 10, "the finalizer raised inside poll only " .. raised .. " times")
    assert.is_true(tonumber(growth) <= 1, "registry grew by " .. growth)
  end)
end)
