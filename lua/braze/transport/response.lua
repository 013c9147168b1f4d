--- The response table of a transport that reads HTTP itself (nginx,
-- HAProxy), built the way braze.core's session builds it in C: status,
-- headers, and the body decoded, or why it could not be. The header names
-- and the snippet size are braze.core's own constants.
-- @module braze.transport.response
local core = require("braze.core")
local decode = core.decode
if not core.HEADERS then -- a core.so built from older sources than these Lua files
  error("braze.transport.response: braze.core (" .. tostring(core._VERSION) .. ") has no HEADERS: "
    .. "it was built from older sources; rebuild it (bash scripts/build.sh)", 0)
end

local M = {}

--- Bytes of a body that failed to decode, kept for the error message (braze.core's).
M.SNIPPET_MAX = core.SNIPPET_MAX

--- The response headers every transport keeps (lower-case names, braze.core's list).
M.HEADERS = core.HEADERS

--- Bytes of a header value kept, as braze.core cuts them.
M.HEADER_VALUE_MAX = 255

local kept = {}
for _, name in ipairs(M.HEADERS) do kept[name] = true end

--- Keep header `name` (lower case) in `headers` when it is one of HEADERS:
-- its value cut to HEADER_VALUE_MAX bytes, control bytes replaced (values
-- reach error messages). A repeated header keeps its last value.
function M.keep(headers, name, value)
  if kept[name] and type(value) == "string" then
    headers[name] = (value:sub(1, M.HEADER_VALUE_MAX):gsub("%c", "?"))
  end
end

--- `{ status =, headers =, body = | decode_error =, decode_position =, snippet = }`
-- for a complete answer whose body is the string `body`.
function M.new(status, headers, body, max_depth)
  local res = { status = status, headers = headers }
  if body == "" then
    res.decode_error = "empty body"
    return res
  end
  local value, msg, pos = decode(body, max_depth)
  if msg == nil then
    res.body = value
  else
    res.snippet = body:sub(1, M.SNIPPET_MAX)
    res.decode_error = (msg:gsub(" at byte %d+$", ""))
    res.decode_position = pos
  end
  return res
end

return M
