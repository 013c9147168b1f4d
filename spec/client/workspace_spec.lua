-- One rate-limit window per workspace (endpoint + key) in a Lua state:
-- every client of the key and every runner count against it together.
local braze = require("braze")
local core = require("braze.core")
local window = require("braze.window")
local helpers = require("spec.support.helpers")
local fake_braze = require("spec.support.fake_braze")

-- libcurl's session, watched: every answer's status and window headers.
local function watched(log)
  local function see(res)
    if type(res) == "table" and res.status then
      log.answers = log.answers + 1
      if res.status == 429 then log.limited = log.limited + 1 end
      local reset, remaining = tonumber(res.headers["x-ratelimit-reset"]), tonumber(res.headers["x-ratelimit-remaining"])
      if reset and remaining and (log.lowest[reset] == nil or remaining < log.lowest[reset]) then
        log.lowest[reset] = remaining
      end
    end
    return res
  end
  return { new = function(config)
    local s = core.session(config)
    return {
      get = function(_, url) local res, kind, msg = s:get(url); return see(res), kind, msg end,
      close = function() s:close() end,
      batch = function(_, n)
        local b = s:batch(n)
        return {
          submit = function(_, url, tag) return b:submit(url, tag) end,
          close = function() b:close() end,
          poll = function(_, timeout)
            local outs = b:poll(timeout)
            for _, out in ipairs(outs) do see(out) end
            return outs
          end,
        }
      end,
    }
  end }
end

describe("the workspace's window", function()
  it("is one per endpoint and key, named by a fingerprint of the key, never the key", function()
    local a = window.of("https://rest.iad-01.braze.com", "secret-key-1")
    assert.equal(a, window.of("https://rest.iad-01.braze.com", "secret-key-1"))
    assert.are_not.equal(a, window.of("https://rest.iad-01.braze.com", "secret-key-2"))
    assert.are_not.equal(a, window.of("https://rest.iad-02.braze.com", "secret-key-1"))
    local name = window.workspace("https://rest.iad-01.braze.com", "secret-key-1")
    assert.matches("^https://rest%.iad%-01%.braze%.com#%x+$", name)
    assert.is_nil(name:find("secret", 1, true))
  end)

  it("is shared by the clients of a key, and goes away with them", function()
    local t = helpers.recording_transport(function()
      return { status = 200, headers = { ["x-ratelimit-limit"] = "100", ["x-ratelimit-remaining"] = "42",
        ["x-ratelimit-reset"] = tostring(os.time() + 600) }, body = { message = "success", segments = {} } }
    end)
    local key = "workspace-key-" .. tostring({}):match("%x+$")
    local a = braze.new{ api_key = key, instance = "US-01", transport = t }
    local b = braze.new{ api_key = key, instance = "US-01", transport = t }
    local other = braze.new{ api_key = key .. "x", instance = "US-01", transport = t }
    assert(a:list())
    assert.equal(42, b:rate_limit().remaining) -- b sent nothing: a's answer told the workspace
    assert.is_nil(other:rate_limit())
    a, b = nil, nil -- luacheck: ignore 311 (dropped on purpose)
    collectgarbage()
    collectgarbage()
    local c = braze.new{ api_key = key, instance = "US-01", transport = t }
    assert.is_nil(c:rate_limit()) -- weakly held: it went with its clients
    other:close()
  end)

  it("two clients of one key, pipelines consumed alternately: the reserve kept exactly (fake Braze)", function()
    local fake = fake_braze.new{ segments = 250, mode = "async",
      window = { limit = 300, remaining = 300, reset = os.time() + 1800 } }
    local key = "shared-" .. tostring({}):match("%x+$")
    local function client()
      return braze.new{ api_key = key, instance = "US-01", transport = fake.transport,
        reserve = 20, max_wait = 1, sleep = function() end }
    end
    local c1, c2 = client(), client()
    local live = { (c1:each{ details = true, concurrency = 16 }), (c2:each{ details = true, concurrency = 16, page = 1 }) }
    while #live > 0 do
      for i = #live, 1, -1 do
        local ok, seg = pcall(live[i])
        if not ok then assert.equal("rate_limited", seg.kind, tostring(seg)) end
        if not ok or seg == nil then table.remove(live, i) end
      end
    end
    assert.equal(0, fake.served_429)
    assert.equal(20, fake.window.remaining)
  end)

  it("two clients of one key, two interleaved pipelines: no 429, the reserve kept in every window", function()
    local mock = helpers.start_mock{ segments = 250, rate_limit = 300, rate_window = 3 }
    local log = { answers = 0, limited = 0, lowest = {} }
    local t = watched(log)
    local c1 = braze.new{ api_key = mock.api_key, endpoint = mock.url, reserve = 20, transport = t }
    local c2 = braze.new{ api_key = mock.api_key, endpoint = mock.url, reserve = 20, transport = t }
    finally(function() c1:close(); c2:close(); mock:stop() end)
    local its = { (c1:each{ details = true, concurrency = 32 }), (c2:each{ details = true, concurrency = 32 }) }
    local counts = { 0, 0 }
    local live = 2
    while live > 0 do
      for i = 1, 2 do
        if its[i] then
          local seg = its[i]()
          if seg then counts[i] = counts[i] + 1 else its[i] = nil; live = live - 1 end
        end
      end
    end
    assert.same({ 250, 250 }, counts)
    assert.equal(0, log.limited)
    local windows = 0
    for reset, lowest in pairs(log.lowest) do
      windows = windows + 1
      assert.is_true(300 - lowest <= 280, ("window ending %d: %d used"):format(reset, 300 - lowest))
    end
    assert.is_true(windows >= 2, "windows: " .. windows) -- 506 requests cannot fit in one
  end)
end)
