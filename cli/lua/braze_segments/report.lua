--- `braze-segments report`: every segment's size over the last days as one
-- self-contained HTML page (see braze.cli.page for the page itself).
--
--     braze-segments report [--days 1..100] [--end DATE] [--sort change|size|name]
--                           [-o FILE] [--concurrency N] [--reserve N]
--
-- It runs the pipelined export (list pages, details and series through one
-- pool of `--concurrency` transfers, with the client's retries and pacing),
-- keeps per segment only what the page shows (its sizes as numbers, not the
-- answers' tables), and writes the page once every segment is in: to FILE
-- through a temporary file renamed over it, so a failed run leaves no half
-- page, or to stdout. Exit status as `export`: 0, 1 (API, network, file),
-- 2 (usage), 130 (interrupted).
-- @module braze.cli.report
local here = (...):match("^(.-)[^.]*$") -- "braze.cli.": the sibling modules
local html = require(here .. "html")
local svg = require(here .. "svg")
local page = require(here .. "page")
local usage = require(here .. "usage")

local M = {}

--- The drawing code, for `series --format svg`.
M.svg = svg

local format, sort = string.format, table.sort
local abs, huge = math.abs, math.huge

M.SORTS = { "change", "size", "name" }

--- Add the `report` command to the argparse `parser`; `with_help` is the
-- command's own help setup.
function M.add_command(parser, with_help)
  local c = with_help(parser:command("report",
    "Write one HTML page of every segment's size over the last days: a row per segment with "
    .. "a sparkline, the biggest risers and fallers, sortable by any column."))
    :epilog(table.concat({
      "The page has no external resources: it opens offline, prints, and follows the",
      "system's dark mode. Default order: the largest change in percent first.",
    }, "\n"))
  c:option("--days", "Days of sizes, 1..100.", "30"):argname("<n>")
  c:option("--end", "Last day: YYYY-MM-DD or ISO 8601 (default: now).")
    :argname("<date>")
  c:option("--sort", "Row order: change (largest change in percent, up or down, first), size "
    .. "(largest first) or name.", "change"):choices(M.SORTS)
  c:option("-o --output", "Write to FILE instead of stdout."):argname("<file>")
  c:option("--concurrency", "Requests in flight at once, 1..64.", "8"):argname("<n>")
  c:option("--reserve", "Requests of each rate-limit window left to the workspace's other "
    .. "integrations (a count).", "0"):argname("<n>")
  return c
end

-- -------------------------------------------------------------------------
-- One segment's row

local function strings(v)
  local out = {}
  if type(v) == "table" then
    for _, s in ipairs(v) do
      if type(s) == "string" or type(s) == "number" then out[#out + 1] = tostring(s) end
    end
  end
  return out
end

local function date(v) return type(v) == "string" and v:sub(1, 10) or nil end

--- What the page shows of one segment of the pipelined each (the list
-- entry with `details` and `series` answers): name, tags, teams, tracking,
-- dates, the numeric sizes in order and their first/last dates, first,
-- last (the size at the end), min, max, change, percent and `state`
-- ("empty" when no size, "flat" when every size is equal, else "up",
-- "down" or "same").
function M.row(seg)
  local d = type(seg.details) == "table" and seg.details or {}
  local data = type(seg.series) == "table" and type(seg.series.data) == "table"
    and seg.series.data or {}
  local r = {
    -- A name that is not text (null, missing) shows as nothing, not "nil".
    id = tostring(seg.id), name = strings({ seg.name })[1] or "",
    tags = strings(seg.tags), teams = strings(d.teams),
    tracking = seg.analytics_tracking_enabled,
    created = date(d.created_at), updated = date(d.updated_at),
    values = {},
  }
  for _, p in ipairs(data) do
    if type(p) == "table" and type(p.size) == "number" and p.size == p.size then
      r.values[#r.values + 1] = p.size
      r.start = r.start or date(p.time)
      r["end"] = date(p.time)
    end
  end
  local v = r.values
  if #v == 0 then
    r.state = "empty"
    return r
  end
  r.first, r.last = v[1], v[#v]
  r.min, r.max = svg.range(v)
  r.change = r.last - r.first
  r.percent = html.percent(r.first, r.last)
  if r.min == r.max then
    r.state = "flat"
  else
    r.state = r.change > 0 and "up" or (r.change < 0 and "down" or "same")
  end
  return r
end

-- The default order's key: the percent change's size, from nothing to
-- something counting as the largest; no data below everything.
local function change_key(r)
  if r.state == "empty" then return -1 end
  if r.percent == nil then return r.change > 0 and huge or 0 end
  return abs(r.percent)
end

local function by_name(a, b)
  if a.name ~= b.name then return a.name < b.name end
  return a.id < b.id
end

local ORDERS = {
  change = function(a, b)
    local ka, kb = change_key(a), change_key(b)
    if ka ~= kb then return ka > kb end
    return by_name(a, b)
  end,
  size = function(a, b)
    if (a.last == nil) ~= (b.last == nil) then return a.last ~= nil end
    if a.last ~= b.last then return a.last > b.last end
    return by_name(a, b)
  end,
  name = by_name,
}

--- Sort `rows` in place by `how` (change, size or name).
function M.sort(rows, how)
  sort(rows, ORDERS[how or "change"])
  return rows
end

-- Signed percent for the risers and fallers ("new" counts as the most).
local function signed(r)
  if r.percent == nil then return r.change > 0 and huge or 0 end
  return r.percent
end

--- The `n` (default 10) rows that grew most and shrank most in percent.
function M.movers(rows, n)
  n = n or 10
  local up, down = {}, {}
  for _, r in ipairs(rows) do
    if r.state ~= "empty" and r.change > 0 then up[#up + 1] = r end
    if r.state ~= "empty" and r.change < 0 then down[#down + 1] = r end
  end
  sort(up, function(a, b)
    if signed(a) ~= signed(b) then return signed(a) > signed(b) end
    return by_name(a, b)
  end)
  sort(down, function(a, b)
    if signed(a) ~= signed(b) then return signed(a) < signed(b) end
    return by_name(a, b)
  end)
  for i = #up, n + 1, -1 do up[i] = nil end
  for i = #down, n + 1, -1 do down[i] = nil end
  return up, down
end

-- -------------------------------------------------------------------------
-- The command

-- The endpoint as shown on the page: no user, password or query.
local function shown_endpoint(url)
  url = tostring(url or "")
  url = url:gsub("^(%a[%w+.-]*://)[^/@]*@", "%1"):gsub("[?#].*$", "")
  return url
end

--- Collect every segment and build the page. `o`: days, ending_at, sort,
-- concurrency, progress, endpoint, made_at (text). Returns the page text
-- and the rows (sorted).
function M.build(client, o)
  local progress = o.progress
  local rows, page_now = {}, nil
  local iter, state, ctl, closer = client:each({ details = true, concurrency = o.concurrency,
    series = { length = o.days, ending_at = o.ending_at } })
  local ok, err = pcall(function()
    for seg, page_no in iter, state, ctl do
      if page_no ~= page_now then
        page_now = page_no
        if progress then progress:page() end
      end
      if type(seg) == "table" then rows[#rows + 1] = M.row(seg) end
      if progress then progress:segment() end
    end
  end)
  if closer then closer.close() end
  if not ok then error(err, 0) end
  if progress then progress:set_total(progress.done) end
  M.sort(rows, o.sort)
  local risers, fallers = M.movers(rows)
  local first, last -- the days the sizes cover (ISO dates compare as text)
  for _, r in ipairs(rows) do
    if r.start and (first == nil or r.start < first) then first = r.start end
    if r["end"] and (last == nil or r["end"] > last) then last = r["end"] end
  end
  return page.render({
    rows = rows, risers = risers, fallers = fallers, sort = o.sort or "change",
    endpoint = shown_endpoint(o.endpoint), days = o.days, made_at = o.made_at,
    first_day = first, last_day = last or date(o.ending_at),
  }), rows
end

-- Write `text` to `path` through a temporary file renamed over it.
local function write_file(path, text)
  local tmp = path .. ".tmp-report"
  local f, err = io.open(tmp, "wb")
  if not f then error({ io_error = err, target = path }, 0) end
  local ok, werr = f:write(text)
  if ok then ok, werr = f:close() else f:close() end
  if ok then ok, werr = os.rename(tmp, path) end
  if not ok then
    os.remove(tmp)
    error({ io_error = werr, target = path }, 0)
  end
end

--- The command: `a` the parsed arguments, `ctx` main's context. The
-- options are checked against braze.options' ranges (usage errors).
function M.run(client, a, ctx)
  local option_value, date_option = usage.option_value, usage.date_option
  local o = {
    days = option_value("length", a.days, "--days"),
    concurrency = option_value("concurrency", a.concurrency, "--concurrency"),
    -- One end for every segment, so the rows line up.
    ending_at = date_option(a["end"], "--end") or os.date("!%Y-%m-%dT%H:%M:%SZ"),
    sort = a.sort, progress = ctx.progress, endpoint = client.endpoint,
    made_at = os.date("!%Y-%m-%d %H:%M UTC"),
  }
  local ok, text, rows = pcall(M.build, client, o)
  if ctx.progress then
    if ok then ctx.progress:finish() else ctx.progress:clear() end
  end
  if not ok then error(text, 0) end
  if a.output then
    write_file(a.output, text)
    ctx.note(format("wrote %d segment%s to %s", #rows, #rows == 1 and "" or "s", a.output))
  else
    ctx.out(text)
  end
end

return M
