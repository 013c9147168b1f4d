--- Terminal plot of a segment's daily sizes, for `braze-segments series
-- --format plot`: a title, a sparkline, a bar chart with y-axis labels and
-- x-axis dates, and a min/max/change summary, all within `width` columns.
-- @module braze_segments.plot
local fmt = require("braze_segments.format")

local M = {}

local concat, rep, floor, max, min = table.concat, string.rep, math.floor, math.max, math.min


--- `values` averaged down to at most `n` buckets (returned as is when it fits).
-- Also returns, for each bucket, the index of its last value.
function M.resample(values, n)
  local count = #values
  local out, last = {}, {}
  if count <= n then
    for i = 1, count do out[i], last[i] = values[i], i end
    return out, last
  end
  for c = 1, n do
    local a, b = floor((c - 1) * count / n) + 1, floor(c * count / n)
    local sum = 0
    for i = a, b do sum = sum + values[i] end
    out[c], last[c] = sum / (b - a + 1), b
  end
  return out, last
end

--- A sparkline: one of ▁▂▃▄▅▆▇█ (or _.-~=+*#) per value, scaled between the min and max.
function M.sparkline(values)
  local sparks = fmt.glyphs().sparks
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do lo, hi = min(lo, v), max(hi, v) end
  local out = {}
  for i, v in ipairs(values) do
    local level = hi > lo and floor((v - lo) / (hi - lo) * 7 + 0.5) + 1 or 4
    out[i] = sparks[level]
  end
  return concat(out)
end

-- Labels for `values` with the fewest decimals that tell them apart.
local function labels(values)
  for d = 1, 3 do
    local seen, out, clash = {}, {}, false
    for i, v in ipairs(values) do
      out[i] = fmt.human(v, d)
      if seen[out[i]] and values[seen[out[i]]] ~= v then clash = true end
      seen[out[i]] = i
    end
    if not clash or d == 3 then return out end
  end
end

local function date_of(point)
  local t = type(point) == "table" and point.time
  if type(t) ~= "string" then return "?" end
  return t:sub(1, 10)
end

--- Render the plot. `points` is the `data` array of a data_series response
-- (`{time=, size=}` each). Options: `width` (default 80), `height` (chart
-- rows, default 10), `title`.
---@param points {time: string, size: number}[]
---@param opts? {width?: integer, height?: integer, title?: string}
---@return string
function M.render(points, opts)
  opts = opts or {}
  local width, height = opts.width or 80, opts.height or 10
  local glyph = fmt.glyphs()
  local lines = {}
  local function add(s) lines[#lines + 1] = s end

  local values, days = {}, {}
  for _, p in ipairs(points) do
    if type(p) == "table" and type(p.size) == "number" then
      values[#values + 1] = p.size
      days[#days + 1] = date_of(p)
    end
  end
  local n = #values
  if opts.title then add(fmt.truncate(opts.title, width)) end
  if n == 0 then
    add("(no data points)")
    return concat(lines, "\n") .. "\n"
  end
  add(fmt.truncate(string.format("%d day%s, %s to %s", n, n == 1 and "" or "s", days[1],
    days[n]), width))

  local lo, hi, ilo, ihi = math.huge, -math.huge, 1, 1
  for i, v in ipairs(values) do
    if v < lo then lo, ilo = v, i end
    if v > hi then hi, ihi = v, i end
  end

  -- Y axis: row k (1 = bottom) tops out at lo + (k-1) * step, so the smallest
  -- value fills exactly one row and the largest all of them.
  local step = hi > lo and (hi - lo) / (height - 1) or (lo ~= 0 and math.abs(lo) / height or 1)
  local base = (hi > lo and lo or hi) - step * (hi > lo and 1 or height)
  local span = step * height
  local label_rows = {}
  for k = height, 1, -3 do label_rows[#label_rows + 1] = k end
  if label_rows[#label_rows] ~= 1 then label_rows[#label_rows + 1] = 1 end
  local label_values = {}
  for i, k in ipairs(label_rows) do label_values[i] = base + k * step end
  local texts = labels(label_values)
  local label_at, lw = {}, 1
  for i, k in ipairs(label_rows) do
    label_at[k] = texts[i]
    lw = max(lw, #texts[i])
  end

  -- X: columns per day (bars of cw-1 columns and a gap), or resampled days.
  local plot_w = width - lw - 3
  local cols, last = M.resample(values, plot_w)
  local cw = max(1, min(3, floor(plot_w / #cols)))
  local bar_w = cw >= 2 and cw - 1 or 1
  local spark_cols = M.resample(values, plot_w)

  add(rep(" ", lw + 2) .. M.sparkline(spark_cols))
  add("")
  local eighths = {}
  for c, v in ipairs(cols) do
    eighths[c] = floor((v - base) / span * height * 8 + 0.5)
  end
  for k = height, 1, -1 do
    local row = {}
    for c = 1, #cols do
      local e = eighths[c] - (k - 1) * 8
      local ch = e >= 8 and glyph.full or (e >= 1 and glyph.eighths[e] or " ")
      row[#row + 1] = rep(ch, bar_w)
      if cw >= 2 then row[#row + 1] = rep(" ", cw - bar_w) end
    end
    local label = label_at[k]
    local axis = label and (fmt.pad(label, lw, true) .. " " .. glyph.tick) or (rep(" ", lw) .. " " .. glyph.axis)
    add((axis .. concat(row)):gsub("%s+$", ""))
  end
  local used = #cols * cw
  add(rep(" ", lw) .. " " .. glyph.corner .. rep(glyph.rule, used))

  -- Date labels (MM-DD) under chosen columns, never overlapping.
  local xline = {}
  for i = 1, used + 6 do xline[i] = " " end
  local next_free = 1
  local function put(c)
    local text = days[last[c]]:sub(6)
    local at = (c - 1) * cw + 1
    if at + #text - 1 > used then at = max(1, used - #text + 1) end
    if at < next_free then return false end
    for j = 1, #text do xline[at + j - 1] = text:sub(j, j) end
    next_free = at + #text + 2
    return true
  end
  local ncols = #cols
  local every = max(1, floor(12 / cw + 0.5))
  put(1)
  for c = 1 + every, ncols - 1, every do
    if (ncols - c) * cw >= 8 then put(c) end
  end
  if ncols > 1 then put(ncols) end
  add((rep(" ", lw + 2) .. concat(xline)):gsub("%s+$", ""))
  if ncols < n then
    add(rep(" ", lw + 2) .. string.format("(%d days averaged into %d columns)", n, ncols))
  end
  add("")
  add(string.format("min %s (%s) on %s", fmt.thousands(lo), fmt.human(lo), days[ilo]))
  add(string.format("max %s (%s) on %s", fmt.thousands(hi), fmt.human(hi), days[ihi]))
  add(string.format("change %s from %s to %s", fmt.change(values[1], values[n]), days[1], days[n]))
  return concat(lines, "\n") .. "\n"
end

return M
