-- URLs handed to braze.core: a NUL byte is refused, not cut (libcurl reads
-- a C string: "...?segment_id=AAA\0&segment_id=evil" would request AAA).
local core = require("braze.core")
local helpers = require("spec.support.helpers")

local mock

setup(function() mock = helpers.start_mock{ segments = 3 } end)
teardown(function() mock:stop() end)
before_each(function() mock:reset() end)

local function requests() return #mock:requests() end

describe("a URL with a NUL byte", function()
  local bad

  setup(function() bad = mock.url .. "/segments/details?segment_id=AAA\0&segment_id=evil" end)

  it("is refused by session:get, and nothing is sent", function()
    local s = core.session{ api_key = mock.api_key, timeout = 5 }
    finally(function() s:close() end)
    local before = requests()
    assert.has_error(function() s:get(bad) end, "braze: bad URL: it contains a NUL byte")
    assert.equal(before, requests())
    assert.equal(200, s:get(mock.url .. "/segments/list").status) -- the session goes on
  end)

  for _, mode in ipairs({ "poll", "sockets" }) do
    it("is refused by batch:submit (" .. mode .. " mode), and the slot stays free", function()
      local s = core.session{ api_key = mock.api_key, timeout = 5 }
      finally(function() s:close() end)
      local b = s:batch(1, mode)
      local before = requests()
      assert.has_error(function() b:submit(bad, "t") end, "braze: bad URL: it contains a NUL byte")
      if mode == "poll" then
        assert.same({}, b:poll(0.2))
        b:submit(mock.url .. "/segments/list", "ok") -- the one slot is free
        assert.equal("ok", b:poll(5)[1].tag)
      end
      assert.equal(before + (mode == "poll" and 1 or 0), requests())
    end)
  end
end)
