--- GET /segments/sizes?segment_id=ID[&days=N]: a segment's estimated size,
-- one point a day for the last N days (default 30, 1..100), as JSON:
--
--   {"segment_id":"...","days":30,"cached":false,
--    "series":[{"time":"2024-03-01","size":123456}, ...]}
--
-- A HAProxy Lua service (see haproxy.cfg). Calls go through
-- braze.transport.haproxy (HAProxy's httpclient): a slow Braze never blocks
-- HAProxy, whatever nbthread is. Braze computes these sizes once a day, so
-- answers are kept for a few minutes in a Lua table (one per Lua state);
-- while one request fetches a series, others for the same one wait for its
-- answer instead of calling Braze too.
local braze = require("braze")
local cjson = require("cjson.safe")
local transport = require("braze.transport.haproxy")

local M = {
  ttl = 300,        -- seconds a series is served from the cache
  max_wait = 10,    -- seconds a request waits for another's fetch
  lock_ttl = 15,    -- seconds one fetch may hold a series for itself
  max_entries = 10000, -- series kept at most
}

--- braze.new's options: the key from BRAZE_API_KEY, the endpoint from
-- BRAZE_REST_ENDPOINT.
function M.options()
  local endpoint = os.getenv("BRAZE_REST_ENDPOINT")
  if endpoint then
    -- HAProxy resolves names by DNS only (no /etc/hosts): a local endpoint
    -- (the mock) at localhost goes to 127.0.0.1 instead.
    endpoint = endpoint:gsub("^(https?://)localhost([:/]?)", "%1127.0.0.1%2")
  end
  return {
    endpoint = endpoint,
    transport = transport, -- retry waits use core.msleep too
    timeout = 10,
    max_retries = 2,
    max_wait = 5,          -- do not hold a request longer than that for a rate limit
  }
end

-- Made when HAProxy loads this file: a configuration mistake stops HAProxy
-- from starting, naming what to set. The client holds no connection
-- between calls, so all requests share it.
local ok, client = pcall(braze.new, M.options())
if not ok then
  error("examples/haproxy: cannot make a Braze client: " .. tostring(client)
    .. " (set BRAZE_API_KEY and BRAZE_REST_ENDPOINT where haproxy starts)", 0)
end

local cache, entries = {}, 0 -- key -> { text =, expires = }
local fetching = {}           -- key -> until when one request fetches it

local function now()
  local t = core.now()
  return t.sec + t.usec / 1e6
end

local function send(applet, status, doc, headers)
  local body = (type(doc) == "string" and doc or cjson.encode(doc)) .. "\n"
  applet:set_status(status)
  applet:add_header("content-type", "application/json")
  applet:add_header("cache-control", status == 200 and ("max-age=" .. M.ttl) or "no-store")
  applet:add_header("content-length", tostring(#body))
  for k, v in pairs(headers or {}) do applet:add_header(k, v) end
  applet:start_response()
  applet:send(body)
end

local function args(qs)
  local t = {}
  for k, v in (qs or ""):gmatch("([^&=]+)=([^&]*)") do
    t[k] = v:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return t
end

-- The cached JSON object with `"cached":true|false` added before its last brace.
local function with_cached(text, cached)
  return text:sub(1, -2) .. (cached and ',"cached":true}' or ',"cached":false}')
end

-- How each braze.Error kind is reported to our own clients.
local status_for = {
  timeout = 504, rate_limited = 503, http = 502, network = 502, decode = 502, too_large = 502,
}

-- The series from Braze, as the JSON text we serve; or nil, braze.Error.
local function fetch(segment_id, days)
  local res, err = client:data_series({ segment_id = segment_id, length = days })
  if not res then return nil, err end
  local series = {}
  for i, point in ipairs(type(res.data) == "table" and res.data or {}) do
    series[i] = { time = point.time, size = point.size }
  end
  return cjson.encode({ segment_id = segment_id, days = days, series = series })
end

function M.serve(applet)
  local a = args(applet.qs)
  local segment_id, days = a.segment_id, tonumber(a.days or 30)
  if type(segment_id) ~= "string" or segment_id == "" or #segment_id > 200 then
    return send(applet, 400, { error = "bad_request", message = "segment_id is required" })
  end
  if not days or days ~= math.floor(days) or days < 1 or days > 100 then
    return send(applet, 400, { error = "bad_request", message = "days must be an integer in 1..100" })
  end
  days = math.floor(days)

  local key = days .. ":" .. segment_id
  local deadline = now() + M.max_wait
  while true do
    local hit = cache[key]
    if hit and hit.expires > now() then return send(applet, 200, with_cached(hit.text, true)) end
    if (fetching[key] or 0) <= now() or now() >= deadline then break end
    core.msleep(50) -- another request is fetching this series
  end

  fetching[key] = now() + M.lock_ttl
  local text, err = fetch(segment_id, days)
  fetching[key] = nil
  if text then
    if entries >= M.max_entries then -- drop the expired ones, or all
      local t, kept = now(), 0
      for k, e in pairs(cache) do
        if e.expires <= t or kept >= M.max_entries / 2 then cache[k] = nil else kept = kept + 1 end
      end
      entries = kept
    end
    if not cache[key] then entries = entries + 1 end
    cache[key] = { text = text, expires = now() + M.ttl }
    return send(applet, 200, with_cached(text, false))
  end
  -- tostring(err) never contains the API key (lua-braze redacts it).
  core.Warning(tostring(err))
  local headers
  if err.kind == "rate_limited" and err.retry_after then
    headers = { ["retry-after"] = tostring(math.ceil(err.retry_after)) }
  end
  local status = status_for[err.kind] or 502
  if err.kind == "http" and err.status == 400 then status = 400 end -- e.g. an unknown segment_id
  return send(applet, status, {
    error = err.kind, status = err.status, message = err.message, request_id = err.request_id,
  }, headers)
end

core.register_service("segment_sizes", "http", M.serve)

return M
