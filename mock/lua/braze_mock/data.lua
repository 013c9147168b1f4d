--- braze_mock.data: the fake Braze's data, all deterministic: segments, their
--- ids, data-series sizes, ISO 8601 dates, and the JSON encoder that writes
--- them. Pure Lua, no I/O; the mock's specs use it as their oracle.
--- Runs on Lua 5.1 .. 5.4 (no goto, //, bit operators or <close>).

local M = {}

local byte, format, gsub, match = string.byte, string.format, string.gsub, string.match
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge
local tonumber, tostring, type, pairs, ipairs, setmetatable, getmetatable, select =
  tonumber, tostring, type, pairs, ipairs, setmetatable, getmetatable, select
local mtype = math.type -- nil before 5.3

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
local array = M.array

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

---------------------------------------------------------------------------
-- Dates: pure arithmetic in UTC, so the host's time zone never matters.
-- braze.date has its own date code for the client; the mock does not share
-- it, so that it stays an independent oracle for the client's dates.
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

--- The index (1..n) of the segment with this id, or nil: the id's first field
--- is i*GOLDEN + ID_OFFSET mod 2^32, so that is undone to recover i.
function M.segment_index(id, n)
  local first = match(id, "^(%x%x%x%x%x%x%x%x)%-%x%x%x%x%-4%x%x%x%-8%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$")
  if not first then return nil end
  local i = mulmod32((tonumber(first, 16) - ID_OFFSET) % TWO32, GOLDEN_INV)
  if i >= 1 and i <= n and segment_id(i) == id then return i end
  return nil
end

M.TWO32 = TWO32
M.iso_date = iso_date

return M
