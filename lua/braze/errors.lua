--- Error objects returned as the second value of a failed call.
--
-- Every run-time failure is a table with a `kind`:
--
-- * `"http"`: the server answered with a status that is not a success
--   (`status`, Braze's `message` and `errors` when the body had them);
-- * `"rate_limited"`: HTTP 429, or a rate-limit window too far away to wait
--   for (`retry_after` seconds, `rate_limit`);
-- * `"network"`: no usable answer (connection refused, reset, TLS failure...);
-- * `"timeout"`: the request did not finish within `timeout` seconds;
-- * `"decode"`: a success status with a body that is not the JSON expected;
-- * `"too_large"`: the response was larger than `max_body` (aborted early);
-- * `"closed"`: the client was closed while the call waited to retry;
-- * `"interrupted"`: a program that asked for Ctrl-C handling
--   (`braze.catch_interrupt()`, as braze-segments does) got SIGINT.
--
-- `tostring(err)` (and `..`) gives one line such as
-- `braze: HTTP 401 on /segments/list: Invalid API key: abcd...`, naming the
-- segment and the page when the error has them:
-- `braze: HTTP 503 on /segments/details (segment 5f1..., page 2): ...`.
-- The API key never appears in any field: Braze echoes a rejected key in
-- its 401 message, so every text is redacted before it is stored.
-- @module braze.errors
local M = {}

local format, rep = string.format, string.rep

---@class braze.Error
local Error = {}
Error.__index = Error
Error.__name = "braze.Error"

local function describe(e)
  -- tostring: Lua 5.1's %s raises on nil (an error made without an endpoint).
  local endpoint = tostring(e.endpoint)
  if e.kind == "http" then
    return format("HTTP %s on %s", tostring(e.status), endpoint)
  elseif e.kind == "rate_limited" then
    return format("rate limited on %s", endpoint)
  elseif e.kind == "timeout" then
    return format("timeout on %s", endpoint)
  elseif e.kind == "decode" then
    return format("invalid response from %s", endpoint)
  elseif e.kind == "too_large" then
    return format("response too large from %s", endpoint)
  end
  return format("%s error on %s", tostring(e.kind), endpoint)
end

-- Control characters from a server (CR/LF forging log lines, ESC sequences
-- driving a terminal) are shown escaped, so the line stays one inert line.
local CONTROL_ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function one_line(s)
  return (s:gsub("%c", function(c) return CONTROL_ESCAPES[c] or format("\\%03d", c:byte()) end))
end

-- Each error's redactor (from M.new), for fields set after it was made.
local redactors = setmetatable({}, { __mode = "k" })

-- " (segment ID, page N)" for an error that names them, else "". The id is
-- redacted here too: a caller may set it after the error was made.
local function whereabouts(e)
  local parts = {}
  if e.segment_id ~= nil then
    local redact = redactors[e] or tostring
    local id = tostring(redact(tostring(e.segment_id)))
    if #id > 80 then id = format("%s...(%d bytes)", id:sub(1, 64), #id) end -- a line, not a dump
    parts[#parts + 1] = "segment " .. id
  end
  if e.page ~= nil then parts[#parts + 1] = "page " .. tostring(e.page) end
  if #parts == 0 then return "" end
  return " (" .. table.concat(parts, ", ") .. ")"
end

function Error.__tostring(e)
  local line = "braze: " .. describe(e) .. whereabouts(e) .. ": " .. tostring(e.message)
  if e.errors and #e.errors > 0 then
    local parts = {}
    for i = 1, #e.errors do
      local part = tostring(e.errors[i])
      -- Braze may repeat its message as the only minor error: say it once.
      if part ~= e.message then parts[#parts + 1] = part end
    end
    if #parts > 0 then line = line .. " (" .. table.concat(parts, "; ") .. ")" end
  end
  if e.attempts and e.attempts > 1 then
    line = line .. format(" after %d attempts", e.attempts)
  end
  if e.request_id then line = line .. " [request id " .. tostring(e.request_id) .. "]" end
  return one_line(line)
end

function Error.__concat(a, b)
  return tostring(a) .. tostring(b)
end

--- Is `v` an error object made by this module?
function M.is(v)
  return getmetatable(v) == Error
end

--- How a secret is shown: its first 4 characters then "...", or "***"
-- for one too short to show any of it.
local function mask(secret)
  if #secret >= 12 then return secret:sub(1, 4) .. "..." end
  return rep("*", 3)
end
M.mask = mask

--- A function that removes `key` (and whatever Braze echoes after
-- "Invalid API key:") from a string.
--
-- A key of 12 characters or more (a Braze key has 36) is masked wherever
-- it appears, even inside a longer token. A shorter one (no real key is
-- that short) is masked only as a whole token, never inside a word, and
-- not at all when it is itself a word (letters only): otherwise a key such
-- as `e` or `wrong` would turn every `e`, or the `wrong` of "the wrong
-- instance", into `***`. The echo after "Invalid API key:" is masked
-- whatever its length.
function M.redactor(key)
  local masked = key and key ~= "" and mask(key)
  local whole_token = masked and #key < 12
  if whole_token and not key:find("%A") then masked = nil end
  return function(s)
    if type(s) ~= "string" then return s end
    if masked then
      local i = 1
      while true do
        local a, b = s:find(key, i, true)
        if not a then break end
        if whole_token and (s:sub(a - 1, a - 1):find("[%w_%-]")
          or s:sub(b + 1, b + 1):find("[%w_%-]")) then
          i = a + 1 -- part of a longer token: not the key
        else
          s = s:sub(1, a - 1) .. masked .. s:sub(b + 1)
          i = a + #masked
        end
      end
    end
    -- Braze's "Invalid API key: <key>" echoes what it got, which may differ
    -- from our key (quotes pasted with it, another workspace's key...).
    s = s:gsub("([Ii]nvalid [Aa][Pp][Ii] [Kk]ey:%s*)([^%s\"',;]+)", function(prefix, token)
      if token:find("...", 1, true) or token:match("^%*+$") then return prefix .. token end
      return prefix .. mask(token)
    end)
    return s
  end
end

-- A copy of `v` with every string in it (keys too, at any depth) passed
-- through `redact`; tables with a metatable and other values as they are.
local function redact_deep(v, redact, seen)
  if type(v) == "string" then return redact(v) end
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  if seen[v] then return seen[v] end
  local copy = {}
  seen[v] = copy
  for k, x in pairs(v) do copy[redact_deep(k, redact, seen)] = redact_deep(x, redact, seen) end
  return copy
end

--- Make an error object. Every string field (`message`, `request_id`...)
-- and every string inside `errors` pass through `redact` (from
-- M.redactor) before they are stored: a hostile or misconfigured server
-- may echo the key in any of them.
function M.new(fields, redact)
  redact = redact or function(s) return s end
  local e = setmetatable({}, Error)
  redactors[e] = redact
  for k, v in pairs(fields) do
    if type(v) == "string" and k ~= "kind" then v = redact(v) end
    e[k] = v
  end
  e.message = redact(tostring(fields.message or e.kind))
  if type(fields.errors) == "table" then
    local list, seen = {}, {}
    for i, v in ipairs(fields.errors) do list[i] = redact_deep(v, redact, seen) end
    e.errors = list
  else
    e.errors = nil
  end
  return e
end

return M
