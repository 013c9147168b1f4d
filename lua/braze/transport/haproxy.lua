--- A non-blocking transport for HAProxy (2.6 and later, Lua 5.3): requests go
-- through HAProxy's own HTTP client (`core.httpclient()`), so a call waiting on
-- Braze yields to HAProxy's scheduler instead of blocking a thread (the
-- default libcurl session blocks the thread while it holds HAProxy's Lua lock:
-- with several threads the watchdog then kills the process).
--
--     local braze = require("braze")
--     local client = braze.new{
--       instance = "US-01", api_key = key,
--       transport = require("braze.transport.haproxy"),  -- waits use core.msleep
--     }
--
-- Works from actions (`http-request lua.*`), services (`use-service lua.*`)
-- and tasks (`core.register_task`): contexts that may yield. Not from
-- sample fetches or converters (they cannot yield; the call raises there).
--
-- Requirements in haproxy.cfg (`global` section):
--
-- * `lua-prepend-path /path/to/build-5.3/?.so cpath` (and the `lua/?.lua`,
--   `lua/?/init.lua` paths): braze.core built for HAProxy's Lua (5.3), for
--   its JSON decoder. libcurl is never called from this transport.
-- * TLS: `httpclient.ssl.verify required` (HAProxy's default) and
--   `httpclient.ssl.ca-file /etc/ssl/certs/ca-certificates.crt`. The CA file is
--   read when HAProxy starts, before any chroot, so a chroot does not hide it.
--   HAProxy checks the certificate against the host name of the URL (sent as
--   SNI). With `httpclient.ssl.verify none` certificates are NOT checked:
--   never set it. `ca_file`, `ca_path` and `proxy` cannot be honoured per
--   request here, so they raise instead of being ignored.
-- * Host names are resolved by HAProxy's `resolvers default` section (made
--   from /etc/resolv.conf when absent), not from /etc/hosts: `localhost` does
--   not resolve; use 127.0.0.1.
--
-- How requests run: HAProxy 2.6 cannot cancel a request from Lua, and its
-- httpclient timeout only bounds each wait for the server (a server that
-- trickles bytes extends it without end). So each request runs in a worker
-- task (`core.register_task`) while the caller polls for the answer with
-- `core.msleep` (every `M.poll_ms`) until the attempt's deadline
-- (`timeout`): the caller always gets its answer or "timeout" in time; an
-- abandoned request finishes in its worker, its result dropped. Workers are
-- kept and reused (at most `M.max_workers` per Lua state) and end after
-- `M.worker_linger` idle seconds; HAProxy 2.6 keeps a little memory for each
-- task ever registered (fixed in 2.8), so one task per request would leak.
-- `get_many` hands its URLs to several workers at once (`concurrency`), so
-- client:details_many runs concurrently here.
--
-- Limits that differ from the libcurl transport (HAProxy's httpclient owns
-- the connection): the body is buffered by HAProxy before this transport
-- sees it, so max_body is checked on arrival (a larger body is "too_large",
-- but its bytes were received until the deadline); response headers are
-- bounded by HAProxy's `tune.bufsize` (a larger head is a 502 from HAProxy,
-- reported as "network"); `connect_timeout` is not separate from `timeout`;
-- the httpclient itself retries a refused or reset connection up to 3 times
-- (1 s apart) within the deadline. HAProxy answers a failure to resolve,
-- connect or parse with its own 502/503/504 page: those exact pages are
-- reported as "network" (502, 503) or "timeout" (504), not as Braze's
-- status. A connection closed before the Content-Length was received is
-- "network".
--
-- get(url) returns what braze.core's session:get returns: a response table
-- `{status=, headers={lower-case name=value}, body=|decode_error=,
-- decode_position=, snippet=}` or nil, kind ("network" | "timeout" |
-- "too_large"), message.
-- @module braze.transport.haproxy
local split_url = require("braze.url").split_url
local bcore = require("braze.core")
local response = require("braze.transport.response")

local monotonic = bcore.monotonic
local type, tonumber, tostring, setmetatable, error, pcall = type, tonumber, tostring, setmetatable,
  error, pcall
local format, floor, ceil, min, max = string.format, math.floor, math.ceil, math.min, math.max

local M = {
  --- Milliseconds between two looks at a pending request (the caller's
  -- wait) and at the job queue (an idle worker's wait).
  poll_ms = 10,
  --- Worker tasks kept at most, per Lua state (one per request in flight).
  max_workers = 64,
  --- Seconds an idle worker waits for a job before it ends.
  worker_linger = 10,
}

-- HAProxy's global `core`, or nil outside HAProxy.
local function host()
  local c = rawget(_G, "core")
  if type(c) == "table" and type(c.httpclient) == "function" and type(c.msleep) == "function"
    and type(c.register_task) == "function" then
    return c
  end
  return nil
end

--- Waits without blocking HAProxy (core.msleep): braze.new uses it for
-- retry waits when this module is the transport.
function M.sleep(seconds)
  local ms = floor(seconds * 1000 + 0.5)
  if ms > 0 then host().msleep(ms) end
end

-- The response headers handed to the front, as braze.core keeps them.
local wanted = {
  ["x-ratelimit-limit"] = true, ["x-ratelimit-remaining"] = true, ["x-ratelimit-reset"] = true,
  ["x-request-id"] = true, ["content-type"] = true, ["retry-after"] = true, ["location"] = true,
}
local HEADER_VALUE_MAX = 255 -- as braze.core: values are cut to this many bytes

-- HAProxy's own error pages (src/http.c http_err_msgs), and the headers they
-- come with: a response made of exactly these came from HAProxy, not Braze.
local HAPROXY_PAGES = {
  [502] = "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete"
    .. " response.\n</body></html>\n",
  [503] = "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this"
    .. " request.\n</body></html>\n",
  [504] = "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n"
    .. "</body></html>\n",
}
local HAPROXY_PAGE_HEADERS = {
  ["content-length"] = true, ["cache-control"] = true, ["content-type"] = true,
  ["connection"] = true,
}

-- A header's value from the httpclient's { [0] = first, [1] = second, ... }
-- (or a plain string): the last one, as braze.core keeps it.
local function last_value(v)
  if type(v) == "string" then return v end
  if type(v) ~= "table" then return nil end
  local n = #v
  if n > 0 then return v[n] end
  return v[0]
end

-- ---------------------------------------------------------------------
-- Worker tasks. One pool per Lua state (this module is loaded once per
-- state: `lua-load` shares one, `lua-load-per-thread` makes one per thread).

local pool = { queue = {}, head = 1, tail = 0, workers = 0, idle = 0, started = 0 }

--- The worker pool of this Lua state, for monitoring: `{workers=, idle=,
-- queued=, started=}` (workers alive, of them waiting for a job, jobs
-- waiting for a worker, workers started since HAProxy started).
function M.stats()
  return { workers = pool.workers, idle = pool.idle, queued = pool.tail - pool.head + 1,
    started = pool.started }
end

local function run_job(c, job)
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
-- worker_linger seconds. `state.job` is the job in hand.
local function work(c, state)
  local idle_since = monotonic()
  while true do
    local q = pool.queue
    if pool.head <= pool.tail then
      local job = q[pool.head]
      q[pool.head] = nil
      pool.head = pool.head + 1
      pool.idle = pool.idle - 1
      state.job = job
      if not job.abandoned then run_job(c, job) end
      state.job = nil
      pool.idle = pool.idle + 1
      idle_since = monotonic()
    elseif monotonic() - idle_since >= M.worker_linger then
      return
    else
      c.msleep(M.poll_ms)
    end
  end
end

-- A worker task's body. The counts stay right even if the loop raises
-- (out of memory...): the job in hand fails instead of waiting forever.
local function worker()
  local state = {}
  local ok, err = pcall(work, host(), state)
  local job = state.job
  if job then
    job.failure, job.done = tostring(err), true
  else
    pool.idle = pool.idle - 1
  end
  pool.workers = pool.workers - 1
  if not ok then error(err, 0) end -- HAProxy logs it
end

-- Queue a job; start a worker when none is idle and the pool has room.
local function submit(c, job)
  pool.tail = pool.tail + 1
  pool.queue[pool.tail] = job
  local waiting = pool.tail - pool.head + 1
  if pool.idle < waiting and pool.workers < M.max_workers then
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

-- ---------------------------------------------------------------------

---@class braze.transport.haproxy.Session
local Session = {}
Session.__index = Session
Session.__name = "braze.transport.haproxy"

--- Make a transport object from braze.new's connection settings.
-- luacheck: push ignore 631 (a type annotation is one line)
---@param config {api_key: string, timeout: number, connect_timeout: number, user_agent: string, max_body: number, max_depth: integer, ca_file?: string, ca_path?: string, proxy?: string}
-- luacheck: pop
---@return braze.transport.haproxy.Session
function M.new(config)
  if not host() then
    error("braze.transport.haproxy: needs HAProxy 2.6 or later (no core.httpclient here)", 3)
  end
  if config.ca_file ~= nil or config.ca_path ~= nil then
    error("braze.transport.haproxy: ca_file/ca_path cannot be set per request under HAProxy; "
      .. "set httpclient.ssl.ca-file in haproxy.cfg's global section", 3)
  end
  if config.proxy ~= nil then
    error("braze.transport.haproxy: proxy is not supported", 3)
  end
  return setmetatable({
    headers = {
      ["Authorization"] = { "Bearer " .. config.api_key },
      ["Accept"] = { "application/json" },
      ["User-Agent"] = { config.user_agent or "lua-braze" },
    },
    timeout = config.timeout or 30,
    max_body = config.max_body or 32 * 1024 * 1024,
    max_depth = config.max_depth or 1000,
  }, Session)
end

function Session:__tostring()
  return format("braze.transport.haproxy (%s)", self.closed and "closed" or "open")
end

--- Mark the object closed (workers belong to the Lua state, not to it).
function Session:close()
  self.closed = true
end

-- The URL checked as the other transports do; its host, or nil, message.
local function check_url(url)
  local scheme, hostname = split_url(url)
  if not scheme then return nil, hostname end
  return hostname
end

-- What the httpclient gave, turned into get's returns.
local function convert(self, res, hostname)
  local status = res.status
  if type(status) ~= "number" or status < 100 or status > 999 then
    return nil, "network", format("no HTTP response from %s", hostname)
  end
  local raw = type(res.headers) == "table" and res.headers or {}
  local body = type(res.body) == "string" and res.body or ""

  -- HAProxy's own answer to a failure: which kind of failure it stands for.
  local own = true
  for name in pairs(raw) do
    if not HAPROXY_PAGE_HEADERS[name] then own = false break end
  end
  if own then
    if status == 503 and body == "" then
      return nil, "network", format("could not resolve %s (HAProxy resolves names with its "
        .. "`resolvers default` section, not /etc/hosts)", hostname)
    elseif HAPROXY_PAGES[status] == body then
      if status == 504 then
        return nil, "timeout", format("no response from %s in time (HAProxy's httpclient)", hostname)
      elseif status == 503 then
        return nil, "network", format("could not connect to %s (HAProxy's httpclient: "
          .. "connection refused, unreachable, or TLS handshake failed)", hostname)
      end
      return nil, "network", format("invalid or incomplete response from %s "
        .. "(HAProxy's httpclient; headers larger than tune.bufsize?)", hostname)
    end
  end

  local headers = {}
  for name, v in pairs(raw) do
    if type(name) == "string" then
      name = name:lower()
      if wanted[name] then
        v = last_value(v)
        -- As braze.core: cut, and no control bytes (values reach error messages).
        if v then headers[name] = (v:sub(1, HEADER_VALUE_MAX):gsub("%c", "?")) end
      end
    end
  end

  local length = last_value(raw["content-length"])
  length = length and length:match("^%s*(%d+)%s*$") and tonumber(length)
  if length and length > self.max_body or #body > self.max_body then
    return nil, "too_large", format("response body larger than max_body (%d bytes)",
      min(self.max_body, 0x7fffffff))
  end
  if length and #body < length and status ~= 204 and status ~= 304 then
    return nil, "network", format("connection closed after %d of %d body bytes", #body, length)
  end

  return response.new(status, headers, body, self.max_depth)
end

-- A job for the workers; or nil, message when the URL is bad.
local function make_job(self, url)
  if type(url) ~= "string" then return nil, "expected a string" end
  local hostname, why = check_url(url)
  if not hostname then return nil, why end
  return {
    hostname = hostname,
    deadline = monotonic() + self.timeout,
    request = {
      url = url,
      headers = self.headers,
    },
  }
end

-- The job's outcome as get's returns (the job is done or past its deadline).
local function outcome(self, job, now)
  if job.done then
    if job.failure then
      return nil, "network", format("HAProxy's httpclient failed: %s", job.failure)
    end
    return convert(self, job.res, job.hostname)
  end
  job.abandoned = true
  return nil, "timeout", format("timed out after %.2f s waiting for %s", now - (job.deadline - self.timeout),
    job.hostname)
end

--- One GET; the same contract as braze.core's session:get.
---@param url string
---@return table|nil response
---@return string|nil kind
---@return string|nil message
function Session:get(url)
  if self.closed then error("braze: session is closed", 2) end
  local job, why = make_job(self, url)
  if not job then error("braze: bad URL: " .. why, 2) end
  local c = host()
  local ok, err = submit(c, job)
  if not ok then return nil, "network", err end
  while true do
    local now = monotonic()
    if job.done or now >= job.deadline then return outcome(self, job, now) end
    c.msleep(max(1, min(M.poll_ms, ceil((job.deadline - now) * 1000))))
  end
end

--- Many GETs, at most `concurrency` at once, each in a worker task: the same
-- contract as braze.core's session:get_many, so client:details_many runs
-- concurrently here too. Each request has its own deadline (`timeout` from
-- the moment it is handed to a worker).
---@param urls string[]
---@param concurrency? integer
---@return table results one per URL: a response table, or { error = kind, message = }
function Session:get_many(urls, concurrency)
  if self.closed then error("braze: session is closed", 2) end
  local n = #urls
  local width = max(1, min(concurrency or 8, n, M.max_workers))
  for i = 1, n do -- every URL checked before any request
    if type(urls[i]) ~= "string" or not check_url(urls[i]) then
      error("braze: bad URL at index " .. i, 2)
    end
  end
  local c = host()
  local out, flying, next_index, left = {}, {}, 1, n
  while left > 0 do
    while next_index <= n and #flying < width do
      local i = next_index
      next_index = i + 1
      local job = make_job(self, urls[i])
      job.index = i
      local ok, err = submit(c, job)
      if ok then
        flying[#flying + 1] = job
      else
        out[i] = { error = "network", message = err }
        left = left - 1
      end
    end
    local now = monotonic()
    local k, soonest = 1, math.huge
    while k <= #flying do
      local job = flying[k]
      if job.done or now >= job.deadline then
        local res, kind, msg = outcome(self, job, now)
        out[job.index] = res or { error = kind, message = msg }
        left = left - 1
        table.remove(flying, k)
      else
        soonest = min(soonest, job.deadline)
        k = k + 1
      end
    end
    if left > 0 and #flying > 0 then
      c.msleep(max(1, min(M.poll_ms, ceil((soonest - now) * 1000))))
    end
  end
  return out
end

return M
