-- One C source, every Lua: what must hold on Lua 5.4, 5.3, 5.1 and LuaJIT
-- alike, and the one documented difference (JSON integers beyond 2^53 on
-- Luas without an integer subtype). Written in Lua 5.1 syntax, so it loads
-- under every interpreter; run it with that interpreter's build, e.g.
--   luajit /usr/bin/busted --cpath='build-luajit/?.so' spec/client/compat_spec.lua
local braze = require("braze")
local core = require("braze.core")

local HAS_INTEGERS = math.type ~= nil -- 5.3+

-- tostring of a number without float formatting noise ("%.17g" is exact for
-- every double; integers of 5.3+ print as they are).
local function exact(v)
  if HAS_INTEGERS and math.type(v) == "integer" then return tostring(v) end
  return string.format("%.17g", v)
end

describe("braze.core on " .. (jit and jit.version or _VERSION), function()
  it("is built for this interpreter", function()
    assert.is_string(core._VERSION)
    assert.equal(core.null, braze.null)
  end)

  it("makes, prints and closes a session (and close is idempotent)", function()
    local s = core.session({ api_key = "k" })
    assert.matches("^braze%.core%.session %(open%)", tostring(s))
    s:close()
    s:close()
    assert.matches("%(closed%)", tostring(s))
    assert.has_error(function() s:get("http://127.0.0.1:1/") end, "braze: session is closed")
  end)

  it("collects a dropped session", function()
    local weak = setmetatable({}, { __mode = "v" })
    weak[1] = core.session({ api_key = "k" })
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
  end)

  it("decodes the same values", function()
    local v = core.decode('{"a":[1,2.5,-3e2,true,false,null],"s":"\\u00e9\\ud83d\\ude00","e":{}}')
    assert.same({ 1, 2.5, -300, true, false, core.null }, v.a)
    assert.equal("\195\169\240\159\152\128", v.s)
    assert.same({}, v.e)
  end)

  it("reports the same error message and position", function()
    local v, msg, pos = core.decode('{"a":[1,2,}')
    assert.is_nil(v)
    assert.equal("expected a JSON value but found '}' at byte 11", msg)
    assert.equal(11, pos)
  end)

  it("keeps integers up to 2^53 exact as numbers", function()
    for _, text in ipairs({ "0", "4294967297", "9007199254740992", "-9007199254740992" }) do
      local v = core.decode(text)
      assert.equal("number", type(v), text)
      assert.equal(text, exact(v))
    end
  end)

  it("keeps floats as numbers whatever their size", function()
    assert.equal("number", type(core.decode("9007199254740993.0")))
    assert.equal(1e300, core.decode("1e300"))
    assert.equal(-0.5, core.decode("-5e-1"))
  end)

  if HAS_INTEGERS then
    it("keeps 64-bit integers exact as integers (5.3+)", function()
      for _, text in ipairs({ "9007199254740993", "-9007199254740993", "9223372036854775807",
        "-9223372036854775808" }) do
        local v = core.decode(text)
        assert.equal("integer", math.type(v), text)
        assert.equal(text, tostring(v))
      end
    end)
  else
    it("gives integers beyond 2^53 as strings of their exact digits (5.1, LuaJIT)", function()
      for _, text in ipairs({ "9007199254740993", "-9007199254740993", "9223372036854775807",
        "-9223372036854775808", "123456789012345678901234" }) do
        assert.equal(text, core.decode(text))
      end
      local doc = core.decode('{"data":[{"time":"2024-01-01","size":12345678901234567}]}')
      assert.equal("12345678901234567", doc.data[1].size)
    end)
  end
end)

describe("the Lua front on " .. (jit and jit.version or _VERSION), function()
  -- A transport answering from a queue of canned replies.
  local function canned(replies)
    local t = { urls = {} }
    function t.new()
      return {
        get = function(_, url)
          t.urls[#t.urls + 1] = url
          local r = table.remove(replies, 1)
          if type(r) == "function" then return r() end
          return r
        end,
        close = function() end,
      }
    end
    return t
  end

  local function client(replies, extra)
    local opts = { api_key = "abcdefghijklmnop", endpoint = "http://127.0.0.1:1",
      transport = canned(replies), sleep = function() end, max_retries = 1 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return braze.new(opts), opts.transport
  end

  it("formats integer query parameters without a decimal point", function()
    local c, t = client({ { status = 200, headers = {}, body = { segments = {} } },
      { status = 200, headers = {}, body = { data = {} } } })
    assert.truthy(c:list({ page = 3 }))
    assert.truthy(c:data_series({ segment_id = "s", length = 30, ending_at = 1592427600 }))
    assert.equal("http://127.0.0.1:1/segments/list?page=3", t.urls[1])
    assert.equal("http://127.0.0.1:1/segments/data_series?segment_id=s&length=30"
      .. "&ending_at=2020-06-17T21%3A00%3A00Z", t.urls[2])
  end)

  it("passes a big size through as the decoder gave it", function()
    local body = core.decode('{"data":[{"time":"2024-01-01","size":9007199254740993}]}')
    local c = client({ { status = 200, headers = {}, body = body } })
    local res = assert(c:data_series({ segment_id = "s", length = 1 }))
    assert.equal("9007199254740993", tostring(res.data[1].size))
  end)

  it("makes error objects that print, redact the key and count attempts", function()
    local c = client({
      function() return nil, "timeout", "timed out" end,
      { status = 401, headers = { ["x-request-id"] = "r1" },
        body = { message = "Invalid API key: abcdefghijklmnop" } },
    })
    local res, err = c:details("seg")
    assert.is_nil(res)
    assert.equal("http", err.kind)
    assert.equal(2, err.attempts)
    local text = tostring(err)
    -- the segment the call was about is named (issue 20: errors name what they are about)
    assert.matches("^braze: HTTP 401 on /segments/details %(segment seg%): Invalid API key: abcd%.%.%.", text)
    assert.matches("after 2 attempts %[request id r1%]$", text)
    assert.is_nil(text:find("abcdefghijklmnop", 1, true))
    assert.equal("x: " .. text, "x: " .. err)
  end)

  it("prints an error object made without an endpoint", function()
    assert.equal("braze: network error on nil: m",
      tostring(braze.errors.new({ kind = "network", message = "m" })))
  end)

  it("iterates every page with each", function()
    local replies = {}
    for i = 1, 3 do
      local segs = {}
      for j = 1, (i < 3 and 100 or 7) do segs[j] = { id = i .. "-" .. j } end
      replies[i] = { status = 200, headers = {}, body = { segments = segs } }
    end
    local c = client(replies)
    local n, last_page = 0, nil
    for _, page in c:each() do n, last_page = n + 1, page end
    assert.equal(207, n)
    assert.equal(2, last_page)
  end)

  it("describes a non-JSON 502 page by its title", function()
    local c = client({ { status = 502, headers = { ["content-type"] = "text/html" },
      snippet = "<html><title>502 Bad Gateway</title></html>", decode_error = "x" } },
      { max_retries = 0 })
    local _, err = c:list()
    assert.equal("HTTP 502 with a non-JSON body (text/html): 502 Bad Gateway", err.message)
  end)

  it("closes idempotently and then refuses calls", function()
    local c = client({})
    c:close()
    c:close()
    assert.has_error(function() c:list() end, "braze: client is closed")
  end)
end)

describe("braze.transport.ngx outside nginx", function()
  it("loads, and refuses to make a session without ngx.socket", function()
    local t = require("braze.transport.ngx")
    assert.is_function(t.new)
    assert.is_function(t.sleep)
    local ok, err = pcall(braze.new, { api_key = "k", endpoint = "http://127.0.0.1:1", transport = t })
    assert.is_false(ok)
    assert.matches("needs OpenResty", err)
  end)
end)
