--- GET /segments/sizes?segment_id=ID[&days=N]: a segment's estimated size,
-- one point a day for the last N days (default 30, 1..100), as JSON:
--
--   {"segment_id":"...","days":30,"cached":false,
--    "series":[{"time":"2024-03-01","size":123456}, ...]}
--
-- Braze computes these sizes once a day, so answers are kept for a few
-- minutes in the `braze_series` lua_shared_dict (shared by the workers):
-- a burst of requests for the same segment costs one Braze call, which
-- matters because the 250,000 requests/hour limit is shared by the whole
-- workspace. While one request fetches a series, others for the same one
-- wait for its answer instead of calling Braze too.
--
-- Calls go through braze.transport.ngx (cosockets): a slow Braze never
-- blocks the worker. Sizes beyond 2^53 (not seen in practice) arrive as
-- strings of digits under LuaJIT and are sent on as JSON strings.
local braze = require("braze")
local cjson = require("cjson.safe")

local M = {
  ttl = 300,        -- seconds a series is served from the cache
  lock_ttl = 15,    -- seconds one fetch may hold the per-series lock
  max_wait = 10,    -- seconds a request waits for another's fetch
}

local transport = require("braze.transport.ngx")

local cache = ngx.shared.braze_series
local client -- one per worker, made when it starts; it holds no socket between calls

--- braze.new's options. api_key comes from BRAZE_API_KEY, the endpoint from
-- BRAZE_REST_ENDPOINT (made visible to the workers by `env` in nginx.conf).
function M.options()
  local endpoint = os.getenv("BRAZE_REST_ENDPOINT")
  if endpoint then
    -- Cosockets resolve names with nginx's `resolver`, a DNS server that
    -- knows nothing of /etc/hosts: a local endpoint (the mock) at
    -- localhost goes to 127.0.0.1 instead, with no DNS at all.
    endpoint = endpoint:gsub("^(https?://)localhost([:/]?)", "%1127.0.0.1%2")
  end
  return {
    endpoint = endpoint,
    transport = transport,
    sleep = ngx.sleep, -- retry backoff without blocking the worker
    timeout = 10,
    max_retries = 2,
    max_wait = 5,      -- do not hold a request longer than that for a rate limit
  }
end

--- init_by_lua, in the master before the workers exist: this module and
-- lua-braze are loaded here (the workers inherit them, so workers running
-- as `nobody` need not read a clone under /root), and a configuration
-- mistake stops nginx from starting, naming what to set.
function M.init()
  local ok, res = pcall(braze.new, M.options())
  if not ok then
    error("examples/nginx: cannot make a Braze client: " .. tostring(res)
      .. " (set BRAZE_API_KEY and BRAZE_REST_ENDPOINT where nginx starts)", 0)
  end
  res:close()
end

--- init_worker_by_lua: each worker makes its client when it starts.
function M.init_worker()
  local ok, res = pcall(braze.new, M.options())
  if ok then
    client = res
  else
    ngx.log(ngx.CRIT, "examples/nginx: cannot make a Braze client: ", tostring(res))
  end
end


local function send(status, doc, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = status == 200 and ("max-age=" .. M.ttl) or "no-store"
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  ngx.say(type(doc) == "string" and doc or cjson.encode(doc))
  return ngx.exit(ngx.HTTP_OK) -- the status is already sent; this ends the request
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

function M.serve()
  if not client then -- init_worker logged why
    local ok, res = pcall(braze.new, M.options())
    if not ok then
      return send(503, { error = "configuration", message = tostring(res) })
    end
    client = res
  end
  local args = ngx.req.get_uri_args()
  local segment_id, days = args.segment_id, tonumber(args.days or 30)
  if type(segment_id) ~= "string" or segment_id == "" or #segment_id > 200 then
    return send(400, { error = "bad_request", message = "segment_id is required" })
  end
  if not days or days ~= math.floor(days) or days < 1 or days > 100 then
    return send(400, { error = "bad_request", message = "days must be an integer in 1..100" })
  end

  local key = "series:" .. days .. ":" .. segment_id
  local deadline = ngx.now() + M.max_wait
  while true do
    local text = cache:get(key)
    if text then
      return send(200, with_cached(text, true))
    end
    -- One request per series fetches; the others poll the cache meanwhile.
    if cache:add("lock:" .. key, true, M.lock_ttl) then break end
    if ngx.now() >= deadline then break end -- the fetcher is stuck: fetch too
    ngx.sleep(0.05)
  end

  local text, err = fetch(segment_id, days)
  if text then cache:set(key, text, M.ttl) end
  cache:delete("lock:" .. key)
  if not text then
    -- tostring(err) never contains the API key (lua-braze redacts it).
    ngx.log(ngx.WARN, tostring(err))
    local headers
    if err.kind == "rate_limited" and err.retry_after then
      headers = { ["Retry-After"] = tostring(math.ceil(err.retry_after)) }
    end
    local status = status_for[err.kind] or 502
    if err.kind == "http" and err.status == 400 then status = 400 end -- e.g. an unknown segment_id
    return send(status, {
      error = err.kind, status = err.status, message = err.message, request_id = err.request_id,
    }, headers)
  end
  return send(200, with_cached(text, false))
end

return M
