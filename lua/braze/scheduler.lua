--- The request scheduler: runs every request of a client over its
-- transport, one at a time (`request`) or many at once (a `runner`).
--
-- Before a request it asks the client's window (braze.window) for room;
-- after it, one judging step: the window learns the answer's headers,
-- braze.retry says whether the outcome is retried and after how long,
-- braze.shape checks the body. Called by `braze` (init.lua) and braze.each.
--
-- `client` here is a client's private state: `conn` (the transport object),
-- `base`, `redact`, `max_retries`, `retry_base`, `retry_max`, `max_wait`,
-- `reserve`, `sleep` and `window` (its workspace's, shared).
-- The transport contract it drives (`get`, and `batch` when a transport has
-- it; without it a runner sends one request at a time) is written once, in
-- lua/braze/transport/README.md.
-- @module braze.scheduler
local errors = require("braze.errors")
local retry = require("braze.retry")
local shape = require("braze.shape")

local M = {}

local format, ceil, min, max, huge = string.format, math.ceil, math.min, math.max, math.huge
local pairs, ipairs, tostring, setmetatable = pairs, ipairs, tostring, setmetatable

local PUC51 = _VERSION == "Lua 5.1" and not rawget(_G, "jit")
--- `pcall` for the calls into a client's transport, except on PUC Lua 5.1 for a
-- transport that `yields` (its pcall is a boundary no coroutine can yield across).
function M.protect(client, f, ...)
  if PUC51 and client.yields then return true, f(...) end
  return pcall(f, ...)
end
local protect = M.protect

-- ---------------------------------------------------------------------------
-- Errors that end a call without an answer of its own

local function rate_limited_error(client, path, wait, attempts, fields)
  local e = {}
  for k, v in pairs(fields or {}) do e[k] = v end
  local win = client.window
  e.kind, e.endpoint, e.attempts, e.retry_after = "rate_limited", path, attempts, wait
  e.rate_limit = win:snapshot()
  local kept, left = win:reserve_count(client.reserve), win.remaining -- the reserve: when it is what stops
  e.message = format("rate limit window resets in %d s, longer than max_wait (%s s)%s",
    ceil(wait), tostring(client.max_wait), (not win.hold_until and kept > 0 and left and left > 0
      and left <= kept) and format("; its last %d requests are the reserve", kept) or "")
  return errors.new(e, client.redact)
end

-- The error that ends every call once the limit is known and the reserve
-- is at or above it: no request of the window is the client's to send.
local function reserve_error(client, path, attempts)
  local win = client.window
  return errors.new({ kind = "rate_limited", endpoint = path, attempts = attempts,
    rate_limit = win:snapshot(),
    message = format("the reserve (%s, %d requests) is at or above the window's limit (%d): "
      .. "no request is left to send; lower the reserve", tostring(client.reserve),
      win:reserve_count(client.reserve), win.limit) }, client.redact)
end

-- A transport that raised instead of returning (a bad URL, a batch closed by
-- a fork, a finalizer raising in a poll): an error object, never retried.
local function raised_error(client, path, attempts, raised)
  local msg = tostring(raised)
  if #msg > 300 then msg = msg:sub(1, 300) .. "..." end
  return errors.new({ kind = "network", endpoint = path, attempts = attempts,
    message = "the transport raised: " .. msg }, client.redact)
end

-- The error that ends a call whose client was closed while it waited.
local function closed_error(client, path, attempts)
  return errors.new({ kind = "closed", endpoint = path, attempts = attempts,
    message = "client is closed (closed while this call waited)" }, client.redact)
end

-- Before starting a request: end the call if the client was closed or the
-- reserve leaves no room at all; wait out a 429's hold, and a window whose
-- room (beside `others` requests in flight) is used up, instead of spending
-- a request on a certain 429. Returns the error that ends the call (closed,
-- or rate_limited when the wait is longer than max_wait), or nil to go on.
local function await_window(client, path, attempts, others, gate) -- gate: a window store grants 1
  local win = client.window
  while true do
    if not client.conn then return closed_error(client, path, attempts) end
    if win:reserve_blocks(client.reserve) then return reserve_error(client, path, attempts) end
    local hold = win:held()
    local wait = hold or win:wait_for_room(client.reserve, others)
    if not wait and not (gate and win:grant(1, client.reserve, true, client.sleep) == 0) then return nil end
    if wait and wait > client.max_wait then return rate_limited_error(client, path, wait, attempts) end
    if wait then win:sleep(client.sleep, wait) end -- (no wait: a store held it back, seen next round)
    if wait and not hold then win:forget() end -- the window has turned over
  end
end

-- ---------------------------------------------------------------------------
-- One attempt's outcome under the policy

-- What a transport returned for one attempt (`res`, or nil, `kind`, `msg`):
-- the body; or nil and the final error object; or nil, nil, the seconds
-- to wait before the next attempt and whether that wait holds every request
-- of the client (a 429: the window is the client's, not the request's).
local function judge(client, path, attempts, res, kind, msg)
  local win = client.window
  if res then win:update(res.headers) end
  local body, fields, retryable, retry_wait = retry.outcome(res, kind, msg, win.server_clock)
  if body then
    local wrong = shape.check(path, body)
    if not wrong then return body end
    fields, retryable = { kind = "decode", status = res.status,
      request_id = res.headers["x-request-id"], message = wrong }, false
  end
  fields.endpoint, fields.attempts = path, attempts
  fields.rate_limit = win:snapshot()
  if retry_wait then fields.retry_after = retry_wait end
  if not retryable or attempts > client.max_retries then
    return nil, errors.new(fields, client.redact)
  end
  if retry_wait then
    if retry_wait > client.max_wait then
      return nil, rate_limited_error(client, path, retry_wait, attempts, fields)
    end
    return nil, nil, retry_wait, true
  end
  -- No usable wait (a reset past by our clock, Retry-After: 0; or not a
  -- 429): back off; a 429's backoff holds everyone all the same.
  return nil, nil, retry.backoff(attempts, client.retry_base, client.retry_max), fields.kind == "rate_limited"
end

--- GET `path .. query` with the retry policy and the pacing, one request
-- at a time. Returns the decoded body or nil, err.
function M.request(client, path, query)
  local url = client.base .. path .. query
  local attempts = 0
  local win = client.window
  while true do
    -- An unknown window with nothing held and nothing else in flight has
    -- nothing to wait for: the common case skips the call.
    if win.remaining ~= nil or win.hold_until or win.inflight > 0 or win.store or not client.conn then
      local stop = await_window(client, path, attempts, win.inflight, true)
      if stop then return nil, stop end
    end
    attempts = attempts + 1
    -- Counted in flight: other runners may start requests while it runs
    -- (nginx light threads, luv coroutines).
    win.inflight = win.inflight + 1
    local conn = client.conn
    local ok, res, kind, msg = protect(client, conn.get, conn, url)
    win:landed(1)
    if not ok then error(res, 0) end -- a transport raises only for a programming error (its contract)
    local body, err, wait, hold = judge(client, path, attempts, res, kind, msg)
    win.probed = true
    if body or err then return body, err end
    if hold then
      win:hold(wait) -- waited out by await_window, for every request of the client
    else
      win:sleep(client.sleep, wait)
    end
  end
end

-- ---------------------------------------------------------------------------
-- Many requests: the runner

local Runner = {}
Runner.__index = Runner

--- A runner for many requests over the client's transport, at most
-- `concurrency` transfers at once. Jobs are added with `runner:add(job)` and
-- finish through `job.done(job, body, err)`; `runner:step()` makes progress.
---@param client table the client's private state
---@param concurrency integer
function M.runner(client, concurrency)
  local conn = client.conn
  return setmetatable({
    client = client, conn = conn, concurrency = concurrency,
    async = conn.batch ~= nil, -- else one request at a time over get
    urgent = {}, queue = {}, -- jobs ready to start: urgent ones first
    waiting = {},            -- jobs waiting for their retry time (`due`)
    inflight = 0,            -- this runner's requests in flight (the window counts all)
    flying = {},             -- the jobs in flight (async)
  }, Runner)
end

--- Queue a job: `{ path =, query =, done = function(job, body, err) }`;
-- `urgent = true` starts it before the others (list pages that feed the
-- pipeline). `job.attempts` counts its requests.
function Runner:add(job)
  job.attempts = job.attempts or 0
  local q = job.urgent and self.urgent or self.queue
  q[#q + 1] = job
end

--- Jobs not finished yet (queued, waiting to retry or in flight).
function Runner:pending()
  return #self.urgent + #self.queue + #self.waiting + self.inflight
end

-- Move the first `n` jobs of queue `q` to `out`; returns how many moved.
local function take(q, n, out)
  local len = #q
  local k = min(n, len)
  for i = 1, k do out[#out + 1] = q[i] end
  for i = 1, len do q[i] = q[i + k] end -- shift the rest down, nil the tail
  return k
end

-- Forget this runner's requests in flight (answered or dropped).
function Runner:landed(n)
  self.inflight = self.inflight - n
  self.client.window:landed(n)
end

-- Finish every job that has not started with `make_error(job)`; with
-- `all`, the jobs in flight too (their transport was closed under them).
function Runner:fail_unstarted(make_error, all)
  local jobs = {}
  for _, q in ipairs({ self.urgent, self.queue, self.waiting }) do
    for i = 1, #q do jobs[#jobs + 1] = q[i]; q[i] = nil end
  end
  if all then
    for job in pairs(self.flying) do jobs[#jobs + 1] = job end
    self.flying = {}
    self:landed(self.inflight)
  end
  for _, job in ipairs(jobs) do job.done(job, nil, make_error(job)) end
end

--- Drop the jobs not started yet for which `unwanted(job)` is true (their
-- `done` is not called): list pages past the end, say.
function Runner:cancel(unwanted)
  for _, q in ipairs({ self.urgent, self.queue, self.waiting }) do
    local k = 0
    for i = 1, #q do
      local job = q[i]
      q[i] = nil
      if not unwanted(job) then k = k + 1; q[k] = job end
    end
  end
end

-- Move jobs whose retry time has come to the front of their queue.
function Runner:release_due()
  if #self.waiting == 0 then return end
  local now, keep = self.client.window:now(), {}
  for _, job in ipairs(self.waiting) do
    if job.due <= now then
      local q = job.urgent and self.urgent or self.queue
      table.insert(q, 1, job)
    else
      keep[#keep + 1] = job
    end
  end
  self.waiting = keep
end

function Runner:next_due()
  local due = huge
  for _, job in ipairs(self.waiting) do if job.due < due then due = job.due end end
  return due
end

-- Judge one finished attempt of `job`.
function Runner:finish(job, res, kind, msg)
  self:landed(1)
  self.flying[job] = nil
  local win = self.client.window
  win.probed = true
  job.attempts = job.attempts + 1
  local body, err, wait, hold = judge(self.client, job.path, job.attempts, res, kind, msg)
  if body or err then return job.done(job, body, err) end
  job.due = win:now() + wait
  self.waiting[#self.waiting + 1] = job
  if hold then win:hold(wait) end -- a 429: nothing of the client starts before then
end

-- Finish `job`, which never got an answer because the transport raised.
function Runner:raised(job, err)
  self:landed(1)
  self.flying[job] = nil
  job.attempts = job.attempts + 1
  job.done(job, nil, raised_error(self.client, job.path, job.attempts, err))
end

-- How many jobs may start now: the transport's free slots, the window's
-- room above the reserve less every request of the client in flight (one
-- request to learn an unknown window).
function Runner:allowance()
  local slots = self.async and self.concurrency - self.inflight or 1
  local win = self.client.window
  local room = win:room(self.client.reserve)
  if room == nil then
    -- Unknown window: one request learns it. If no answer told (a network
    -- failure, no X-RateLimit-* headers), go on at full width.
    if win.probed then return slots end
    return self.inflight == 0 and min(slots, 1) or 0
  end
  return min(slots, room - win.inflight)
end

-- The batch, made on first use.
function Runner:get_batch()
  local batch = self.batch
  if not batch then
    batch = self.conn:batch(self.concurrency)
    self.batch = batch
  end
  return batch
end

-- Start `jobs` on the transport; one at a time over `get`, judged at once.
-- A transport that raises fails the job it raised for, as an error object.
function Runner:start(jobs)
  local client, conn = self.client, self.conn
  local n = #jobs
  self.inflight = self.inflight + n
  client.window.inflight = client.window.inflight + n
  if self.async then
    local made, batch = pcall(self.get_batch, self)
    for _, job in ipairs(jobs) do
      self.flying[job] = true
      local ok, err = made, batch
      if made then ok, err = protect(client, batch.submit, batch, client.base .. job.path .. job.query, job) end
      if not ok then self:raised(job, err) end
    end
  else
    local job = jobs[1]
    local ok, res, kind, msg = protect(client, conn.get, conn, client.base .. job.path .. job.query)
    if ok then self:finish(job, res, kind, msg) else self:raised(job, res) end
  end
end

-- Wait for at least one of the batch's transfers, judging what finished;
-- wake by `due` (on the window's clock) to start a retry. A poll that
-- raises leaves the batch unusable: it is dropped, and every job in flight
-- on it fails with the error (a fork, a finalizer that raised).
function Runner:collect(due)
  local timeout = due < huge and max(0, due - self.client.window:now()) or nil
  local batch = self.batch
  local ok, outs = protect(self.client, batch.poll, batch, timeout)
  if not ok then
    self.batch = nil
    pcall(batch.close, batch)
    local jobs = {}
    for job in pairs(self.flying) do jobs[#jobs + 1] = job end
    for _, job in ipairs(jobs) do self:raised(job, outs) end
    return
  end
  for _, out in ipairs(outs) do
    local job = out.tag
    if self.flying[job] then
      if out.error then self:finish(job, nil, out.error, out.message)
      else self:finish(job, out) end
    end
  end
end

--- Drop every job: those in flight are cancelled (their connections are
-- closed), the others forgotten. For a loop left early.
function Runner:close()
  if self.batch then
    local batch = self.batch
    self.batch = nil
    pcall(batch.close, batch)
  end
  self:landed(self.inflight)
  self.urgent, self.queue, self.waiting, self.flying = {}, {}, {}, {}
end

-- No room in the window (or the reserve takes all of it) and nothing of
-- this runner in flight: wait for the reset, or fail every job that has not
-- started when that is too long (or the client closed).
function Runner:wait_for_window()
  local client = self.client
  local first = self.urgent[1] or self.queue[1]
  local stop = await_window(client, first.path, first.attempts, client.window.inflight - self.inflight)
  if stop then
    self:fail_unstarted(function(job)
      if stop.kind == "closed" then return closed_error(client, job.path, job.attempts) end
      if not stop.retry_after then return reserve_error(client, job.path, job.attempts) end
      return rate_limited_error(client, job.path, stop.retry_after, job.attempts)
    end)
  end
end

--- Make progress: start what may start, then wait for something to finish
-- (or for a retry or the window to come due). Calls the jobs' `done`.
-- Returns false when no job is left.
function Runner:step()
  local client = self.client
  if self:pending() == 0 then return false end
  if not client.conn then
    self:fail_unstarted(function(job) return closed_error(client, job.path, job.attempts) end, true)
    return false
  end
  local win = client.window
  self:release_due()
  local ready = #self.urgent + #self.queue
  if ready > 0 then
    if win:reserve_blocks(client.reserve) then
      self:wait_for_window() -- fails what has not started
      return true
    end
    local hold = win:held()
    if hold and self.inflight == 0 and hold > client.max_wait then
      self:wait_for_window() -- a hold longer than this client waits: fails what has not started
      return true
    elseif not hold then
      local n = win:grant(min(self:allowance(), ready), client.reserve, self.inflight == 0, client.sleep)
      if n > 0 then
        local jobs = {}
        local k = take(self.urgent, n, jobs)
        take(self.queue, n - k, jobs)
        self:start(jobs)
        if not self.async then return true end
      elseif self.inflight == 0 then
        if not win:held() then self:wait_for_window() end -- (a hold a store told of: next step)
        return true
      end
    end
  end
  if self.inflight > 0 then
    local due = self:next_due()
    if ready > 0 and win.hold_until then due = min(due, win.hold_until) end
    self:collect(due)
    return true
  end
  -- Nothing in flight: sleep until the next retry (or the end of the hold).
  local due = self:next_due()
  if win.hold_until then due = min(due, win.hold_until) end
  local wait = due - win:now()
  if wait > 0 then win:sleep(client.sleep, wait) end
  return true
end

--- Many GETs of one endpoint, under the same policy as `request`: results
-- and errors, both indexed like `queries`.
function M.request_many(client, path, queries, concurrency)
  local results, errs = {}, {}
  local runner = M.runner(client, concurrency)
  local function done(job, body, err) results[job.index], errs[job.index] = body, err end
  for i = 1, #queries do
    runner:add({ path = path, query = queries[i], index = i, done = done })
  end
  while runner:step() do end
  runner:close()
  return results, errs
end

return M
