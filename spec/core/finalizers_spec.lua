-- Finalizers that call back into braze.core while one of its calls runs:
-- any Lua allocation inside a C entry point can run a __gc, which may close
-- the session or the batch being used. Every entry point checks its objects
-- after its last allocation and marks them busy for the rest of the call
-- (csrc/session.c, csrc/batch.c). Each case runs in a child interpreter
-- (a crash fails the test, not the run); under the ASan build (.ci/run)
-- a use-after-free is reported even where it would not crash.
local child = require("spec.core.child")

local function expect_ok(out, code)
  assert.equal(0, code, out)
  assert.matches("^ok", out)
end

describe("a finalizer that closes the session", function()
  it("while session:batch() allocates: the batch is refused as closed, never made on a closed session", function()
    -- Issue 18 item 1: session:batch checked the session, then allocated
    -- the userdata (a GC step: the finalizer closes the session), then
    -- copied the closed session's handle (SIGSEGV on every Lua).
    local out, code = child.run([[
local core = require("braze.core")
aggressive_gc()
local made, refused, finalized = 0, 0, 0
for _ = 1, 5000 do
  local s = core.session{ api_key = "k" }
  on_gc(function() s:close(); finalized = finalized + 1 end)
  for _ = 1, 3 do
    local ok, b = pcall(s.batch, s, 1)
    if ok then made = made + 1; b:close()
    else
      refused = refused + 1
      assert(tostring(b):find("braze: session is closed", 1, true), tostring(b))
    end
  end
end
collectgarbage()
assert(finalized == 5000, "finalizers run: " .. finalized)
print("ok", made, refused)
]])
    expect_ok(out, code)
  end)
end)

describe("a finalizer that closes the session or the batch", function()
  -- Issue 18 item 2: on 5.1 and LuaJIT, poll/action/updates pushed a C
  -- function (an allocation) after checking the batch and before marking
  -- it busy; the body then used the closed batch's session (NULL).
  for _, call in ipairs({ "poll", "action", "updates" }) do
    it("inside batch:" .. call .. "(): the call says closed or runs on intact state", function()
      local out, code = child.run([[
local core = require("braze.core")
local call = ...
aggressive_gc()
local ran, refused, finalized = 0, 0, 0
for i = 1, 5000 do
  local s = core.session{ api_key = "k" }
  local b = s:batch(1, call == "poll" and "poll" or "sockets")
  local target = i % 2 == 0 and s or b
  on_gc(function() target:close(); finalized = finalized + 1 end)
  for _ = 1, 3 do
    local ok, err
    if call == "poll" then ok, err = pcall(b.poll, b, 0)
    elseif call == "action" then ok, err = pcall(b.action, b)
    else ok, err = pcall(b.updates, b) end
    if ok then ran = ran + 1
    else
      refused = refused + 1
      assert(tostring(err):find("braze: batch is closed", 1, true), tostring(err))
    end
  end
  s:close()
end
collectgarbage()
assert(finalized == 5000, "finalizers run: " .. finalized)
print("ok", ran, refused)
]], { args = { call } })
      expect_ok(out, code)
    end)
  end
end)

describe("the session and batch metatables", function()
  -- Issue 18 item 3: `getmetatable(b).__gc = nil; b = nil; collectgarbage();
  -- s:close()` read freed memory (the session kept a raw pointer to the
  -- batch's userdata, which only the batch's __gc took out of its list).
  it("are protected: getmetatable gives their name, not a table to edit", function()
    local core = require("braze.core")
    local s = core.session{ api_key = "k" }
    local b = s:batch(1)
    assert.equal("braze.core.session", getmetatable(s))
    assert.equal("braze.core.batch", getmetatable(b))
    assert.has_error(function() getmetatable(b).__gc = nil end)
    b:close()
    s:close()
  end)

  it("a batch whose __gc never runs (stripped through the debug library) leaves no dangling pointer", function()
    local out, code = child.run([[
local core = require("braze.core")
for _, mode in ipairs({ "poll", "sockets" }) do
  local s = core.session{ api_key = "k", timeout = 1 }
  local mt = debug.getmetatable(s:batch(1))
  local gc = mt.__gc
  mt.__gc = nil -- batches made now are never finalized (5.2+), and none is while it is nil (5.1)
  local b = s:batch(2, mode)
  b:submit("http://127.0.0.1:9/never", 1)
  b = nil -- luacheck: ignore 311
  collectgarbage()
  collectgarbage()
  mt.__gc = gc
  s:close() -- detaches the batches: must not touch freed memory
  s:close()
  collectgarbage()
end
print("ok")
]])
    expect_ok(out, code)
  end)
end)
