--- braze_mock.faults: the misbehaviour a test can ask for through
--- GET /_mock/fault: the kinds (see braze_mock's header for each one and its
--- parameters), their validation, and the queue that hands them to API
--- requests. A kind either replaces the response (replace) or alters the
--- normal one (wrap); `ints` lists its integer parameters and their
--- defaults (false: required). self in replace/wrap is the mock.
--- Runs on Lua 5.1 .. 5.4.

local socket = require("socket")
local data = require("braze_mock.data")
local server = require("braze_mock.server")
local api = require("braze_mock.api")

local M = {}

local find, format, rep, sub = string.find, string.format, string.rep, string.sub
local concat, remove, sort = table.concat, table.remove, table.sort
local floor, max = math.floor, math.max
local ipairs, pairs, setmetatable, tostring = ipairs, pairs, setmetatable, tostring
local gettime = socket.gettime
local object = data.object
local set_header, check_int, REASONS = server.set_header, server.check_int, server.REASONS
local STREAM_CHUNK = server.STREAM_CHUNK

local HTML_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
  .. "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
  .. "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
local HTML_200 = "<!DOCTYPE html>\n<html><head><title>Braze</title></head>\n"
  .. "<body><h1>Welcome</h1><p>Please sign in to continue.</p></body></html>\n"

---------------------------------------------------------------------------
-- The kinds
---------------------------------------------------------------------------

local function const_json(status, message)
  return { replace = function(self) return self:api_response(status, object("message", message)) end }
end

-- A streamed body: head, then `count` pieces made by piece(k), then tail.
-- Pieces are grouped into ~64 KiB chunks so nothing large is ever built.
local function piece_stream(head, count, piece, sep, tail)
  local k, done = 0, false
  return function()
    if done then return nil end
    local out, size = {}, 0
    if k == 0 then out[1] = head; size = #head end
    while k < count and size < STREAM_CHUNK do
      k = k + 1
      local p = (k > 1 and sep or "") .. piece(k)
      out[#out + 1] = p
      size = size + #p
    end
    if k >= count then out[#out + 1] = tail; done = true end
    return concat(out)
  end
end

local LIST_HEAD, LIST_TAIL = '{"segments":[', '],"message":"success"}'
local function bulk_item(k)
  return format('{"id":"%08x-0000-4000-8000-%012x","name":"Bulk segment %010d","analytics_tracking_enabled":true,"tags":[]}',
    k % data.TWO32, k, k)
end
local BULK_LEN = #bulk_item(1)

local function huge_list(self, p)
  local count = floor((p.bytes - #LIST_HEAD - #LIST_TAIL + 1) / (BULK_LEN + 1))
  if count < 0 then count = 0 end
  local resp = self:api_response(200, nil)
  resp.stream = piece_stream(LIST_HEAD, count, bulk_item, ",", LIST_TAIL)
  resp.length = #LIST_HEAD + #LIST_TAIL + count * BULK_LEN + (count > 0 and count - 1 or 0)
  return resp
end

-- A list with one segment whose name is given as JSON text.
local NAME_HEAD = LIST_HEAD .. '{"id":"00000000-0000-4000-8000-000000000000","name":'
local NAME_TAIL = ',"analytics_tracking_enabled":true,"tags":[]}' .. LIST_TAIL
local function one_segment_list(name_json) return NAME_HEAD .. name_json .. NAME_TAIL end

local FAULTS = {
  ["500"] = const_json(500, "Internal Server Error"),
  ["503"] = const_json(503, "Service Unavailable"),
  ["504"] = const_json(504, "Gateway Timeout"),
  ["403"] = const_json(403, "Access Denied"),
  ["401"] = { replace = function(self, _, req) return self:unauthorized(req) end },
  ["429"] = {
    ints = { reset_in = 1 },
    replace = function(self, p)
      local resp = self:api_response(429, object("message", "API rate limit exceeded"),
        { remaining = 0, reset = floor(gettime()) + p.reset_in })
      if p.retry_after then set_header(resp, "Retry-After", p.retry_after) end
      return resp
    end,
  },
  ["502"] = {
    replace = function()
      return {
        status = 502, body = HTML_502, headers = { { "Content-Type", "text/html" }, { "Server", "nginx" } },
      }
    end,
  },
  status = {
    ints = { code = false },
    replace = function(self, p)
      return self:api_response(p.code, object("message", p.message or REASONS[p.code] or ("HTTP " .. p.code)))
    end,
  },
  delay = { ints = { ms = 1000 }, wrap = function(_, p, resp) resp.delay = p.ms / 1000 end },
  hang = { replace = function() return { hang = true } end },
  reset = { replace = function() return { reset = true } end },
  trickle = {
    ints = { ms = 1000, bytes = 1 },
    wrap = function(_, p, resp) resp.trickle = { ms = p.ms, bytes = max(1, p.bytes) } end,
  },
  close = { wrap = function(_, _, resp) resp.cut = true end },
  truncate = {
    wrap = function(_, _, resp) resp.body = sub(resp.body, 1, floor(#resp.body / 2)) end,
  },
  content_type = { wrap = function(_, _, resp) set_header(resp, "Content-Type", "text/html") end },
  badheaders = {
    wrap = function(_, _, resp)
      set_header(resp, "X-RateLimit-Limit", "lots")
      set_header(resp, "X-RateLimit-Remaining", "garbage")
      set_header(resp, "X-RateLimit-Reset", "-")
    end,
  },
  malformed = { replace = function(self) return self:api_response(200, '{"segments":[1,2,}') end },
  html200 = { replace = function(self) return self:api_response(200, HTML_200, nil, "text/html; charset=utf-8") end },
  huge = { ints = { bytes = 10485760 }, replace = huge_list },
  nolength_huge = {
    ints = { bytes = 10485760 },
    replace = function(self, p)
      local resp = huge_list(self, p)
      resp.length = nil
      resp.chunked = (p.framing == "chunked")
      return resp
    end,
  },
  deep = {
    ints = { depth = 100000 },
    replace = function(self, p) return self:api_response(200, rep("[", p.depth) .. rep("]", p.depth)) end,
  },
  hugestring = {
    ints = { bytes = 1048576 },
    replace = function(self, p)
      local head, tail = NAME_HEAD .. '"', '"' .. NAME_TAIL
      local pieces, last = floor(p.bytes / STREAM_CHUNK), p.bytes % STREAM_CHUNK
      local full = rep("x", STREAM_CHUNK)
      local resp = self:api_response(200, nil)
      resp.stream = piece_stream(head, pieces + 1, function(k)
        return k <= pieces and full or rep("x", last)
      end, "", tail)
      resp.length = #head + p.bytes + #tail
      return resp
    end,
  },
  badutf8 = { replace = function(self) return self:api_response(200, one_segment_list('"bad \255\254 bytes"')) end },
  lonesurrogate = {
    replace = function(self) return self:api_response(200, one_segment_list('"lone \\ud800 surrogate"')) end,
  },
  redirect = {
    replace = function(self, p)
      local resp = self:api_response(302, object("message", "Found"))
      set_header(resp, "Location", p.location or "/segments/list")
      return resp
    end,
  },
  raw = {
    ints = { code = 200 },
    replace = function(self, p) return self:api_response(p.code, p.body or "") end,
  },
}
M.TYPES = {}
for name in pairs(FAULTS) do M.TYPES[#M.TYPES + 1] = name end
sort(M.TYPES)

-- Ranges of integer fault parameters; others are 0 .. 2^40. deep builds its
-- body in memory, so its depth is kept reasonable.
local PARAM_RANGES = { code = { 100, 599 }, depth = { 0, 10000000 } }

--- Validate a /_mock/fault query: a fault group (kind, type, the matching
--- rules path and segment_id, params, skip = after, left = count), or nil, err.
function M.from_query(q)
  local kind = FAULTS[q.type or ""]
  if not kind then
    return nil, "unknown fault type " .. tostring(q.type) .. "; known: " .. concat(M.TYPES, " ")
  end
  local count, err = check_int("count", q.count or "1", 1, 1000000)
  if not count then return nil, err end
  local after, aerr = check_int("after", q.after or "0", 0, 2^40)
  if not after then return nil, aerr end
  if q.path and sub(q.path, 1, 1) ~= "/" then return nil, "path must start with /" end
  if q.segment_id == "" then return nil, "segment_id must not be empty" end
  local params = {}
  for k, v in pairs(q) do
    if find(v, "[\r\n]") and k ~= "body" then return nil, k .. " must not contain CR or LF" end
    params[k] = v
  end
  for name, default in pairs(kind.ints or {}) do
    if q[name] == nil then
      if default == false then return nil, name .. " is required for type " .. q.type end
      params[name] = default
    else
      local range = PARAM_RANGES[name] or { 0, 2^40 }
      local n, e = check_int(name, q[name], range[1], range[2])
      if not n then return nil, e end
      params[name] = n
    end
  end
  return {
    kind = kind, type = q.type, path = q.path, segment_id = q.segment_id, params = params,
    skip = after, left = count,
  }
end

---------------------------------------------------------------------------
-- The queue
---------------------------------------------------------------------------

local Queue = {}
Queue.__index = Queue

--- An empty fault queue.
function M.queue() return setmetatable({ groups = {} }, Queue) end

--- Queue the fault a /_mock/fault query describes: its count, or nil, err.
function Queue:add(q)
  local group, err = M.from_query(q)
  if not group then return nil, err end
  self.groups[#self.groups + 1] = group
  return group.left
end

-- A group matches a request to its path (or, without one, to any of Braze's
-- endpoints, so a stray request to a wrong URL does not eat it) whose
-- segment_id is the group's (when it names one).
local function matches(group, req)
  if group.path ~= nil then
    if group.path ~= req.path then return false end
  elseif not api.is_endpoint(req.path) then
    return false
  end
  return group.segment_id == nil or group.segment_id == req.query.segment_id
end

--- The fault for this request, or nil. Every matching group still skipping
--- (after=N) counts the request, whichever fault answers it; of the others,
--- the oldest answers it.
function Queue:take(req)
  local chosen
  for k, group in ipairs(self.groups) do
    if matches(group, req) then
      if group.skip > 0 then group.skip = group.skip - 1
      elseif not chosen then chosen = k end
    end
  end
  if not chosen then return nil end
  local group = self.groups[chosen]
  group.left = group.left - 1
  if group.left == 0 then remove(self.groups, chosen) end
  return group
end

return M
