--- SVG drawings of a segment's daily sizes: the sparklines of the report
-- page (inline, no text) and the chart of `series --format svg` (a whole
-- document with axes, dates and sizes labelled). One point per value, in
-- order, so a drawing has exactly as many points as its series.
--
-- Sizes may exceed 2^53 (the decoder's exact integers): the labels print
-- them exactly, and positions are computed from differences to the minimum
-- (exact for integers) divided by the range, so a series varying by a few
-- units on top of 2^60 still spans the drawing.
-- @module braze.cli.svg
local html = require(((...):gsub("svg$", "html")))

local M = {}

local format, concat = string.format, table.concat
local floor, max, mtype = math.floor, math.max, math.type
local escape, number = html.escape, html.number

--- The smallest and largest of `values` (numbers), or nil for none.
function M.range(values)
  local lo, hi
  for _, v in ipairs(values) do
    if lo == nil or v < lo then lo = v end
    if hi == nil or v > hi then hi = v end
  end
  return lo, hi
end

-- Where v lies between lo and hi, 0..1 (0.5 when they are equal).
local function fraction(v, lo, hi)
  if hi == lo then return 0.5 end
  return (v - lo) / (hi - lo)
end

-- A coordinate with at most one decimal, without a trailing ".0".
local function coord(x)
  local s = format("%.1f", x)
  return (s:gsub("%.0$", ""))
end

--- An inline sparkline: `<svg>` with one polyline point per value (none for
-- no values), `height` units tall (default 20), one unit per day wide and
-- stretched to its box by CSS. `class` becomes the svg's class,
-- `title` (escaped) becomes its `<title>`.
---@param values number[]
---@param o? {height?: integer, class?: string, title?: string}
---@return string
function M.sparkline(values, o)
  o = o or {}
  local h = o.height or 20
  local n = #values
  local lo, hi = M.range(values)
  local pts = {}
  for i, v in ipairs(values) do
    -- Integers keep the page small; a pixel of slack at the top and bottom
    -- keeps the stroke inside the box.
    pts[i] = format("%d,%d", i - 1, floor((1 - fraction(v, lo, hi)) * (h - 2) + 1.5))
  end
  local parts = { format('<svg%s viewBox="0 0 %d %d" preserveAspectRatio="none">',
    o.class and format(' class="%s"', o.class) or "", max(n - 1, 1), h) }
  if o.title then parts[#parts + 1] = "<title>" .. escape(o.title) .. "</title>" end
  if n > 0 then parts[#parts + 1] = '<polyline points="' .. concat(pts, " ") .. '"/>' end
  parts[#parts + 1] = "</svg>"
  return concat(parts)
end

-- lo + (hi - lo) * k / 4, exact (floored) for integers of any size.
local function tick_value(lo, hi, k)
  if mtype(lo) == "integer" and mtype(hi) == "integer" then
    local d = hi - lo
    return lo + d // 4 * k + d % 4 * k // 4
  end
  return lo + (hi - lo) * k / 4
end

local function date_of(p)
  local t = p.time
  return type(t) == "string" and t:sub(1, 10) or "?"
end

--- A standalone SVG document charting `points` (the `data` array of a
-- data_series answer: `{time=, size=}`; points without a numeric size are
-- left out): a title, a y axis labelled with sizes (the minimum, the
-- maximum and three steps between), an x axis labelled with dates, the
-- line, and a dot per day whose `<title>` gives its date and size.
---@param points table[]
---@param o? {title?: string, width?: integer, height?: integer}
---@return string
function M.chart(points, o)
  o = o or {}
  local days = {}
  for _, p in ipairs(type(points) == "table" and points or {}) do
    if type(p) == "table" and type(p.size) == "number" and p.size == p.size then
      days[#days + 1] = p
    end
  end
  local values = {}
  for i, p in ipairs(days) do values[i] = p.size end
  local lo, hi = M.range(values)

  local ticks = {}
  if lo then
    for k = 0, hi == lo and 0 or 4 do
      local v = tick_value(lo, hi, k)
      if k == 4 then v = hi end
      ticks[#ticks + 1] = { value = v, label = number(v) }
    end
  end
  local widest = 1
  for _, t in ipairs(ticks) do widest = max(widest, #t.label) end

  local width, height = o.width or 720, o.height or 320
  local left, right, top, bottom = 16 + widest * 7, 24, 40, 44
  local plot_w, plot_h = width - left - right, height - top - bottom
  local n = #days
  local function x_of(i) return left + (n > 1 and (i - 1) / (n - 1) or 0.5) * plot_w end
  local function y_of(v) return top + (1 - fraction(v, lo, hi)) * plot_h end

  local out = {
    format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
      .. 'font-family="sans-serif" font-size="12">', width, height, width, height),
    "<title>" .. escape(o.title or "Estimated size per day") .. "</title>",
    '<rect width="100%" height="100%" fill="#fff"/>',
    format('<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>', left,
      escape(o.title or "Estimated size per day")),
  }
  local function add(s) out[#out + 1] = s end
  -- Axes, grid lines and size labels.
  add(format('<g stroke="#999"><line x1="%d" y1="%d" x2="%d" y2="%d"/>'
    .. '<line x1="%d" y1="%d" x2="%d" y2="%d"/></g>',
    left, top, left, top + plot_h, left, top + plot_h, left + plot_w, top + plot_h))
  add('<g class="sizes" text-anchor="end" fill="#333">')
  for _, t in ipairs(ticks) do
    local y = coord(y_of(t.value))
    add(format('<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e4e4e4"/>', left + 1, y,
      left + plot_w, y))
    add(format('<text x="%d" y="%s" dy="4">%s</text>', left - 6, y, t.label))
  end
  add("</g>")
  -- Date labels: the first, the last and up to four between.
  add('<g class="dates" text-anchor="middle" fill="#333">')
  local shown, labels = {}, math.min(n, 6)
  for k = 0, labels - 1 do
    local i = labels > 1 and floor((n - 1) * k / (labels - 1) + 0.5) + 1 or 1
    if not shown[i] then
      shown[i] = true
      add(format('<text x="%s" y="%d">%s</text>', coord(x_of(i)), top + plot_h + 18,
        escape(date_of(days[i]))))
    end
  end
  add("</g>")
  if n == 0 then
    add(format('<text x="%s" y="%s" text-anchor="middle" fill="#666">no data points</text>',
      coord(left + plot_w / 2), coord(top + plot_h / 2)))
  else
    local pts, dots = {}, {}
    for i, p in ipairs(days) do
      local x, y = coord(x_of(i)), coord(y_of(p.size))
      pts[i] = x .. "," .. y
      dots[i] = format('<circle cx="%s" cy="%s" r="2.5"><title>%s: %s</title></circle>', x, y,
        escape(date_of(p)), number(p.size))
    end
    add('<polyline fill="none" stroke="#1f6feb" stroke-width="2" stroke-linejoin="round" '
      .. 'points="' .. concat(pts, " ") .. '"/>')
    add('<g class="days" fill="#1f6feb">' .. concat(dots) .. "</g>")
  end
  add(format('<text x="%d" y="%d" fill="#666">estimated size per day (UTC), %d day%s</text>',
    left, height - 8, n, n == 1 and "" or "s"))
  add("</svg>\n")
  return concat(out, "\n")
end

return M
