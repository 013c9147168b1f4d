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
    local w = window.new(0)
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
    local w = window.new(0)
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
    assert.equal(0, window.new(0):reserve_count())
    assert.equal(20, window.new(20):reserve_count())
    local w = window.new(0.25)
    assert.equal(0, w:reserve_count())
    w:update(headers(40, 40, 500))
    assert.equal(10, w:reserve_count())
    assert.equal(30, w:room())
    local odd = window.new(0.1)
    odd:update(headers(15, 15, 500))
    assert.equal(2, odd:reserve_count()) -- rounded up: the reserve is never short
  end)

  it("waits for the reset when no room is left, and forgets a window whose reset passed", function()
    local saved = window.clock
    finally(function() window.clock = saved end)
    window.clock = function() return 1000 end
    local w = window.new(5)
    w:update(headers(100, 6, 1030))
    assert.is_nil(w:wait_for_room()) -- room for one
    w:update(headers(100, 5, 1030))
    assert.equal(30, w:wait_for_room())
    w:update(headers(100, 5, 990)) -- late: changes nothing
    assert.equal(30, w:wait_for_room())
    window.clock = function() return 1031 end
    assert.is_nil(w:wait_for_room())
    assert.is_nil(w.remaining) -- turned over: unknown until the next answer
  end)

  it("has a clock that moves by what a no-op sleep was asked to wait", function()
    local w = window.new(0)
    local before = w:now()
    w:sleep(function() end, 5)
    assert.is_true(w:now() - before >= 5)
    local slept
    w:sleep(function(s) slept = s end, 0.25)
    assert.equal(0.25, slept)
  end)
end)
