--- braze_mock.control: the mock's control API, GET /_mock/<name> (no key;
--- JSON answers; not counted as API requests), and the request log and
--- counters it reports. self is the mock. Runs on Lua 5.1 .. 5.4.

local data = require("braze_mock.data")
local server = require("braze_mock.server")
local options = require("braze_mock.options")

local M = {}

local sub = string.sub
local ipairs, pairs = ipairs, pairs
local unpack = table.unpack or unpack -- 5.1 and LuaJIT: the global
local array, object, NULL = data.array, data.object, data.null
local json_response = server.json_response

local MAX_LOG = 10000

--- Count an API request and log it (the last MAX_LOG are kept).
function M.record(self, req)
  local stats = self.stats
  stats.requests = stats.requests + 1
  stats.by_path[req.path] = (stats.by_path[req.path] or 0) + 1
  local log = self.log
  log[#log + 1] = object("method", req.method, "path", req.path, "query", req.query,
    "raw_query", req.raw_query, "authorization", req.headers.authorization or NULL,
    "user_agent", req.headers["user-agent"] or NULL)
  -- Keep the last MAX_LOG entries: skip old ones by moving log_first, and
  -- copy the live part to a fresh table now and then instead of shifting.
  if #log - self.log_first + 1 > MAX_LOG then
    log[self.log_first] = false
    self.log_first = self.log_first + 1
    if self.log_first > MAX_LOG then
      local live = {}
      for k = self.log_first, #log do live[#live + 1] = log[k] end
      self.log, self.log_first = live, 1
    end
  end
end

--- The run-time settings, as /_mock/config answers them.
function M.settings(self)
  local out = {}
  for _, o in ipairs(options.RUNTIME) do
    out[#out + 1] = o[1]
    out[#out + 1] = self[o[1]]
  end
  return object(unpack(out))
end

local CONTROL = {}

function CONTROL.fault(self, q)
  local count, err = self.faults:add(q)
  if not count then return 400, object("message", err) end
  return 200, object("queued", count)
end

function CONTROL.stats(self)
  local by_path = {}
  for k, v in pairs(self.stats.by_path) do by_path[k] = v end
  return 200, object("requests", self.stats.requests, "by_path", by_path,
    "connections", self.stats.connections)
end

function CONTROL.requests(self)
  local out = array()
  for k = self.log_first, #self.log do out[#out + 1] = self.log[k] end
  return 200, object("requests", out)
end

function CONTROL.reset(self)
  self:reset()
  return 200, object("message", "reset")
end

function CONTROL.config(self, q)
  local settings, err = options.check_runtime(q)
  if not settings then return 400, object("message", err) end
  self:configure(settings)
  return 200, M.settings(self)
end

function CONTROL.shutdown()
  return 200, object("message", "bye")
end

--- The answer to a /_mock/ request.
function M.handle(self, req)
  local name = sub(req.path, 8)
  local handler = CONTROL[name]
  if not handler then return json_response(404, object("message", "Invalid URL")) end
  local status, body = handler(self, req.query)
  local resp = json_response(status, body)
  if name == "shutdown" then
    resp.close = true
    resp.after = function() self:stop() end
  end
  return resp
end

return M
