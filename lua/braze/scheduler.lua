--- The request scheduler: runs every request of a client over its
-- transport, one at a time (`request`) or many at once (a `runner`).
--
-- Before a request it asks the client's window (braze.window) for room;
-- after it, one judging step: the window learns the answer's headers,
-- braze.retry says whether the outcome is retried and after how long,
-- braze.shape checks the body. `braze` (init.lua) is the API surface and
-- braze.each the iterators; both call this module.
--
-- `client` here is a client's private state: `conn` (the transport object),
-- `base`, `redact`, `max_retries`, `retry_base`, `retry_max`, `max_wait`,
-- `sleep` and `window`.
--
-- The transport contract has two levels:
--
-- * `conn:get(url)` -> a response table, or nil, kind, message: one request
--   at a time;
-- * `conn:batch(n)` (optional) -> an object for at most n requests at once,
--   with `:submit(url, tag)`, `:poll(timeout)` (-> the outcomes finished so
--   far, at least one unless `timeout` seconds passed: each a response table
--   or `{ error = kind, message = }`, with `tag`) and `:close()` (drops what
--   is in flight): requests start at once and finish in any order (libcurl
--   multi, nginx light threads), so a runner keeps the pool full while its
--   caller consumes. A transport without it runs many requests one by one.
-- @module braze.scheduler
local errors = require("braze.errors")
local retry = require("braze.retry")
local shape = require("braze.shape")
local window = require("braze.window")

local M = {}

local format, ceil, min, max, huge = string.format, math.ceil, math.min, math.max, math.huge
local pairs, ipairs, tostring, setmetatable = pairs, ipairs, tostring, setmetatable

-- ---------------------------------------------------------------------------
-- Errors that end a call without an answer of its own

local function rate_limited_error(client, path, wait, attempts, fields)
  local e = {}
  for k, v in pairs(fields or {}) do e[k] = v end
  local win = client.window
  e.kind, e.endpoint, e.attempts, e.retry_after = "rate_limited", path, attempts, wait
  e.rate_limit = win:snapshot()
  local kept = win:reserve_count()
  local left = win.remaining
  e.message = format("rate limit window resets in %d s, longer than max_wait (%s s)%s",
    ceil(wait), tostring(client.max_wait),
    (kept > 0 and left and left > 0) and format("; its last %d requests are the reserve", left) or "")
  return errors.new(e, client.redact)
end

-- The error that ends a call whose client was closed while it waited
-- (from the sleep callback, or from another request while ngx.sleep yields).
local function closed_error(client, path, attempts)
  return errors.new({ kind = "closed", endpoint = path, attempts = attempts,
    message = "client is closed (closed while this call waited)" }, client.redact)
end

-- Before starting a request: end the call if the client was closed; wait
-- out a window whose room is used up instead of spending a request on a
-- certain 429. Returns the error that ends the call (closed, or
-- rate_limited when the wait is longer than max_wait), or nil to go on.
local function await_window(client, path, attempts)
  if not client.conn then return closed_error(client, path, attempts) end
  local win = client.window
  local wait = win:wait_for_room()
  if not wait then return nil end
  if wait > client.max_wait then return rate_limited_error(client, path, wait, attempts) end
  win:sleep(client.sleep, wait)
  win:forget() -- the window has turned over
  if not client.conn then return closed_error(client, path, attempts) end
end

-- ---------------------------------------------------------------------------
-- One attempt's outcome under the policy

-- What a transport returned for one attempt (`res`, or nil, `kind`, `msg`):
-- the body; or nil and the final error object; or nil, nil, the seconds
-- to wait before the next attempt and whether the server asked for that wait.
local function judge(client, path, attempts, res, kind, msg)
  if res then client.window:update(res.headers) end
  local body, fields, retryable, retry_wait = retry.outcome(res, kind, msg, window.clock)
  if body then
    local wrong = shape.check(path, body)
    if not wrong then return body end
    fields, retryable = { kind = "decode", status = res.status,
      request_id = res.headers["x-request-id"], message = wrong }, false
  end
  fields.endpoint, fields.attempts = path, attempts
  fields.rate_limit = client.window:snapshot()
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
  return nil, nil, retry.backoff(attempts, client.retry_base, client.retry_max), false
end

--- GET `path .. query` with the retry policy and the pacing, one request
-- at a time. Returns the decoded body or nil, err.
function M.request(client, path, query)
  local url = client.base .. path .. query
  local attempts = 0
  local win = client.window
  while true do
    -- An unknown window (no remaining) has nothing to wait for: the common
    -- case skips the call.
    if win.remaining ~= nil or not client.conn then
      local stop = await_window(client, path, attempts)
      if stop then return nil, stop end
    end
    attempts = attempts + 1
    local body, err, wait, from_server = judge(client, path, attempts, client.conn:get(url))
    if body or err then return body, err end
    client.window:sleep(client.sleep, wait)
    -- A wait the server asked for (Retry-After, X-RateLimit-Reset) was its
    -- own answer: do not wait again for the window its headers announced.
    if from_server then client.window:forget() end
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
    inflight = 0,
    flying = {},             -- the jobs in flight (async)
    hold_until = nil,        -- a 429's wait: nothing starts before it
    probed = false,          -- an answer came since the window was unknown
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
  self.inflight = self.inflight - 1
  self.flying[job] = nil
  self.probed = true
  job.attempts = job.attempts + 1
  local body, err, wait, from_server = judge(self.client, job.path, job.attempts, res, kind, msg)
  if body or err then return job.done(job, body, err) end
  job.due = self.client.window:now() + wait
  self.waiting[#self.waiting + 1] = job
  if from_server then
    -- The server said when to come back: nothing else starts before then.
    self.hold_until = max(self.hold_until or 0, job.due)
  end
end

-- How many jobs may start now: the transport's free slots, the window's
-- room above the reserve (one request to learn an unknown window).
function Runner:allowance()
  local slots = self.async and self.concurrency - self.inflight or 1
  local room = self.client.window:room()
  if room == nil then
    -- Unknown window: one request learns it. If its answer did not tell
    -- (a network failure, a server without X-RateLimit-* headers), there is
    -- nothing to wait for: go on at full width.
    if self.probed then return slots end
    return self.inflight == 0 and min(slots, 1) or 0
  end
  return min(slots, room - self.inflight)
end

-- Start `jobs` on the transport; one at a time over `get`, judged at once.
function Runner:start(jobs)
  local client, conn = self.client, self.conn
  self.inflight = self.inflight + #jobs
  if self.async then
    local batch = self.batch
    if not batch then
      batch = conn:batch(self.concurrency)
      self.batch = batch
    end
    for _, job in ipairs(jobs) do
      self.flying[job] = true
      batch:submit(client.base .. job.path .. job.query, job)
    end
  else
    local job = jobs[1]
    self:finish(job, conn:get(client.base .. job.path .. job.query))
  end
end

-- Wait for at least one of the batch's transfers, judging what finished;
-- wake by `due` (on the window's clock) to start a retry.
function Runner:collect(due)
  local timeout = due < huge and max(0, due - self.client.window:now()) or nil
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

-- No room in the window and nothing in flight: wait for its reset, or fail
-- every job that has not started when that is too long (or the client closed).
function Runner:wait_for_window()
  local client = self.client
  local first = self.urgent[1] or self.queue[1]
  local stop = await_window(client, first.path, first.attempts)
  self.probed = false -- a new window: learn it with one request
  if stop then
    self:fail_unstarted(function(job)
      if stop.kind == "closed" then return closed_error(client, job.path, job.attempts) end
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
    local held = self.hold_until and self.hold_until > win:now()
    if not held then
      if self.hold_until then
        self.hold_until = nil
        self.probed = false
        win:forget() -- the server's wait is over
      end
      local n = min(self:allowance(), ready)
      if n > 0 then
        local jobs = {}
        local k = take(self.urgent, n, jobs)
        take(self.queue, n - k, jobs)
        self:start(jobs)
        if not self.async then return true end
      elseif self.inflight == 0 then
        self:wait_for_window()
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
