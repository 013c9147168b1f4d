--- How braze-segments leaves: its exit statuses, the error object that
-- carries one out of a command to main, and the checks of flag values that
-- end in a usage error (status 2).
-- @module braze_segments.usage
local options = require("braze.options")
local date = require("braze.date")

local format = string.format

local M = {}

M.EXIT_OK, M.EXIT_FAILURE, M.EXIT_USAGE, M.EXIT_INTERRUPTED = 0, 1, 2, 130

--- The metatable of what `exit_with` raises: `{code =, message =}`.
M.Exit = {}
M.Exit.__index = M.Exit

--- Leave main with exit status `code`, saying `message` on stderr.
function M.exit_with(code, message)
  error(setmetatable({ code = code, message = message }, M.Exit), 0)
end

--- Leave main with status 2 (a usage error), saying `message`.
function M.usage_error(message) M.exit_with(M.EXIT_USAGE, message) end
local usage_error = M.usage_error

--- The value of flag `flag` for the library's option `name` (its range
--- from braze.options), or its default when the flag is absent.
function M.option_value(name, text, flag)
  if text == nil then return options.default(name) end
  local value, why = options.parse(name, text, flag)
  if value == nil then usage_error(why) end
  return value
end

--- A date flag's value, checked (nil when absent).
function M.date_option(value, name)
  if value == nil then return nil end
  local ok, why = date.parse_iso8601(value)
  if not ok then
    usage_error(format("%s must be YYYY-MM-DD or an ISO 8601 date-time (got %q: %s)", name,
      value, why))
  end
  return value
end

return M
