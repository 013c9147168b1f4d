--- lua-braze: Braze's segment-export REST API for Lua.
--
--     local braze = require("braze")
--     local client = braze.new{ api_key = ..., instance = "US-01" }
--     local page, err = client:list{ page = 0 }
--
-- Calls return the decoded JSON response, or `nil, err` where `err` is a
-- `braze.Error` (see braze.errors). Bad arguments raise before any request.
-- @module braze
local core = require("braze.core")
local args = require("braze.args")
local errors = require("braze.errors")
local scheduler = require("braze.scheduler")
local each = require("braze.each")
local window = require("braze.window")
local instances = require("braze.instances")

local type, pairs, setmetatable, tostring, error = type, pairs, setmetatable, tostring, error
local os_getenv, format = os.getenv, string.format

local braze = {
  _VERSION = "lua-braze " .. core._VERSION,
  null = core.null,
  instances = instances,
}

--- Decode a JSON text with the C decoder.
-- @treturn any value, or nil, message (with the byte position), position
---@param text string
---@param max_depth? integer nesting limit (default 1000)
---@return any value
---@return string? message
---@return integer? position
function braze.decode(text, max_depth)
  return core.decode(text, max_depth)
end

---@class braze.Options
---@field api_key? string REST API key (default: env BRAZE_API_KEY)
---@field endpoint? string REST base URL, may carry a path prefix (default: env BRAZE_REST_ENDPOINT)
---@field instance? string instance name such as "US-01" (instead of endpoint)
---@field timeout? number seconds for one whole request attempt (default 30)
---@field connect_timeout? number seconds to connect (default 10)
---@field user_agent? string
---@field max_retries? integer retries after the first attempt (default 3)
---@field retry_base? number first backoff ceiling in seconds (default 0.5)
---@field retry_max? number largest backoff in seconds (default 8)
---@field max_wait? number longest rate-limit wait accepted, seconds (default 60)
---@field reserve? number requests of each window left to others: a count, or below 1 a fraction of the limit (default 0)
---@field sleep? fun(seconds: number) how to wait between attempts (default: blocking C sleep)
---@field max_body? integer largest response body in bytes (default 32 MiB)
---@field max_depth? integer JSON nesting limit (default 1000)
---@field ca_file? string CA bundle for TLS verification
---@field ca_path? string CA directory for TLS verification
---@field proxy? string proxy URL, or "env" to honour HTTPS_PROXY/NO_PROXY (default: none)
---@field allow_http? boolean allow plain http to non-loopback hosts (default false)
---@field transport? table module with .new(config) -> object with :get(url), :close()
local known_options = {
  api_key = true, endpoint = true, instance = true, timeout = true, connect_timeout = true,
  user_agent = true, max_retries = true, retry_base = true, retry_max = true, max_wait = true,
  reserve = true, sleep = true, max_body = true, max_depth = true, ca_file = true, ca_path = true,
  proxy = true, allow_http = true, transport = true, window = true,
}

---@class braze.Client
local Client = {}
Client.__index = Client
Client.__name = "braze.Client"

-- What only the client's methods may see: kept off the client table so that
-- dumping or printing a client cannot show the key.
local private = setmetatable({}, { __mode = "k" })

local function instance_url(name)
  if type(name) ~= "string" then return nil end
  return instances[name:upper()]
end

-- The base URL from endpoint / instance / BRAZE_REST_ENDPOINT, or nil, message.
local function resolve_endpoint(opts)
  if opts.endpoint ~= nil and opts.instance ~= nil then
    return nil, "braze: give endpoint or instance, not both"
  end
  if opts.instance ~= nil then
    local url = instance_url(opts.instance)
    if not url then
      local guess = instances.suggest(opts.instance)
      if guess then
        return nil, format("braze: unknown instance %s: did you mean %s?", args.show(opts.instance), guess)
      end
      local names = {}
      for k in pairs(instances) do names[#names + 1] = k end
      table.sort(names)
      return nil, format("braze: unknown instance %s (one of %s)", args.show(opts.instance),
        table.concat(names, ", "))
    end
    return url
  end
  local v = opts.endpoint
  if v == nil then
    v = os_getenv("BRAZE_REST_ENDPOINT")
    if v == nil or v == "" then
      return nil, "braze: no endpoint: set endpoint = \"https://rest.<instance>.braze.com\" or "
        .. "instance = \"US-01\" (or the BRAZE_REST_ENDPOINT environment variable)"
    end
    v = instance_url(v) or v
  end
  local url, why = args.endpoint(v, opts.allow_http)
  if not url and type(v) == "string" and not v:find("://", 1, true) and instances.suggest(v) then
    why = format("%s (did you mean instance = %q?)", why, instances.suggest(v))
  end
  return url, why
end

local function number_option(opts, name, default, lo, hi)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    error(format("braze: %s must be a number in [%s, %s] (got %s)", name, tostring(lo),
      tostring(hi), args.show(v)), 3)
  end
  return v
end

--- Make a client.
---@param opts braze.Options
---@return braze.Client
function braze.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("braze.new: expected a table of options (got " .. type(opts) .. ")", 2)
  end
  args.check_options(opts, known_options, "braze.new")
  local key = opts.api_key
  if key == nil then key = os_getenv("BRAZE_API_KEY") end
  if type(key) ~= "string" or key == "" then
    error("braze: no API key: set api_key = \"...\" or the BRAZE_API_KEY environment variable", 2)
  end
  if key:find("[%c]") then error("braze: api_key contains a control character", 2) end
  if key:find("[%s\"']") then
    error("braze: api_key contains spaces or quotes (was it pasted with them?)", 2)
  end
  if opts.user_agent ~= nil and (type(opts.user_agent) ~= "string" or opts.user_agent:find("%c")) then
    error("braze: user_agent must be a string without control characters", 2)
  end
  for _, name in ipairs({ "ca_file", "ca_path", "proxy" }) do
    if opts[name] ~= nil and (type(opts[name]) ~= "string" or opts[name]:find("%c")) then
      error(format("braze: %s must be a string without control characters", name), 2)
    end
  end
  if opts.allow_http ~= nil and type(opts.allow_http) ~= "boolean" then
    error("braze: allow_http must be true or false (got " .. args.show(opts.allow_http) .. ")", 2)
  end
  if opts.sleep ~= nil and type(opts.sleep) ~= "function" then
    error("braze: sleep must be a function(seconds)", 2)
  end
  local base, why = resolve_endpoint(opts)
  if not base then error(why, 2) end

  local config = {
    api_key = key,
    timeout = number_option(opts, "timeout", 30, 0.001, 86400),
    connect_timeout = number_option(opts, "connect_timeout", 10, 0.001, 86400),
    user_agent = opts.user_agent or ("lua-braze/" .. core._VERSION),
    max_body = number_option(opts, "max_body", 32 * 1024 * 1024, 1, 2 ^ 40),
    max_depth = number_option(opts, "max_depth", 1000, 1, 10000),
    ca_file = opts.ca_file, ca_path = opts.ca_path, proxy = opts.proxy,
  }
  -- Every option is checked before a connection is made.
  local policy = {
    max_retries = number_option(opts, "max_retries", 3, 0, 100),
    retry_base = number_option(opts, "retry_base", 0.5, 0, 3600),
    retry_max = number_option(opts, "retry_max", 8, 0, 3600),
    max_wait = number_option(opts, "max_wait", 60, 0, 86400),
    reserve = number_option(opts, "reserve", 0, 0, 1e9), store = window.check_store(opts.window),
  }
  if policy.reserve >= 1 and not args.is_integer(policy.reserve) then
    error("braze: reserve must be a whole number of requests, or a fraction below 1 of the "
      .. "window's limit (got " .. args.show(policy.reserve) .. ")", 2)
  end
  local transport = opts.transport
  local conn
  if transport == nil then
    conn = core.session(config)
  else
    if type(transport) ~= "table" or type(transport.new) ~= "function" then
      error("braze: transport must be a module with a new(config) function", 2)
    end
    conn = transport.new(config)
  end

  local client = setmetatable({ endpoint = base }, Client)
  private[client] = {
    conn = conn,
    base = base,
    redact = errors.redactor(key),
    key_hint = errors.mask(key),
    max_retries = policy.max_retries,
    retry_base = policy.retry_base,
    retry_max = policy.retry_max,
    max_wait = policy.max_wait,
    -- A transport may bring its own sleep (ngx.sleep for OpenResty), so
    -- retries never block an event loop the user forgot about.
    sleep = opts.sleep or (transport and type(transport.sleep) == "function" and transport.sleep)
      or core.sleep,
    reserve = policy.reserve, window = window.of(base, key, policy.store), -- the workspace's, shared
  }
  return client
end

local function state(client)
  local p = private[client]
  if not p then error("braze: expected a client (use client:method, not client.method)", 3) end
  if not p.conn then error("braze: client is closed", 3) end
  return p
end

function Client:__tostring()
  local p = private[self]
  return format("braze.Client(%s, key %s%s)", self.endpoint, p and p.key_hint or "?",
    (p and p.conn) and "" or ", closed")
end

--- Close the connection. Idempotent; also runs on `__close` and garbage collection.
function Client:close()
  local p = private[self]
  if p and p.conn then
    p.conn:close()
    p.conn = nil
  end
end
Client.__close = Client.close

--- A copy of the workspace's rate-limit window (shared by the clients of the
-- key in this Lua state) from X-RateLimit-* headers: `{limit=, remaining=,
-- reset=}` (the lowest remaining of the window; nil fields where no header
-- told), or nil before any such response.
---@return {limit: integer?, remaining: integer?, reset: integer?}|nil
function Client:rate_limit()
  return state(self).window:snapshot()
end

local many_options = { concurrency = true }

local function check_many(opts, what)
  opts = opts or {}
  if type(opts) ~= "table" then error(format("braze: %s: expected a table of options", what), 3) end
  args.check_options(opts, many_options, what)
  local c = opts.concurrency
  if c ~= nil and (not args.is_integer(c) or c < 1 or c > 64) then
    error(format("braze: %s: concurrency must be an integer in 1..64 (got %s)", what,
      args.show(c)), 3)
  end
  return c or 8
end

local list_options = { page = true, sort_direction = true }

local function check_sort(v, what)
  if v ~= nil and v ~= "asc" and v ~= "desc" then
    error(format("braze: %s: sort_direction must be \"asc\" or \"desc\" (got %s)", what,
      args.show(v)), 3)
  end
end

local function check_page(v, what, name)
  if v ~= nil and (not args.is_integer(v) or v < 0) then
    error(format("braze: %s: %s must be a non-negative integer (got %s)", what, name,
      args.show(v)), 3)
  end
end

--- One page of segments (up to 100, oldest first by default).
---@param opts? {page?: integer, sort_direction?: "asc"|"desc"}
---@return table|nil response `{ segments = {...}, message = "success" }`
---@return braze.Error|nil err
function Client:list(opts)
  local p = state(self)
  opts = opts or {}
  if type(opts) ~= "table" then error("braze: list: expected a table of options", 2) end
  args.check_options(opts, list_options, "list")
  check_page(opts.page, "list", "page")
  check_sort(opts.sort_direction, "list")
  local page = opts.page and format("%d", opts.page)
  return scheduler.request(p, "/segments/list",
    args.query("page", page, "sort_direction", opts.sort_direction))
end

--- One segment's details.
---@param segment_id string
---@return table|nil response `{ name=, description=, tags=, teams=, created_at=, ... }`
---@return braze.Error|nil err
function Client:details(segment_id)
  local p = state(self)
  if type(segment_id) == "table" then
    args.check_options(segment_id, { segment_id = true }, "details")
    segment_id = segment_id.segment_id
  end
  local _, why = args.segment_id(segment_id, "details")
  if why then error(why, 2) end
  return scheduler.request(p, "/segments/details", args.query("segment_id", segment_id))
end

local series_options = { segment_id = true, length = true, ending_at = true }

-- The query of one data_series request, or nil and a message.
local function series_query(opts, what)
  args.check_options(opts, series_options, what, 4)
  local id, why = args.segment_id(opts.segment_id, what)
  if not id then return nil, why end
  local length = opts.length
  if not args.is_integer(length) or length < 1 or length > 100 then
    return nil, format("braze: %s: length must be an integer in 1..100 (got %s)", what,
      args.show(length))
  end
  local ending_at
  if opts.ending_at ~= nil then
    ending_at, why = args.ending_at(opts.ending_at, what)
    if not ending_at then return nil, why end
  end
  return args.query("segment_id", id, "length", format("%d", length), "ending_at", ending_at)
end

--- A segment's estimated size, one point a day.
---@param opts {segment_id: string, length: integer, ending_at?: string|number}
---@return table|nil response `{ data = { {time=, size=}, ... }, message = "success" }`
---@return braze.Error|nil err
function Client:data_series(opts)
  local p = state(self)
  if type(opts) ~= "table" then
    error("braze: data_series: expected a table {segment_id=, length=, ending_at=}", 2)
  end
  local query, why = series_query(opts, "data_series")
  if not query then error(why, 2) end
  return scheduler.request(p, "/segments/data_series", query)
end

--- Many segments' details at once, over concurrent connections.
-- Same retry and rate-limit rules as `details`; never sends more requests
-- than the rate-limit window has left.
---@param ids string[] segment ids
---@param opts? {concurrency?: integer} transfers at once, 1..64 (default 8)
---@return table results `results[i]` is the details of `ids[i]`, or nil when it failed
---@return table errors `errors[i]` is the error object for `ids[i]`, or nil; empty when all succeeded
function Client:details_many(ids, opts)
  local p = state(self)
  if type(ids) ~= "table" then error("braze: details_many: expected an array of segment ids", 2) end
  local concurrency = check_many(opts, "details_many")
  local queries = {}
  for i = 1, #ids do
    local id = ids[i]
    if type(id) ~= "string" or id == "" then
      error(format("braze: details_many: ids[%d] must be a non-empty string (got %s)", i,
        args.show(id)), 2)
    end
    queries[i] = args.query("segment_id", id)
  end
  return scheduler.request_many(p, "/segments/details", queries, concurrency)
end

--- Many size series at once, over concurrent connections.
---@param requests {segment_id: string, length: integer, ending_at?: string|number}[]
---@param opts? {concurrency?: integer} transfers at once, 1..64 (default 8)
---@return table results `results[i]` answers `requests[i]`, or nil when it failed
---@return table errors `errors[i]` is the error object for `requests[i]`, or nil
function Client:data_series_many(requests, opts)
  local p = state(self)
  if type(requests) ~= "table" then
    error("braze: data_series_many: expected an array of {segment_id=, length=, ending_at=}", 2)
  end
  local concurrency = check_many(opts, "data_series_many")
  local queries = {}
  for i = 1, #requests do
    local r = requests[i]
    if type(r) ~= "table" then
      error(format("braze: data_series_many: requests[%d] must be a table (got %s)", i, type(r)), 2)
    end
    local query, why = series_query(r, format("data_series_many: requests[%d]", i))
    if not query then error(why, 2) end
    queries[i] = query
  end
  return scheduler.request_many(p, "/segments/data_series", queries, concurrency)
end

local each_options = { sort_direction = true, page = true, max_pages = true,
  details = true, series = true, concurrency = true }
local each_series_options = { length = true, ending_at = true }

--- Iterate over every segment of every page: `for segment, page_no in client:each() do`.
-- A page is requested only when the previous one is used up; the loop ends
-- after a page of fewer than 100 segments. A failed request (after its
-- retries) raises the error object: the loop never ends silently early.
-- `page` starts at a given page (to resume); `max_pages` (default 10000)
-- guards against a server that never sends a short page.
--
-- Pipelined: with `details = true` each segment carries `segment.details`
-- (its /segments/details answer), with `series = { length =, ending_at = }`
-- `segment.series` (its /segments/data_series answer); with these or with
-- `concurrency` (1..64, default 8) the next pages are listed ahead and the
-- per-segment calls run concurrently while the loop consumes (see
-- braze.each). Segments still come in list order, exactly once; a
-- failure raises before any segment of its page, with `err.page` and
-- `err.segment_id`.
-- luacheck: push ignore 631 (a type annotation is one line)
---@param opts? {sort_direction?: "asc"|"desc", page?: integer, max_pages?: integer, details?: boolean, series?: {length: integer, ending_at?: string|number}, concurrency?: integer}
-- luacheck: pop
---@return fun(): table, integer
function Client:each(opts)
  local p = state(self)
  opts = opts or {}
  if type(opts) ~= "table" then error("braze: each: expected a table of options", 2) end
  args.check_options(opts, each_options, "each")
  check_sort(opts.sort_direction, "each")
  check_page(opts.page, "each", "page")
  check_page(opts.max_pages, "each", "max_pages")
  for _, name in ipairs({ "page", "max_pages" }) do
    if opts[name] ~= nil and opts[name] > each.MAX_PAGE then -- beyond, page + 1 is not exact
      error(format("braze: each: %s must be at most 2^52 (got %s)", name, args.show(opts[name])), 2)
    end
  end
  if opts.details ~= nil and type(opts.details) ~= "boolean" then
    error("braze: each: details must be true or false (got " .. args.show(opts.details) .. ")", 2)
  end
  if opts.series ~= nil then
    if type(opts.series) ~= "table" then
      error("braze: each: series must be a table {length=, ending_at=} (got "
        .. args.show(opts.series) .. ")", 2)
    end
    local probe = { segment_id = "x", length = opts.series.length, ending_at = opts.series.ending_at }
    args.check_options(opts.series, each_series_options, "each: series")
    local _, why = series_query(probe, "each: series")
    if why then error(why, 2) end
  end
  if opts.concurrency ~= nil or opts.details or opts.series then
    local concurrency = check_many({ concurrency = opts.concurrency }, "each")
    local checked = {}
    for k, v in pairs(opts) do checked[k] = v end
    checked.concurrency = concurrency
    if checked.series and checked.series.ending_at ~= nil then
      checked.series = { length = checked.series.length,
        ending_at = args.ending_at(checked.series.ending_at, "each") }
    end
    return each.pipelined(p, checked)
  end
  return each.plain(p, opts)
end

braze.Client = Client
braze.errors = errors
return braze
