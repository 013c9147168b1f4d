--- Progress line on stderr for long braze-segments runs: segments done,
-- pages fetched, rate and, once the total is known, the time left. Drawn
-- only when enabled (stderr is a terminal and --quiet was not given).
-- @module braze_segments.progress
local M = {}

local format = string.format

local clock
do
  local ok, core = pcall(require, "braze.core")
  clock = ok and core.monotonic or os.time
end

--- Is stderr a terminal? (Lua has no isatty: ask test(1), which inherits it.)
function M.stderr_is_tty()
  local ok = os.execute("test -t 2")
  return ok == true or ok == 0
end

local function duration(s)
  s = math.floor(s + 0.5)
  if s < 60 then return format("%ds", s) end
  if s < 3600 then return format("%dm%02ds", s // 60, s % 60) end
  return format("%dh%02dm", s // 3600, (s % 3600) // 60)
end

local Progress = {}
Progress.__index = Progress

--- A progress line. `stream` defaults to io.stderr; `enabled` false makes
-- every method a no-op; `redact` filters the text before it is written;
-- `plain` writes whole lines (at most one a second) instead of redrawing
-- one with \r and an escape sequence: for a file, a pipe or TERM=dumb.
function M.new(enabled, stream, redact, plain)
  return setmetatable({
    enabled = enabled, stream = stream or io.stderr, redact = redact, plain = plain,
    done = 0, pages = 0, total = nil, started = clock(), drawn_at = nil, dirty = false,
  }, Progress)
end

function Progress:text()
  local elapsed = clock() - self.started
  local parts = { format("%d segment%s", self.done, self.done == 1 and "" or "s") }
  if self.total then parts[1] = parts[1] .. format(" of %d", self.total) end
  parts[#parts + 1] = format("%d page%s", self.pages, self.pages == 1 and "" or "s")
  if elapsed > 0.5 and self.done > 0 then
    local rate = self.done / elapsed
    parts[#parts + 1] = format("%.1f/s", rate)
    if self.total and self.total >= self.done then
      parts[#parts + 1] = "ETA " .. duration((self.total - self.done) / rate)
    end
  end
  parts[#parts + 1] = duration(elapsed)
  return table.concat(parts, ", ")
end

--- Redraw (at most ten times a second unless `force`).
function Progress:draw(force)
  if not self.enabled then return end
  local now = clock()
  local every = self.plain and 1 or 0.1
  if not force and self.drawn_at and now - self.drawn_at < every then return end
  self.drawn_at = now
  local text = self:text()
  if self.redact then text = self.redact(text) end
  if self.plain then
    self.stream:write(text, "\n")
  else
    self.stream:write("\r\27[K", text)
    self.dirty = true
  end
  self.stream:flush()
end

function Progress:page() self.pages = self.pages + 1; self:draw() end
function Progress:segment(n) self.done = self.done + (n or 1); self:draw() end
function Progress:set_total(n) self.total = n; self:draw() end

--- Draw the final state and end the line.
function Progress:finish()
  if not self.enabled then return end
  self:draw(true)
  if self.plain then return end
  self.stream:write("\n")
  self.stream:flush()
  self.dirty = false
end

--- Clear the line (before printing an error message).
function Progress:clear()
  if self.enabled and self.dirty then
    self.stream:write("\r\27[K")
    self.stream:flush()
    self.dirty = false
  end
end

return M
