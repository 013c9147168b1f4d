--- The retry policy: is an attempt's outcome retried, and after how long?
-- (What the rate-limit headers say of the window is braze.window's.)
--
-- Retried (all three endpoints are idempotent GETs): network failures,
-- timeouts, HTTP 429, 500, 502, 503 and 504. Never other 4xx, never a body
-- that does not decode, never a body over max_body.
-- @module braze.retry
local core = require("braze.core")
local shape = require("braze.shape")
local window = require("braze.window")

local M = {}

local min, type, format = math.min, type, string.format
-- Jitter comes from the C core's generator, seeded per process (clock, pid,
-- address) and reseeded after a fork: math.random is unseeded in LuaJIT and
-- OpenResty, so every worker would retry in lockstep.
local random = core.random

M.retry_status = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
M.retry_kind = { network = true, timeout = true }

local uint = window.uint

--- Seconds to wait from a Retry-After value (delta-seconds or an HTTP
-- date), or nil when absent or unreadable. Never negative.
function M.retry_after(value, now)
  if type(value) ~= "string" then return nil end
  local secs = uint(value)
  if secs then return secs end
  local at = window.http_date(value)
  if not at then return nil end
  return math.max(0, at - now)
end

--- Exponential backoff with full jitter: uniform in [0, min(cap, base*2^(n-1))].
function M.backoff(attempt, base, cap)
  return random() * min(cap, base * 2 ^ (attempt - 1))
end

--- How long a 429 asks us to wait: Retry-After, else until X-RateLimit-Reset,
-- else nil (the caller then backs off). A wait of zero or less (a reset that
-- is now or past, as a client clock ahead of Braze's sees it; a
-- `Retry-After: 0`) is no answer: retrying at once would only spend another
-- request on another 429, so the next source is asked, then the backoff.
function M.rate_limit_wait(headers, now)
  local wait = M.retry_after(headers["retry-after"], now)
  if wait and wait > 0 then return wait end
  local reset = uint(headers["x-ratelimit-reset"])
  if reset and reset > now then return reset - now end
  return nil
end

--- Judge one attempt: what a transport's get returned (`res`, or nil,
-- `kind`, `msg`). Returns the decoded body on success, else nil, the fields
-- of an error object, whether to retry, and the wait a 429 asked for.
-- `clock()` gives the current time (os.time); it is read only for a 429.
function M.outcome(res, kind, msg, clock)
  if not res then
    return nil, { kind = kind, message = msg }, M.retry_kind[kind] or false
  end
  local status, headers, body = res.status, res.headers, res.body
  local ok_status = status >= 200 and status < 300
  if ok_status and type(body) == "table" then return body end -- the common case, no garbage
  local base = { status = status, request_id = headers["x-request-id"] }
  if ok_status then
    base.kind = "decode"
    if res.decode_error then
      base.message = format("%s%s (content-type %s)", res.decode_error,
        res.decode_position and format(" at byte %d", res.decode_position) or "",
        headers["content-type"] or "none")
      base.position = res.decode_position
    else
      base.message = "expected a JSON object, got " .. shape.json_type(body)
    end
    return nil, base, false
  end
  base.kind = status == 429 and "rate_limited" or "http"
  if type(body) == "table" and type(body.message) == "string" then
    base.message = body.message
    if type(body.errors) == "table" then base.errors = body.errors end
  elseif type(body) == "table" and type(body.errors) == "table" then
    base.message = "HTTP " .. status
    base.errors = body.errors
  else
    -- Not JSON (an HTML page from a proxy, say): say what it was, briefly.
    local ctype = headers["content-type"] or "no content type"
    local title = res.snippet and res.snippet:match("<[Tt][Ii][Tt][Ll][Ee]>%s*(.-)%s*</")
    base.message = format("HTTP %d with a non-JSON body (%s)%s", status, ctype,
      title and (": " .. title:sub(1, 120)) or "")
  end
  if status >= 300 and status < 400 then
    base.message = base.message .. " (redirects are not followed; check the endpoint)"
  elseif status == 401 then
    base.message = base.message .. " (check the key, and that the endpoint is your "
      .. "workspace's instance: Braze answers 401 for the wrong instance too)"
  end
  local wait
  if status == 429 then wait = M.rate_limit_wait(headers, clock()) end
  return nil, base, M.retry_status[status] or false, wait
end

return M
