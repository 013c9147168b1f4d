--- braze_mock.options: the mock's settings, their defaults and ranges, in
--- one place for bin/braze-mock, mock.new and GET /_mock/config.
--- Runs on Lua 5.1 .. 5.4.

local server = require("braze_mock.server")

local M = {}

local find, format = string.find, string.format
local concat = table.concat
local ipairs, pairs, tostring, type = ipairs, pairs, tostring, type

M.DEFAULTS = {
  host = "127.0.0.1", port = 0, segments = 250, api_key = "braze-mock-key",
  rate_limit = 250000, rate_window = 3600, latency = 0,
}

--- The integer settings /_mock/config may change while the mock runs, in the
--- order its answer lists them, with their ranges.
M.RUNTIME = {
  { "segments", 0, 1000000 },
  { "latency", 0, 3600000 }, -- milliseconds
  { "rate_limit", 0, 2^40 },
  { "rate_window", 1, 31622400 }, -- seconds: a second to a leap year
}

local INTEGERS = { { "port", 0, 65535 } }
for _, o in ipairs(M.RUNTIME) do INTEGERS[#INTEGERS + 1] = o end

--- opts with every default filled in and every value checked: a new table,
--- or nil, err naming the bad option.
function M.check(opts)
  local out = {}
  for k, v in pairs(M.DEFAULTS) do
    if opts[k] == nil then out[k] = v else out[k] = opts[k] end
  end
  if type(out.host) ~= "string" or not server.is_loopback(out.host) then
    return nil, "host must be a loopback address (127.x.x.x, localhost or ::1), got " .. tostring(out.host)
  end
  if type(out.api_key) ~= "string" or out.api_key == "" or find(out.api_key, "[%c]") then
    return nil, "api_key must be a non-empty string without control characters"
  end
  for _, c in ipairs(INTEGERS) do
    local n, err = server.check_int(c[1], out[c[1]], c[2], c[3])
    if not n then return nil, err end
    out[c[1]] = n
  end
  return out
end

--- The run-time settings in q (a decoded query), checked: a table of the
--- ones given, or nil, err. Any other name is an error.
function M.check_runtime(q)
  local out, known, names = {}, {}, {}
  for _, c in ipairs(M.RUNTIME) do
    known[c[1]] = true
    names[#names + 1] = c[1]
    if q[c[1]] ~= nil then
      local n, err = server.check_int(c[1], q[c[1]], c[2], c[3])
      if not n then return nil, err end
      out[c[1]] = n
    end
  end
  for k in pairs(q) do
    if not known[k] then
      return nil, format("unknown setting %s; known: %s", tostring(k), concat(names, " "))
    end
  end
  return out
end

return M
