--- The request scheduler: every request of a client goes through here.
--
-- It owns the three things single calls, batches and the pipelined `each`
-- share: the retry policy (which outcome is retried, after which wait), the
-- rate-limit pacing (never more requests in flight than the window has left
-- above the reserve; before the window is known, one request to learn it),
-- and the transport's concurrency. `braze` (init.lua) is the API surface
-- only and calls `request` for a single call and a `runner` for many.
--
-- `p` everywhere is a client's private state: `conn` (the transport object),
-- `base`, `redact`, `max_retries`, `retry_base`, `retry_max`, `max_wait`,
-- `reserve`, `sleep` and `rate_limit` (the window as known so far).
--
-- Transports are driven in the best way each offers:
--
-- * `conn:batch(n)` -> an object for at most n requests at once, with `:submit(url, tag)`, `:poll(timeout)`
--   (-> the outcomes finished so far, at least one unless `timeout` seconds
--   passed: each a response table or `{ error = kind, message = }`, with
--   `tag`) and `:close()` (drops what is in flight): requests start at once
--   and finish in any order (libcurl multi, nginx light threads), so the
--   pipeline keeps the pool full while its caller consumes;
-- * `conn:get_many(urls, concurrency)`: rounds of concurrent requests;
-- * `conn:get(url)`: one request at a time.
-- @module braze.scheduler
local core = require("braze.core")
local errors = require("braze.errors")
local retry = require("braze.retry")
local shape = require("braze.shape")

local M = {}

local os_time, format, ceil, min, huge = os.time, string.format, math.ceil, math.min, math.huge
local pairs, ipairs, tostring = pairs, ipairs, tostring
local monotonic = core.monotonic

-- ---------------------------------------------------------------------------
-- Errors that end a call without an answer of its own

local function rate_limited_error(p, path, wait, attempts, fields)
  local e = {}
  for k, v in pairs(fields or {}) do e[k] = v end
  e.kind, e.endpoint, e.attempts, e.retry_after = "rate_limited", path, attempts, wait
  e.rate_limit = retry.copy_window(p.rate_limit)
  local kept = M.reserve_count(p)
  local left = p.rate_limit and p.rate_limit.remaining
  e.message = format("rate limit window resets in %d s, longer than max_wait (%s s)%s",
    ceil(wait), tostring(p.max_wait),
    (kept > 0 and left and left > 0) and format("; its last %d requests are the reserve", left) or "")
  return errors.new(e, p.redact)
end

-- The error that ends a call whose client was closed while it waited
-- (from the sleep callback, or from another request while ngx.sleep yields).
local function closed_error(p, path, attempts)
  return errors.new({ kind = "closed", endpoint = path, attempts = attempts,
    message = "client is closed (closed while this call waited)" }, p.redact)
end

-- ---------------------------------------------------------------------------
-- The rate-limit window

--- The number of requests of the window kept for everyone else: the
-- `reserve` option as a count (a fraction below 1 is of X-RateLimit-Limit,
-- 0 until the limit is known).
function M.reserve_count(p)
  local r = p.reserve or 0
  if r <= 0 then return 0 end
  if r < 1 then
    local limit = p.rate_limit and p.rate_limit.limit
    return limit and ceil(r * limit) or 0
  end
  return r
end

-- Requests the window can still take above the reserve, or nil when the
-- window is not known (no answer gave `remaining` yet, or it turned over).
local function room(p)
  local rl = p.rate_limit
  if not (rl and rl.remaining) then return nil end
  return rl.remaining - M.reserve_count(p)
end

-- Before starting a request: end the call if the client was closed; wait
-- out a window whose room is used up instead of spending a request on a
-- certain 429. Returns the error that ends the call (closed, or
-- rate_limited when the wait is longer than max_wait), or nil to go on.
local function await_window(p, path, attempts)
  if not p.conn then return closed_error(p, path, attempts) end
  local r = room(p)
  if r == nil or r > 0 then return nil end
  local rl = p.rate_limit
  local wait = rl.reset and rl.reset - os_time()
  if not wait or wait <= 0 then
    -- The reset is unknown or past by our clock: the window has turned
    -- over, or will have by the time a request arrives. Learn it anew.
    rl.remaining = nil
    return nil
  end
  if wait > p.max_wait then return rate_limited_error(p, path, wait, attempts) end
  p.sleep(wait)
  if p.rate_limit then p.rate_limit.remaining = nil end -- the window has turned over
  if not p.conn then return closed_error(p, path, attempts) end
end

-- ---------------------------------------------------------------------------
-- One attempt's outcome under the policy

-- What a transport returned for one attempt (`res`, or nil, `kind`, `msg`):
-- the body; or nil and the final error object; or nil, nil, the seconds
-- to wait before the next attempt and whether the server asked for that wait.
local function judge(p, path, attempts, res, kind, msg)
  if res then
    local rl = retry.rate_limit(res.headers)
    if rl then p.rate_limit = retry.merge_window(p.rate_limit, rl) end
  end
  local body, fields, retryable, retry_wait = retry.outcome(res, kind, msg, os_time)
  if body then
    local wrong = shape.check(path, body)
    if not wrong then return body end
    fields, retryable = { kind = "decode", status = res.status,
      request_id = res.headers["x-request-id"], message = wrong }, false
  end
  fields.endpoint, fields.attempts = path, attempts
  fields.rate_limit = retry.copy_window(p.rate_limit)
  if retry_wait then fields.retry_after = retry_wait end
  if not retryable or attempts > p.max_retries then return nil, errors.new(fields, p.redact) end
  if retry_wait then
    if retry_wait > p.max_wait then
      return nil, rate_limited_error(p, path, retry_wait, attempts, fields)
    end
    return nil, nil, retry_wait, true
  end
  return nil, nil, retry.backoff(attempts, p.retry_base, p.retry_max), false
end

-- Sleep before the next attempt. A wait the server asked for (Retry-After,
-- X-RateLimit-Reset) was its own answer: do not wait again for the window
-- its headers announced.
local function pause(p, wait, from_server)
  p.sleep(wait)
  if from_server and p.rate_limit then p.rate_limit.remaining = nil end
end

--- GET `path .. query` with the retry policy and the pacing, one request
-- at a time. Returns the decoded body or nil, err.
function M.request(p, path, query)
  local url = p.base .. path .. query
  local attempts = 0
  while true do
    local stop = await_window(p, path, attempts)
    if stop then return nil, stop end
    attempts = attempts + 1
    local body, err, wait, from_server = judge(p, path, attempts, p.conn:get(url))
    if body or err then return body, err end
    pause(p, wait, from_server)
  end
end

-- ---------------------------------------------------------------------------
-- Many requests: the runner

-- Requests a rounds-driven transport (get_many) is given at once: more
-- than its concurrency, so its pool stays full through most of a round.
local ROUND_FACTOR = 4

local Runner = {}
Runner.__index = Runner

--- A runner for many requests over `p`'s transport, at most `concurrency`
-- transfers at once. Jobs are added with `runner:add(job)` and finish
-- through `job.done(job, body, err)`; `runner:step()` makes progress.
---@param p table the client's private state
---@param concurrency integer
function M.runner(p, concurrency)
  local conn = p.conn
  local mode = conn.batch and "async" or (conn.get_many and "rounds") or "serial"
  return setmetatable({
    p = p, conn = conn, mode = mode, concurrency = concurrency,
    urgent = {}, queue = {}, -- jobs ready to start: urgent ones first
    waiting = {},            -- jobs waiting for their retry time (`due`)
    inflight = 0,
    flying = {},             -- the jobs in flight (async mode)
    hold_until = nil,        -- a 429's wait: nothing starts before it
    slept = 0,               -- waits the sleep callback returned early from
  }, Runner)
end

-- The runner's clock: monotonic seconds, plus whatever a sleep callback
-- was asked to wait and did not (a test's no-op sleep), so due times pass.
function Runner:now()
  return monotonic() + self.slept
end

function Runner:sleep(wait)
  local before = monotonic()
  self.p.sleep(wait)
  local short = wait - (monotonic() - before)
  if short > 0 then self.slept = self.slept + short end
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

-- Finish every job that has not started with `make_error(job)`; with
-- `all`, the jobs in flight too (their transport was closed under them).
function Runner:fail_unstarted(make_error, all)
  local jobs = {}
  for _, q in ipairs({ self.urgent, self.queue, self.waiting }) do
    for i = 1, #q do jobs[#jobs + 1] = q[i]; q[i] = nil end
  end
  if all then
    for job in pairs(self.flying) do jobs[#jobs + 1] = job end
    self.flying, self.inflight = {}, 0
  end
  for _, job in ipairs(jobs) do job.done(job, nil, make_error(job)) end
end

-- Move jobs whose retry time has come to the front of their queue.
function Runner:release_due()
  if #self.waiting == 0 then return end
  local now, keep = self:now(), {}
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
  self.inflight = self.inflight - 1
  self.flying[job] = nil
  self.probed = true
  job.attempts = job.attempts + 1
  local body, err, wait, from_server = judge(self.p, job.path, job.attempts, res, kind, msg)
  if body or err then return job.done(job, body, err) end
  job.due = self:now() + wait
  self.waiting[#self.waiting + 1] = job
  if from_server then
    -- The server said when to come back: nothing else starts before then.
    self.hold_until = math.max(self.hold_until or 0, job.due)
  end
end

-- How many jobs may start now: the transport's free slots, the window's
-- room above the reserve (one request to learn an unknown window).
function Runner:allowance()
  local slots
  if self.mode == "async" then slots = self.concurrency - self.inflight
  elseif self.mode == "rounds" then slots = self.concurrency * ROUND_FACTOR
  else slots = 1 end
  local r = room(self.p)
  if r == nil then
    -- Unknown window: one request learns it. If its answer did not tell
    -- (a network failure, a server without X-RateLimit-* headers), there is
    -- nothing to wait for: go on at full width.
    if self.probed then return slots end
    return self.inflight == 0 and min(slots, 1) or 0
  end
  return min(slots, r - self.inflight)
end

-- Start `jobs` on the transport and, for the blocking modes, judge them.
function Runner:start(jobs)
  local p, conn = self.p, self.conn
  self.inflight = self.inflight + #jobs
  if self.mode == "async" then
    local batch = self.batch
    if not batch then
      batch = conn:batch(self.concurrency)
      self.batch = batch
    end
    for _, job in ipairs(jobs) do
      self.flying[job] = true
      batch:submit(p.base .. job.path .. job.query, job)
    end
  elseif self.mode == "rounds" then
    local urls = {}
    for k, job in ipairs(jobs) do urls[k] = p.base .. job.path .. job.query end
    local outs = conn:get_many(urls, self.concurrency)
    for k, job in ipairs(jobs) do
      local out = outs[k]
      if out.error then self:finish(job, nil, out.error, out.message)
      else self:finish(job, out) end
    end
  else
    local job = jobs[1]
    self:finish(job, conn:get(p.base .. job.path .. job.query))
  end
end

-- Wait for at least one of the async transfers, judging what finished;
-- wake by `due` (a monotonic time) to start a retry.
function Runner:collect(due)
  local timeout = due < huge and math.max(0, due - self:now()) or nil
  local outs = self.batch:poll(timeout)
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
    batch:close()
  end
  self.urgent, self.queue, self.waiting, self.flying, self.inflight = {}, {}, {}, {}, 0
end

--- Make progress: start what may start, then wait for something to finish
-- (or for a retry or the window to come due). Calls the jobs' `done`.
-- Returns false when no job is left.
function Runner:step()
  local p = self.p
  if self:pending() == 0 then return false end
  if not p.conn then
    self:fail_unstarted(function(job) return closed_error(p, job.path, job.attempts) end, true)
    return false
  end
  self:release_due()
  local ready = #self.urgent + #self.queue
  if ready > 0 then
    local held = self.hold_until and self.hold_until > self:now()
    if not held then
      if self.hold_until then
        self.hold_until = nil
        self.probed = false
        if p.rate_limit then p.rate_limit.remaining = nil end -- the server's wait is over
      end
      local n = min(self:allowance(), ready)
      if n > 0 then
        local jobs = {}
        local k = take(self.urgent, n, jobs)
        take(self.queue, n - k, jobs)
        self:start(jobs)
        if self.mode ~= "async" then return true end
      elseif self.inflight == 0 then
        -- No room in the window and nothing in flight: wait for the reset.
        local first = self.urgent[1] or self.queue[1]
        local stop = await_window(p, first.path, first.attempts)
        self.probed = false -- a new window: learn it with one request
        if stop then
          self:fail_unstarted(function(job)
            if stop.kind == "closed" then return closed_error(p, job.path, job.attempts) end
            return rate_limited_error(p, job.path, stop.retry_after, job.attempts)
          end)
        end
        return true
      end
    end
  end
  if self.inflight > 0 then
    local due = self:next_due()
    if ready > 0 and self.hold_until then due = min(due, self.hold_until) end
    self:collect(due)
    return true
  end
  -- Nothing in flight: sleep until the next retry (or the server's hold).
  local due = self:next_due()
  if self.hold_until then due = min(due, self.hold_until) end
  local wait = due - self:now()
  if wait > 0 then self:sleep(wait) end
  return true
end

--- Many GETs of one endpoint, under the same policy as `request`: results
-- and errors, both indexed like `queries`.
function M.request_many(p, path, queries, concurrency)
  local results, errs = {}, {}
  local runner = M.runner(p, concurrency)
  local function done(job, body, err) results[job.index], errs[job.index] = body, err end
  for i = 1, #queries do
    runner:add({ path = path, query = queries[i], index = i, done = done })
  end
  while runner:step() do end
  runner:close()
  return results, errs
end

M.closed_error = closed_error
return M
