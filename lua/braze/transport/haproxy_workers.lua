--- The worker tasks of braze.transport.haproxy: HAProxy 2.6 cannot cancel
-- an httpclient request from Lua, so each request runs in a worker task
-- (`core.register_task`) while its caller polls for the answer until its
-- deadline. One pool per Lua state (this module is loaded once per state:
-- `lua-load` shares one, `lua-load-per-thread` makes one per thread).
--
-- A job is `{ request = { url =, headers = }, deadline =, started = }`; the
-- worker sets `job.running`, then `job.res` (the httpclient's answer) or
-- `job.failure` (its error), then `job.done`. A caller that gives up calls
-- `abandon(job)`: a worker running it leaves the pool at once (another can
-- start in its place) and ends when HAProxy's request ends.
-- @module braze.transport.haproxy_workers
local bcore = require("braze.core")

local monotonic = bcore.monotonic
local type, tostring, error, pcall, rawget = type, tostring, error, pcall, rawget
local format, ceil, min, max = string.format, math.ceil, math.min, math.max

local M = {}

-- Settings (read and set as braze.transport.haproxy's fields).
M.settings = {
  --- Milliseconds between two looks at a pending request (the caller's
  -- wait) and at the job queue (an idle worker's wait), once the first
  -- `eager` seconds of a wait (looked at every millisecond) are over.
  poll_ms = 10,
  eager = 0.05,
  --- Seconds an idle worker looks for a job at every turn of HAProxy's
  -- scheduler (core.yield) before it sleeps between looks.
  spin = 0.003,
  --- Worker tasks kept at most (one per request in flight).
  max_workers = 64,
  --- Requests whose caller gave up that may still run.
  max_abandoned = 256,
  --- Seconds an idle worker waits for a job before it ends.
  worker_linger = 10,
}
local settings = M.settings

local function host()
  return rawget(_G, "core")
end

--- One pause of a wait that began at `since` and must end by `deadline`
-- (core.monotonic seconds; nil: none): 1 ms for the first `eager` seconds,
-- then `poll_ms`. (core.yield instead would spin, and the spin counts as
-- Lua run time against tune.lua.service-timeout.)
function M.pause(c, since, deadline, now)
  local ms = now - since < settings.eager and 1 or settings.poll_ms
  if deadline then ms = min(ms, ceil((deadline - now) * 1000)) end
  c.msleep(max(1, ms))
end

local pool = { queue = {}, head = 1, tail = 0, workers = 0, idle = 0, started = 0, abandoned = 0 }

--- The worker pool of this Lua state, for monitoring: `{workers=, idle=,
-- queued=, started=, abandoned=}` (workers in the pool, of them waiting for
-- a job, jobs waiting for a worker, workers started since HAProxy started,
-- requests still running whose caller gave up).
function M.stats()
  return { workers = pool.workers, idle = pool.idle, queued = pool.tail - pool.head + 1,
    started = pool.started, abandoned = pool.abandoned }
end

local function run_job(c, job)
  job.running = true
  -- HAProxy's "timeout server" (each wait for the server): what is left of
  -- the attempt, and a second more. The caller's deadline must come first:
  -- on a timeout the httpclient sends the request again by itself, and that
  -- second answer would hide a server that did not answer in time.
  job.request.timeout = max(1, ceil((job.deadline - monotonic()) * 1000)) + 1000
  local hc = c.httpclient()
  local ok, res = pcall(hc.get, hc, job.request)
  if ok and type(res) == "table" then
    job.res = res
  else
    job.failure = tostring(res)
  end
  job.done = true
end

-- A worker's loop: jobs from the queue until it has been idle for
-- worker_linger seconds, or its caller gave up on the job in hand (the
-- caller then took it out of the pool). `state.job` is the job in hand.
local function work(c, state)
  local idle_since = monotonic()
  while true do
    local q = pool.queue
    local now = monotonic()
    if pool.head <= pool.tail then
      local job = q[pool.head]
      q[pool.head] = nil
      pool.head = pool.head + 1
      pool.idle = pool.idle - 1
      state.job = job
      if not job.abandoned then run_job(c, job) end
      state.job = nil
      if job.released then
        pool.abandoned = pool.abandoned - 1
        return "released"
      end
      pool.idle = pool.idle + 1
      idle_since = monotonic()
    elseif now - idle_since >= settings.worker_linger then
      return
    elseif now - idle_since < settings.spin then
      -- Look again at the next turn of HAProxy's scheduler: the next job of
      -- a caller calling in sequence is taken at once, and the loop keeps
      -- turning, so the caller's own 1 ms sleep ends on time. A task's spin
      -- counts against no timeout unless tune.lua.task-timeout is set.
      c.yield()
    else
      M.pause(c, idle_since, nil, now)
    end
  end
end

-- A worker task's body. The counts stay right even if the loop raises
-- (out of memory...): the job in hand fails instead of waiting forever.
local function worker()
  local state = {}
  local ok, err = pcall(work, host(), state)
  if ok and err == "released" then return end
  local job = state.job
  if job and job.released then
    pool.abandoned = pool.abandoned - 1
  else
    if job then
      job.failure, job.done = tostring(err), true
    else
      pool.idle = pool.idle - 1
    end
    pool.workers = pool.workers - 1
  end
  if not ok then error(err, 0) end -- HAProxy logs it
end

-- Queue a job; start a worker when none is idle and the pool has room.
function M.submit(c, job)
  if pool.abandoned >= settings.max_abandoned then
    return nil, format("%d abandoned requests still run in HAProxy's httpclient "
      .. "(servers that never finish their answers?)", pool.abandoned)
  end
  pool.tail = pool.tail + 1
  pool.queue[pool.tail] = job
  local waiting = pool.tail - pool.head + 1
  if pool.idle < waiting and pool.workers < settings.max_workers then
    pool.workers = pool.workers + 1
    pool.idle = pool.idle + 1
    local ok, err = pcall(c.register_task, worker)
    if ok then
      pool.started = pool.started + 1
    else
      pool.workers = pool.workers - 1
      pool.idle = pool.idle - 1
      if pool.workers == 0 then
        -- Nobody will take it: drop it and say why.
        pool.queue[pool.tail] = nil
        pool.tail = pool.tail - 1
        return nil, "cannot start a worker task: " .. tostring(err)
      end
    end
  end
  return true
end

-- The caller gives up on a job: a worker running it leaves the pool now
-- (a new one can start in its place) and ends when HAProxy's request ends.
function M.abandon(job)
  if job.abandoned then return end
  job.abandoned = true
  if job.running and not job.done then
    job.released = true
    pool.workers = pool.workers - 1
    pool.abandoned = pool.abandoned + 1
  end
end


return M
