--- Text for the report page and the SVG charts: escaping that keeps any
-- segment name data (HTML text and attributes, SVG `<title>`, standalone
-- XML), and numbers printed exactly (integers beyond 2^53 as the decoder
-- gives them on Lua 5.3+).
-- @module braze.cli.html
local M = {}

local format, gsub, concat = string.format, string.gsub, table.concat
local mtype, floor, huge = math.type, math.floor, math.huge

-- A byte that starts no valid UTF-8 sequence here, or a surrogate or a
-- code point past U+10FFFF, becomes U+FFFD: XML refuses them, and a
-- browser would show the same mark.
local REPLACEMENT = "\xEF\xBF\xBD"

local function valid_utf8(s)
  -- A surrogate's first two bytes (ED A0..BF), which Lua 5.3's utf8.len
  -- lets through, as two marks; its third byte is then a stray one, so
  -- Lua 5.3 and 5.4 give the same text.
  s = gsub(s, "\xED[\xA0-\xBF]", REPLACEMENT .. REPLACEMENT)
  local out, i = {}, 1
  while true do
    local len, bad = utf8.len(s, i)
    if len then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = REPLACEMENT
    i = bad + 1
  end
  return concat(out)
end

local ENTITIES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
  ["'"] = "&#39;" }

--- `v` (a string, or anything tostring can print) as text safe in HTML
-- text, in a quoted attribute, and in XML (SVG): `& < > " '` as entities,
-- control characters but tab and newline as U+FFFD, invalid UTF-8 repaired.
---@param v any
---@return string
function M.escape(v)
  local s = type(v) == "string" and v or tostring(v)
  if s:find("[\128-\255]") and not utf8.len(s) or s:find("\xED[\xA0-\xBF]") then
    s = valid_utf8(s)
  end
  s = gsub(s, "[%z\1-\8\11\12\14-\31\127]", REPLACEMENT)
  s = gsub(s, "[&<>\"']", ENTITIES)
  return (gsub(s, "\r", "&#13;")) -- kept: XML would read a bare CR as a newline
end

--- A number's exact decimal digits: integers as they are, integral floats
-- whole (`%.0f` prints a double's exact value), other floats in the
-- fewest digits that read back the same. nil for anything else.
---@param v any
---@return string|nil
function M.digits(v)
  if mtype(v) == "integer" then return format("%d", v) end
  if type(v) ~= "number" or v ~= v or v == huge or v == -huge then return nil end
  if v == floor(v) then return format("%.0f", v) end
  for p = 14, 17 do
    local s = format("%." .. p .. "g", v)
    if tonumber(s) == v then return s end
  end
end

--- 1234567 -> "1,234,567" (exactly, at any size); `sign` puts "+" before
-- a positive value. "" for a value that is not a number.
---@param v any
---@param sign? boolean
---@return string
function M.number(v, sign)
  local s = M.digits(v)
  if not s then return "" end
  local minus, int, rest = s:match("^(%-?)(%d+)(.*)$")
  int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  if minus == "" and sign and v > 0 then minus = "+" end
  return minus .. int .. rest
end

--- The change from `a` to `b` in percent, or nil when `a` is 0 (no ratio).
function M.percent(a, b)
  if a == 0 then return nil end
  return (b - a) / a * 100
end

--- A percentage as text: "+12.3%", "-0.04%" (two significant digits under
-- 1), "0%"; "new" when there is no ratio (from 0 to more).
function M.percent_text(p, a, b)
  if p == nil then return (b ~= nil and a ~= nil and b > a) and "new" or "0%" end
  if p == 0 then return "0%" end
  local mag = math.abs(p)
  local s = mag >= 1 and format("%.1f", mag) or format("%.2g", mag)
  if s:find("e") then s = format("%.2f", mag) end
  return (p > 0 and "+" or "-") .. s .. "%"
end

return M
