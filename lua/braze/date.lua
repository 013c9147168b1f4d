--- Dates for Braze's API: `ending_at` (an ISO 8601 string or epoch
-- seconds), ISO 8601 parsing, and timegm (UTC calendar time to epoch
-- seconds, independent of the local time zone).
-- @module braze.date
local check = require("braze.check")

local M = {}

local floor = math.floor

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
      return check.bad("%s: ending_at must be epoch seconds from 1970 to 9999 (got %s)", what, check.show(v))
    end
    return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(v))
  elseif type(v) == "string" then
    local ok, why = M.parse_iso8601(v)
    if not ok then
      return check.bad("%s: ending_at must be an ISO 8601 date-time (got %s: %s)", what, check.show(v), why)
    end
    return v
  end
  return check.bad("%s: ending_at must be an ISO 8601 string or epoch seconds (got %s)", what, type(v))
end

return M
