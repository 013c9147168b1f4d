--- braze_mock.ratelimit: the mock's rate-limit counter. Windows are
--- `window` seconds long and aligned to multiples of it from the epoch (3600:
--- the UTC hour, as Braze's hourly limit); the count starts again with every
--- window. X-RateLimit-Reset is the epoch second the current window ends.
--- Runs on Lua 5.1 .. 5.4.

local M = {}

local floor = math.floor
local setmetatable = setmetatable

local Limit = {}
Limit.__index = Limit

--- A counter allowing `limit` requests per `window` seconds.
function M.new(limit, window)
  return setmetatable({ limit = limit, window = window, start = nil, used = 0 }, Limit)
end

-- Start a new count when now is past the current window; returns its end.
function Limit:roll(now)
  local start = floor(now / self.window) * self.window
  if start ~= self.start then self.start, self.used = start, 0 end
  return start + self.window
end

--- Count one request: allowed, remaining, reset (the window's end, epoch s).
--- A used-up window refuses without counting.
function Limit:consume(now)
  local reset = self:roll(now)
  if self.used >= self.limit then return false, 0, reset end
  self.used = self.used + 1
  return true, self.limit - self.used, reset
end

--- remaining, reset, without counting a request.
function Limit:peek(now)
  local reset = self:roll(now)
  local remaining = self.limit - self.used
  return remaining > 0 and remaining or 0, reset
end

--- Change the limit (the count so far stays) or the window length (a new
--- window starts, with nothing counted).
function Limit:configure(limit, window)
  if limit then self.limit = limit end
  if window and window ~= self.window then self.window, self.start, self.used = window, nil, 0 end
end

--- Forget the count.
function Limit:reset()
  self.start, self.used = nil, 0
end

return M
