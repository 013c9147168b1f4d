-- Aggressive garbage collection: a GC step after every call, clients
-- dropped without close, and weak tables proving that clients and their
-- libcurl sessions are collected (their __gc releases the handles).
local braze = require("braze")
local core = require("braze.core")
local helpers = require("spec.support.helpers")

local mock
setup(function() mock = helpers.start_mock{ segments = 150 } end)
teardown(function() mock:stop() end)

-- A transport that hands out real sessions and remembers them weakly.
local sessions = setmetatable({}, { __mode = "v" })
local tracking = {
  new = function(config)
    local s = core.session(config)
    sessions[#sessions + 1] = s
    return s
  end,
}

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("under aggressive GC", function()
  local mode
  before_each(function()
    if _VERSION == "Lua 5.4" then mode = collectgarbage("generational") end
  end)
  after_each(function()
    if mode then collectgarbage(mode) end
    collectgarbage()
  end)

  it("collects clients dropped without close, and their sessions", function()
    local clients = setmetatable({}, { __mode = "v" })
    for i = 1, 30 do
      local c = braze.new{ api_key = mock.api_key, endpoint = mock.url, transport = tracking }
      clients[i] = c
      assert(c:list())
      collectgarbage("step")
      assert(c:details(assert(c:list()).segments[1].id))
      collectgarbage("step")
    end
    collectgarbage()
    collectgarbage()
    assert.equal(0, count(clients))
    assert.equal(0, count(sessions))
  end)

  it("keeps data intact when collection runs between every call", function()
    local c = braze.new{ api_key = mock.api_key, endpoint = mock.url }
    finally(function() c:close() end)
    local names = {}
    for seg in c:each() do
      names[#names + 1] = seg.name
      collectgarbage("step", 0)
    end
    collectgarbage()
    assert.equal(150, #names)
    for _, n in ipairs(names) do assert.is_string(n) end
    local res, errs = c:details_many({ "a", "b" }, { concurrency = 2 })
    collectgarbage()
    assert.is_nil(res[1])
    assert.equal(400, errs[2].status)
  end)

  it("survives a full collection in the middle of decoding many documents", function()
    local doc = '{"segments":[' .. string.rep('{"id":"x\\u00e9","tags":["a","b"],"n":1.5},', 200)
      .. '{"id":"end"}],"message":"success"}'
    for _ = 1, 50 do
      local v = assert(braze.decode(doc))
      assert.equal(201, #v.segments)
      assert.equal("xé", v.segments[1].id)
      collectgarbage()
    end
  end)

  it("closed sessions are inert and collectable", function()
    local s = core.session{ api_key = "k" }
    s:close()
    s:close()
    assert.has_error(function() s:get("http://127.0.0.1:9/") end, "braze: session is closed")
    assert.matches("closed", tostring(s))
  end)
end)
