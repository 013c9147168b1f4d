--- The transport conformance suite: one table of server behaviours and what
--- a client must make of each, whatever its transport (libcurl, luv,
--- cqueues, nginx cosockets, HAProxy's httpclient). Every transport's spec
--- runs the same cases, so their error kinds cannot drift apart.
---
---   local conformance = require("spec.support.conformance")
---   conformance.run("luv", function(case, url)
---     -- inside the transport's host, with conformance.options(case):
---     local client = braze.new(conformance.options(case, { endpoint = url,
---       transport = require("braze.transport.luv") }))
---     return conformance.result(client:details(conformance.SEGMENT_ID))
---   end, { pending = { ["case name"] = "issue 18 item N" } })
---
--- conformance.cases: array of { name =, server =, opts =, expect =, same =, within = }
---   server: raw response bytes (spec/support/canned_server.lua sends them and closes);
---     { sequence = { bytes1, bytes2, ... } } (the n-th request gets the n-th);
---     { trickle = "mode" } (a behaviour of spec/support/trickle_server.lua);
---     { refused = true } (a port nobody listens on).
---   opts: client options for this case (conformance.options adds the rest).
---   expect: { ok = true, body = <decoded details> }
---     | { kind = "network"|"timeout"|"http"|"decode"|"too_large"|"rate_limited",
---         status =, attempts =, position =, retry_after =, message = <Lua pattern> }
---     (only the fields given are checked).
---   same: fields that must equal what the default (libcurl) transport gives
---     for the same server, in this process (e.g. the exact message).
---   within: seconds the call may take at most (for deadline cases).
--- conformance.run(label, invoke[, options]): describe(label)/it(case.name)
---   for every case; invoke(case, url) runs the call inside the host and
---   returns conformance.result(...) (a plain table { ok =, kind =,
---   status =, body =, attempts =, message =, position =, retry_after =,
---   text = }); url is the client's endpoint. options.pending = { [name] =
---   "why" } marks cases a transport fails for a known, named reason.
local helpers = require("spec.support.helpers")
local canned = require("spec.support.canned_server")
local tls = require("spec.support.tls_nginx")
local socket = require("socket")
local busted = require("busted") -- describe/it/... (not globals inside a module)
local describe, it, pending, setup, teardown = busted.describe, busted.it, busted.pending,
  busted.setup, busted.teardown
local assert = busted.assert

local M = {}

--- The API key every case uses: no error text may contain it.
M.API_KEY = "conformance-secret-key-0123456789"
--- The segment id asked for (client:details).
M.SEGMENT_ID = "conformance-segment"

-- The details document of the 200 cases, and its decoded form.
local DOC = '{"message":"success","name":"Conformance","description":"a segment",'
  .. '"text_description":"t","tags":["x","y"],"teams":["t1"]}'
local DECODED = { message = "success", name = "Conformance", description = "a segment",
  text_description = "t", tags = { "x", "y" }, teams = { "t1" } }

local response = canned.response

-- A JSON answer of `status` with a Content-Length.
local function json(status_line, body, extra)
  local headers = { "Content-Type: application/json", "Content-Length: " .. #body, "Connection: close" }
  for _, h in ipairs(extra or {}) do headers[#headers + 1] = h end
  return response(status_line, headers, body)
end

local function chunked(status_line, chunks, tail)
  local parts = {}
  for i, c in ipairs(chunks) do parts[i] = string.format("%x\r\n%s\r\n", #c, c) end
  return response(status_line, { "Content-Type: application/json", "Transfer-Encoding: chunked",
    "Connection: close" }, table.concat(parts) .. (tail or "0\r\n\r\n"))
end

local HTML = "<html><body><h1>502 Bad Gateway</h1>The upstream is down.</body></html>"

-- A header block of about 400 KB: over every transport's limit (libcurl's
-- 300 KB, nginx's 64 KiB or 200 lines).
local function huge_headers()
  local lines = { "Content-Type: application/json", "Content-Length: " .. #DOC, "Connection: close" }
  for i = 1, 4000 do lines[#lines + 1] = string.format("X-Pad-%04d: %s", i, string.rep("p", 90)) end
  return response("HTTP/1.1 200 OK", lines, DOC)
end

M.cases = {
  { name = "200 JSON with a Content-Length", server = json("HTTP/1.1 200 OK", DOC),
    expect = { ok = true, body = DECODED } },
  { name = "chunked 200", server = chunked("HTTP/1.1 200 OK", { DOC:sub(1, 10), DOC:sub(11, 40), DOC:sub(41) }),
    expect = { ok = true, body = DECODED } },
  { name = "100 Continue before the 200",
    server = "HTTP/1.1 100 Continue\r\n\r\n" .. json("HTTP/1.1 200 OK", DOC),
    expect = { ok = true, body = DECODED } },
  { name = "103 Early Hints before the 200",
    server = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      .. json("HTTP/1.1 200 OK", DOC),
    expect = { ok = true, body = DECODED } },
  { name = "100 Continue, then the 200 in a later packet",
    server = { trickle = "continue_later" },
    expect = { ok = true, body = DECODED } },
  { name = "an endless 100 Continue flood is a timeout at the deadline",
    server = { trickle = "continue_flood" }, opts = { timeout = 1 },
    expect = { kind = "timeout" }, within = 3 },
  { name = "401 with the key echoed: http 401, the key redacted",
    server = json("HTTP/1.1 401 Unauthorized", '{"message":"Invalid API key: ' .. M.API_KEY .. '"}'),
    expect = { kind = "http", status = 401, attempts = 1 }, same = { "message", "endpoint", "text" } },
  { name = "HTML 502: http 502 naming the page, retried per policy",
    server = response("HTTP/1.1 502 Bad Gateway", { "Content-Type: text/html",
      "Content-Length: " .. #HTML, "Connection: close" }, HTML),
    opts = { max_retries = 1 },
    expect = { kind = "http", status = 502, attempts = 2, message = "non%-JSON body" },
    same = { "message" } },
  { name = "503 twice with one retry: http 503, attempts 2",
    server = json("HTTP/1.1 503 Service Unavailable", '{"message":"busy"}'),
    opts = { max_retries = 1 },
    expect = { kind = "http", status = 503, attempts = 2 }, same = { "message", "text" } },
  { name = "503 once, then the page: the retry succeeds",
    server = { sequence = { json("HTTP/1.1 503 Service Unavailable", '{"message":"busy"}'),
      json("HTTP/1.1 200 OK", DOC) } },
    opts = { max_retries = 1 },
    expect = { ok = true, body = DECODED } },
  { name = "429 with Retry-After beyond max_wait: rate_limited at once",
    server = json("HTTP/1.1 429 Too Many Requests", '{"message":"slow down"}', { "Retry-After: 3600" }),
    opts = { max_retries = 1 },
    expect = { kind = "rate_limited", attempts = 1, retry_after = 3600 },
    same = { "message", "status" } },
  { name = "body cut mid-chunk: network",
    server = response("HTTP/1.1 200 OK", { "Content-Type: application/json",
      "Transfer-Encoding: chunked", "Connection: close" }, "100\r\n" .. DOC:sub(1, 30)),
    expect = { kind = "network" } },
  { name = "body shorter than its Content-Length: network",
    server = response("HTTP/1.1 200 OK", { "Content-Type: application/json",
      "Content-Length: 500", "Connection: close" }, DOC:sub(1, 30)),
    expect = { kind = "network" } },
  { name = "header block too large: too_large, not retried",
    server = huge_headers(), opts = { max_retries = 1 },
    expect = { kind = "too_large", attempts = 1 } },
  { name = "body over max_body (Content-Length): too_large",
    server = json("HTTP/1.1 200 OK", '{"message":"success","pad":"' .. string.rep("x", 5000) .. '"}'),
    opts = { max_body = 1000 },
    expect = { kind = "too_large" }, same = { "message" } },
  { name = "a chunked trailer line starting with HTTP/ is a trailer, not a new answer",
    server = chunked("HTTP/1.1 200 OK", { DOC }, "0\r\nHTTP/1.1 500 Oops: x\r\n\r\n"),
    expect = { ok = true, body = DECODED } },
  { name = "a trailer Content-Length after a complete chunked body changes nothing",
    server = chunked("HTTP/1.1 200 OK", { DOC }, "0\r\nContent-Length: 99999999999\r\n\r\n"),
    expect = { ok = true, body = DECODED } },
  { name = "chunked body over max_body: too_large",
    server = chunked("HTTP/1.1 200 OK", { '{"message":"success","pad":"', string.rep("x", 3000),
      string.rep("y", 3000), '"}' }),
    opts = { max_body = 1000 },
    expect = { kind = "too_large" }, same = { "message" } },
  { name = "a server that never answers: timeout at the deadline",
    server = { trickle = "silent" }, opts = { timeout = 0.5 },
    expect = { kind = "timeout" }, within = 2.5 },
  { name = "a server trickling its body past the deadline: timeout",
    server = { trickle = "trickle_body" }, opts = { timeout = 1 },
    expect = { kind = "timeout" }, within = 2.5 },
  { name = "a chunked body trickled past the deadline: timeout",
    server = { trickle = "trickle_chunked" }, opts = { timeout = 1 },
    expect = { kind = "timeout" }, within = 2.5 },
  { name = "empty 200 body: decode",
    server = json("HTTP/1.1 200 OK", ""),
    expect = { kind = "decode", status = 200 }, same = { "message" } },
  { name = "invalid JSON on 200: decode with the position",
    server = json("HTTP/1.1 200 OK", '{"message":"success",,"name":"x"}'),
    expect = { kind = "decode", status = 200 }, same = { "message", "position" } },
  { name = "connection refused: network",
    server = { refused = true },
    expect = { kind = "network" }, within = 10 },
}

--- braze.new's options for a case: the endpoint, key, fast retries, no
--- retry by default, and the case's own; `extra` (transport, sleep...) last.
function M.options(case, extra)
  local o = { api_key = M.API_KEY, max_retries = 0, retry_base = 0.01, timeout = 5 }
  for k, v in pairs(case.opts or {}) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local FIELDS = { "kind", "status", "attempts", "message", "position", "retry_after", "endpoint" }

--- The plain result table of one call: from (result) or (nil, braze.Error),
--- or from the JSON fields of an error sent back by a host, with its text.
function M.result(res, err, text)
  if res ~= nil then return { ok = true, body = res } end
  local out = { ok = false, text = text }
  if type(err) == "table" then
    for _, k in ipairs(FIELDS) do out[k] = err[k] end
    out.text = out.text or tostring(err)
  else
    out.kind, out.message, out.text = "lua", tostring(err), out.text or tostring(err)
  end
  return out
end

-- JSON null (cjson.null through a host) and braze's null: both "null".
local function plain(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = plain(x) end
  return t
end

--- Check one call's result against its case.
function M.check(case, got, took)
  local e = case.expect
  assert(type(got) == "table", "the invoker returned " .. tostring(got))
  local shown = require("cjson").encode(plain(got))
  if e.ok then
    assert(got.ok == true, case.name .. ": expected success, got " .. shown)
    if e.body then assert.same(e.body, plain(got.body)) end
  else
    assert(got.ok == false, case.name .. ": expected an error, got " .. shown)
    for _, k in ipairs({ "kind", "status", "attempts", "position", "retry_after" }) do
      if e[k] ~= nil then
        assert(e[k] == got[k], string.format("%s: %s expected %s, got %s (%s)", case.name, k,
          tostring(e[k]), tostring(got[k]), shown))
      end
    end
    if got.kind == "network" or got.kind == "timeout" then
      assert(got.status == nil, case.name .. ": a failure without an answer has no status: " .. shown)
    end
    if e.message then
      assert(tostring(got.message):match(e.message), case.name .. ": message " .. shown)
    end
    assert(not tostring(got.text):find(M.API_KEY, 1, true), "the API key in the error text: " .. shown)
    assert(not tostring(got.message):find(M.API_KEY, 1, true), "the API key in the message: " .. shown)
  end
  if case.within then
    assert(took < case.within, string.format("%s: took %.2f s, allowed %.1f", case.name, took, case.within))
  end
end

--- spec/support/trickle_server.lua in the background: { url =, pid =, stop = }.
function M.start_trickle_server()
  local pipe = assert(io.popen(helpers.interpreter() .. " "
    .. tls.quote(helpers.root .. "/spec/support/trickle_server.lua") .. " </dev/null &", "r"))
  local line = pipe:read("*l")
  local url, pid = (line or ""):match("^trickle server listening on (http://%S+) pid (%d+)$")
  if not url then
    pipe:close()
    error("spec/support/trickle_server.lua did not start: " .. tostring(line))
  end
  return {
    url = url, pid = tonumber(pid),
    stop = function()
      os.execute("kill " .. pid .. " 2>/dev/null")
      pipe:close()
    end,
  }
end

--- The servers of every case: { url(case) -> endpoint, reset(), stop() }.
function M.start()
  local servers = { canned = canned.start(), trickle = M.start_trickle_server() }
  local endpoints = {}
  for i, case in ipairs(M.cases) do
    local s, id = case.server, "c" .. i
    if type(s) == "string" then
      servers.canned:add(id, s)
      endpoints[case] = "http://127.0.0.1:" .. servers.canned.port .. "/" .. id
    elseif s.sequence then
      for n, bytes in ipairs(s.sequence) do servers.canned:add(id, bytes, n) end
      servers.canned:add(id, s.sequence[#s.sequence])
      endpoints[case] = "http://127.0.0.1:" .. servers.canned.port .. "/" .. id
    elseif s.trickle then
      endpoints[case] = servers.trickle.url .. "/" .. s.trickle
    elseif s.refused then
      endpoints[case] = "http://127.0.0.1:" .. tls.free_port()
    end
  end
  function servers.url(_, case) return endpoints[case] end
  function servers.reset() servers.canned:reset() end
  function servers.stop()
    servers.canned:stop()
    servers.trickle.stop()
  end
  return servers
end

-- What the default (libcurl) transport makes of a case, in this process.
local function reference(case, url)
  local braze = require("braze")
  local client = braze.new(M.options(case, { endpoint = url, sleep = function() end }))
  local got = M.result(client:details(M.SEGMENT_ID))
  client:close()
  return got
end

--- Register the suite for one transport (see the module doc).
function M.run(label, invoke, options)
  options = options or {}
  describe(label .. ": transport conformance", function()
    local servers
    setup(function() servers = M.start() end)
    teardown(function() if servers then servers.stop() end end)
    for _, case in ipairs(M.cases) do
      local why = options.pending and options.pending[case.name]
      if why then
        pending(case.name .. " [" .. why .. "]")
      else
        it(case.name, function()
          local url = servers:url(case)
          servers.reset()
          local t0 = socket.gettime()
          local got = invoke(case, url)
          M.check(case, got, socket.gettime() - t0)
          if case.same then
            servers.reset()
            local ref = reference(case, url)
            for _, k in ipairs(case.same) do
              assert(got[k] == ref[k], string.format("%s: %s differs from libcurl's: %s vs %s",
                case.name, k, tostring(got[k]), tostring(ref[k])))
            end
          end
        end)
      end
    end
  end)
end

return M
