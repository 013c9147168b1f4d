--- braze_mock.api: Braze's three segment-export endpoints as the mock
--- serves them, their responses (rate-limit and request-id headers, Braze's
--- 400 and 401 bodies) and the key check. The functions are the mock
--- object's methods (braze_mock installs them): self is a mock.
--- Runs on Lua 5.1 .. 5.4.

local socket = require("socket")
local data = require("braze_mock.data")
local server = require("braze_mock.server")

local M = {}

local format, match = string.format, string.match
local floor, random = math.floor, math.random
local tonumber, type = tonumber, type
local gettime = socket.gettime
local array, object, segment = data.array, data.object, data.segment
local istr, set_header = server.istr, server.set_header

local PAGE_SIZE = 100

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

function M.next_request_id(self)
  self.request_counter = self.request_counter + 1
  return format("mock-%d-%06x%06x", self.request_counter, random(0, 0xffffff), random(0, 0xffffff))
end

local function header_value(v) return type(v) == "number" and istr(v) or v end

--- An API response. rl = {limit=, remaining=, reset=} (strings or numbers),
--- "empty" for the header-present-but-empty 401 style, or nil for the current
--- window without consuming a request.
function M.api_response(self, status, body, rl, content_type)
  if rl == nil then
    local remaining, reset = self.rate:peek(gettime())
    rl = { remaining = remaining, reset = reset }
  end
  local limit, remaining, reset = "", "", ""
  if rl ~= "empty" then
    limit = header_value(rl.limit or self.rate.limit)
    remaining, reset = header_value(rl.remaining), header_value(rl.reset)
  end
  return {
    status = status,
    headers = {
      { "Content-Type", content_type or "application/json; charset=utf-8" },
      { "X-RateLimit-Limit", limit },
      { "X-RateLimit-Remaining", remaining },
      { "X-RateLimit-Reset", reset },
      { "X-Request-Id", self:next_request_id() },
    },
    body = type(body) == "string" and body or (body and data.encode_json(body)),
  }
end

local function bad_request(errors)
  return 400, object("message", errors[1], "errors", array(errors))
end

--- Braze's 401: the key that was sent, echoed, and empty rate-limit headers.
function M.unauthorized(self, req)
  local auth = req.headers.authorization or ""
  local key = match(auth, "^[Bb]earer +(.*)$") or auth
  return self:api_response(401, object("message", "Invalid API key: " .. key), "empty")
end

---------------------------------------------------------------------------
-- Braze endpoints: each returns status, body-object
---------------------------------------------------------------------------

local ROUTES = {}

ROUTES["/segments/list"] = function(self, q)
  local errors = {}
  local page, dir = q.page, q.sort_direction or "asc"
  if page == nil then page = 0
  elseif match(page, "^%d+$") then page = tonumber(page)
  else errors[#errors + 1] = "page must be a non-negative integer" end
  if dir ~= "asc" and dir ~= "desc" then
    errors[#errors + 1] = "sort_direction must be asc or desc"
  end
  if #errors > 0 then return bad_request(errors) end
  local list, n = array(), self.segments
  local skip = page * PAGE_SIZE
  for k = 1, PAGE_SIZE do
    local pos = skip + k -- 1-based position in the requested order
    if pos > n then break end
    local i = (dir == "asc") and pos or (n - pos + 1)
    local s = segment(i)
    list[k] = object("id", s.id, "name", s.name,
      "analytics_tracking_enabled", s.analytics_tracking_enabled, "tags", s.tags)
  end
  return 200, object("segments", list, "message", "success")
end

-- Validates segment_id; returns its index or nil and appends to errors.
local function segment_param(self, q, errors)
  local id = q.segment_id
  if id == nil or id == "" then
    errors[#errors + 1] = "segment_id is required"
    return nil
  end
  local i = data.segment_index(id, self.segments)
  if not i then errors[#errors + 1] = "Invalid segment_id: no segment has this id" end
  return i
end

ROUTES["/segments/details"] = function(self, q)
  local errors = {}
  local i = segment_param(self, q, errors)
  if not i then return bad_request(errors) end
  local s = segment(i)
  return 200, object("message", "success", "created_at", s.created_at,
    "updated_at", s.updated_at, "name", s.name, "description", s.description,
    "text_description", s.text_description, "tags", s.tags, "teams", s.teams)
end

ROUTES["/segments/data_series"] = function(self, q)
  local errors = {}
  local i = segment_param(self, q, errors)
  local length = q.length
  if length == nil or length == "" then
    errors[#errors + 1] = "length is required"
  elseif not match(length, "^%d+$") or tonumber(length) < 1 or tonumber(length) > 100 then
    errors[#errors + 1] = "length must be an integer from 1 to 100"
  end
  local ending = gettime()
  if q.ending_at ~= nil then
    local t, why = data.parse_iso8601(q.ending_at)
    if t and t < 100 * 86400 then
      errors[#errors + 1] = "ending_at must be after 1970-04-10"
    elseif t then ending = t
    else errors[#errors + 1] = "ending_at must be an ISO 8601 date or datetime (" .. why .. ")" end
  end
  if #errors > 0 then return bad_request(errors) end
  local last_day = floor(ending / 86400)
  local points = array()
  for day = last_day - tonumber(length) + 1, last_day do
    points[#points + 1] = object("time", data.iso_date(day), "size", data.series_size(i, day))
  end
  return 200, object("message", "success", "data", points)
end

--- The answer Braze itself would give, without faults. Counts the request
--- against the rate limit when it gets that far.
function M.normal_response(self, req)
  local route = ROUTES[req.path]
  if not route then return self:api_response(404, object("message", "Invalid URL")) end
  if req.method ~= "GET" then
    local resp = self:api_response(405, object("message", "Method " .. req.method .. " not allowed: use GET"))
    set_header(resp, "Allow", "GET")
    return resp
  end
  local auth = req.headers.authorization
  if auth ~= "Bearer " .. self.api_key then return self:unauthorized(req) end
  -- A used-up window: 429 with Remaining 0 and Reset the window's end, no
  -- Retry-After (the 429 fault can add one).
  local allowed, remaining, reset = self.rate:consume(gettime())
  if not allowed then
    return self:api_response(429, object("message", "API rate limit exceeded"),
      { remaining = 0, reset = reset })
  end
  local status, body = route(self, req.query)
  return self:api_response(status, body, { remaining = remaining, reset = reset })
end

--- Whether path is one of Braze's endpoints.
function M.is_endpoint(path) return ROUTES[path] ~= nil end

return M
