-- A transport that wraps another (braze.transport.ngx, or braze.core's
-- libcurl session when `inner` is nil) and records what every answer said of
-- the rate limit: how many answers had each status, and the lowest
-- X-RateLimit-Remaining per X-RateLimit-Reset (the requests used in each
-- window: limit - lowest remaining, since the last answer of a window sees
-- the lowest count).
--
--   local rec = require("spec.support.recording_transport").new(inner)
--   braze.new{ ..., transport = rec }
--   rec.statuses[429], rec.lowest[reset]
local M = {}

local function record(rec, res)
  if type(res) ~= "table" or not res.status then return end
  rec.statuses[res.status] = (rec.statuses[res.status] or 0) + 1
  local h = res.headers or {}
  local reset, remaining = tonumber(h["x-ratelimit-reset"]), tonumber(h["x-ratelimit-remaining"])
  if reset and remaining then
    local low = rec.lowest[reset]
    if not low or remaining < low then rec.lowest[reset] = remaining end
  end
end

--- A transport module recording into its own `statuses` and `lowest`.
function M.new(inner)
  local rec = { statuses = {}, lowest = {} }
  if inner and type(inner.sleep) == "function" then rec.sleep = inner.sleep end
  function rec.new(config)
    local conn
    if inner then conn = inner.new(config) else conn = require("braze.core").session(config) end
    local w = {}
    function w.get(_, url)
      local res, kind, msg = conn:get(url)
      record(rec, res)
      return res, kind, msg
    end
    function w.batch(_, n)
      local b = conn:batch(n)
      return {
        submit = function(_, url, tag) return b:submit(url, tag) end,
        poll = function(_, timeout)
          local outs = b:poll(timeout)
          for _, out in ipairs(outs) do record(rec, out) end
          return outs
        end,
        close = function() return b:close() end,
      }
    end
    function w.close() return conn:close() end
    return setmetatable(w, { __index = function(_, k)
      local v = conn[k]
      if type(v) == "function" then return function(_, ...) return v(conn, ...) end end
      return v
    end })
  end
  return rec
end

--- Merge recordings (tables with statuses and lowest) into one.
function M.merge(into, from)
  for status, n in pairs(from.statuses or {}) do
    status = tonumber(status)
    into.statuses[status] = (into.statuses[status] or 0) + n
  end
  for reset, low in pairs(from.lowest or {}) do
    reset = tonumber(reset)
    if not into.lowest[reset] or low < into.lowest[reset] then into.lowest[reset] = low end
  end
  return into
end

--- The most requests used in any window, given the limit.
function M.most_used(rec, limit)
  local most = 0
  for _, low in pairs(rec.lowest) do
    if limit - low > most then most = limit - low end
  end
  return most
end

return M
