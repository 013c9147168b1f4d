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
-- "sockets")`), and this module is only the adapter that watches the
-- sockets and the timer libcurl asks for with uv poll and timer handles.
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
--   kept running by an idle client (plain Lua's `uv.run()` still returns).
--
-- The loop: `vim.loop` inside Neovim, else `require("luv")`, else
-- `require("uv")` (luvit). `require("braze.transport.luv").using(uv)`
-- returns the same transport bound to another luv module.
--
-- get(url) returns what braze.core's session:get returns: a response table
-- `{status=, headers=, body=|decode_error=, ...}` or nil, kind, message.
-- @module braze.transport.luv
local core = require("braze.core")

local type, error, pcall, setmetatable, pairs, ipairs = type, error, pcall, setmetatable, pairs,
  ipairs
local format, floor, max, tostring, tonumber = string.format, math.floor, math.max, tostring, tonumber
local co_running, co_yield, co_resume, co_status = coroutine.running, coroutine.yield,
  coroutine.resume, coroutine.status
local co_isyieldable = coroutine.isyieldable -- 5.3+, LuaJIT 2.1

local NOT_IN_COROUTINE = "braze.transport.luv: a call (%s) must run inside a coroutine "
  .. "(e.g. coroutine.wrap(function() ... end)()), not in the main thread or directly in a "
  .. "loop callback: it yields to the event loop while it waits"

-- The running coroutine if it may yield; raises the clear error otherwise
-- (without a position: the caller's is deep in braze's own files).
local function current(what)
  local co, main = co_running()
  if co == nil or main or (co_isyieldable and not co_isyieldable()) then
    error(format(NOT_IN_COROUTINE, what), 0)
  end
  return co
end

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

local function using(uv)
  local T = {
    --- Requests in flight at once per transport object for `get` (one
    -- libcurl multi handle; more calls wait in a queue for a free slot).
    max_in_flight = 64,
  }
  local schedule = type(vim) == "table" and uv == vim.loop and vim.schedule or nil -- luacheck: ignore 113

  local function no_loop()
    error("braze.transport.luv: no libuv loop here: needs Neovim (vim.loop), luvit, or the "
      .. "luv module (apt-get install lua-luv; luarocks install luv)", 3)
  end

  -- Wake waits (see resume): in Neovim through vim.schedule (out of the
  -- fast event), else now. Errors they raise are raised after all are woken.
  local function wake(waits)
    if #waits == 0 then return end
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
    for _, w in ipairs(waits) do
      local err = resume(w)
      first = first or err
    end
    if first then error(first, 0) end
  end

  -- Wake `waits` on the next turn of the loop (not inside the caller).
  local function wake_later(waits)
    if #waits == 0 then return end
    local t = uv.new_timer()
    t:start(0, 0, function()
      t:close()
      wake(waits)
    end)
  end

  --- Wait `seconds` without blocking the loop (a uv timer); inside a coroutine.
  function T.sleep(seconds)
    if not uv then no_loop() end
    local w = { co = current("a retry wait"), active = true }
    local done = false
    local t = uv.new_timer()
    t:start(max(0, floor((tonumber(seconds) or 0) * 1000 + 0.5)), 0, function()
      t:close()
      done = true
      wake({ w })
    end)
    while not done do co_yield() end
    w.active = false
  end

  -- -------------------------------------------------------------------------
  -- A driver: one braze.core batch in socket mode, the uv poll handles of
  -- its sockets and its timer. `on_done(outs)` gets every finished request
  -- (each with `tag`: the record given to submit).

  local Driver = {}
  Driver.__index = Driver

  local function driver(session, n, on_done)
    return setmetatable({ b = session:batch(n, "sockets"), n = n, polls = {}, timer = nil,
      on_done = on_done, count = 0 }, Driver)
  end

  -- Stop and close every handle, then the batch (its sockets close after
  -- nothing watches them). Idempotent.
  function Driver:close()
    if not self.b then return end
    for fd, p in pairs(self.polls) do
      self.polls[fd] = nil
      p:stop()
      p:close()
    end
    if self.timer then
      self.timer:stop()
      self.timer:close()
      self.timer = nil
    end
    local b = self.b
    self.b = nil
    b:close()
  end

  -- Something failed inside the adapter: every request in flight ends with
  -- a network error, and the driver is closed.
  function Driver:fail(message)
    local outs = {}
    for rec in pairs(self.records or {}) do
      outs[#outs + 1] = { error = "network", message = message, tag = rec }
    end
    self.records = nil
    self.count = 0
    self:close()
    self.on_done(outs)
  end

  -- Apply what libcurl wants watched now (after every call into the batch).
  function Driver:apply()
    local b = self.b
    if not b then return true end
    local ok, u = pcall(b.updates, b)
    if not ok then return false, u end
    for i = 1, #u do
      local fd, what = u[i].fd, u[i].what
      local p = self.polls[fd]
      if what == "remove" then
        if p then
          self.polls[fd] = nil
          p:stop()
          p:close()
        end
      else
        if not p then
          local err
          p, err = uv.new_socket_poll(fd)
          if not p then return false, format("cannot watch socket %d: %s", fd, tostring(err)) end
          self.polls[fd] = p
        end
        p:start(what, function(perr, events)
          -- An error on the socket: let libcurl find it out.
          self:action(fd, perr and "rw" or events)
        end)
      end
    end
    local ms = u.timer
    if ms then
      if ms < 0 then
        if self.timer then self.timer:stop() end
      else
        if not self.timer then self.timer = uv.new_timer() end
        self.timer:start(ms, 0, function() self:action(nil) end)
      end
    end
    return true
  end

  -- A socket is ready (fd, events) or the timer fired (nil).
  function Driver:action(fd, events)
    local b = self.b
    if not b then return end
    local ok, outs
    if fd then ok, outs = pcall(b.action, b, fd, events)
    else ok, outs = pcall(b.action, b) end
    local applied, why = true, nil
    if ok then applied, why = self:apply() end
    if not ok or not applied then
      return self:fail("braze.transport.luv: " .. tostring(ok and why or outs))
    end
    if #outs > 0 then
      for _, out in ipairs(outs) do self.records[out.tag] = nil end
      self.count = self.count - #outs
      self.on_done(outs)
    end
  end

  -- Start a request; `rec` (a table) comes back as the outcome's tag.
  -- Raises (a bad URL, a full batch) like batch:submit.
  function Driver:submit(url, rec)
    self.b:submit(url, rec)
    self.records = self.records or {}
    self.records[rec] = true
    self.count = self.count + 1
    local ok, why = self:apply()
    if not ok then self:fail("braze.transport.luv: " .. tostring(why)) end
  end

  -- -------------------------------------------------------------------------
  -- The transport object

  ---@class braze.transport.luv.Session
  local Session = {}
  Session.__index = Session
  Session.__name = "braze.transport.luv"

  local Batch = {}
  Batch.__index = Batch

  --- Make a transport object from braze.new's connection settings (the
  -- same as the default transport's: core.session(config)).
  function T.new(config)
    if not uv then no_loop() end
    return setmetatable({ session = core.session(config), queue = {}, batches = {},
      max_in_flight = T.max_in_flight }, Session)
  end

  function Session:__tostring()
    return format("braze.transport.luv (%s)", self.session and "open" or "closed")
  end

  -- The driver for get, made on first use.
  local function get_driver(self)
    local d = self.driver
    if d and d.b then return d end
    d = driver(self.session, self.max_in_flight, function(outs)
      local cos = {}
      for _, out in ipairs(outs) do
        local rec = out.tag
        out.tag = nil
        rec.out = out
        cos[#cos + 1] = rec
      end
      -- Free slots go to queued calls first, then the waiters run.
      local queue = self.queue
      while self.driver and #queue > 0 and self.driver.count < self.max_in_flight do
        local rec = table.remove(queue, 1)
        local ok, err = pcall(self.driver.submit, self.driver, rec.url, rec)
        if not ok then
          rec.out = { error = "network", message = tostring(err) }
          cos[#cos + 1] = rec
        end
      end
      wake(cos)
    end)
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
    local rec = { co = current("a request"), active = true, url = url } -- a wait (see resume)
    local d = get_driver(self)
    if d.count < self.max_in_flight then
      d:submit(url, rec)
    else
      self.queue[#self.queue + 1] = rec
    end
    while not rec.out do co_yield() end
    rec.active = false
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
    local batch = setmetatable({ transport = self, done = {}, count = 0 }, Batch)
    batch.driver = driver(self.session, n, function(outs)
      for _, out in ipairs(outs) do
        out.tag = out.tag.tag
        batch.done[#batch.done + 1] = out
      end
      batch.count = batch.count - #outs
      if batch.waiter then wake({ batch.waiter }) end
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
      local w = { co = current("waiting for a batch"), active = true }
      local timer, expired = nil, false
      if timeout then
        timer = uv.new_timer()
        timer:start(max(0, floor(timeout * 1000 + 0.5)), 0, function()
          expired = true
          wake({ w })
        end)
      end
      self.waiter = w
      while #self.done == 0 and not expired and self.driver do co_yield() end
      self.waiter = nil
      w.active = false
      if timer then
        timer:stop()
        timer:close()
      end
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
    if self.waiter then wake_later({ self.waiter }) end
  end

  --- Close every uv handle and the libcurl session. Calls still waiting end
  -- with a network error (on the next turn of the loop). Idempotent.
  function Session:close()
    if not self.session then return end
    for batch in pairs(self.batches) do batch:close() end
    local cos = {}
    local function abandon(rec)
      rec.out = { error = "network", message = "braze.transport.luv: the transport was closed "
        .. "while this request was in flight" }
      cos[#cos + 1] = rec
    end
    local d = self.driver
    self.driver = nil
    if d then
      for rec in pairs(d.records or {}) do abandon(rec) end
      d.records = nil
      d:close()
    end
    for _, rec in ipairs(self.queue) do abandon(rec) end
    self.queue = {}
    local s = self.session
    self.session = nil
    s:close()
    wake_later(cos)
  end

  --- The same transport bound to the luv module `uv` (see the module header).
  ---@param other table a luv module
  ---@return table module with new(config) and sleep(seconds), as braze.new's `transport`
  T.using = using
  return T
end

return using(find_uv())
