--- A non-blocking transport for any host with a libuv loop through luv:
-- Neovim (`vim.loop`), luvit, plain Lua with the luv module (Debian's
-- `lua-luv`). A call made inside a coroutine yields to the loop and resumes
-- when its response is decoded; the loop (timers, other sockets, the
-- editor) keeps running meanwhile.
--
--     local braze = require("braze")
--     local client = braze.new{
--       instance = "US-01", api_key = key,
--       transport = require("braze.transport.luv"),   -- retry waits use a uv timer
--     }
--     coroutine.wrap(function()
--       local page = assert(client:list())            -- yields until the answer is in
--       client:close()
--     end)()
--     require("luv").run()                            -- plain Lua: run the loop (Neovim's always runs)
--
-- HTTP and TLS are still libcurl's (luv has no TLS): braze.core drives
-- libcurl's multi interface through its socket API (`session:batch(n,
-- "sockets")`), braze.transport.sockets does everything else, and this
-- module is only the adapter that watches the sockets and the timer libcurl
-- asks for with uv poll and timer handles, and waits with coroutines.
-- So certificate verification, `ca_file`, `ca_path`, `proxy`, gzip,
-- `timeout`, `max_body` and keep-alive are exactly the default transport's.
--
-- Rules:
--
-- * every call (and every retry wait) must run inside a coroutine that may
--   yield, and the loop must be running for it to finish: Neovim's always
--   is; in plain Lua call `uv.run()` after starting your coroutines. A call
--   from the main thread (or a luv callback) raises an error saying so;
-- * in Neovim the waiting coroutine is resumed through `vim.schedule`, so
--   code after a call may use the whole Neovim API (no "fast event" limits);
-- * an error raised by your coroutine after it was resumed by a response is
--   raised from that loop callback (Neovim shows it; plain luv prints it and
--   exits): catch what you expect with pcall inside the coroutine;
-- * `client:close()` stops and closes every uv handle of this transport;
--   calls still waiting get a "network" error. Close clients you are done
--   with: luv holds the handles (so the transport) until they are closed,
--   and the collector never frees an unclosed one. The loop itself is not
--   kept running by an idle client (plain Lua's `uv.run()` still returns);
-- * on Lua 5.1 (not LuaJIT) a generic `for` cannot yield inside its
--   iterator: drive `client:each` there by calling the iterator by hand.
--
-- The loop: `vim.loop` inside Neovim, else `require("luv")`, else
-- `require("uv")` (luvit). `require("braze.transport.luv").using(uv)`
-- returns the same transport bound to another luv module.
--
-- get(url) returns what braze.core's session:get returns: a response table
-- `{status=, headers=, body=|decode_error=, ...}` or nil, kind, message.
-- @module braze.transport.luv
local sockets = require("braze.transport.sockets")

local type, error, pcall, setmetatable, pairs, ipairs = type, error, pcall, setmetatable, pairs,
  ipairs
local format, floor, max, tostring = string.format, math.floor, math.max, tostring
local co_running, co_yield, co_resume, co_status = coroutine.running, coroutine.yield,
  coroutine.resume, coroutine.status
local co_isyieldable = coroutine.isyieldable -- 5.3+, LuaJIT 2.1

local NAME = "braze.transport.luv"
local NOT_IN_COROUTINE = NAME .. ": a call (%s) must run inside a coroutine "
  .. "(e.g. coroutine.wrap(function() ... end)()), not in the main thread or directly in a "
  .. "loop callback: it yields to the event loop while it waits"
local NO_LOOP = NAME .. ": no libuv loop here: needs Neovim (vim.loop), luvit, or the "
  .. "luv module (apt-get install lua-luv; luarocks install luv)"

-- The luv module of this host.
local function find_uv()
  if type(vim) == "table" and type(vim.loop) == "table" then return vim.loop end -- luacheck: ignore 113
  for _, name in ipairs({ "luv", "uv" }) do
    local ok, uv = pcall(require, name)
    if ok and type(uv) == "table" and uv.new_socket_poll then return uv end
  end
  return nil
end

-- A wait: `{ co =, active = true }` while coroutine `co` waits in a loop
-- `while not <done> do yield() end`; the waiting code sets active = false
-- when the loop ends, so a late wake-up cannot resume the coroutine in some
-- later, unrelated yield. Resumes `w.co` if it still waits; returns the
-- error it raised (with its traceback), or nil.
local function resume(w)
  if not w.active or co_status(w.co) ~= "suspended" then return nil end
  local ok, err = co_resume(w.co)
  if ok then return nil end
  return debug.traceback(w.co, tostring(err))
end

-- A wait for the running coroutine if it may yield; raises the clear error
-- otherwise (without a position: the caller's is deep in braze's own files).
local function waiter(what)
  local co, main = co_running()
  if co == nil or main or (co_isyieldable and not co_isyieldable()) then
    error(format(NOT_IN_COROUTINE, what), 0)
  end
  return { co = co, active = true }
end

local function ms(seconds) return max(0, floor(seconds * 1000 + 0.5)) end

-- ---------------------------------------------------------------------------
-- A watcher: the uv poll handles of a driver's sockets and its uv timer.

local Watcher = {}
Watcher.__index = Watcher

function Watcher:watch(fd, what)
  local p = self.polls[fd]
  if not p then
    local err
    p, err = self.uv.new_socket_poll(fd)
    if not p then return false, err end
    self.polls[fd] = p
  end
  p:start(what, function(perr, events)
    -- An error on the socket: let libcurl find it out.
    self.on_event(fd, perr and "rw" or events)
  end)
  return true
end

function Watcher:unwatch(fd)
  local p = self.polls[fd]
  if not p then return end
  self.polls[fd] = nil
  p:stop()
  p:close()
end

-- libcurl asks for a 0 ms timer after every bit of work while data is
-- waiting: a uv timer started at 0 ms from its own callback runs again in
-- the same pass of the loop's timers (libuv before 1.45), so a fast hostile
-- body (1-byte chunks) ran the whole transfer without letting the loop turn
-- (Neovim froze up to 1.6 s). "Now" is an idle handle instead: it runs once
-- per turn of the loop, after its timers and with a poll in between.
function Watcher:timer(milliseconds)
  if self.t then self.t:stop() end
  if self.idle then self.idle:stop() end
  if milliseconds < 0 then return end
  if milliseconds == 0 then
    if not self.idle then self.idle = self.uv.new_idle() end
    self.idle:start(function()
      self.idle:stop()
      self.on_event(nil)
    end)
    return
  end
  if not self.t then self.t = self.uv.new_timer() end
  self.t:start(milliseconds, 0, function() self.on_event(nil) end)
end

-- Stop and close every handle. Idempotent.
function Watcher:close()
  for fd in pairs(self.polls) do self:unwatch(fd) end
  for _, key in ipairs({ "t", "idle" }) do
    local h = self[key]
    if h then
      h:stop()
      h:close()
      self[key] = nil
    end
  end
end

-- ---------------------------------------------------------------------------
-- The adapter for braze.transport.sockets.

local function adapter(uv)
  local loop = { name = NAME, missing = not uv and NO_LOOP or nil, waiter = waiter }
  local schedule = type(vim) == "table" and uv == vim.loop and vim.schedule or nil -- luacheck: ignore 113

  -- Wake waits (see resume): in Neovim through vim.schedule (out of the
  -- fast event), else now. Errors they raise are raised after all are woken.
  function loop.wake(waits)
    if schedule then
      for _, w in ipairs(waits) do
        schedule(function()
          local err = resume(w)
          if err then error(err, 0) end
        end)
      end
      return
    end
    local first
    for _, w in ipairs(waits) do first = first or resume(w) end
    if first then error(first, 0) end
  end

  -- Wake `waits` on the next turn of the loop (not inside the caller).
  function loop.wake_later(waits)
    if #waits == 0 then return end
    local t = uv.new_timer()
    t:start(0, 0, function()
      t:close()
      loop.wake(waits)
    end)
  end

  function loop.block(w, done, timeout)
    local timer, expired = nil, false
    if timeout then
      timer = uv.new_timer()
      timer:start(ms(timeout), 0, function()
        expired = true
        loop.wake({ w })
      end)
    end
    while not done() and not expired do co_yield() end
    w.active = false
    if timer then
      timer:stop()
      timer:close()
    end
  end

  function loop.watcher(on_event)
    return setmetatable({ uv = uv, polls = {}, t = nil, idle = nil, on_event = on_event }, Watcher)
  end

  return loop
end

local function using(uv)
  local T = sockets.transport(adapter(uv))
  --- The same transport bound to the luv module `uv` (see the module header).
  ---@param other table a luv module
  ---@return table module with new(config) and sleep(seconds), as braze.new's `transport`
  T.using = using
  return T
end

return using(find_uv())
