--- The shape each endpoint's success body must have.
--
-- A 2xx whose body is valid JSON of the wrong shape (an array, `null`, a
-- list without `segments`...) is not a success: it is a `"decode"` error
-- naming the field, so a pagination loop can never take a broken page for
-- the last one. Every field but these is optional, as Braze documents.
--
-- JSON objects and arrays both decode to plain tables; an empty `[]` and an
-- empty `{}` cannot be told apart, and both are accepted as an empty array.
-- @module braze.shape
local M = {}

local type, next, format, pcall = type, next, string.format, pcall

-- Decoded JSON objects have only string keys and arrays only 1..n, so a
-- non-empty table is an array exactly when it has a [1].
local function is_array(t)
  return t[1] ~= nil or next(t) == nil
end

--- How a decoded JSON value is named in messages: "null", "an array",
-- "an object", "a string", "a number", "a boolean".
function M.json_type(v)
  local t = type(v)
  if t == "table" then return v[1] ~= nil and "an array" or "an object" end
  if t == "userdata" then return "null" end -- the decoder's only userdata is braze.null
  if t == "nil" then return "nothing" end
  return "a " .. t
end

local function is_object(v)
  return type(v) == "table" and v[1] == nil
end

-- The first item of `items[1..n]` that may not be an object (an array or
-- a string: their length is not 0, or the empty string), or nil; raises on
-- an item without a length (a number, a boolean, braze.null).
local function first_suspect(items, n)
  for i = 1, n do
    local v = items[i]
    if #v ~= 0 or v == "" then return i end
  end
  return nil
end

-- The array field each endpoint's body must carry, and what its items are.
local ARRAY_FIELD = {
  ["/segments/list"] = "segments",
  ["/segments/data_series"] = "data",
}

--- nil when `body` has the shape `path`'s answers must have, else a message
-- naming what is wrong ("\"segments\" is missing", ...).
---@param path string the endpoint, e.g. "/segments/list"
---@param body any the decoded body
---@return string|nil
function M.check(path, body)
  if not is_object(body) then
    return "expected a JSON object, got " .. M.json_type(body)
  end
  local field = ARRAY_FIELD[path]
  if not field then return nil end
  local items = body[field]
  if items == nil then return format("\"%s\" is missing", field) end
  if type(items) ~= "table" or not is_array(items) then
    return format("\"%s\" is not an array (got %s)", field, M.json_type(items))
  end
  local n = #items
  if n == 0 then return nil end
  -- The common case without a call per item (`type` cost more than the
  -- rest of a list page's request path in Lua). Any doubt goes to the exact
  -- check below.
  local ok, first = pcall(first_suspect, items, n)
  if ok and first == nil then return nil end
  for i = ok and first or 1, n do
    if not is_object(items[i]) then
      return format("\"%s[%d]\" is not an object (got %s)", field, i, M.json_type(items[i]))
    end
  end
  return nil
end

return M
