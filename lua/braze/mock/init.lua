--[==[
braze.mock: a local server that behaves like Braze's segment-export REST API.

It serves deterministic fake data on 127.0.0.1 and can be told to misbehave,
so clients can be tested against the failures real Braze (and the proxies in
front of it) produce. Pure Lua + LuaSocket; no JSON library needed.

  $ braze-mock --port 0 --segments 250
  braze-mock listening on http://127.0.0.1:41234 pid 12345

CLI options (bin/braze-mock):
  --host ADDR        loopback address to listen on (127.x.x.x, localhost, ::1); default 127.0.0.1
  --port N           TCP port, 0 = any free port; default 0
  --segments N       number of segments, 0..1000000; default 250
  --api-key KEY      the only REST API key accepted; default braze-mock-key
  --rate-limit N     X-RateLimit-Limit per hourly window; default 250000
  --latency MS       delay added to every API response; default 0

The first (and only) stdout line is `braze-mock listening on URL pid PID`.
The mock runs until GET /_mock/shutdown or SIGINT (both exit 0). SIGTERM
kills it at once (plain Lua cannot catch it); there is no state to lose.

API (GET only, `Authorization: Bearer KEY`):
  /segments/list?page=P&sort_direction=asc|desc      100 segments per page
  /segments/details?segment_id=ID
  /segments/data_series?segment_id=ID&length=1..100&ending_at=ISO8601
Errors: 400 {"message":..,"errors":[..]} on bad parameters, 401
{"message":"Invalid API key: <key>"} with empty X-RateLimit-* headers, 404
{"message":"Invalid URL"}, 405 for non-GET, 429 when the hourly limit is used up.

Data: segment i (1..N, creation order) has a stable uuid-shaped id (the same
for every N), and names include a comma, double quotes, a newline, a tab, a
backslash and non-ASCII UTF-8. Segment 5, 10, ... have "description": null.
data_series sizes are deterministic per (segment, day); segment 1's exceed 2^32.
The last data_series day is the UTC date of ending_at (offsets are applied).

Control API (no auth; answers JSON; not counted as API requests):
  GET /_mock/fault?type=T[&count=N][&path=/segments/list][&param=...]
      Queue N (default 1) faults of type T for the next API requests to
      `path` (any API path if omitted). Each request consumes the oldest
      matching fault. Answers {"queued":N}. Types and their parameters:
        429            Remaining 0, Reset now+reset_in (default 1 s);
                       retry_after=S adds `Retry-After: S`
        500 503 504    JSON {"message":...}
        502            HTML body, Content-Type text/html (a proxy's page)
        status         code=NNN (required), message=TEXT: any status, JSON body
        401 403        like Braze: invalid key / {"message":"Access Denied"}
        delay          ms=1000: wait, then answer normally
        hang           read the request, never answer (until the client leaves)
        trickle        the normal response, `bytes` (default 1) bytes every
                       `ms` (default 1000) ms
        close          full Content-Length, half the body, then close
        reset          close with a TCP RST right after reading the request
        truncate       200, half the body, Content-Length of the half
        malformed      200 {"segments":[1,2,}
        content_type   the normal response with Content-Type: text/html
        html200        200 with an HTML page
        huge           bytes=10485760: a valid list document of about that
                       size, streamed with a Content-Length
        nolength_huge  the same without Content-Length: framing=close (default,
                       end of body = end of connection) or framing=chunked
        deep           depth=100000: [[[...]]] nested that deep
        hugestring     bytes=1048576: a list whose one segment name is that long
        badutf8        a name containing the raw bytes \xff\xfe
        lonesurrogate  a name containing the escape \ud800 with no low surrogate
        redirect       302 to location= (default /segments/list)
        badheaders     normal body; X-RateLimit-Limit: lots,
                       X-RateLimit-Remaining: garbage, X-RateLimit-Reset: -
        raw            body=TEXT sent as a 200 JSON body, byte for byte
                       (code=NNN to use another status)
  GET /_mock/stats     {"requests":N,"by_path":{"/segments/list":n,...},"connections":N}
                       (connections = all accepted TCP connections, control ones too)
  GET /_mock/requests  {"requests":[{"method":..,"path":..,"query":{..decoded..},
                       "raw_query":..,"authorization":..|null,"user_agent":..|null},...]}
                       API requests in order, the last 10000
  GET /_mock/reset     clear faults, stats, request log and the rate-limit counter
  GET /_mock/shutdown  answer {"message":"bye"}, then stop serving

Lua API:  local mock = require("braze.mock")
  mock.serve(opts)  -> true | nil, err   (opts as the CLI: host, port, segments,
                                          api_key, rate_limit, latency, quiet)
  mock.new(opts) -> server; server:listen(); server.url; server:run(); server:close()
  mock.segment(i), mock.segment_id(i), mock.series_size(i, day),
  mock.encode_json(v), mock.null, mock.array(t), mock.object(k, v, ...),
  mock.parse_iso8601(s) -> epoch seconds | nil, err
Runs on Lua 5.1 .. 5.4 (no goto, //, bit operators or <close>).
--]==]

local socket = require("socket")

local M = { _VERSION = "0.1.0" }

local byte, char, find, format, gsub, lower, match, rep, sub =
  string.byte, string.char, string.find, string.format, string.gsub,
  string.lower, string.match, string.rep, string.sub
local concat, sort = table.concat, table.sort
local floor, huge, random = math.floor, math.huge, math.random
local tonumber, tostring, type, pairs, ipairs, setmetatable, getmetatable =
  tonumber, tostring, type, pairs, ipairs, setmetatable, getmetatable
local gettime = socket.gettime
local co_create, co_resume, co_status, co_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local mtype = math.type -- nil before 5.3

local DEFAULTS = {
  host = "127.0.0.1", port = 0, segments = 250, api_key = "braze-mock-key",
  rate_limit = 250000, latency = 0,
}
M.DEFAULTS = DEFAULTS

local PAGE_SIZE = 100
local MAX_SEGMENTS = 1000000
local MAX_REQUEST_LINE = 8192
local MAX_HEAD = 32768
local MAX_HEADERS = 100
local MAX_BODY = 1048576
local MAX_CONNECTIONS = 900 -- stay well under select()'s FD_SETSIZE of 1024
local MAX_LOG = 10000
local IDLE_TIMEOUT = 75 -- seconds a keep-alive connection may sit idle
local WRITE_TIMEOUT = 60 -- seconds a stalled reader may block one response
local LINGER_TIMEOUT = 1 -- seconds to drain a client before closing on it
local MAX_WAIT = 0.25 -- select() cap, so SIGINT is noticed promptly
local STREAM_CHUNK = 65536

---------------------------------------------------------------------------
-- JSON encoder. Objects keep key order when built with M.object (Braze puts
-- "message" last in list bodies and clients must not depend on order, so the
-- mock reproduces it); arrays that may be empty are marked with M.array.
---------------------------------------------------------------------------

local NULL = setmetatable({}, { __tostring = function() return "null" end })
local ARRAY_MT, OBJECT_MT = {}, {}
M.null = NULL

--- Mark t as a JSON array, so an empty table encodes as [] and not {}.
function M.array(t) return setmetatable(t or {}, ARRAY_MT) end

--- An object whose keys encode in the given order: object("a", 1, "b", NULL).
function M.object(...)
  return setmetatable({ n = select("#", ...), ... }, OBJECT_MT)
end
local array, object = M.array, M.object

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
local function escape_char(c)
  return ESCAPES[c] or format("\\u%04x", byte(c))
end

-- Only what JSON requires is escaped; bytes >= 0x80 pass through, so UTF-8
-- (and, for the badutf8 fault, non-UTF-8) reaches the client unchanged.
local function encode_string(s)
  return '"' .. gsub(s, '[%z\1-\31"\\]', escape_char) .. '"'
end

local function encode_number(v)
  if mtype and mtype(v) == "integer" then return tostring(v) end
  if v ~= v or v == huge or v == -huge then
    error("cannot encode " .. tostring(v) .. " as JSON", 0)
  end
  if v == floor(v) and v > -2^53 and v < 2^53 then return format("%.0f", v) end
  return format("%.17g", v)
end

local encode_value

local function encode_table(t, out)
  local mt = getmetatable(t)
  if mt == OBJECT_MT then
    out[#out + 1] = "{"
    for k = 1, t.n, 2 do
      if k > 1 then out[#out + 1] = "," end
      out[#out + 1] = encode_string(t[k]) .. ":"
      encode_value(t[k + 1], out)
    end
    out[#out + 1] = "}"
  elseif mt == ARRAY_MT or t[1] ~= nil then
    out[#out + 1] = "["
    for k = 1, #t do
      if k > 1 then out[#out + 1] = "," end
      encode_value(t[k], out)
    end
    out[#out + 1] = "]"
  else -- plain table: an object with sorted keys, so output is stable
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = tostring(k) end
    sort(keys)
    out[#out + 1] = "{"
    for k, key in ipairs(keys) do
      if k > 1 then out[#out + 1] = "," end
      out[#out + 1] = encode_string(key) .. ":"
      local v = t[key]
      if v == nil then v = t[tonumber(key)] end
      encode_value(v, out)
    end
    out[#out + 1] = "}"
  end
end

function encode_value(v, out)
  local tv = type(v)
  if v == nil or v == NULL then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then out[#out + 1] = encode_number(v)
  elseif tv == "string" then out[#out + 1] = encode_string(v)
  elseif tv == "table" then encode_table(v, out)
  else error("cannot encode a " .. tv .. " as JSON", 0) end
end

--- Encode a Lua value as JSON text.
function M.encode_json(v)
  local out = {}
  encode_value(v, out)
  return concat(out)
end
local encode_json = M.encode_json

---------------------------------------------------------------------------
-- Dates: pure arithmetic in UTC, so the host's time zone never matters.
---------------------------------------------------------------------------

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function days_in_month(y, m)
  if m == 12 then return 31 end
  return days_from_civil(y, m + 1, 1) - days_from_civil(y, m, 1)
end

local function iso_date(day) return os.date("!%Y-%m-%d", day * 86400) end

local function iso_datetime(secs, millis)
  return os.date("!%Y-%m-%dT%H:%M:%S", secs) .. format(".%03dZ", millis or 0)
end

--- Parse ISO 8601 (YYYY-MM-DD, or with THH:MM[:SS[.fff]] and Z / +HH:MM / -HHMM;
--- no zone means UTC) into epoch seconds. Returns nil, reason when invalid.
function M.parse_iso8601(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local y, mo, d, rest = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil, "expected YYYY-MM-DD" end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if y < 1 or mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) then
    return nil, "no such date"
  end
  local h, mi, sec, frac, zone = 0, 0, 0, "", ""
  if rest ~= "" then
    local hs, mis, tail = match(rest, "^[Tt ](%d%d):(%d%d)(.*)$")
    if not hs then return nil, "expected THH:MM after the date" end
    local secs, tail2 = match(tail, "^:(%d%d)(.*)$")
    if secs then
      frac, tail = match(tail2, "^(%.?%d*)(.*)$")
      if frac == "." then return nil, "empty fraction of a second" end
    end
    h, mi, sec, zone = tonumber(hs), tonumber(mis), tonumber(secs or "0"), tail
    if h > 23 or mi > 59 or sec > 60 then return nil, "time out of range" end
  end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "z" then
    local sign, zh, zm = match(zone, "^([+-])(%d%d):?(%d%d)$")
    if not sign then sign, zh = match(zone, "^([+-])(%d%d)$"); zm = "00" end
    if not sign then return nil, "bad time zone" end
    zh, zm = tonumber(zh), tonumber(zm)
    if zh > 23 or zm > 59 then return nil, "time zone out of range" end
    offset = (zh * 60 + zm) * 60
    if sign == "-" then offset = -offset end
  end
  local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
  if frac ~= "" then t = t + tonumber("0" .. frac) end
  return t
end
local parse_iso8601 = M.parse_iso8601

---------------------------------------------------------------------------
-- Deterministic data. Multiplication mod 2^32 is done in 16-bit halves so
-- every product stays below 2^53: exact on Lua 5.1 doubles and 5.4 integers.
---------------------------------------------------------------------------

local TWO32 = 4294967296
local GOLDEN = 2654435761 -- odd, so x -> x*GOLDEN mod 2^32 is a bijection...
local GOLDEN_INV = 244002641 -- ...and this undoes it: GOLDEN*GOLDEN_INV = 1 mod 2^32
local ID_OFFSET = 1540483477 -- added so ids do not start with the well-known 9e3779b1

local function mulmod32(a, b)
  local a_hi, a_lo = floor(a / 65536), a % 65536
  return ((a_hi * b) % 65536 * 65536 + a_lo * b) % TWO32
end

-- A cheap integer hash: deterministic, varied, no bit operators needed.
local function mix(x, salt)
  local h = mulmod32((x + salt * 40503) % TWO32, GOLDEN)
  h = mulmod32((h + floor(h / 65536) + salt) % TWO32, 2246822519)
  return (h + floor(h / 8192)) % TWO32
end

local BASES = { -- name, text_description (the filter a Braze user would see)
  { "Lapsed Users - 7 days", "Last used app more than 7 days ago" },
  { 'VIP, "Gold" tier', 'Total revenue more than 500 AND custom attribute "tier" is "gold"' },
  { "Push opt-ins\n(iOS)", "Push subscription status is opted in AND platform is iOS" },
  { "Café ☕ fans", 'Purchased product "Espresso" at least once' },
  { "High Value Customers", "Total revenue more than 1000" },
  { "New Signups - Last 30 Days", "First used app less than 30 days ago" },
  { "Cart Abandoners", 'Custom event "cart_abandoned" more than 0 times in the last 7 days' },
  { "Zürich & München commuters", "Most recent location within 20 km of Zürich or München" },
  { "Trial ending: 3 days", 'Custom attribute "trial_end" in less than 3 days' },
  { "Android Power Users", "Platform is Android AND session count more than 50" },
  { "Email Subscribers", "Email subscription status is subscribed" },
  { "日本のユーザー", "Language is Japanese" },
  { "Dormant > 90 days", "Last used app more than 90 days ago" },
  { "Holiday Sale 2023 — Openers", 'Opened campaign "Holiday Sale 2023"' },
  { "Loyalty Program Members", 'Custom attribute "loyalty_member" is true' },
  { "Web visitors, no app", "Has used web AND has not used any mobile app" },
  { "Beta Testers", 'Custom attribute "beta" is true' },
  { "Churn risk (score ≥ 0.8)", "Predicted churn risk at least 0.8" },
  { "First Purchase Completed", "Made first purchase" },
  { "Import\tC:\\exports\\legacy", "Member of imported CSV list legacy.csv" },
}
local TAGS = { "retention", "onboarding", "q4-campaign", "vip", "ml-generated", "emea", "do not delete" }
local TEAMS = { "Marketing", "Growth", "CRM", "Data Science" }
local T0 = 1577836800 -- 2020-01-01T00:00:00Z: segment 1 is created then
local CREATION_STEP = 37 * 3600

--- The id of segment i: uuid-shaped, lowercase, unique (its first field is a
--- bijection of i), identical whatever the number of segments.
function M.segment_id(i)
  return format("%08x-%04x-4%03x-8%03x-%04x%08x",
    (mulmod32(i, GOLDEN) + ID_OFFSET) % TWO32, mix(i, 1) % 65536, mix(i, 2) % 4096, mix(i, 3) % 4096,
    mix(i, 4) % 65536, mix(i, 5))
end
local segment_id = M.segment_id

--- All fields of segment i (description may be M.null).
function M.segment(i)
  local base = BASES[(i - 1) % #BASES + 1]
  local round = floor((i - 1) / #BASES)
  local name = base[1]
  if round > 0 then name = name .. " " .. (round + 1) end
  local tags = array()
  for k = 0, (i - 1) % 4 - 1 do tags[#tags + 1] = TAGS[(i + 3 * k) % #TAGS + 1] end
  local teams = array()
  for k = 0, i % 3 - 1 do teams[#teams + 1] = TEAMS[(i + k) % #TEAMS + 1] end
  local created = T0 + (i - 1) * CREATION_STEP + mix(i, 7) % 3600
  local updated = created + 60 + mix(i, 8) % (45 * 86400)
  return {
    index = i,
    id = segment_id(i),
    name = name,
    analytics_tracking_enabled = i % 3 ~= 0,
    tags = tags,
    teams = teams,
    description = (i % 5 == 0) and NULL or ("Audience: " .. name),
    text_description = base[2],
    created_at = iso_datetime(created, mix(i, 9) % 1000),
    updated_at = iso_datetime(updated, mix(i, 10) % 1000),
  }
end

--- Size of segment i on a day (days since 1970-01-01). Exact integers; segment
--- 1 is above 2^32 so clients that squeeze sizes through 32 bits get caught.
function M.series_size(i, day)
  local base = (i == 1) and 5000000000 or (500 + mix(i, 11) % 3000000)
  local d = day % TWO32
  return base + floor(base / 1000) * (d % 30) + mix((i * 31 + d) % TWO32, 12) % 997
end
local series_size = M.series_size

---------------------------------------------------------------------------
-- HTTP helpers
---------------------------------------------------------------------------

local REASONS = {
  [200] = "OK", [204] = "No Content", [301] = "Moved Permanently", [302] = "Found",
  [304] = "Not Modified", [307] = "Temporary Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [413] = "Payload Too Large",
  [414] = "URI Too Long", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

local function istr(n) return format("%.0f", n) end

local function hex_byte(h) return char(tonumber(h, 16)) end

-- `+` is a space and %XX any byte; a malformed escape stays as it is.
local function url_decode(s)
  return (gsub(gsub(s, "+", " "), "%%(%x%x)", hex_byte))
end
M.url_decode = url_decode

-- Decoded query; with repeated keys the last one wins (like most frameworks).
local function parse_query(raw)
  local q = {}
  for pair in string.gmatch(raw, "[^&]+") do
    local k, v = match(pair, "^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    q[url_decode(k)] = url_decode(v)
  end
  return q
end
M.parse_query = parse_query

local HTML_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
  .. "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
  .. "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
local HTML_200 = "<!DOCTYPE html>\n<html><head><title>Braze</title></head>\n"
  .. "<body><h1>Welcome</h1><p>Please sign in to continue.</p></body></html>\n"

---------------------------------------------------------------------------
-- Scheduler: one coroutine per connection on non-blocking sockets. A task
-- yields ("read"|"write", sock, deadline) or ("sleep", nil, deadline) and is
-- resumed with "ready" or "timeout", so a slow task never blocks the others.
---------------------------------------------------------------------------

local Scheduler = {}
Scheduler.__index = Scheduler

local function new_scheduler() return setmetatable({ tasks = {} }, Scheduler) end

function Scheduler:resume(task, ...)
  local ok, what, sock, at = co_resume(task.co, ...)
  if not ok then
    io.stderr:write("braze-mock: task failed: ", tostring(what), "\n")
  end
  if co_status(task.co) == "dead" then
    task.dead = true
    if task.conn then task.conn:close() end
  else
    task.wait, task.sock, task.at = what, sock, at
  end
end

--- Run fn(...) in a new task; conn (if any) is closed when the task ends.
function Scheduler:spawn(conn, fn, ...)
  local task = { co = co_create(fn), conn = conn }
  self.tasks[#self.tasks + 1] = task
  self:resume(task, ...)
end

--- Wait for I/O or deadlines (at most max_wait seconds) and resume who is due.
function Scheduler:step(max_wait)
  local now = gettime()
  local deadline = now + max_wait
  local recvt, sendt, owner = {}, {}, {}
  for _, t in ipairs(self.tasks) do
    if t.wait == "read" then
      recvt[#recvt + 1] = t.sock; owner[t.sock] = t
    elseif t.wait == "write" then
      sendt[#sendt + 1] = t.sock; owner[t.sock] = t
    end
    if t.at and t.at < deadline then deadline = t.at end
  end
  local r, w = socket.select(recvt, sendt, deadline > now and deadline - now or 0)
  local due = {}
  for _, s in ipairs(r or {}) do if owner[s] then due[owner[s]] = "ready" end end
  for _, s in ipairs(w or {}) do if owner[s] then due[owner[s]] = "ready" end end
  now = gettime()
  local tasks = self.tasks
  for k = 1, #tasks do -- tasks spawned meanwhile are appended, not visited
    local t = tasks[k]
    if not t.dead then
      local why = due[t] or (t.at and t.at <= now and "timeout")
      if why then self:resume(t, why) end
    end
  end
  local alive = {}
  for _, t in ipairs(tasks) do if not t.dead then alive[#alive + 1] = t end end
  self.tasks = alive
end

function Scheduler:close_all()
  for _, t in ipairs(self.tasks) do
    if t.conn then t.conn:close() end
    t.dead = true
  end
  self.tasks = {}
end

-- Called from inside tasks:
local function wait_readable(sock, at) return co_yield("read", sock, at) end
local function wait_writable(sock, at) return co_yield("write", sock, at) end
local function sleep(seconds)
  if seconds > 0 then co_yield("sleep", nil, gettime() + seconds) end
end

---------------------------------------------------------------------------
-- Connection I/O (inside tasks)
---------------------------------------------------------------------------

-- Some bytes, or nil plus "closed" / "timeout" / a socket error.
local function recv_some(conn, deadline)
  while true do
    local data, err, partial = conn:receive(STREAM_CHUNK)
    local got = data or partial
    if got and got ~= "" then return got end
    if err ~= "timeout" then return nil, err end
    if wait_readable(conn, deadline) == "timeout" then return nil, "timeout" end
  end
end

-- send() may take only part of the data: it returns the last index sent.
local function send_all(conn, data)
  local i, n = 1, #data
  while i <= n do
    local last, err, partial_last = conn:send(data, i)
    if last then
      i = last + 1
    else
      if err ~= "timeout" then return nil, err end
      i = partial_last + 1
      if i <= n and wait_writable(conn, gettime() + WRITE_TIMEOUT) == "timeout" then
        return nil, "timeout"
      end
    end
  end
  return true
end

-- Close politely: stop sending, then read what the client still sends, so the
-- kernel does not turn our close into an RST that destroys the response.
local function linger_close(conn)
  conn:shutdown("send")
  local deadline = gettime() + LINGER_TIMEOUT
  while recv_some(conn, deadline) do end
end

-- Parse a request head; returns req, or nil, status, message.
local function parse_head(head)
  local line, rest = match(head, "^([^\r\n]*)\r?\n?(.*)$")
  local method, target, version = match(line, "^(%u+) (%S+) HTTP/(%d%.%d)$")
  if not method then return nil, 400, "Malformed request line" end
  local headers, count = {}, 0
  for hl in string.gmatch(rest, "[^\r\n]+") do
    local name, value = match(hl, "^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, 400, "Malformed header line" end
    count = count + 1
    if count > MAX_HEADERS then return nil, 431, "Too many header fields" end
    headers[lower(name)] = value
  end
  target = gsub(target, "^[hH][tT][tT][pP][sS]?://[^/]*", "") -- absolute form
  local path, raw_query = match(target, "^([^?]*)%??(.*)$")
  local conn_hdr = lower(headers.connection or "")
  local keep_alive
  if version == "1.1" then keep_alive = not find(conn_hdr, "close", 1, true)
  else keep_alive = find(conn_hdr, "keep-alive", 1, true) ~= nil end
  return {
    method = method, target = target, version = version, headers = headers,
    path = path, raw_query = raw_query, query = parse_query(raw_query),
    keep_alive = keep_alive,
  }
end

-- Read one request from conn (st.buf keeps bytes already received, for
-- pipelining). Returns req, or nil, status, message (answer and close), or nil.
local function read_request(conn, st)
  local deadline = gettime() + IDLE_TIMEOUT
  while true do
    st.buf = gsub(st.buf, "^\r?\n", "") -- stray CRLF between requests is allowed
    local s, e = find(st.buf, "\r?\n\r?\n")
    local line_end = find(st.buf, "\n", 1, true)
    if (line_end or #st.buf + 1) > MAX_REQUEST_LINE + 2 then
      return nil, 414, "Request line too long"
    end
    if s then
      if s > MAX_HEAD then return nil, 431, "Request header too large" end
      local req, status, msg = parse_head(sub(st.buf, 1, s - 1))
      st.buf = sub(st.buf, e + 1)
      if not req then return nil, status, msg end
      if req.headers["transfer-encoding"] then
        return nil, 501, "Request bodies with Transfer-Encoding are not supported"
      end
      local len = req.headers["content-length"]
      if len then
        if not match(len, "^%d+$") then return nil, 400, "Bad Content-Length" end
        len = tonumber(len)
        if len > MAX_BODY then return nil, 413, "Request body too large" end
        while #st.buf < len do -- read and discard the body
          local data = recv_some(conn, deadline)
          if not data then return nil end
          st.buf = st.buf .. data
        end
        st.buf = sub(st.buf, len + 1)
      end
      return req
    end
    if #st.buf > MAX_HEAD then return nil, 431, "Request header too large" end
    local data = recv_some(conn, deadline)
    if not data then return nil end
    st.buf = st.buf .. data
  end
end

-- "hang" fault: never answer; return once the client goes away.
local function hang(conn)
  while recv_some(conn, nil) do end
end

--[[ A response is a table:
  status, headers = { {name, value}, ... } (Content-Length and Connection are
  added here), and one of
    body = string                       (Content-Length: #body)
    stream = function -> chunk | nil, length = N | nil   (nil: framing below)
  and optionally: chunked = true (Transfer-Encoding: chunked), close = true
  (close after it), delay = seconds, trickle = {ms=, bytes=},
  cut = true (send half the body then close), hang = true, reset = true,
  after = function run once it is sent.
Returns true when the connection can serve another request. ]]
local function write_response(conn, resp, keep_alive)
  if resp.reset then
    conn:setoption("linger", { on = true, timeout = 0 }) -- close() now sends RST
    return false
  end
  if resp.hang then hang(conn); return false end
  if resp.delay then sleep(resp.delay) end
  local close = resp.close or resp.cut or not keep_alive
    or (resp.stream and not resp.length and not resp.chunked)
  local head = { format("HTTP/1.1 %d %s\r\n", resp.status, REASONS[resp.status] or "Status") }
  for _, h in ipairs(resp.headers) do head[#head + 1] = h[1] .. ": " .. h[2] .. "\r\n" end
  local length = resp.body and #resp.body or resp.length
  if length then head[#head + 1] = "Content-Length: " .. istr(length) .. "\r\n"
  elseif resp.chunked then head[#head + 1] = "Transfer-Encoding: chunked\r\n" end
  head[#head + 1] = close and "Connection: close\r\n\r\n" or "Connection: keep-alive\r\n\r\n"
  head = concat(head)

  local ok
  if resp.trickle then
    local data, step = head .. (resp.body or ""), resp.trickle.bytes
    ok = true
    for i = 1, #data, step do
      ok = send_all(conn, sub(data, i, i + step - 1))
      if not ok then break end
      if i + step <= #data then sleep(resp.trickle.ms / 1000) end
    end
  elseif resp.stream then
    ok = send_all(conn, head)
    while ok do
      local chunk = resp.stream()
      if not chunk then
        if resp.chunked then ok = send_all(conn, "0\r\n\r\n") end
        break
      end
      if resp.chunked then chunk = format("%x\r\n", #chunk) .. chunk .. "\r\n" end
      ok = send_all(conn, chunk)
    end
  else
    local body = resp.body
    if resp.cut then body = sub(body, 1, floor(#body / 2)) end
    ok = send_all(conn, head .. body)
  end
  if not ok then return false end
  if close then linger_close(conn) end
  return not close
end

---------------------------------------------------------------------------
-- The server
---------------------------------------------------------------------------

local Server = {}
Server.__index = Server

local function is_loopback(host)
  return host == "localhost" or host == "::1" or match(host, "^127%.%d+%.%d+%.%d+$") ~= nil
end

local function check_int(name, v, min, max)
  local n = tonumber(v)
  if not n or n ~= floor(n) or n < min or n > max then
    return nil, format("%s must be an integer from %s to %s, got %s", name, istr(min), istr(max), tostring(v))
  end
  return floor(n) -- an integer on 5.4 even when v was "1e3"
end

--- A server object (not listening yet). opts: see DEFAULTS. nil, err on bad opts.
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Server)
  for k, v in pairs(DEFAULTS) do
    if opts[k] == nil then self[k] = v else self[k] = opts[k] end
  end
  self.quiet = opts.quiet
  if type(self.host) ~= "string" or not is_loopback(self.host) then
    return nil, "host must be a loopback address (127.x.x.x, localhost or ::1), got " .. tostring(self.host)
  end
  if type(self.api_key) ~= "string" or self.api_key == "" or find(self.api_key, "[%c]") then
    return nil, "api_key must be a non-empty string without control characters"
  end
  local checks = {
    { "port", 0, 65535 }, { "segments", 0, MAX_SEGMENTS },
    { "rate_limit", 0, 2^40 }, { "latency", 0, 3600000 },
  }
  for _, c in ipairs(checks) do
    local n, err = check_int(c[1], self[c[1]], c[2], c[3])
    if not n then return nil, err end
    self[c[1]] = n
  end
  self.sched = new_scheduler()
  self.request_counter = 0
  self:reset()
  return self
end

--- Forget faults, stats, the request log and the rate-limit window.
function Server:reset()
  self.faults = {}
  self.stats = { requests = 0, by_path = {}, connections = 0 }
  self.log, self.log_first = {}, 1
  self.rl_window, self.rl_used = nil, 0
end

--- Bind and listen; sets self.url and self.port.
function Server:listen()
  local server, err = socket.bind(self.host, self.port, 128)
  if not server then return nil, format("cannot listen on %s:%s: %s", self.host, istr(self.port), tostring(err)) end
  server:settimeout(0)
  local addr, port = server:getsockname()
  self.server, self.port = server, tonumber(port)
  self.url = format(find(addr, ":", 1, true) and "http://[%s]:%s" or "http://%s:%s", addr, port)
  self.running = true
  self.sched:spawn(nil, function() self:accept_loop() end)
  return true
end

function Server:accept_loop()
  while self.running do
    local conn = self.server:accept()
    if conn then
      if #self.sched.tasks > MAX_CONNECTIONS then
        conn:close()
      else
        self.stats.connections = self.stats.connections + 1
        conn:settimeout(0)
        conn:setoption("tcp-nodelay", true)
        self.sched:spawn(conn, function() self:connection(conn) end)
      end
    else
      wait_readable(self.server)
    end
  end
end

function Server:connection(conn)
  local st = { buf = "" }
  while self.running do
    local req, status, msg = read_request(conn, st)
    if not req then
      if status then
        write_response(conn, self:json_response(status, object("message", msg)), false)
      end
      return
    end
    local resp = self:handle(req)
    local keep = write_response(conn, resp, req.keep_alive)
    if resp.after then resp.after() end
    if not keep then return end
  end
end

--- Serve until shutdown or SIGINT. Returns true, or nil, err on a crash.
function Server:run()
  local ok, err = pcall(function()
    while self.running do self.sched:step(MAX_WAIT) end
  end)
  self:close()
  -- lua.c turns SIGINT into the error "interrupted!": a normal way to stop.
  if not ok and not find(tostring(err), "interrupted!", 1, true) then
    return nil, tostring(err)
  end
  return true
end

function Server:close()
  self.running = false
  self.sched:close_all()
  if self.server then self.server:close(); self.server = nil end
end

-- Dispatch: /_mock/* is the control API, everything else the Braze API.
function Server:handle(req)
  if sub(req.path, 1, 7) == "/_mock/" then return self:control(req) end
  return self:api(req)
end

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

function Server:next_request_id()
  self.request_counter = self.request_counter + 1
  return format("mock-%d-%06x%06x", self.request_counter, random(0, 0xffffff), random(0, 0xffffff))
end

-- The rate-limit window is the UTC hour; returns the epoch of its end.
function Server:window_reset(now)
  local window = floor(now / 3600)
  if window ~= self.rl_window then self.rl_window, self.rl_used = window, 0 end
  return (window + 1) * 3600
end

-- Count one request against the limit: allowed, remaining, reset.
function Server:consume_rate()
  local reset = self:window_reset(gettime())
  if self.rl_used >= self.rate_limit then return false, 0, reset end
  self.rl_used = self.rl_used + 1
  return true, self.rate_limit - self.rl_used, reset
end

local function header_value(v) return type(v) == "number" and istr(v) or v end

-- An API response. rl = {limit=, remaining=, reset=} (strings or numbers),
-- "empty" for the header-present-but-empty 401 style, or nil for the current
-- window without consuming a request.
function Server:api_response(status, body, rl, content_type)
  if rl == nil then
    local reset = self:window_reset(gettime())
    rl = { remaining = self.rate_limit - self.rl_used, reset = reset }
  end
  local limit, remaining, reset = "", "", ""
  if rl ~= "empty" then
    limit = header_value(rl.limit or self.rate_limit)
    remaining, reset = header_value(rl.remaining), header_value(rl.reset)
  end
  return {
    status = status,
    headers = {
      { "Content-Type", content_type or "application/json; charset=utf-8" },
      { "X-RateLimit-Limit", limit },
      { "X-RateLimit-Remaining", remaining },
      { "X-RateLimit-Reset", reset },
      { "X-Request-Id", self:next_request_id() },
    },
    body = type(body) == "string" and body or (body and encode_json(body)),
  }
end

function Server:json_response(status, value)
  return {
    status = status,
    headers = { { "Content-Type", "application/json; charset=utf-8" } },
    body = encode_json(value),
  }
end

local function set_header(resp, name, value)
  for _, h in ipairs(resp.headers) do
    if lower(h[1]) == lower(name) then h[2] = value; return end
  end
  resp.headers[#resp.headers + 1] = { name, value }
end

local function bad_request(errors)
  return 400, object("message", errors[1], "errors", array(errors))
end

function Server:unauthorized(req)
  local auth = req.headers.authorization or ""
  local key = match(auth, "^[Bb]earer +(.*)$") or auth
  return self:api_response(401, object("message", "Invalid API key: " .. key), "empty")
end

---------------------------------------------------------------------------
-- Braze endpoints: each returns status, body-object
---------------------------------------------------------------------------

-- The index of the segment with this id, or nil: the id's first field is
-- i*GOLDEN + ID_OFFSET mod 2^32, so that is undone to recover i.
function Server:find_segment(id)
  local first = match(id, "^(%x%x%x%x%x%x%x%x)%-%x%x%x%x%-4%x%x%x%-8%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$")
  if not first then return nil end
  local i = mulmod32((tonumber(first, 16) - ID_OFFSET) % TWO32, GOLDEN_INV)
  if i >= 1 and i <= self.segments and segment_id(i) == id then return i end
  return nil
end

local ROUTES = {}

ROUTES["/segments/list"] = function(self, q)
  local errors = {}
  local page, dir = q.page, q.sort_direction or "asc"
  if page == nil then page = 0
  elseif match(page, "^%d+$") then page = tonumber(page)
  else errors[#errors + 1] = "page must be a non-negative integer" end
  if dir ~= "asc" and dir ~= "desc" then
    errors[#errors + 1] = "sort_direction must be asc or desc"
  end
  if #errors > 0 then return bad_request(errors) end
  local list, n = array(), self.segments
  local skip = page * PAGE_SIZE
  for k = 1, PAGE_SIZE do
    local pos = skip + k -- 1-based position in the requested order
    if pos > n then break end
    local i = (dir == "asc") and pos or (n - pos + 1)
    local s = M.segment(i)
    list[k] = object("id", s.id, "name", s.name,
      "analytics_tracking_enabled", s.analytics_tracking_enabled, "tags", s.tags)
  end
  return 200, object("segments", list, "message", "success")
end

-- Validates segment_id; returns its index or nil and appends to errors.
function Server:segment_param(q, errors)
  local id = q.segment_id
  if id == nil or id == "" then
    errors[#errors + 1] = "segment_id is required"
    return nil
  end
  local i = self:find_segment(id)
  if not i then errors[#errors + 1] = "Invalid segment_id: no segment has this id" end
  return i
end

ROUTES["/segments/details"] = function(self, q)
  local errors = {}
  local i = self:segment_param(q, errors)
  if not i then return bad_request(errors) end
  local s = M.segment(i)
  return 200, object("message", "success", "created_at", s.created_at,
    "updated_at", s.updated_at, "name", s.name, "description", s.description,
    "text_description", s.text_description, "tags", s.tags, "teams", s.teams)
end

ROUTES["/segments/data_series"] = function(self, q)
  local errors = {}
  local i = self:segment_param(q, errors)
  local length = q.length
  if length == nil or length == "" then
    errors[#errors + 1] = "length is required"
  elseif not match(length, "^%d+$") or tonumber(length) < 1 or tonumber(length) > 100 then
    errors[#errors + 1] = "length must be an integer from 1 to 100"
  end
  local ending = gettime()
  if q.ending_at ~= nil then
    local t, why = parse_iso8601(q.ending_at)
    if t and t < 100 * 86400 then
      errors[#errors + 1] = "ending_at must be after 1970-04-10"
    elseif t then ending = t
    else errors[#errors + 1] = "ending_at must be an ISO 8601 date or datetime (" .. why .. ")" end
  end
  if #errors > 0 then return bad_request(errors) end
  local last_day = floor(ending / 86400)
  local data = array()
  for day = last_day - tonumber(length) + 1, last_day do
    data[#data + 1] = object("time", iso_date(day), "size", series_size(i, day))
  end
  return 200, object("message", "success", "data", data)
end

-- The answer Braze itself would give, without faults.
function Server:normal_response(req)
  local route = ROUTES[req.path]
  if not route then return self:api_response(404, object("message", "Invalid URL")) end
  if req.method ~= "GET" then
    local resp = self:api_response(405, object("message", "Method " .. req.method .. " not allowed: use GET"))
    set_header(resp, "Allow", "GET")
    return resp
  end
  local auth = req.headers.authorization
  if auth ~= "Bearer " .. self.api_key then return self:unauthorized(req) end
  local allowed, remaining, reset = self:consume_rate()
  if not allowed then
    return self:api_response(429, object("message", "API rate limit exceeded"),
      { remaining = 0, reset = reset })
  end
  local status, body = route(self, req.query)
  return self:api_response(status, body, { remaining = remaining, reset = reset })
end

function Server:record(req)
  local stats = self.stats
  stats.requests = stats.requests + 1
  stats.by_path[req.path] = (stats.by_path[req.path] or 0) + 1
  local log = self.log
  log[#log + 1] = object("method", req.method, "path", req.path, "query", req.query,
    "raw_query", req.raw_query, "authorization", req.headers.authorization or NULL,
    "user_agent", req.headers["user-agent"] or NULL)
  -- Keep the last MAX_LOG entries: skip old ones by moving log_first, and
  -- copy the live part to a fresh table now and then instead of shifting.
  if #log - self.log_first + 1 > MAX_LOG then
    log[self.log_first] = false
    self.log_first = self.log_first + 1
    if self.log_first > MAX_LOG then
      local live = {}
      for k = self.log_first, #log do live[#live + 1] = log[k] end
      self.log, self.log_first = live, 1
    end
  end
end

function Server:api(req)
  self:record(req)
  local fault = self:take_fault(req.path)
  local resp
  if fault and fault.kind.replace then resp = fault.kind.replace(self, fault.params, req) end
  if not resp then
    resp = self:normal_response(req)
    if fault then fault.kind.wrap(self, fault.params, resp, req) end
  end
  if self.latency > 0 then resp.delay = (resp.delay or 0) + self.latency / 1000 end
  return resp
end

---------------------------------------------------------------------------
-- Faults. Each kind either replaces the response (replace) or alters the
-- normal one (wrap). `ints` lists integer parameters and their defaults.
---------------------------------------------------------------------------

local function const_json(status, message)
  return { replace = function(self) return self:api_response(status, object("message", message)) end }
end

-- A streamed body: head, then `count` pieces made by piece(k), then tail.
-- Pieces are grouped into ~64 KiB chunks so nothing large is ever built.
local function piece_stream(head, count, piece, sep, tail)
  local k, done = 0, false
  return function()
    if done then return nil end
    local out, size = {}, 0
    if k == 0 then out[1] = head; size = #head end
    while k < count and size < STREAM_CHUNK do
      k = k + 1
      local p = (k > 1 and sep or "") .. piece(k)
      out[#out + 1] = p
      size = size + #p
    end
    if k >= count then out[#out + 1] = tail; done = true end
    return concat(out)
  end
end

local LIST_HEAD, LIST_TAIL = '{"segments":[', '],"message":"success"}'
local function bulk_item(k)
  return format('{"id":"%08x-0000-4000-8000-%012x","name":"Bulk segment %010d","analytics_tracking_enabled":true,"tags":[]}',
    k % TWO32, k, k)
end
local BULK_LEN = #bulk_item(1)

local function huge_list(self, p)
  local count = floor((p.bytes - #LIST_HEAD - #LIST_TAIL + 1) / (BULK_LEN + 1))
  if count < 0 then count = 0 end
  local resp = self:api_response(200, nil)
  resp.stream = piece_stream(LIST_HEAD, count, bulk_item, ",", LIST_TAIL)
  resp.length = #LIST_HEAD + #LIST_TAIL + count * BULK_LEN + (count > 0 and count - 1 or 0)
  return resp
end

-- A list with one segment whose name is given as JSON text.
local NAME_HEAD = LIST_HEAD .. '{"id":"00000000-0000-4000-8000-000000000000","name":'
local NAME_TAIL = ',"analytics_tracking_enabled":true,"tags":[]}' .. LIST_TAIL
local function one_segment_list(name_json) return NAME_HEAD .. name_json .. NAME_TAIL end

local FAULTS = {
  ["500"] = const_json(500, "Internal Server Error"),
  ["503"] = const_json(503, "Service Unavailable"),
  ["504"] = const_json(504, "Gateway Timeout"),
  ["403"] = const_json(403, "Access Denied"),
  ["401"] = { replace = function(self, _, req) return self:unauthorized(req) end },
  ["429"] = {
    ints = { reset_in = 1 },
    replace = function(self, p)
      local resp = self:api_response(429, object("message", "API rate limit exceeded"),
        { remaining = 0, reset = floor(gettime()) + p.reset_in })
      if p.retry_after then set_header(resp, "Retry-After", p.retry_after) end
      return resp
    end,
  },
  ["502"] = {
    replace = function()
      return { status = 502, body = HTML_502, headers = { { "Content-Type", "text/html" }, { "Server", "nginx" } } }
    end,
  },
  status = {
    ints = { code = false },
    replace = function(self, p)
      return self:api_response(p.code, object("message", p.message or REASONS[p.code] or ("HTTP " .. p.code)))
    end,
  },
  delay = { ints = { ms = 1000 }, wrap = function(_, p, resp) resp.delay = p.ms / 1000 end },
  hang = { replace = function() return { hang = true } end },
  reset = { replace = function() return { reset = true } end },
  trickle = {
    ints = { ms = 1000, bytes = 1 },
    wrap = function(_, p, resp) resp.trickle = { ms = p.ms, bytes = math.max(1, p.bytes) } end,
  },
  close = { wrap = function(_, _, resp) resp.cut = true end },
  truncate = {
    wrap = function(_, _, resp) resp.body = sub(resp.body, 1, floor(#resp.body / 2)) end,
  },
  content_type = { wrap = function(_, _, resp) set_header(resp, "Content-Type", "text/html") end },
  badheaders = {
    wrap = function(_, _, resp)
      set_header(resp, "X-RateLimit-Limit", "lots")
      set_header(resp, "X-RateLimit-Remaining", "garbage")
      set_header(resp, "X-RateLimit-Reset", "-")
    end,
  },
  malformed = { replace = function(self) return self:api_response(200, '{"segments":[1,2,}') end },
  html200 = { replace = function(self) return self:api_response(200, HTML_200, nil, "text/html; charset=utf-8") end },
  huge = { ints = { bytes = 10485760 }, replace = huge_list },
  nolength_huge = {
    ints = { bytes = 10485760 },
    replace = function(self, p)
      local resp = huge_list(self, p)
      resp.length = nil
      resp.chunked = (p.framing == "chunked")
      return resp
    end,
  },
  deep = {
    ints = { depth = 100000 },
    replace = function(self, p) return self:api_response(200, rep("[", p.depth) .. rep("]", p.depth)) end,
  },
  hugestring = {
    ints = { bytes = 1048576 },
    replace = function(self, p)
      local head, tail = NAME_HEAD .. '"', '"' .. NAME_TAIL
      local pieces, last = floor(p.bytes / STREAM_CHUNK), p.bytes % STREAM_CHUNK
      local full = rep("x", STREAM_CHUNK)
      local resp = self:api_response(200, nil)
      resp.stream = piece_stream(head, pieces + 1, function(k)
        return k <= pieces and full or rep("x", last)
      end, "", tail)
      resp.length = #head + p.bytes + #tail
      return resp
    end,
  },
  badutf8 = { replace = function(self) return self:api_response(200, one_segment_list('"bad \255\254 bytes"')) end },
  lonesurrogate = {
    replace = function(self) return self:api_response(200, one_segment_list('"lone \\ud800 surrogate"')) end,
  },
  redirect = {
    replace = function(self, p)
      local resp = self:api_response(302, object("message", "Found"))
      set_header(resp, "Location", p.location or "/segments/list")
      return resp
    end,
  },
  raw = {
    ints = { code = 200 },
    replace = function(self, p) return self:api_response(p.code, p.body or "") end,
  },
}
M.FAULT_TYPES = {}
for name in pairs(FAULTS) do M.FAULT_TYPES[#M.FAULT_TYPES + 1] = name end
sort(M.FAULT_TYPES)

-- Ranges of integer fault parameters; others are 0 .. 2^40. deep builds its
-- body in memory, so its depth is kept reasonable.
local PARAM_RANGES = { code = { 100, 599 }, depth = { 0, 10000000 } }

-- Validate a /_mock/fault query; returns the queued fault template or nil, err.
local function fault_from_query(q)
  local kind = FAULTS[q.type or ""]
  if not kind then
    return nil, "unknown fault type " .. tostring(q.type) .. "; known: " .. concat(M.FAULT_TYPES, " ")
  end
  local count, err = check_int("count", q.count or "1", 1, 1000000)
  if not count then return nil, err end
  if q.path and sub(q.path, 1, 1) ~= "/" then return nil, "path must start with /" end
  local params = {}
  for k, v in pairs(q) do
    if find(v, "[\r\n]") and k ~= "body" then return nil, k .. " must not contain CR or LF" end
    params[k] = v
  end
  for name, default in pairs(kind.ints or {}) do
    if q[name] == nil then
      if default == false then return nil, name .. " is required for type " .. q.type end
      params[name] = default
    else
      local range = PARAM_RANGES[name] or { 0, 2^40 }
      local n, e = check_int(name, q[name], range[1], range[2])
      if not n then return nil, e end
      params[name] = n
    end
  end
  return { kind = kind, type = q.type, path = q.path, params = params }, count
end

-- The oldest fault for this path. Faults without a path wait for one of the
-- three endpoints, so a stray request to a wrong URL does not eat them.
function Server:take_fault(path)
  for k, f in ipairs(self.faults) do
    if f.path == path or (f.path == nil and ROUTES[path]) then
      table.remove(self.faults, k)
      return f
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- Control API
---------------------------------------------------------------------------

local CONTROL = {}

function CONTROL.fault(self, q)
  local fault, count = fault_from_query(q)
  if not fault then return 400, object("message", count) end
  for _ = 1, count do self.faults[#self.faults + 1] = fault end
  return 200, object("queued", count)
end

function CONTROL.stats(self)
  local by_path = {}
  for k, v in pairs(self.stats.by_path) do by_path[k] = v end
  return 200, object("requests", self.stats.requests, "by_path", by_path,
    "connections", self.stats.connections)
end

function CONTROL.requests(self)
  local out = array()
  for k = self.log_first, #self.log do out[#out + 1] = self.log[k] end
  return 200, object("requests", out)
end

function CONTROL.reset(self)
  self:reset()
  return 200, object("message", "reset")
end

function CONTROL.shutdown()
  return 200, object("message", "bye")
end

function Server:control(req)
  local name = sub(req.path, 8)
  local handler = CONTROL[name]
  if not handler then return self:json_response(404, object("message", "Invalid URL")) end
  local status, body = handler(self, req.query)
  local resp = self:json_response(status, body)
  if name == "shutdown" then
    resp.close = true
    resp.after = function() self.running = false end
  end
  return resp
end

---------------------------------------------------------------------------
-- Entry point
---------------------------------------------------------------------------

-- Our own pid, for the start-up line (Linux; "?" elsewhere).
local function own_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then return "?" end
  local line = f:read("*l") or ""
  f:close()
  return match(line, "^(%d+)") or "?"
end

--- Listen, print `braze-mock listening on URL pid PID` (unless opts.quiet),
--- and serve until /_mock/shutdown or SIGINT. Returns true, or nil, err.
function M.serve(opts)
  local srv, err = M.new(opts)
  if not srv then return nil, err end
  local ok, lerr = srv:listen()
  if not ok then return nil, lerr end
  if not srv.quiet then
    io.stdout:write(format("braze-mock listening on %s pid %s\n", srv.url, own_pid()))
    io.stdout:flush()
  end
  return srv:run()
end

return M
