--- The commands of braze-segments: list, details, series, export and report.
-- Each takes the client, the parsed arguments and the context main made
-- (`out`, `note`, `progress`, `env`, `stdout`), and raises to fail.
-- @module braze_segments.commands
local braze = require("braze")
local json = require("braze_segments.json")
local fmt = require("braze_segments.format")
local plot = require("braze_segments.plot")
local export = require("braze_segments.export")
local usage = require("braze_segments.usage")
local report = require("braze_segments.report")
local core = require("braze.core")

local format = string.format
local usage_error, exit_with = usage.usage_error, usage.exit_with
local option_value, date_option = usage.option_value, usage.date_option

-- -------------------------------------------------------------------------
-- Commands

local function list_cell_rows(segments)
  local rows = {}
  for i, s in ipairs(segments) do
    local tracking = s.analytics_tracking_enabled
    rows[i] = {
      fmt.cell(s.id), fmt.cell(s.name),
      tracking == true and "yes" or (tracking == false and "no" or ""),
      fmt.cell(s.tags),
    }
  end
  return rows
end

local LIST_COLUMNS = { "id", "name", "analytics_tracking_enabled", "tags" }

-- Columns for tables and plots: COLUMNS when set, else the terminal's own
-- width when stdout is one (at least 40), else nil: a table written to a
-- file or a pipe is never cut (a plot, which needs a width, takes 80).
local function terminal_width(ctx)
  local columns = tonumber(ctx.env("COLUMNS") or "")
  if columns and columns >= 1 then return math.max(40, math.floor(columns)) end
  if ctx.stdout == io.stdout then
    columns = core.terminal_width(1)
    if columns then return math.max(40, columns) end
  end
  return nil
end

local function cmd_list(client, args, ctx)
  local out = ctx.out
  local output_format = args.format
  local progress = ctx.progress
  local rows, count, last_page = {}, 0, nil
  if output_format == "csv" then out(fmt.csv_row(LIST_COLUMNS)) end
  if output_format == "json" then out("[") end
  for seg, page in client:each({ sort_direction = args.sort }) do
    if page ~= last_page then
      last_page = page
      if progress then progress:page() end
    end
    count = count + 1
    if output_format == "csv" then
      out(fmt.csv_row({ seg.id, seg.name, seg.analytics_tracking_enabled, seg.tags }, 4))
    elseif output_format == "json" then
      out((count > 1 and ",\n" or "\n") .. json.encode(seg))
    else
      rows[#rows + 1] = seg
    end
    if progress then progress:segment() end
  end
  if progress then progress:finish() end
  if output_format == "json" then
    out(count > 0 and "\n]\n" or "]\n")
  elseif output_format == "table" then
    if count == 0 then
      out("(no segments)\n")
    else
      out(fmt.table({
        { title = "ID" }, { title = "NAME", min = 16 },
        { title = "TRACKED" }, { title = "TAGS", min = 8 },
      }, list_cell_rows(rows), terminal_width(ctx)))
      out(format("%d segment%s\n", count, count == 1 and "" or "s"))
    end
  end
end

local DETAIL_FIELDS = { "name", "description", "text_description", "tags", "teams",
  "created_at", "updated_at" }

local function check_segment_id(id)
  if id == "" or id:find("%c") then
    usage_error("SEGMENT_ID must be a non-empty identifier without control characters")
  end
  return id
end

local function cmd_details(client, args, ctx)
  local out = ctx.out
  check_segment_id(args.segment_id)
  local details, err = client:details(args.segment_id)
  if not details then error(err, 0) end
  if args.format == "json" then
    -- With its id, as in the table and CSV forms (the API's answer has none).
    local obj = export.without_message(details)
    if type(obj) == "table" and obj.id == nil then obj.id = args.segment_id end
    out(json.encode(obj) .. "\n")
    return
  end
  local known = { message = true }
  for _, k in ipairs(DETAIL_FIELDS) do known[k] = true end
  local extra = {}
  for k in pairs(details) do if not known[k] then extra[#extra + 1] = tostring(k) end end
  table.sort(extra)
  if args.format == "csv" then
    -- values by the header's index: a field Braze left out stays an empty cell
    -- (values[#values + 1] = nil would shift the next ones into its column)
    local header, values = { "id" }, { args.segment_id }
    for _, k in ipairs(DETAIL_FIELDS) do
      header[#header + 1] = k
      values[#header] = details[k]
    end
    for _, k in ipairs(extra) do
      header[#header + 1] = k
      local v = details[k]
      values[#header] = type(v) == "table" and json.encode(v) or v
    end
    out(fmt.csv_row(header))
    out(fmt.csv_row(values, #header))
    return
  end
  local kv = { { "id", fmt.cell(args.segment_id) } }
  for _, k in ipairs(DETAIL_FIELDS) do
    local v = details[k]
    kv[#kv + 1] = { k, v == braze.null and "(null)" or fmt.cell(v) }
  end
  for _, k in ipairs(extra) do
    local v = details[k]
    kv[#kv + 1] = { k, fmt.cell(type(v) == "table" and json.encode(v) or v) }
  end
  out(fmt.keyvalue(kv))
end

local function cmd_series(client, args, ctx)
  local out = ctx.out
  check_segment_id(args.segment_id)
  local days = option_value("length", args.days, "--days")
  local ending_at = date_option(args["end"], "--end")
  local r, err = client:data_series({ segment_id = args.segment_id, length = days,
    ending_at = ending_at })
  if not r then error(err, 0) end
  local data = type(r.data) == "table" and r.data or {}
  if args.format == "json" then
    out(json.encode(export.without_message(r)) .. "\n")
  elseif args.format == "csv" then
    out(fmt.csv_row({ "time", "size" }))
    for _, p in ipairs(data) do out(fmt.csv_row({ p.time, p.size }, 2)) end
  elseif args.format == "svg" then
    out(report.svg.chart(data, { title = "Segment " .. args.segment_id .. ": estimated size per day" }))
  elseif args.format == "plot" then
    out(plot.render(data, { width = terminal_width(ctx) or 80, title = "Segment " .. fmt.cell(args.segment_id)
      .. ": estimated size per day" }))
  else
    local rows, prev = {}, nil
    for _, p in ipairs(data) do
      local change = ""
      if type(prev) == "number" and type(p.size) == "number" then
        local dv = p.size - prev
        change = (dv >= 0 and "+" or "-") .. fmt.thousands(math.abs(dv))
      end
      rows[#rows + 1] = { fmt.cell(p.time), fmt.thousands(p.size), change }
      prev = p.size
    end
    if #rows == 0 then
      out("(no data points)\n")
    else
      out(fmt.table({ { title = "DATE" }, { title = "SIZE", right = true },
        { title = "CHANGE", right = true } }, rows, terminal_width(ctx)))
    end
  end
end

local function cmd_export(client, args, ctx)
  local job = {
    format = args.format, details = args.details, sort = args.sort, output = args.output,
    resume = args.resume, progress = ctx.progress, stdout = ctx.stdout, note = ctx.note,
    concurrency = option_value("concurrency", args.concurrency, "--concurrency"),
  }
  if args.series then job.series = option_value("length", args.series, "--series") end
  if args["end"] and not job.series then usage_error("--end needs --series") end
  if args.resume and not args.output then usage_error("--resume needs --output FILE") end
  if job.series then
    -- One end for every segment, so the series of one export line up.
    -- A default end is resolved once, here, and kept in the file's manifest
    -- for a --resume on another day.
    job.ending_at = date_option(args["end"], "--end") or os.date("!%Y-%m-%dT%H:%M:%SZ")
    job.end_given = args["end"] ~= nil
  end
  local summary, err, code, partial = export.run(client, job)
  if not summary then
    -- Our own messages (bad --output, a file that cannot be resumed) exit
    -- here; error objects, write errors, interrupts and bugs go to main.
    if type(err) == "string" and err:find("^braze%-segments: ") then exit_with(code, err) end
    -- --resume can go on only from a regular file that holds records.
    if args.output and partial and partial.written + partial.already > 0
      and export.is_regular_file(args.output) then
      ctx.hint = format("%s holds what was written before the failure: run the same command "
        .. "with --resume to continue", args.output)
    end
    error(err, 0)
  end
  if args.output then
    local msg = format("wrote %d segment%s to %s", summary.written,
      summary.written == 1 and "" or "s", args.output)
    if args.resume then
      msg = msg .. format(" (%d already there)", summary.already)
    end
    ctx.note(msg)
  end
end

return { list = cmd_list, details = cmd_details, series = cmd_series,
  export = cmd_export, report = report.run }
