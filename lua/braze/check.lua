--- Argument checks and "did you mean": every check names the argument and
-- the value. Checks return the value, or nil and a message starting
-- "braze: "; the public function that called them raises it, so the error
-- points at the user's code.
-- @module braze.check
local M = {}

local format, byte, type, tostring, floor = string.format, string.byte, type, tostring, math.floor

--- A value for a message: strings %q-style, on one line; others tostring'd.
function M.show(value)
  if type(value) == "string" then
    return '"' .. value:gsub("[%c\"\\]", function(c) return format("\\%03d", byte(c)) end) .. '"'
  end
  return tostring(value)
end

--- nil and "braze: " .. the formatted message: what a failed check returns.
function M.bad(fmt, ...)
  return nil, "braze: " .. format(fmt, ...)
end

--- Levenshtein distance between two strings (option names, instance names).
function M.distance(a, b)
  local previous = {}
  for j = 0, #b do previous[j] = j end
  for i = 1, #a do
    local current = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      current[j] = math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
    end
    previous = current
  end
  return previous[#b]
end

--- The name in the set `known` closest to `word` (at most `max_distance`
--- edits away, default 3; ties go to the first in sort order), else the
--- one name that starts with `word` (3 characters or more: `sort` for
--- `sort_direction`), or nil.
function M.closest(word, known, max_distance)
  if type(word) ~= "string" then return nil end
  local best, best_distance, prefixed, prefixes = nil, nil, nil, 0
  for name in pairs(known) do
    local d = M.distance(word, name)
    if d <= (max_distance or 3) and (not best_distance or d < best_distance
      or (d == best_distance and name < best)) then
      best, best_distance = name, d
    end
    if #word >= 3 and name:sub(1, #word) == word then prefixed, prefixes = name, prefixes + 1 end
  end
  if not best and prefixes == 1 then return prefixed end
  return best
end

--- Raise on any key of `opts` not in the set `known` (a typo such as
--- `timout` must not be ignored silently), with a "did you mean". `what`
--- names the call; `level` is error's (default 3: the caller's caller).
function M.options(opts, known, what, level)
  for key in pairs(opts) do
    if not known[key] then
      local best = M.closest(key, known)
      local hint = best and format(" (did you mean '%s'?)", best) or ""
      error(format("braze: unknown option %s to %s%s", M.show(key), what, hint), level or 3)
    end
  end
end

--- Whether `value` is a number with an integer value (a float 3.0 too).
function M.is_integer(value)
  return type(value) == "number" and value == floor(value) and value > -2 ^ 63 and value < 2 ^ 63
end

--- The longest segment id accepted, bytes (Braze's are 36-byte UUIDs; a URL
--- much longer is refused by libcurl, or by the server).
M.MAX_SEGMENT_ID = 4096

--- A segment id: a non-empty string of at most MAX_SEGMENT_ID bytes.
function M.segment_id(value, what)
  if type(value) ~= "string" then
    return M.bad("%s: segment_id must be a non-empty string (got %s)", what, type(value))
  end
  if value == "" then return M.bad("%s: segment_id must be a non-empty string (got \"\")", what) end
  if #value > M.MAX_SEGMENT_ID then
    return M.bad("%s: segment_id is %d bytes long, over the %d a segment id may have", what, #value,
      M.MAX_SEGMENT_ID)
  end
  return value
end

--- Raise (at the caller of the public function) unless `value` is nil,
--- "asc" or "desc".
function M.sort_direction(value, what)
  if value ~= nil and value ~= "asc" and value ~= "desc" then
    error(format("braze: %s: sort_direction must be \"asc\" or \"desc\" (got %s)", what,
      M.show(value)), 3)
  end
end

--- Raise (at the caller of the public function) unless `value` is nil or
--- a non-negative integer; `name` is the argument's.
function M.page_number(value, what, name)
  if value ~= nil and (not M.is_integer(value) or value < 0) then
    error(format("braze: %s: %s must be a non-negative integer (got %s)", what, name,
      M.show(value)), 3)
  end
end

return M
