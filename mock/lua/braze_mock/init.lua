--[==[
braze_mock: a local server that behaves like Braze's segment-export REST API.

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
  --rate-limit N     X-RateLimit-Limit: requests per window; default 250000
  --rate-window S    window length in seconds, 1..31622400; default 3600 (an hour)
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
{"message":"Invalid URL"}, 405 for non-GET, 429 when the window's limit is used up.
Rate limit: windows are rate_window seconds long, aligned to multiples of it
from the epoch (3600: the UTC hour); X-RateLimit-Reset is the end of the
current one and the count starts again in the next. A used-up window answers
429 {"message":"API rate limit exceeded"} with X-RateLimit-Remaining 0 and
X-RateLimit-Reset the window's end, no Retry-After; it is not counted.

Data: segment i (1..N, creation order) has a stable uuid-shaped id (the same
for every N), and names include a comma, double quotes, a newline, a tab, a
backslash and non-ASCII UTF-8. Segment 5, 10, ... have "description": null.
data_series sizes are deterministic per (segment, day); segment 1's exceed 2^32.
The last data_series day is the UTC date of ending_at (offsets are applied).

Control API (no auth; answers JSON; not counted as API requests):
  GET /_mock/fault?type=T[&count=N][&path=/segments/list][&segment_id=ID][&after=K][&param=...]
      Queue N (default 1) faults of type T for the next API requests that
      match: to `path` (any of the three endpoints if omitted), and, with
      segment_id, whose segment_id parameter is ID. after=K lets the first K
      matching requests (counted from now, whichever fault answers them)
      through, so the fault hits the (K+1)-th and later ones. Each request
      consumes the oldest fault ready for it. Answers {"queued":N}.
      Types and their parameters:
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
  GET /_mock/config[?segments=N][&latency=MS][&rate_limit=N][&rate_window=S]
                       change settings while running (ranges as the CLI's);
                       answers all four: {"segments":..,"latency":..,
                       "rate_limit":..,"rate_window":..}. A new rate_limit
                       keeps the window's count; a new rate_window starts a
                       fresh window. 400 on a bad value or unknown name.
  GET /_mock/reset     clear faults, stats, request log and the rate-limit
                       count; settings made by /_mock/config stay
  GET /_mock/shutdown  answer {"message":"bye"}, then stop serving

Lua API:  local mock = require("braze_mock")
  mock.serve(opts)  -> true | nil, err   (opts as the CLI: host, port, segments,
                                          api_key, rate_limit, rate_window,
                                          latency, quiet)
  mock.new(opts) -> server; server:listen(); server.url; server:run(); server:close()
  server:normal_response(req) (Braze's answer, without faults, for benchmarks)
  mock.segment(i), mock.segment_id(i), mock.series_size(i, day),
  mock.encode_json(v), mock.null, mock.array(t), mock.object(k, v, ...),
  mock.parse_iso8601(s) -> epoch seconds | nil, err
Runs on Lua 5.1 .. 5.4 (no goto, //, bit operators or <close>).

Files (mock/lua/braze_mock/): init.lua this object and its entry points;
server.lua the HTTP/1.1 server (coroutine scheduler, sockets, parsing);
api.lua Braze's endpoints and responses; data.lua segments, ids, series,
dates, JSON; faults.lua fault kinds and their queue; ratelimit.lua the
window counter; control.lua /_mock/*; options.lua defaults and ranges.
--]==]

local data = require("braze_mock.data")
local server = require("braze_mock.server")
local options = require("braze_mock.options")
local ratelimit = require("braze_mock.ratelimit")
local api = require("braze_mock.api")
local faults = require("braze_mock.faults")
local control = require("braze_mock.control")

-- lua-braze's version (lua/braze/version.lua): the mock's rock installs that
-- file as braze_mock.version; from a checkout it is braze.version.
local version_found, version = pcall(require, "braze_mock.version")
if not version_found then version = require("braze.version") end
local M = { _VERSION = version }

local format, match, sub = string.format, string.match, string.sub
local pairs, setmetatable = pairs, setmetatable

M.DEFAULTS = options.DEFAULTS
M.FAULT_TYPES = faults.TYPES
M.null, M.array, M.object, M.encode_json = data.null, data.array, data.object, data.encode_json
M.parse_iso8601 = data.parse_iso8601
M.segment, M.segment_id, M.series_size = data.segment, data.segment_id, data.series_size
M.url_decode, M.parse_query = server.url_decode, server.parse_query

---------------------------------------------------------------------------
-- The mock: its settings and state; the HTTP server (braze_mock.server)
-- hands it each request.
---------------------------------------------------------------------------

local Mock = {}
Mock.__index = Mock
Mock.next_request_id = api.next_request_id
Mock.api_response = api.api_response
Mock.unauthorized = api.unauthorized
Mock.normal_response = api.normal_response
Mock.record = control.record

--- A mock (not listening yet). opts: see DEFAULTS, and quiet. nil, err on
--- bad opts.
function M.new(opts)
  local o, err = options.check(opts or {})
  if not o then return nil, err end
  local self = setmetatable(o, Mock)
  self.quiet = opts and opts.quiet
  self.rate = ratelimit.new(self.rate_limit, self.rate_window)
  self.request_counter = 0
  self:reset()
  return self
end

--- Forget faults, stats, the request log and the rate-limit count; the
--- settings (/_mock/config's) stay.
function Mock:reset()
  self.faults = faults.queue()
  self.stats = { requests = 0, by_path = {}, connections = 0 }
  self.log, self.log_first = {}, 1
  self.rate:reset()
end

--- Change run-time settings: a table with any of segments, latency,
--- rate_limit, rate_window (checked by options.check_runtime).
function Mock:configure(settings)
  for k, v in pairs(settings) do self[k] = v end
  self.rate:configure(settings.rate_limit, settings.rate_window)
end

--- Bind and listen; sets self.url and self.port. true, or nil, err.
function Mock:listen()
  local http = server.new(self.host, self.port,
    function(req) return self:handle(req) end,
    function() self.stats.connections = self.stats.connections + 1 end)
  local ok, err = http:listen()
  if not ok then return nil, err end
  self.http, self.url, self.port = http, http.url, http.port
  return true
end

--- Serve until /_mock/shutdown or SIGINT. Returns true, or nil, err.
function Mock:run()
  if not self.http then return nil, "not listening: call listen() first" end
  return self.http:run()
end

--- Make run() return (what /_mock/shutdown does once it has answered).
function Mock:stop()
  if self.http then self.http:stop() end
end

function Mock:close()
  if self.http then self.http:close() end
end

-- Dispatch: /_mock/* is the control API, everything else the Braze API.
function Mock:handle(req)
  if sub(req.path, 1, 7) == "/_mock/" then return control.handle(self, req) end
  return self:api(req)
end

--- An API request: logged, then answered by a queued fault or as Braze would.
function Mock:api(req)
  self:record(req)
  local fault = self.faults:take(req)
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
