-- braze.window as a module: the headers it reads, how answers in any order
-- merge, the reserve as a count, the room above it, and its clock.
local window = require("braze.window")

local function headers(limit, remaining, reset)
  return { ["x-ratelimit-limit"] = limit and tostring(limit),
    ["x-ratelimit-remaining"] = remaining and tostring(remaining),
    ["x-ratelimit-reset"] = reset and tostring(reset) }
end

describe("braze.window", function()
  it("reads header values as non-negative integers, garbage as absent", function()
    assert.equal(42, window.uint("42"))
    assert.equal(7, window.uint(" 7 "))
    assert.is_nil(window.uint(""))
    assert.is_nil(window.uint("-1"))
    assert.is_nil(window.uint("1.5"))
    assert.is_nil(window.uint("1234567890123456")) -- 16 digits: not exact everywhere
    assert.is_nil(window.uint(nil))
  end)

  it("parses an answer's headers, nil when it carried none", function()
    assert.same({ limit = 10, remaining = 3, reset = 99 }, window.parse(headers(10, 3, 99)))
    assert.is_nil(window.parse({}))
    assert.same({}, window.parse({ ["x-ratelimit-limit"] = "" }))
  end)

  it("is unknown until an answer tells, and snapshots are copies", function()
    local w = window.new()
    assert.is_nil(w:snapshot())
    assert.is_nil(w:room())
    w:update({ ["content-type"] = "application/json" })
    assert.is_nil(w:snapshot())
    w:update(headers(100, 40, 500))
    local snap = w:snapshot()
    assert.same({ limit = 100, remaining = 40, reset = 500 }, snap)
    snap.remaining = 0
    assert.equal(40, w:room())
  end)

  it("keeps the lowest remaining of one window, whatever the order of the answers", function()
    local w = window.new()
    for _, r in ipairs({ 50, 47, 49, 48 }) do w:update(headers(100, r, 500)) end
    assert.equal(47, w.remaining)
    w:update(headers(100, 99, 400)) -- late, from the window before
    assert.same({ limit = 100, remaining = 47, reset = 500 }, w:snapshot())
    w:update(headers(100, 99, 600)) -- the next window
    assert.same({ limit = 100, remaining = 99, reset = 600 }, w:snapshot())
    w:update(headers(nil, nil, nil)) -- garbage forgets nothing
    assert.same({ limit = 100, remaining = 99, reset = 600 }, w:snapshot())
  end)

  it("merge is pure: it returns a new state and leaves its arguments", function()
    local a = { limit = 10, remaining = 3, reset = 100 }
    local m = window.merge(a, { limit = 10, remaining = 1, reset = 100 })
    assert.same({ limit = 10, remaining = 1, reset = 100 }, m)
    assert.same({ limit = 10, remaining = 3, reset = 100 }, a)
  end)

  it("counts the reserve: a whole number, or a fraction of the limit once known", function()
    assert.equal(0, window.new():reserve_count(0))
    assert.equal(20, window.new():reserve_count(20))
    local w = window.new()
    assert.equal(0, w:reserve_count(0.25))
    w:update(headers(40, 40, 500))
    assert.equal(10, w:reserve_count(0.25))
    assert.equal(30, w:room(0.25))
    assert.equal(40, w:room(0))
    local odd = window.new()
    odd:update(headers(15, 15, 500))
    assert.equal(2, odd:reserve_count(0.1)) -- rounded up: the reserve is never short
  end)

  it("waits for the reset when no room is left, and forgets a window whose reset passed", function()
    local saved = window.clock
    finally(function() window.clock = saved end)
    window.clock = function() return 1000 end
    local w = window.new()
    w:update(headers(100, 6, 1030))
    assert.is_nil(w:wait_for_room(5)) -- room for one
    w:update(headers(100, 5, 1030))
    assert.equal(30, w:wait_for_room(5))
    w:update(headers(100, 5, 990)) -- late: changes nothing
    assert.equal(30, w:wait_for_room(5))
    window.clock = function() return 1031 end
    assert.is_nil(w:wait_for_room(5))
    assert.is_nil(w.remaining) -- turned over: unknown until the next answer
  end)

  it("has a clock that moves by what a no-op sleep was asked to wait", function()
    local w = window.new()
    local before = w:now()
    w:sleep(function() end, 5)
    assert.is_true(w:now() - before >= 5)
    local slept
    w:sleep(function(s) slept = s end, 0.25)
    assert.equal(0.25, slept)
  end)

  it("learns Braze's clock from Date, and waits for resets on it", function()
    local saved = window.clock
    finally(function() window.clock = saved end)
    window.clock = function() return 1000 end -- ours: 3 s ahead of Braze's
    local w = window.new()
    w:update({ date = os.date("!%a, %d %b %Y %H:%M:%S GMT", 997) })
    assert.equal(-3, w.offset)
    assert.equal(997, w:server_time())
    w:update(headers(10, 0, 1000))
    assert.equal(3, w:wait_for_room()) -- by our clock the reset would be now
    assert.equal(997, window.http_date("Thu, 01 Jan 1970 00:16:37 GMT"))
    assert.is_nil(window.http_date("yesterday"))
  end)

  it("ignores a reset implausibly far ahead", function()
    local w = window.new()
    w:update(headers(100, 5, os.time() + 10 * 365 * 86400))
    assert.is_nil(w:snapshot())
    w:update(headers(100, 50, os.time() + 600))
    w:update(headers(100, 99, os.time() + window.MAX_AHEAD + 3600))
    assert.equal(50, w.remaining)
  end)

  it("counts requests in flight against the room", function()
    local w = window.new()
    w:update(headers(10, 6, os.time() + 600))
    assert.is_nil(w:wait_for_room(2, 3)) -- 4 above the reserve, 3 in flight: room for one
    assert.is_true(w:wait_for_room(2, 4) > 0)
  end)

  it("blocks everything when the reserve is at or above the limit", function()
    local w = window.new()
    assert.is_false(w:reserve_blocks(0.999)) -- the limit is not known yet
    w:update(headers(200, 200, os.time() + 600))
    assert.is_true(w:reserve_blocks(0.999))
    assert.is_true(w:reserve_blocks(200))
    assert.is_false(w:reserve_blocks(199))
    assert.is_false(w:reserve_blocks(0))
  end)

  it("holds every request until a 429's wait is over, then forgets the window", function()
    local w = window.new()
    w:update(headers(10, 0, os.time() + 600))
    w.probed = true
    assert.is_nil(w:held())
    w:hold(2)
    w:hold(1) -- a shorter hold does not shorten it
    assert.is_true(w:held() > 1.5)
    w:sleep(function() end, 2)
    assert.is_nil(w:held())
    assert.is_nil(w.hold_until)
    assert.is_nil(w.remaining)
    assert.is_false(w.probed)
  end)
end)
