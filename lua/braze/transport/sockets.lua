--- The loop-independent half of braze's event-loop transports
-- (`braze.transport.luv`, `braze.transport.cqueues`): a transport over
-- braze.core's batch in socket mode (libcurl's multi socket API), whose
-- calls wait by yielding their coroutine to the host's event loop.
--
-- braze.core's `session:batch(n, "sockets")` says which sockets libcurl wants
-- watched (and for what) and when it wants to be called back
-- (`batch:updates()`); the loop calls `batch:action(fd, events)` when a socket
-- is ready, `batch:action()` when the timer fires, and gets the finished
-- requests back. This module does everything but the watching and the
-- waiting, which a small adapter gives it:
--
--     local loop = {
--       name = "braze.transport.x",  -- names the transport in messages
--       missing = nil,               -- or why there is no loop here (new/sleep raise it)
--       waiter = function(what) end, -- -> w, a wait for the running coroutine; raises
--                                    --    (naming `what`) when it cannot yield to the loop
--       block = function(w, done, timeout) end, -- yield until done() is true or
--                                    --    `timeout` seconds passed; woken by wake
--       wake = function(waits) end,  -- wake these waits (they re-check done())
--       wake_later = function(waits) end, -- the same, on a later turn of the loop
--       watcher = function(on_event) end, -- -> an object with watch(fd, what) -> ok, err
--                                    --    ("r"|"w"|"rw", replacing the last wish), unwatch(fd),
--                                    --    timer(ms) (< 0: stop) and close(); it calls
--                                    --    on_event(fd, events) when a socket is ready and
--                                    --    on_event(nil) when the timer fires
--     }
--     local T = require("braze.transport.sockets").transport(loop)
--     -- T.new(config), T.sleep(seconds), T.max_in_flight: a braze.new `transport`
--
-- A wait `w` is a table the adapter makes; this module adds fields to it.
-- @module braze.transport.sockets
local core = require("braze.core")

local M = {}

local error, pcall, setmetatable, pairs, ipairs, type = error, pcall, setmetatable, pairs, ipairs,
  type
local format, tostring, tonumber, max, remove = string.format, tostring, tonumber, math.max,
  table.remove

-- ---------------------------------------------------------------------------
-- A driver: one braze.core batch in socket mode and the loop's watcher of
-- its sockets and timer. `on_done(outs)` gets every finished request (each
-- with `tag`: the record given to submit).

local Driver = {}
Driver.__index = Driver

local function driver(loop, session, n, on_done)
  local d = setmetatable({ loop = loop, b = session:batch(n, "sockets"), records = {}, count = 0,
    on_done = on_done }, Driver)
  d.w = loop.watcher(function(fd, events) d:action(fd, events) end)
  return d
end
--- driver(loop, session, n, on_done) -> a driver (replaceable: specs wrap it
-- to time the work done in each call into the batch).
M.driver = driver

--- Stop watching, then close the batch (its sockets close after nothing
-- watches them). Idempotent.
function Driver:close()
  if not self.b then return end
  self.w:close()
  local b = self.b
  self.b = nil
  b:close()
end

--- Something failed inside the adapter: every request in flight ends with
-- a network error, and the driver is closed.
function Driver:fail(message)
  local outs = {}
  for rec in pairs(self.records) do
    outs[#outs + 1] = { error = "network", message = message, tag = rec }
  end
  self.records = {}
  self.count = 0
  self:close()
  self.on_done(outs)
end

--- Apply what libcurl wants watched now (after every call into the batch).
function Driver:apply()
  local b = self.b
  if not b then return true end
  local ok, u = pcall(b.updates, b)
  if not ok then return false, u end
  local w = self.w
  for i = 1, #u do
    local fd, what = u[i].fd, u[i].what
    if what == "remove" then
      w:unwatch(fd)
    else
      local watching, err = w:watch(fd, what)
      if not watching then return false, format("cannot watch socket %d: %s", fd, tostring(err)) end
    end
  end
  if u.timer then w:timer(u.timer) end
  return true
end

--- A socket is ready (fd, events) or the timer fired (nil).
function Driver:action(fd, events)
  local b = self.b
  if not b then return end
  local ok, outs
  if fd then ok, outs = pcall(b.action, b, fd, events)
  else ok, outs = pcall(b.action, b) end
  local applied, why = true, nil
  if ok then applied, why = self:apply() end
  if not ok or not applied then
    return self:fail(self.loop.name .. ": " .. tostring(ok and why or outs))
  end
  if #outs > 0 then
    for _, out in ipairs(outs) do self.records[out.tag] = nil end
    self.count = self.count - #outs
    self.on_done(outs)
  end
end

--- Start a request; `rec` (a table) comes back as the outcome's tag.
-- Raises (a bad URL, a full batch) like batch:submit.
function Driver:submit(url, rec)
  self.b:submit(url, rec)
  self.records[rec] = true
  self.count = self.count + 1
  local ok, why = self:apply()
  if not ok then self:fail(self.loop.name .. ": " .. tostring(why)) end
end

-- ---------------------------------------------------------------------------
-- The transport object: get (calls beyond max_in_flight wait in a queue)
-- and batch (for the scheduler).

local Session = {}
local Batch = {}
Batch.__index = Batch

local function never() return false end

local function no_loop(loop)
  error(loop.missing, 3)
end

function Session:__tostring()
  return format("%s (%s)", self.loop.name, self.session and "open" or "closed")
end

-- Finished gets: their waits get their outcome; free slots go to queued
-- calls first, then the waiters run.
local function finish_gets(self, outs)
  local ready = {}
  for _, out in ipairs(outs) do
    local rec = out.tag
    out.tag = nil
    rec.out = out
    ready[#ready + 1] = rec
  end
  local queue = self.queue
  while self.driver and #queue > 0 and self.driver.count < self.max_in_flight do
    local rec = remove(queue, 1)
    local ok, err = pcall(self.driver.submit, self.driver, rec.url, rec)
    if not ok then
      rec.out = { error = "network", message = tostring(err) }
      ready[#ready + 1] = rec
    end
  end
  self.loop.wake(ready)
end

-- The driver for get, made on first use.
local function get_driver(self)
  local d = self.driver
  if d and d.b then return d end
  d = M.driver(self.loop, self.session, self.max_in_flight, function(outs) finish_gets(self, outs) end)
  self.driver = d
  return d
end

--- One GET; the same contract as braze.core's session:get. Yields the
-- calling coroutine until the response is in.
---@param url string
---@return table|nil response
---@return string|nil kind
---@return string|nil message
function Session:get(url)
  if not self.session then error("braze: session is closed", 2) end
  if type(url) ~= "string" then error("braze: bad URL: expected a string", 2) end
  local rec = self.loop.waiter("a request")
  rec.url = url
  local d = get_driver(self)
  if d.count < self.max_in_flight then
    d:submit(url, rec)
  else
    self.queue[#self.queue + 1] = rec
  end
  self.loop.block(rec, function() return rec.out ~= nil end)
  local out = rec.out
  if out.error then return nil, out.error, out.message end
  return out
end

--- Requests that start now and are collected as they finish, for the
-- scheduler (`:submit(url, tag)`, `:poll(timeout)`, `:close()`): each batch
-- has its own libcurl multi handle, so closing it cancels its requests.
---@param n integer at most this many at once (1..64)
function Session:batch(n)
  if not self.session then error("braze: session is closed", 2) end
  local batch = setmetatable({ transport = self, loop = self.loop, done = {}, count = 0 }, Batch)
  batch.driver = M.driver(self.loop, self.session, n, function(outs)
    for _, out in ipairs(outs) do
      out.tag = out.tag.tag
      batch.done[#batch.done + 1] = out
    end
    batch.count = batch.count - #outs
    if batch.waiter then self.loop.wake({ batch.waiter }) end
  end)
  self.batches[batch] = true
  return batch
end

function Batch:submit(url, tag)
  if not self.driver then error("braze: batch is closed", 2) end
  self.driver:submit(url, { tag = tag })
  self.count = self.count + 1
end

--- The outcomes finished so far; waits (yielding) until at least one is,
-- or `timeout` seconds passed (then maybe none).
function Batch:poll(timeout)
  if #self.done == 0 and self.count > 0 then
    if not self.driver then error("braze: batch is closed", 2) end
    local w = self.loop.waiter("waiting for a batch")
    self.waiter = w
    self.loop.block(w, function() return #self.done > 0 or not self.driver end, timeout)
    self.waiter = nil
  end
  local out = self.done
  self.done = {}
  return out
end

--- Drop every request still running (their connections are closed).
function Batch:close()
  local d = self.driver
  if not d then return end
  self.driver = nil
  self.transport.batches[self] = nil
  d:close()
  self.count = 0
  if self.waiter then self.loop.wake_later({ self.waiter }) end
end

--- Stop watching and close the libcurl session. Calls still waiting end
-- with a network error (on a later turn of the loop). Idempotent.
function Session:close()
  if not self.session then return end
  for batch in pairs(self.batches) do batch:close() end
  local ready = {}
  local function abandon(rec)
    rec.out = { error = "network", message = self.loop.name .. ": the transport was closed "
      .. "while this request was in flight" }
    ready[#ready + 1] = rec
  end
  local d = self.driver
  self.driver = nil
  if d then
    for rec in pairs(d.records) do abandon(rec) end
    d.records = {}
    d:close()
  end
  for _, rec in ipairs(self.queue) do abandon(rec) end
  self.queue = {}
  local s = self.session
  self.session = nil
  s:close()
  self.loop.wake_later(ready)
end

--- A transport module (a braze.new `transport`) over the adapter `loop`
-- (see the module header).
---@param loop table
---@return table module with new(config), sleep(seconds) and max_in_flight
function M.transport(loop)
  local mt = { __index = Session, __tostring = Session.__tostring, __name = loop.name }
  local T = {
    --- Requests in flight at once per transport object for `get` (one
    -- libcurl multi handle; more calls wait in a queue for a free slot).
    max_in_flight = 64,
    --- Calls park the calling coroutine (see lua/braze/transport/README.md).
    yields = true,
  }

  --- Make a transport object from braze.new's connection settings (the
  -- same as the default transport's: core.session(config)).
  function T.new(config)
    if loop.missing then no_loop(loop) end
    return setmetatable({ loop = loop, session = core.session(config), queue = {}, batches = {},
      max_in_flight = T.max_in_flight }, mt)
  end

  --- Wait `seconds` without blocking the loop; inside a coroutine.
  function T.sleep(seconds)
    if loop.missing then no_loop(loop) end
    loop.block(loop.waiter("a retry wait"), never, max(0, tonumber(seconds) or 0))
  end

  return T
end

return M
