--- A small JSON encoder for the braze-segments command (the library only
-- decodes, and the command must not need lua-cjson at run time).
--
-- * `braze.null` encodes as `null`; integers never get a `.0`, floats use the
--   shortest of `%.14g`..`%.17g` that reads back exactly; NaN and infinities
--   (which JSON lacks) become `null`.
-- * Strings are escaped as JSON requires (plus U+2028/U+2029); bytes that are
--   not valid UTF-8 become U+FFFD, so the output is always valid JSON.
-- * Object keys come out in a stable order: the known Braze fields first, in
--   a fixed order, then the rest sorted.
-- * An empty table is `[]` for fields known to be arrays (`tags`, `teams`,
--   `data`, `segments`, `errors`, `series`) and `{}` otherwise.
-- @module braze_segments.json
local M = {}

local format, byte, gsub, concat, sort = string.format, string.byte, string.gsub,
  table.concat, table.sort
local type, pairs, tostring, tonumber = type, pairs, tostring, tonumber
local mtype, floor, huge, tointeger = math.type, math.floor, math.huge, math.tointeger

local null = require("braze.core").null
M.null = null

--- Fields whose value is an array even when empty.
M.array_fields = { tags = true, teams = true, data = true, segments = true, errors = true,
  series = true }

--- Key order of encoded objects: these first, in this order; others sorted after.
M.key_order = { "id", "name", "description", "text_description",
  "analytics_tracking_enabled", "created_at", "updated_at", "tags", "teams",
  "time", "size", "segment_id", "details", "series", "data", "message", "errors" }
local rank = {}
for i, k in ipairs(M.key_order) do rank[k] = i end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function esc(c) return ESC[c] or format("\\u%04x", byte(c)) end

--- `s` with every byte sequence that is not valid UTF-8 replaced by U+FFFD.
function M.valid_utf8(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local ok, bad = utf8.len(s, i)
    if ok then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\u{FFFD}"
    i = bad + 1
  end
  return concat(out)
end

local function string_(s)
  s = gsub(M.valid_utf8(s), '[%z\1-\31"\\]', esc)
  s = gsub(s, "\u{2028}", "\\u2028")
  s = gsub(s, "\u{2029}", "\\u2029")
  return '"' .. s .. '"'
end
M.string = string_

--- A number as JSON text (`null` for NaN and infinities).
function M.number(v)
  if mtype(v) == "integer" then return format("%d", v) end
  if v ~= v or v == huge or v == -huge then return "null" end
  if v == floor(v) and v >= -2 ^ 63 and v < 2 ^ 63 then return format("%d", tointeger(v)) end
  for _, f in ipairs({ "%.14g", "%.15g", "%.16g" }) do
    local s = format(f, v)
    if tonumber(s) == v then return s end
  end
  return format("%.17g", v)
end

-- n > 0 when t is a proper sequence 1..n (and nothing else), else nil.
local function sequence_length(t)
  local n = #t
  if n == 0 then return nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  if count == n then return n end
  return nil
end

local function key_less(a, b)
  local ra, rb = rank[a], rank[b]
  if ra and rb then return ra < rb end
  if ra or rb then return ra ~= nil end
  return a < b
end

local encode

local function encode_table(t, out, as_array, depth)
  if depth > 200 then error("braze_segments.json: nesting too deep (a cycle?)", 0) end
  local n = sequence_length(t)
  if n then
    out[#out + 1] = "["
    for i = 1, n do
      if i > 1 then out[#out + 1] = "," end
      encode(t[i], out, false, depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  if #keys == 0 then
    out[#out + 1] = as_array and "[]" or "{}"
    return
  end
  local values = {}
  for k, v in pairs(t) do values[tostring(k)] = v end
  sort(keys, key_less)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = string_(k)
    out[#out + 1] = ":"
    encode(values[k], out, M.array_fields[k], depth + 1)
  end
  out[#out + 1] = "}"
end

encode = function(v, out, as_array, depth)
  local tv = type(v)
  if v == nil or v == null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    out[#out + 1] = M.number(v)
  elseif tv == "string" then
    out[#out + 1] = string_(v)
  elseif tv == "table" then
    encode_table(v, out, as_array, depth)
  else
    error("braze_segments.json: cannot encode a " .. tv, 0)
  end
end

--- Encode `v` as one line of JSON. `as_array`: encode an empty table as `[]`.
---@param v any
---@param as_array? boolean
---@return string
function M.encode(v, as_array)
  local out = {}
  encode(v, out, as_array, 0)
  return concat(out)
end

return M
