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
-- In haproxy.cfg's `global` section: `lua-prepend-path` for `lua/?.lua`,
-- `lua/?/init.lua` and `build-5.3/?.so cpath` (braze.core built for Lua
-- 5.3, for its JSON decoder: libcurl is never called here);
-- `httpclient.ssl.verify required` and `httpclient.ssl.ca-file
-- /etc/ssl/certs/ca-certificates.crt` (read at start, before any chroot;
-- never `verify none`); `tune.lua.maxmem` (HAProxy buffers whole bodies in
-- Lua memory). `ca_file`, `ca_path` and `proxy` cannot be honoured per
-- request here, so they raise. Names are resolved by HAProxy's `resolvers
-- default` section, not /etc/hosts: use 127.0.0.1, not localhost.
--
-- Each request runs in a worker task (`core.register_task`) on HAProxy's
-- httpclient while the caller polls for the answer with `core.msleep`
-- until the attempt's deadline: HAProxy 2.6 cannot cancel a request from
-- Lua and its httpclient timeout restarts with every byte. A worker whose
-- caller gave up leaves the pool at once and ends with HAProxy's request.
-- Workers are reused (HAProxy 2.6 keeps memory for every task ever
-- registered). How HAProxy 2.6's httpclient shapes the answers (1xx, cut
-- chunked bodies, its own 502/503/504 pages, buffered bodies) and the
-- contract this module keeps: lua/braze/transport/README.md.
-- @module braze.transport.haproxy
local split_url = require("braze.url").split_url
local bcore = require("braze.core")
local response = require("braze.transport.response")

local monotonic = bcore.monotonic
local type, tonumber, setmetatable, error = type, tonumber, setmetatable, error
local format, floor, min = string.format, math.floor, math.min

local workers = require("braze.transport.haproxy_workers")
local pause, submit, abandon = workers.pause, workers.submit, workers.abandon

-- The workers' settings (poll_ms, eager, max_workers, max_abandoned,
-- worker_linger: braze.transport.haproxy_workers) read and set through
-- this module; `M.stats()` is the pool's.
local M = setmetatable({ stats = workers.stats }, {
  __index = workers.settings,
  __newindex = function(t, k, v)
    if workers.settings[k] ~= nil then workers.settings[k] = v else rawset(t, k, v) end
  end,
})

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

---@class braze.transport.haproxy.Session
local Session = {}
Session.__index = Session
Session.__name = "braze.transport.haproxy"

--- Make a transport object from braze.new's connection settings (complete:
-- braze.new fills in every option).
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
      ["User-Agent"] = { config.user_agent },
    },
    timeout = config.timeout,
    max_body = config.max_body,
    max_depth = config.max_depth,
  }, Session)
end

function Session:__tostring()
  return format("braze.transport.haproxy (%s)", self.closed and "closed" or "open")
end

--- Mark the object closed (workers belong to the Lua state, not to it).
function Session:close()
  self.closed = true
end

-- HAProxy's own answer to a failure: nil, kind, message; nothing when the
-- answer came from the server.
local function own_page(status, raw, body, hostname)
  for name in pairs(raw) do
    if not HAPROXY_PAGE_HEADERS[name] then return end
  end
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

-- A decode error that means the JSON stopped early (the input ran out).
local function ends_early(res)
  local e = res.decode_error
  return e ~= nil and (e:find("end of input", 1, true) or e:find("^unterminated")) ~= nil
end

-- What the httpclient gave, turned into get's returns.
local function convert(self, res, hostname)
  local status = res.status
  if type(status) ~= "number" or status < 100 or status > 999 then
    return nil, "network", format("no HTTP response from %s", hostname)
  end
  local raw = type(res.headers) == "table" and res.headers or {}
  local body = type(res.body) == "string" and res.body or ""
  local ok, kind, msg = own_page(status, raw, body, hostname)
  if kind then return ok, kind, msg end

  local headers = {}
  for name, v in pairs(raw) do
    if type(name) == "string" then response.keep(headers, name:lower(), last_value(v)) end
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
  if status < 200 then status = 200 end -- a 1xx with a body: see interim()
  local out = response.new(status, headers, body, self.max_depth)
  local te = last_value(raw["transfer-encoding"])
  if te and te:lower():find("chunked", 1, true) and ends_early(out) then
    return nil, "network", format("chunked body from %s ended early (%d bytes)", hostname, #body)
  end
  return out
end

-- A 1xx answer (HAProxy 2.6 lost the final status line): "again" when it
-- came without a body (ask again), else the final answer if it is Braze's
-- success document, else nil, "network", message.
local function interim(self, job)
  local res = job.res
  local body = type(res.body) == "string" and res.body or ""
  if body == "" then return "again" end
  local out, kind, msg = convert(self, res, job.hostname)
  if not out then return nil, kind, msg end
  if type(out.body) == "table" and out.body.message == "success" then return out end
  return nil, "network", format("HAProxy's httpclient reported the interim status %d from %s "
    .. "and lost the final one", res.status, job.hostname)
end

-- A job for the workers; or nil, message when the URL is bad.
local function make_job(self, url, tag)
  if type(url) ~= "string" then return nil, "expected a string" end
  local scheme, hostname = split_url(url)
  if not scheme then return nil, hostname end
  local now = monotonic()
  return {
    tag = tag,
    hostname = hostname,
    started = now,
    deadline = now + self.timeout,
    request = { url = url, headers = self.headers },
  }
end

-- The job's outcome as get's returns, or "again" when the job went back to
-- the queue (a 1xx without a body, see interim); nothing while it runs.
local function outcome(self, c, job, now)
  if job.done then
    if job.failure then
      if job.failure:find("not enough memory", 1, true) then
        return nil, "too_large", format("response from %s larger than HAProxy's Lua memory "
          .. "(tune.lua.maxmem)", job.hostname)
      end
      return nil, "network", format("HAProxy's httpclient failed: %s", job.failure)
    end
    if job.res.status ~= nil and type(job.res.status) == "number" and job.res.status < 200 then
      local res, kind, msg = interim(self, job)
      if res ~= "again" then return res, kind, msg end
      if now < job.deadline then
        job.done, job.running, job.res = nil, nil, nil
        local ok, err = submit(c, job)
        if not ok then return nil, "network", err end
        return "again"
      end
    else
      return convert(self, job.res, job.hostname)
    end
  end
  if now >= job.deadline then
    abandon(job)
    return nil, "timeout", format("timed out after %.2f s waiting for %s", now - job.started,
      job.hostname)
  end
end

--- One GET; see lua/braze/transport/README.md.
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
    local res, kind, msg = outcome(self, c, job, now)
    if res ~= "again" and (res or kind) then return res, kind, msg end
    pause(c, job.started, job.deadline, now)
  end
end

-- A batch: requests handed to the workers at once, collected as they
-- finish (each with its own deadline, `timeout` from its submit).
local Batch = {}
Batch.__index = Batch

--- Start requests now and collect them as they finish: `:submit(url, tag)`,
-- `:poll(timeout)`, `:close()` (see lua/braze/transport/README.md). At most
-- `n` run at once is the caller's to keep: the workers take them in order.
function Session:batch(n)
  if self.closed then error("braze: session is closed", 2) end
  return setmetatable({ session = self, jobs = {}, width = n }, Batch)
end

function Batch:submit(url, tag)
  local session = self.session
  if session.closed then error("braze: session is closed", 2) end
  local job, why = make_job(session, url, tag)
  if not job then error("braze: bad URL: " .. why, 2) end
  local ok, err = submit(host(), job)
  if not ok then job.done, job.failed_submit = true, err end
  self.jobs[#self.jobs + 1] = job
end

--- The outcomes finished so far, each a response table or `{ error = kind,
-- message = }` with `tag`: at least one unless `timeout` seconds passed
-- first (then an empty array); an empty array when nothing runs.
function Batch:poll(timeout)
  local c, session, jobs = host(), self.session, self.jobs
  local since = monotonic()
  local until_ = timeout and since + timeout
  while #jobs > 0 do
    local now, out, k, soonest = monotonic(), {}, 1, math.huge
    while k <= #jobs do
      local job = jobs[k]
      local res, kind, msg
      if job.failed_submit then
        kind, msg = "network", job.failed_submit
      else
        res, kind, msg = outcome(session, c, job, now)
      end
      if res ~= "again" and (res or kind) then
        res = res or { error = kind, message = msg }
        res.tag = job.tag
        out[#out + 1] = res
        table.remove(jobs, k)
      else
        soonest = min(soonest, job.deadline)
        k = k + 1
      end
    end
    if #out > 0 then return out end
    if until_ and now >= until_ then return out end
    pause(c, since, min(soonest, until_ or math.huge), now)
  end
  return {}
end

--- Drop every request still running (their workers are freed at once).
function Batch:close()
  for _, job in ipairs(self.jobs) do abandon(job) end
  self.jobs = {}
end

return M
