--- Argument checking and request building: option names, endpoints,
-- query strings and dates. Every check raises a Lua error that names the
-- argument and the value, before any request is sent.
-- @module braze.args
local M = {}

local format, byte, type, tostring, floor = string.format, string.byte, type, tostring, math.floor

-- %q-style quoting that keeps messages on one line.
local function show(v)
  if type(v) == "string" then
    return '"' .. v:gsub("[%c\"\\]", function(c) return format("\\%03d", byte(c)) end) .. '"'
  end
  return tostring(v)
end
M.show = show

-- Checks below return the value, or nil and a message: the public
-- function that called them raises, so the error points at user code.
local function bad(fmt, ...)
  return nil, "braze: " .. format(fmt, ...)
end

--- Levenshtein distance, for "did you mean" (option names, instance names).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end
M.distance = distance

--- Raise on any key of `opts` not in the set `known` (a typo such as
-- `timout` must not be ignored silently). `what` names the call.
function M.check_options(opts, known, what, level)
  for k in pairs(opts) do
    if not known[k] then
      local best, best_d
      for name in pairs(known) do
        local d = type(k) == "string" and distance(k, name) or math.huge
        if d <= 3 and (not best_d or d < best_d or (d == best_d and name < best)) then
          best, best_d = name, d
        end
      end
      local hint = best and format(" (did you mean '%s'?)", best) or ""
      error(format("braze: unknown option %s to %s%s", show(k), what, hint), level or 3)
    end
  end
end

function M.is_integer(v)
  return type(v) == "number" and v == floor(v) and v > -2 ^ 63 and v < 2 ^ 63
end

--- A required, non-empty string argument.
function M.segment_id(v, what)
  if type(v) ~= "string" then
    return bad("%s: segment_id must be a non-empty string (got %s)", what, type(v))
  end
  if v == "" then return bad("%s: segment_id must be a non-empty string (got \"\")", what) end
  return v
end

---------------------------------------------------------------------------
-- Dates

local function is_leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end
local month_days = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_in(y, m)
  if m == 2 and is_leap(y) then return 29 end
  return month_days[m]
end

--- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- UTC calendar time to epoch seconds (no dependence on the local zone).
function M.timegm(y, mo, d, h, mi, s)
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

--- Parse an ISO 8601 date or date-time; returns epoch seconds, or nil and why.
-- Accepts YYYY-MM-DD, YYYY-MM-DDTHH:MM, ...:SS, fractional seconds, and a
-- zone of Z, +HH:MM, +HHMM or +HH (no zone = UTC, as Braze assumes).
function M.parse_iso8601(s)
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil, "expected YYYY-MM-DD" end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 then return nil, "month out of range" end
  if d < 1 or d > days_in(y, mo) then return nil, "day out of range" end
  local h, mi, sec, offset = 0, 0, 0, 0
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
    if not hh then return nil, "expected THH:MM after the date" end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, tail2 = tail:match("^:(%d%d)(.*)$")
    if ss then
      sec, tail = tonumber(ss), tail2
      local frac_tail = tail:match("^[%.,]%d+(.*)$")
      if frac_tail then tail = frac_tail end
    end
    if h > 23 or mi > 59 or sec > 60 then return nil, "time out of range" end
    if tail == "Z" or tail == "z" or tail == "" then
      offset = 0
    else
      local sign, oh, om = tail:match("^([%+%-])(%d%d):?(%d%d)$")
      if not sign then sign, oh = tail:match("^([%+%-])(%d%d)$"); om = "00" end
      if not sign then return nil, "bad time zone" end
      oh, om = tonumber(oh), tonumber(om)
      if oh > 23 or om > 59 then return nil, "time zone out of range" end
      offset = (oh * 3600 + om * 60) * (sign == "-" and -1 or 1)
    end
  end
  return M.timegm(y, mo, d, h, mi, sec) - offset
end

--- `ending_at`: an ISO 8601 string (sent as given) or epoch seconds (sent as
-- UTC YYYY-MM-DDTHH:MM:SSZ).
function M.ending_at(v, what)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge or v < 0 or v >= 253402300800 then
      return bad("%s: ending_at must be epoch seconds from 1970 to 9999 (got %s)", what, show(v))
    end
    return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(v))
  elseif type(v) == "string" then
    local ok, why = M.parse_iso8601(v)
    if not ok then
      return bad("%s: ending_at must be an ISO 8601 date-time (got %s: %s)", what, show(v), why)
    end
    return v
  end
  return bad("%s: ending_at must be an ISO 8601 string or epoch seconds (got %s)", what, type(v))
end

-- -------------------------------------------------------------------------
-- URLs

--- Percent-encode everything but RFC 3986 unreserved characters.
function M.escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

--- Split an http(s) URL for a transport that speaks HTTP itself: scheme,
-- host (no brackets), port (a number), the Host header's value, and the
-- request target; or nil and what is wrong with it.
function M.split_url(url)
  local scheme, authority, target = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "not an absolute URL" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil, "unsupported scheme " .. scheme end
  local host, port = authority:match("^%[([%x:.]+)%](.*)$")
  if not host then host, port = authority:match("^([^:]+)(.*)$") end
  if not host or host == "" then return nil, "no host" end
  if port ~= "" then
    port = port:match("^:(%d+)$")
    if not port then return nil, "bad port" end
    port = tonumber(port)
  else
    port = scheme == "https" and 443 or 80
  end
  if target == "" then target = "/" end
  if target:find("[%c ]") then return nil, "control characters or spaces in the URL" end
  return scheme, host, port, authority, target
end

--- `?k=v&...` from key, value, key, value, ... (pairs with a nil value are
-- skipped; "" when none is left). No table is made: this runs on every call.
function M.query(...)
  local q = ""
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    if v ~= nil then
      q = q .. (q == "" and "?" or "&") .. M.escape(k) .. "=" .. M.escape(tostring(v))
    end
  end
  return q
end

local function is_loopback(host)
  host = host:lower()
  if host == "localhost" or host == "[::1]" then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a ~= nil and tonumber(a) == 127 and tonumber(b) < 256 and tonumber(c) < 256
    and tonumber(d) < 256
end
M.is_loopback = is_loopback

--- Validate a base URL; returns it without a trailing '/'.
-- https:// always; http:// only for loopback hosts unless allow_http.
function M.endpoint(url, allow_http)
  if type(url) ~= "string" then
    return bad("endpoint must be a string URL (got %s)", type(url))
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    return bad("endpoint %s is not a URL: expected https://host[:port][/path]", show(url))
  end
  scheme = scheme:lower()
  if scheme ~= "https" and scheme ~= "http" then
    return bad("endpoint %s: scheme must be https (got %s)", show(url), scheme)
  end
  local authority, path = rest:match("^([^/?#]*)(.*)$")
  if path:find("[?#]") then
    return bad("endpoint %s must not carry a query or fragment", show(url))
  end
  if authority:find("@", 1, true) then
    return bad("endpoint %s must not carry credentials; use api_key", show(url))
  end
  if path:find("[%c%s]") then
    return bad("endpoint %s: path contains spaces or control characters", show(url))
  end
  local host, port = authority:match("^(%[[%x:.]+%])(.*)$")
  if not host then host, port = authority:match("^([%w.-]+)(.*)$") end
  if not host or host == "" then return bad("endpoint %s has no host", show(url)) end
  if port ~= "" then
    local n = port:match("^:(%d+)$")
    if not n or tonumber(n) < 1 or tonumber(n) > 65535 then
      return bad("endpoint %s has a bad port %s", show(url), show(port))
    end
  end
  -- Only a real boolean: allow_http = "false" or 0 (truthy in Lua, as read
  -- from an environment variable, say) must not quietly allow plain http.
  if allow_http ~= nil and type(allow_http) ~= "boolean" then
    return bad("allow_http must be true or false (got %s)", show(allow_http))
  end
  if scheme == "http" and not allow_http and not is_loopback(host) then
    return bad("endpoint %s: plain http is only allowed for loopback hosts "
      .. "(use https, or allow_http = true if you really mean it)", show(url))
  end
  return (url:gsub("/+$", ""))
end

return M
