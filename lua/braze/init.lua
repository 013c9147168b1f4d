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
local check = require("braze.check")
local url = require("braze.url")
local date = require("braze.date")
local errors = require("braze.errors")
local scheduler = require("braze.scheduler")
local each = require("braze.each")
local window = require("braze.window")
local instances = require("braze.instances")
local options = require("braze.options")
local VERSION = require("braze.version")

local type, pairs, setmetatable, error = type, pairs, setmetatable, error
local os_getenv, format = os.getenv, string.format

---@class braze
local braze = {
  _VERSION = "lua-braze " .. VERSION,
  null = core.null,
  instances = instances,
}

--- Decode a JSON text with the C decoder.
---@param text string
---@param max_depth? integer nesting limit (default 1000)
---@return any value
---@return string? message
---@return integer? position
function braze.decode(text, max_depth)
  return core.decode(text, max_depth)
end

--- Let Ctrl-C stop a waiting or running call at once (opt-in).
-- Without it, SIGINT waits for the request in flight (up to `timeout`
-- seconds per attempt, for each retry). After `braze.catch_interrupt()`
-- SIGINT only sets a flag: a transfer in progress is aborted and its call
-- returns `nil, err` with `err.kind == "interrupted"` (`each` raises it), a
-- retry's wait ends at once, and so does every later call until
-- `braze.release_interrupt()` (or another `catch_interrupt()`) clears the
-- flag. Ctrl-C then no longer ends the program by itself: end it when a
-- call fails with that kind, as braze-segments does (exit status 130).
--
--     assert(braze.catch_interrupt())
--     local page, err = client:list()
--     if not page and err.kind == "interrupted" then os.exit(130) end
--
-- SIGINT belongs to the process: call it from the main program (not from a
-- library, nor in nginx, HAProxy or Neovim, which handle their own signals).
---@return true|nil ok
---@return string? message
function braze.catch_interrupt()
  return core.catch_interrupt()
end

--- Whether SIGINT arrived since `braze.catch_interrupt()`.
---@return boolean
function braze.interrupted()
  return core.interrupted()
end

--- Put back the SIGINT handler `braze.catch_interrupt()` replaced, and clear its flag.
function braze.release_interrupt()
  return core.release_interrupt()
end


-- braze.Options (the annotation) and every default, range and doc: braze.options.

---@class braze.Client
local Client = {}
Client.__index = Client
Client.__name = "braze.Client"

-- What only the client's methods may see: kept off the client table so that
-- dumping or printing a client cannot show the key.
local private = setmetatable({}, { __mode = "k" })


--- Make a client.
---@param opts braze.Options
---@return braze.Client
function braze.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("braze.new: expected a table of options (got " .. type(opts) .. ")", 2)
  end
  check.options(opts, options.NAMES, "braze.new")
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
    error("braze: allow_http must be true or false (got " .. check.show(opts.allow_http) .. ")", 2)
  end
  if opts.sleep ~= nil and type(opts.sleep) ~= "function" then
    error("braze: sleep must be a function(seconds)", 2)
  end
  local base, why = url.base(opts)
  if not base then error(why, 2) end

  -- Every option is checked before a connection is made.
  local numbers = options.check(opts)
  local config = {
    api_key = key,
    timeout = numbers.timeout,
    connect_timeout = numbers.connect_timeout,
    user_agent = opts.user_agent or ("lua-braze/" .. VERSION),
    max_body = numbers.max_body,
    max_depth = numbers.max_depth,
    ca_file = opts.ca_file, ca_path = opts.ca_path, proxy = opts.proxy,
  }
  local policy = numbers
  policy.store = window.check_store(opts.window)
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
    yields = transport ~= nil and transport.yields == true, -- see braze.scheduler.protect
    reserve = policy.reserve, window = window.of(base, key, policy.store), -- the workspace's, shared
  }
  return client
end

-- A call's answer with the segment it was about named in its error
-- (`err.segment_id`, which tostring(err) shows), redacted as every field is.
local function about_segment(hidden, segment_id, body, err)
  if err and err.segment_id == nil then err.segment_id = hidden.redact(segment_id) end
  return body, err
end

-- The same for a batch: `errs[i]` is about `segment_id_of(i)`.
local function about_segments(hidden, segment_id_of, results, errs)
  for i, err in pairs(errs) do
    if err.segment_id == nil then err.segment_id = hidden.redact(segment_id_of(i)) end
  end
  return results, errs
end

local function state(client)
  local hidden = private[client]
  if not hidden then error("braze: expected a client (use client:method, not client.method)", 3) end
  if not hidden.conn then error("braze: client is closed", 3) end
  return hidden
end

function Client:__tostring()
  local hidden = private[self]
  return format("braze.Client(%s, key %s%s)", self.endpoint, hidden and hidden.key_hint or "?",
    (hidden and hidden.conn) and "" or ", closed")
end

--- Close the connection. Idempotent; also runs on `__close` and garbage collection.
function Client:close()
  local hidden = private[self]
  if hidden and hidden.conn then
    hidden.conn:close()
    hidden.conn = nil
  end
end
Client.__close = Client.close

--- A copy of the workspace's rate-limit window (shared by the clients of the
-- key in this Lua state) from X-RateLimit-* headers: `{limit=, remaining=,
-- reset=}` (the lowest remaining of the window; nil fields where no header
-- told), or nil before any such response.
---@return braze.RateLimit|nil window
function Client:rate_limit()
  return state(self).window:snapshot()
end

local many_options = { concurrency = true }

local function check_many(opts, what)
  opts = opts or {}
  if type(opts) ~= "table" then error(format("braze: %s: expected a table of options", what), 3) end
  check.options(opts, many_options, what, 4) -- at the caller of details_many / data_series_many
  local concurrency = opts.concurrency
  if concurrency == nil then return options.default("concurrency") end
  local _, why = options.check_value("concurrency", concurrency, what .. ": concurrency")
  if why then error("braze: " .. why, 3) end
  return concurrency
end

local list_options = { page = true, sort_direction = true }

local check_sort, check_page = check.sort_direction, check.page_number

--- One page of segments (up to 100, oldest first by default).
---@param opts? {page?: integer, sort_direction?: "asc"|"desc"}
---@return braze.SegmentPage|nil page
---@return braze.Error|nil err
function Client:list(opts)
  local hidden = state(self)
  opts = opts or {}
  if type(opts) ~= "table" then error("braze: list: expected a table of options", 2) end
  check.options(opts, list_options, "list")
  check_page(opts.page, "list", "page")
  if opts.page ~= nil and opts.page > each.MAX_PAGE then -- as each's: page numbers stay exact
    error(format("braze: list: page must be at most 2^52 (got %s)", check.show(opts.page)), 2)
  end
  check_sort(opts.sort_direction, "list")
  local page = opts.page and format("%d", opts.page)
  return scheduler.request(hidden, "/segments/list",
    url.query("page", page, "sort_direction", opts.sort_direction))
end

--- One segment's details.
---@param segment_id string
---@return braze.SegmentDetails|nil details
---@return braze.Error|nil err
function Client:details(segment_id)
  local hidden = state(self)
  if type(segment_id) == "table" then
    check.options(segment_id, { segment_id = true }, "details")
    segment_id = segment_id.segment_id
  end
  local _, why = check.segment_id(segment_id, "details")
  if why then error(why, 2) end
  return about_segment(hidden, segment_id,
    scheduler.request(hidden, "/segments/details", url.query("segment_id", segment_id)))
end

local series_options = { segment_id = true, length = true, ending_at = true }

-- The query of one data_series request, or nil and a message.
local function series_query(opts, what)
  check.options(opts, series_options, what, 4)
  local id, why = check.segment_id(opts.segment_id, what)
  if not id then return nil, why end
  local length = opts.length
  local _, bad_length = options.check_value("length", length, what .. ": length")
  if bad_length then return nil, "braze: " .. bad_length end
  local ending_at
  if opts.ending_at ~= nil then
    ending_at, why = date.ending_at(opts.ending_at, what)
    if not ending_at then return nil, why end
  end
  return url.query("segment_id", id, "length", format("%d", length), "ending_at", ending_at)
end

--- A segment's estimated size, one point a day.
---@param opts {segment_id: string, length: integer, ending_at?: string|number}
---@return braze.DataSeries|nil series
---@return braze.Error|nil err
function Client:data_series(opts)
  local hidden = state(self)
  if type(opts) ~= "table" then
    error("braze: data_series: expected a table {segment_id=, length=, ending_at=}", 2)
  end
  local query, why = series_query(opts, "data_series")
  if not query then error(why, 2) end
  return about_segment(hidden, opts.segment_id, scheduler.request(hidden, "/segments/data_series", query))
end

--- Many segments' details at once, over concurrent connections.
-- Same retry and rate-limit rules as `details`; never sends more requests
-- than the rate-limit window has left.
---@param ids string[] segment ids
---@param opts? {concurrency?: integer} transfers at once, 1..64 (default 8)
---@return table<integer, braze.SegmentDetails> results `results[i]` is the details of `ids[i]`, or nil when it failed
---@return table<integer, braze.Error> errors `errors[i]` is the error of `ids[i]`, or nil; empty when all succeeded
function Client:details_many(ids, opts)
  local p = state(self)
  if type(ids) ~= "table" or (#ids == 0 and next(ids) ~= nil) then
    error("braze: details_many: ids must be an array of segment ids (got " .. check.show(ids) .. ")", 2)
  end
  local concurrency = check_many(opts, "details_many")
  local queries = {}
  for i = 1, #ids do
    local id = ids[i]
    if type(id) ~= "string" or id == "" then
      error(format("braze: details_many: ids[%d] must be a non-empty string (got %s)", i,
        check.show(id)), 2)
    end
    local _, why = check.segment_id(id, format("details_many: ids[%d]", i))
    if why then error(why, 2) end
    queries[i] = url.query("segment_id", id)
  end
  return about_segments(p, function(i) return ids[i] end,
    scheduler.request_many(p, "/segments/details", queries, concurrency))
end

--- Many size series at once, over concurrent connections.
---@param requests {segment_id: string, length: integer, ending_at?: string|number}[]
---@param opts? {concurrency?: integer} transfers at once, 1..64 (default 8)
---@return table<integer, braze.DataSeries> results `results[i]` answers `requests[i]`, or nil when it failed
---@return table<integer, braze.Error> errors `errors[i]` is the error of `requests[i]`, or nil
function Client:data_series_many(requests, opts)
  local p = state(self)
  if type(requests) ~= "table" or (#requests == 0 and next(requests) ~= nil) then
    error("braze: data_series_many: requests must be an array of {segment_id=, length=, ending_at=} (got "
      .. check.show(requests) .. ")", 2)
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
  return about_segments(p, function(i) return requests[i].segment_id end,
    scheduler.request_many(p, "/segments/data_series", queries, concurrency))
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
---@return fun(): braze.EachSegment, integer
function Client:each(opts)
  local p = state(self)
  opts = opts or {}
  if type(opts) ~= "table" then error("braze: each: expected a table of options", 2) end
  check.options(opts, each_options, "each")
  check_sort(opts.sort_direction, "each")
  check_page(opts.page, "each", "page")
  check_page(opts.max_pages, "each", "max_pages")
  for _, name in ipairs({ "page", "max_pages" }) do
    if opts[name] ~= nil and opts[name] > each.MAX_PAGE then -- beyond, page + 1 is not exact
      error(format("braze: each: %s must be at most 2^52 (got %s)", name, check.show(opts[name])), 2)
    end
  end
  if opts.details ~= nil and type(opts.details) ~= "boolean" then
    error("braze: each: details must be true or false (got " .. check.show(opts.details) .. ")", 2)
  end
  if opts.series ~= nil then
    if type(opts.series) ~= "table" then
      error("braze: each: series must be a table {length=, ending_at=} (got "
        .. check.show(opts.series) .. ")", 2)
    end
    local probe = { segment_id = "x", length = opts.series.length, ending_at = opts.series.ending_at }
    check.options(opts.series, each_series_options, "each: series")
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
        ending_at = date.ending_at(checked.series.ending_at, "each") }
    end
    return each.pipelined(p, checked)
  end
  return each.plain(p, opts)
end

--- The client class (its methods above), for `getmetatable` checks and extension.
braze.Client = Client
--- Error objects: `braze.errors.is(v)` and the `braze.Error` methods.
braze.errors = errors
return braze
