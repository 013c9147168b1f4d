--- A non-blocking transport for cqueues programs (Debian's `lua-cqueues`,
-- the loop under lua-http): a call made inside a coroutine of a cqueues
-- controller waits with cqueues' own polling, so the controller's other
-- coroutines (servers, timers, other calls) keep running meanwhile.
--
--     local cqueues = require("cqueues")
--     local braze = require("braze")
--     local client = braze.new{
--       instance = "US-01", api_key = key,
--       transport = require("braze.transport.cqueues"), -- retry waits use cqueues.sleep
--     }
--     local cq = cqueues.new()
--     cq:wrap(function()
--       local page = assert(client:list())             -- waits without blocking cq
--       client:close()
--     end)
--     assert(cq:loop())
--
-- HTTP and TLS are libcurl's, driven through braze.core's batch in socket
-- mode by braze.transport.sockets; this module is only the adapter: one
-- coroutine per busy batch (on the caller's controller) polls the sockets
-- libcurl asks for until the timer libcurl asks for, and callers wait on
-- condition variables. So certificate verification, `ca_file`, `proxy`,
-- `timeout`, `max_body` and keep-alive are exactly the default transport's.
--
-- Rules: every call (and retry wait) must run in a coroutine that the
-- controller runs (`cq:wrap(fn)`), not in the main thread nor inside a plain
-- coroutine of your own (a call there raises an error saying so);
-- `client:close()` ends the calls still waiting with a "network" error. An
-- idle client keeps no coroutine in the controller (`cq:loop()` returns).
-- On Lua 5.1 (not LuaJIT) a generic `for` cannot yield inside its iterator:
-- drive `client:each` there by calling the iterator (`local seg = iter(st)`).
-- @module braze.transport.cqueues
local sockets = require("braze.transport.sockets")
local ok_cq, cqueues = pcall(require, "cqueues")
local condition = ok_cq and require("cqueues.condition") or nil

local error, setmetatable, pairs, ipairs, next, type, max = error, setmetatable, pairs, ipairs, next,
  type, math.max
local format = string.format
local unpack = table.unpack or unpack -- luacheck: ignore 113 (5.1)

local NAME = "braze.transport.cqueues"
local NOT_IN_CONTROLLER = NAME .. ": a call (%s) must run inside a coroutine of a cqueues "
  .. "controller (cq:wrap(function() ... end) then cq:loop()), not in the main thread or a "
  .. "coroutine of your own: it waits by polling through the controller"

local poll, cancel, monotime, running = nil, nil, nil, nil
if ok_cq then
  poll, cancel, monotime, running = cqueues.poll, cqueues.cancel, cqueues.monotime, cqueues.running
end

-- ---------------------------------------------------------------------------
-- A watcher: the sockets and timer of one driver, and the coroutine (the
-- pump) that polls them while there is something to watch.

local Watcher = {}
Watcher.__index = Watcher

-- Watchers with something to watch but no pump yet (made outside a
-- controller): the next wait starts their pump on its own controller.
local orphans = setmetatable({}, { __mode = "k" })

function Watcher:watch(fd, what)
  self.fds[fd] = { pollfd = fd, events = what, fd = fd }
  self:kick()
  return true
end

function Watcher:unwatch(fd)
  if not self.fds[fd] then return end
  self.fds[fd] = nil
  cancel(fd) -- out of the kernel's poll set before libcurl closes it
  self:kick()
end

function Watcher:timer(ms)
  self.deadline = ms >= 0 and monotime() + ms / 1000 or nil
  self:kick()
end

function Watcher:close()
  if self.closed then return end
  for fd in pairs(self.fds) do cancel(fd) end
  self.fds, self.deadline, self.closed = {}, nil, true
  self.wakeup:signal()
end

function Watcher:busy()
  return not self.closed and (next(self.fds) ~= nil or self.deadline ~= nil)
end

-- Something changed: wake the pump (it polls the new set), or start it.
function Watcher:kick()
  if self.pumping then return self.wakeup:signal() end
  if not self:busy() then return end
  local cq = running()
  if not cq then
    orphans[self] = true
    return
  end
  orphans[self] = nil
  self.pumping = true
  cq:wrap(function() self:pump() end)
end

-- One round: poll the sockets, the wake-up condition and the timer; tell
-- the driver what is ready.
function Watcher:round()
  local objs, n = {}, 0
  for _, obj in pairs(self.fds) do
    n = n + 1
    objs[n] = obj
  end
  n = n + 1
  objs[n] = self.wakeup
  if self.deadline then
    n = n + 1
    objs[n] = max(0, self.deadline - monotime())
  end
  local ready = { poll(unpack(objs, 1, n)) }
  for _, obj in ipairs(ready) do
    if type(obj) == "table" and obj.fd and self.fds[obj.fd] == obj then
      self.on_event(obj.fd, obj.events)
    end
  end
  if self.deadline and monotime() >= self.deadline then
    self.deadline = nil
    self.on_event(nil)
  end
end

function Watcher:pump()
  while self:busy() do self:round() end
  self.pumping = false
end

-- ---------------------------------------------------------------------------
-- The adapter for braze.transport.sockets.

local loop = { name = NAME }
if not ok_cq then
  loop.missing = NAME .. ": cqueues is not installed (apt-get install lua-cqueues; "
    .. "luarocks install cqueues)"
end

-- A wait for the running coroutine if a controller runs it; raises the
-- clear error otherwise (without a position: the caller's is deep in
-- braze's own files).
function loop.waiter(what)
  local cq, managed = running()
  if not cq or not managed then error(format(NOT_IN_CONTROLLER, what), 0) end
  return { cond = condition.new() }
end

function loop.block(w, done, timeout)
  for watcher in pairs(orphans) do watcher:kick() end
  local deadline = timeout and monotime() + timeout
  while not done() do
    if deadline then
      local left = deadline - monotime()
      if left <= 0 then return end
      w.cond:wait(left)
    else
      w.cond:wait()
    end
  end
end

function loop.wake(waits)
  for _, w in ipairs(waits) do w.cond:signal() end
end
loop.wake_later = loop.wake -- a signal only marks the waiter ready

function loop.watcher(on_event)
  return setmetatable({ fds = {}, deadline = nil, on_event = on_event,
    wakeup = ok_cq and condition.new() or nil, pumping = false, closed = false }, Watcher)
end

return sockets.transport(loop)
