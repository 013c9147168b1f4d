--- Every option of lua-braze in one table: its name, default, range and a
-- one-line doc. `braze.new` validates its options from it
-- (`options.check`), the calls that take a concurrency or a series length
-- check those here, and `braze-segments` builds its flags' ranges and help
-- from it, so a default or a limit is written once.
-- @module braze.options
local check = require("braze.check")

local format, type, floor = string.format, type, math.floor

local M = {}

-- The options of braze.new for editors (LuaLS); spec/unit/options_spec.lua
-- checks them against M.LIST below.
---@class braze.Options
---@field api_key? string REST API key (default: env BRAZE_API_KEY)
---@field endpoint? string REST base URL, may carry a path prefix (default: env BRAZE_REST_ENDPOINT)
---@field instance? string instance name such as "US-01" (instead of endpoint)
---@field timeout? number seconds for one whole request attempt (default 30)
---@field connect_timeout? number seconds to connect (default 10)
---@field user_agent? string
---@field max_retries? integer retries after the first attempt (default 3)
---@field retry_base? number first backoff ceiling in seconds (default 0.5)
---@field retry_max? number largest backoff in seconds (default 8)
---@field max_wait? number longest rate-limit wait accepted, seconds (default 60)
---@field reserve? number requests of each window left to others: a count, or below 1 a fraction of the limit (default 0)
---@field sleep? fun(seconds: number) how to wait between attempts (default: blocking C sleep)
---@field max_body? integer largest response body in bytes (default 32 MiB)
---@field max_depth? integer JSON nesting limit (default 1000)
---@field ca_file? string CA bundle for TLS verification
---@field ca_path? string CA directory for TLS verification
---@field proxy? string proxy URL, or "env" to honour HTTPS_PROXY/NO_PROXY (default: none)
---@field allow_http? boolean allow plain http to non-loopback hosts (default false)
---@field transport? table module with .new(config) -> object with :get(url), :close()
---@field window? table a window store shared beyond the Lua state (braze.window.shdict, braze.window.redis)
-- (end of braze.Options)

--- Segments in one /segments/list page (Braze's, fixed): a shorter page is the last.
M.PAGE_SIZE = 100

--- The options of `braze.new`, in the order the docs list them. Fields:
-- `name`; `kind` ("number", "integer", "string", "boolean", "function",
-- "table"); `default` (nil when there is none, or when `default_doc` says
-- where it comes from); `min`, `max` for numbers; `doc`, one line.
M.LIST = {
  { name = "api_key", kind = "string", default_doc = "env BRAZE_API_KEY",
    doc = "REST API key; sent only in the Authorization header" },
  { name = "endpoint", kind = "string", default_doc = "env BRAZE_REST_ENDPOINT",
    doc = "REST base URL (may carry a path prefix) or an instance name such as US-01" },
  { name = "instance", kind = "string", doc = "instance name such as \"US-01\" (instead of endpoint)" },
  { name = "timeout", kind = "number", default = 30, min = 0.001, max = 86400,
    doc = "seconds for one whole request attempt" },
  { name = "connect_timeout", kind = "number", default = 10, min = 0.001, max = 86400,
    doc = "seconds to connect" },
  { name = "user_agent", kind = "string", default_doc = "lua-braze/VERSION", doc = "User-Agent header" },
  { name = "max_retries", kind = "number", default = 3, min = 0, max = 100,
    doc = "retries after the first attempt" },
  { name = "retry_base", kind = "number", default = 0.5, min = 0, max = 3600,
    doc = "first backoff ceiling, in seconds" },
  { name = "retry_max", kind = "number", default = 8, min = 0, max = 3600,
    doc = "largest backoff, in seconds" },
  { name = "max_wait", kind = "number", default = 60, min = 0, max = 86400,
    doc = "longest rate-limit wait accepted, in seconds (a longer one fails rate_limited)" },
  { name = "reserve", kind = "number", default = 0, min = 0, max = 1e9, whole_from = 1,
    doc = "requests of each rate-limit window left to others: a count, or below 1 a fraction of the limit" },
  { name = "sleep", kind = "function", default_doc = "the transport's, else a blocking C sleep",
    doc = "how to wait between attempts: function(seconds)" },
  { name = "max_body", kind = "number", default = 32 * 1024 * 1024, min = 1, max = 2 ^ 40,
    doc = "largest response body, in bytes" },
  { name = "max_depth", kind = "number", default = 1000, min = 1, max = 10000,
    doc = "JSON nesting limit" },
  { name = "ca_file", kind = "string", doc = "CA bundle for TLS verification" },
  { name = "ca_path", kind = "string", doc = "CA directory for TLS verification" },
  { name = "proxy", kind = "string", doc = "proxy URL, or \"env\" to honour HTTPS_PROXY/NO_PROXY" },
  { name = "allow_http", kind = "boolean", default = false,
    doc = "allow plain http to a host that is not this machine" },
  { name = "transport", kind = "table", default_doc = "libcurl (braze.core)",
    doc = "module with new(config) -> object with get(url), close() and optionally batch(n)" },
  { name = "window", kind = "table", default_doc = "this Lua state's window of the workspace",
    doc = "a window store shared beyond the Lua state: braze.window.shdict (nginx) or braze.window.redis" },
}

--- Options of the calls, not of `braze.new`: same fields as `LIST`.
M.CALL = {
  { name = "concurrency", kind = "integer", default = 8, min = 1, max = 64,
    doc = "transfers at once (*_many, each with details or series)" },
  { name = "length", kind = "integer", default = 30, min = 1, max = 100,
    doc = "days in a size series" },
  { name = "max_pages", kind = "integer", default = 10000, min = 0, max = 2 ^ 52,
    doc = "pages each lists at most (a guard against a server that never sends a short page)" },
}

--- Every option, `LIST` and `CALL`, by name.
M.BY_NAME = {}
for _, list in ipairs({ M.LIST, M.CALL }) do
  for _, option in ipairs(list) do M.BY_NAME[option.name] = option end
end

--- The set of `braze.new`'s option names (for the unknown-option check).
M.NAMES = {}
for _, option in ipairs(M.LIST) do M.NAMES[option.name] = true end

--- The default of option `name`.
function M.default(name)
  return assert(M.BY_NAME[name], name).default
end

local show, is_integer = check.show, check.is_integer

-- A bound as people write it: 86400, 0.001, 1000000000 (not 1e+09 or 86400.0).
local function number_text(v)
  if v == floor(v) and v < 2 ^ 53 then return format("%d", v) end
  return format("%.14g", v)
end

--- What `option` accepts, for messages and help: "a number in [0.001, 86400]",
-- "an integer in 1..64".
function M.range(option)
  if type(option) == "string" then option = assert(M.BY_NAME[option], option) end
  if option.kind == "integer" then
    return format("an integer in %s..%s", number_text(option.min), number_text(option.max))
  end
  return format("a number in [%s, %s]", number_text(option.min), number_text(option.max))
end

--- Check one numeric value against its option's range: the value, or nil
--- and what is wrong ("<label> must be ... (got ...)"). `label` defaults
--- to the option's name.
function M.check_value(name, value, label)
  local option = assert(M.BY_NAME[name], name)
  label = label or name
  if option.kind == "integer" then
    if not is_integer(value) or value < option.min or value > option.max then
      return nil, format("%s must be %s (got %s)", label, M.range(option), show(value))
    end
  elseif type(value) ~= "number" or value ~= value or value < option.min or value > option.max then
    return nil, format("%s must be %s (got %s)", label, M.range(option), show(value))
  end
  if option.whole_from and value >= option.whole_from and not is_integer(value) then
    return nil, format("%s must be a whole number of requests, or a fraction below %s of the "
      .. "window's limit (got %s)", label, number_text(option.whole_from), show(value))
  end
  return value
end

--- The numeric options of `braze.new` from `opts`, each checked and
--- defaulted: `{timeout =, connect_timeout =, ...}`. Raises "braze: ..."
--- at `level` (default: the caller of the function that called check).
---@param opts table
---@param level? integer
---@return table
function M.check(opts, level)
  local resolved = {}
  for _, option in ipairs(M.LIST) do
    if option.min then
      local value = opts[option.name]
      if value == nil then
        value = option.default
      else
        local _, why = M.check_value(option.name, value)
        if why then error("braze: " .. why, level or 3) end
      end
      resolved[option.name] = value
    end
  end
  return resolved
end

--- Read a command-line value for option `name` (a string): the number, or
--- nil and a message naming `flag` ("--timeout must be a number in ...").
function M.parse(name, text, flag)
  local value = tonumber(text)
  local option = assert(M.BY_NAME[name], name)
  if value and option.kind == "integer" and value == floor(value) and math.tointeger then
    value = math.tointeger(value) or value
  end
  if value == nil then
    return nil, format("%s must be %s (got %s)", flag, M.range(option), show(text))
  end
  local ok, why = M.check_value(name, value, flag)
  if not ok then return nil, (why:gsub("%(got [^)]*%)$", "(got " .. show(text) .. ")")) end
  return value
end

--- One line of help for a flag of option `name`: its doc, its range and default.
function M.help(name, doc)
  local option = assert(M.BY_NAME[name], name)
  local text = (doc or option.doc):gsub("^%l", string.upper)
  text = text .. format(": %s", M.range(option):gsub("^an? ", ""))
  if type(option.default) == "number" then
    text = text .. format(" (default %s)", number_text(option.default))
  end
  return text .. "."
end

return M
