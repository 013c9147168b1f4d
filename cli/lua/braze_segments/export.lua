--- `braze-segments export`: every segment, optionally with its details and
-- a size series, written record by record (flushed after each one) as JSON
-- Lines or CSV, and resumable after a crash.
--
-- JSON Lines: one object per segment, the list entry's fields (`id`, `name`,
-- `analytics_tracking_enabled`, `tags`, ...) plus `details` (the details
-- response without `message`) with --details and `series` (the `data` array
-- of the data_series response) with --series.
--
-- CSV (RFC 4180, CRLF line ends, header row), columns in this order:
--
--     id,name,analytics_tracking_enabled,tags
--     + description,created_at,updated_at                          (--details)
--     + series_start,series_end,series_first,series_last,series_min,series_max (--series)
--
-- `tags` are joined with ';'; booleans are true/false; null is empty;
-- series_start/series_end are the first and last dates, the others sizes.
-- A text cell that a spreadsheet would run as a formula (= + - @ TAB CR
-- first) is written with a ' in front, and NUL as U+FFFD (format.csv_string);
-- a resume reads ids back without that '.
--
-- Resume (--resume --output FILE): the ids already in FILE are skipped; a
-- last record cut short by a crash is removed first; listing starts one page
-- before the page the file stops in (in case segments were archived since).
-- That first page must show FILE's records in FILE's order, else (another
-- --sort, or too much changed to find where FILE stops) nothing is written.
-- @module braze_segments.export
local json = require("braze_segments.json")
local fmt = require("braze_segments.format")
local braze = require("braze")
local options = require("braze.options")
local manifest = require("braze_segments.manifest")

local M = {}

local PAGE_SIZE = options.PAGE_SIZE
--- Transfers at once for the per-segment calls (--concurrency).
M.CONCURRENCY = options.default("concurrency")

--- The CSV header for these options.
---@param job {details?: boolean, series?: integer}
---@return string[]
function M.columns(job)
  local cols = { "id", "name", "analytics_tracking_enabled", "tags" }
  if job.details then
    for _, c in ipairs({ "description", "created_at", "updated_at" }) do cols[#cols + 1] = c end
  end
  if job.series then
    for _, c in ipairs({ "series_start", "series_end", "series_first", "series_last",
      "series_min", "series_max" }) do
      cols[#cols + 1] = c
    end
  end
  return cols
end

local function without_message(t)
  if type(t) ~= "table" then return t end
  local copy = {}
  for k, v in pairs(t) do if k ~= "message" then copy[k] = v end end
  return copy
end
M.without_message = without_message

--- Summary of a `data` array: start, end (dates), first, last, min, max (sizes).
function M.series_stats(data)
  local stats = {}
  if type(data) ~= "table" then return stats end
  for _, point in ipairs(data) do
    local size = type(point) == "table" and point.size
    if type(size) == "number" then
      local day = type(point.time) == "string" and point.time:sub(1, 10) or nil
      if stats.first == nil then stats.first, stats.start = size, day end
      stats.last, stats["end"] = size, day
      stats.min = (stats.min == nil or size < stats.min) and size or stats.min
      stats.max = (stats.max == nil or size > stats.max) and size or stats.max
    end
  end
  return stats
end

--- The JSON Lines line (with its newline) for one segment.
function M.jsonl_record(seg, extra, job)
  local obj = {}
  for k, v in pairs(seg) do obj[k] = v end
  if job.details then obj.details = without_message(extra.details) end
  if job.series then
    local data = type(extra.series) == "table" and extra.series.data or nil
    obj.series = type(data) == "table" and data or {}
  end
  return json.encode(obj) .. "\n"
end

--- The CSV record (with its CRLF) for one segment.
function M.csv_record(seg, extra, job)
  local values = { seg.id, seg.name, seg.analytics_tracking_enabled, seg.tags }
  if job.details then
    local details = type(extra.details) == "table" and extra.details or {}
    values[#values + 1], values[#values + 2], values[#values + 3] =
      details.description, details.created_at, details.updated_at
  end
  if job.series then
    local stats = M.series_stats(type(extra.series) == "table" and extra.series.data)
    local n = #values
    values[n + 1], values[n + 2], values[n + 3], values[n + 4], values[n + 5], values[n + 6] =
      stats.start, stats["end"], stats.first, stats.last, stats.min, stats.max
  end
  return fmt.csv_row(values, #M.columns(job))
end

-- -------------------------------------------------------------------------
-- Resume

local function same(id) return id end

--- How ids are compared with the ones a file holds: as they read back from
-- it. JSON Lines keeps an id exactly; a CSV cell keeps it but for a NUL or
-- bad UTF-8, repaired the same way on both sides.
function M.id_key(job)
  if job.format ~= "csv" then return same end
  return function(id) return fmt.csv_unguard(fmt.csv_string(id)) end
end

--- Read an earlier export. Returns `{ids=set, pos={id=record number},
-- count=, keep=bytes to keep, size=bytes in file, header=bool}`, or nil,
-- message when the file cannot be continued (different columns or options,
-- a corrupt record).
---@return table|nil state
---@return string|nil message
function M.scan(path, job)
  local f = io.open(path, "rb")
  if not f then return { ids = {}, pos = {}, count = 0, keep = 0, size = 0, missing = true } end
  local text = f:read("a")
  f:close()
  local found = { ids = {}, pos = {}, count = 0, keep = 0, size = #text }
  local function add(id)
    if type(id) == "string" and not found.ids[id] then
      found.ids[id] = true
      found.count = found.count + 1
      found.pos[id] = found.count
    end
  end
  if job.format == "csv" then
    local records, ends = fmt.parse_csv(text)
    if #records == 0 then return found end
    local want = M.columns(job)
    local got = records[1]
    if table.concat(got, ",") ~= table.concat(want, ",") then
      return nil, string.format("%s has the columns %s, but this export writes %s: use the "
        .. "same --details/--series options, or another --output", path,
        table.concat(got, ","), table.concat(want, ","))
    end
    found.keep, found.header = ends[1], true
    for i = 2, #records do
      if #records[i] ~= #want then
        if i == #records then break end -- a damaged last record: dropped
        return nil, string.format("%s: record %d has %d fields, expected %d", path, i - 1,
          #records[i], #want)
      end
      add(fmt.csv_unguard(records[i][1]))
      found.keep = ends[i]
    end
    return found
  end
  -- JSON Lines: a record is complete when its newline was written.
  local pos, lineno, checked = 1, 0, false
  while true do
    local nl = text:find("\n", pos, true)
    if not nl then break end
    lineno = lineno + 1
    local line = text:sub(pos, nl - 1)
    if line:find("%S") then
      local obj = braze.decode(line)
      if type(obj) ~= "table" or type(obj.id) ~= "string" then
        if not text:find("%S", nl + 1) then break end -- damaged last line: dropped
        return nil, string.format("%s: line %d is not a segment record", path, lineno)
      end
      if not checked then
        checked = true
        local has_d, has_s = obj.details ~= nil, obj.series ~= nil
        if has_d ~= (job.details == true) or has_s ~= (job.series ~= nil) then
          return nil, string.format("%s was written %s --details and %s --series: resume with "
            .. "the same options, or use another --output", path, has_d and "with" or "without",
            has_s and "with" or "without")
        end
      end
      add(obj.id)
    end
    found.keep, pos = nl, nl + 1
  end
  return found
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Is `path` a regular file (not a device, a FIFO, a directory)? Lua has
-- no stat: ask test(1).
function M.is_regular_file(path)
  local ok = os.execute("test -f " .. shell_quote(path))
  return ok == true or ok == 0
end

-- Keep the first `keep` bytes of `path`: write them to a temporary file and
-- rename it over the original, so a crash now cannot lose the rest.
local function truncate(path, keep)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local tmp = path .. ".resume-tmp"
  local out, err = io.open(tmp, "wb")
  if not out then return nil, err end
  local ok, werr = out:write(text:sub(1, keep))
  if ok then ok, werr = out:flush() end
  out:close()
  if not ok then os.remove(tmp); return nil, werr end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then os.remove(tmp); return nil, rerr end
  return true
end

-- -------------------------------------------------------------------------
-- The export

-- Open where the records go: `job.output` (after reading, on --resume,
-- what it holds) or stdout. Returns a target { out, close_out, known (ids
-- already written), already (their count), file_pos (id -> record number),
-- start_page, write_header }, or nil, message, exit code.
local function open_target(job)
  local target = { known = {}, already = 0, start_page = 0, write_header = job.format == "csv",
    key = M.id_key(job) }
  if not job.output then
    target.out = job.stdout or io.stdout
    return target
  end
  local mode = "wb"
  -- What the file was written with (FILE.braze.json): a resume must match it.
  local recorded
  if job.resume then
    -- Reading /dev/zero or a FIFO to its end would never finish.
    -- (test: opening a FIFO to look would block.)
    local fresh = os.execute("test ! -e " .. shell_quote(job.output))
    if not (fresh == true or fresh == 0) and not M.is_regular_file(job.output) then
      return nil, "braze-segments: --resume needs a regular file: " .. job.output .. " is not one", 2
    end
    local unreadable
    recorded, unreadable = manifest.read(job.output)
    if recorded == false then return nil, "braze-segments: " .. unreadable, 2 end
    -- Without its manifest nothing says what a file holds: resuming could
    -- mix two date windows, orders or workspaces into it.
    if recorded == nil and not (fresh == true or fresh == 0) then
      local missing = manifest.missing(job.output)
      if missing then return nil, "braze-segments: " .. missing, 2 end
    end
    local mixed = recorded and manifest.reconcile(job, recorded)
    if mixed then return nil, "braze-segments: " .. mixed, 2 end
    local found, why = M.scan(job.output, job)
    if not found then return nil, "braze-segments: " .. why, 2 end
    if found.keep < found.size then
      local ok, terr = truncate(job.output, found.keep)
      if not ok then
        return nil, string.format("braze-segments: cannot remove the incomplete last record "
          .. "of %s: %s", job.output, tostring(terr)), 1
      end
      if job.note then
        job.note(string.format("removed an incomplete last record (%d bytes) from %s",
          found.size - found.keep, job.output))
      end
    end
    target.known, target.already, target.file_pos = found.ids, found.count, found.pos
    target.write_header = job.format == "csv" and not found.header
    -- one page before the one the file stops in, in case segments were archived since
    target.start_page = math.max(0, found.count // PAGE_SIZE - 1)
    mode = "ab"
  end
  local f, err = io.open(job.output, mode)
  if not f then return nil, "braze-segments: " .. tostring(err), 1 end
  if not recorded then
    local written, why = manifest.write(job)
    if not written then
      f:close()
      return nil, "braze-segments: " .. why, 1
    end
  end
  target.out, target.close_out = f, true
  return target
end

-- Resume: before anything is written, the first page listed must agree
-- with the file. Listed in the file's --sort, its ids already in the file
-- come in the file's order and, past page 0, before any new id (segments
-- created since show up at the top of page 0 in desc order); with the
-- other --sort they come reversed, or after new ids, or not at all, and
-- the pages before it, never listed, would be skipped. Raises { refuse = }.
local function check_first_page(job, target, first_ids)
  local last, known_here, new_seen = 0, 0, false
  for _, id in ipairs(first_ids) do
    local pos = id and target.file_pos[target.key(id)]
    if not pos then
      new_seen = true
    elseif pos < last or (new_seen and target.start_page > 0) then
      known_here = -1
      break
    else
      last, known_here = pos, known_here + 1
    end
  end
  if known_here >= 0 and (target.start_page == 0 or known_here > 0) then return end
  error({ refuse = string.format("%s does not continue a --sort %s listing: resume with "
    .. "the --sort it was written with (or, if many segments were created or archived "
    .. "since, export again without --resume)", job.output, job.sort or "asc") }, 0)
end

-- List every segment through the pipelined each (the next pages, details
-- and series are on their way while this one is written; a page comes only
-- when all its calls are done) and write the ones not yet in the target.
local function copy_segments(client, job, target, summary)
  local progress = job.progress
  local record = job.format == "csv" and M.csv_record or M.jsonl_record
  local function emit(text)
    local ok, err = target.out:write(text)
    if ok then ok, err = target.out:flush() end
    if not ok then error({ io_error = err, target = job.output }, 0) end
  end
  local function write(segment)
    local extra = { details = segment.details, series = segment.series }
    segment.details, segment.series = nil, nil -- the pipeline's fields, written as the record's own
    emit(record(segment, extra, job))
    summary.written = summary.written + 1
    if progress then progress:segment() end
  end

  if target.write_header then emit(fmt.csv_row(M.columns(job))) end
  local series = job.series and { length = job.series, ending_at = job.ending_at } or nil
  local iter, state, control, closer = client:each({ sort_direction = job.sort,
    page = target.start_page, details = job.details or nil, series = series,
    concurrency = job.concurrency or M.CONCURRENCY })
  -- resume: the first page is held until check_first_page agrees
  local checking, first_ids, held, page_now = target.already > 0, {}, {}, nil
  local function release()
    check_first_page(job, target, first_ids)
    checking = false
    for _, segment in ipairs(held) do write(segment) end
  end
  local ok, err = pcall(function()
    for segment, page_no in iter, state, control do
      if page_no ~= page_now then
        summary.pages = summary.pages + 1
        if progress then progress:page() end
        if checking and page_now ~= nil then release() end
        page_now = page_no
      end
      local id = type(segment) == "table" and segment.id or nil
      if checking then first_ids[#first_ids + 1] = type(id) == "string" and id end
      if type(segment) ~= "table" or (type(id) == "string" and target.known[target.key(id)]) then
        summary.skipped = summary.skipped + 1
      else
        if type(id) == "string" then target.known[target.key(id)] = true end
        if checking then held[#held + 1] = segment else write(segment) end
      end
    end
    if checking then release() end
    if progress then progress:set_total(progress.done) end
  end)
  if closer then closer.close() end
  if not ok then error(err, 0) end
end

--- Run an export.
-- `job`: `format` ("jsonl"|"csv"), `details`, `series` (days), `ending_at`,
-- `output` (path, else `stdout`), `resume`, `sort`, `progress` (a
-- braze_segments.progress object), `stdout`, `note(message)` for stderr notes.
-- Returns a summary table, or nil, err, exit_code and the summary so far.
function M.run(client, job)
  -- The workspace the records come from, recorded in (and checked against)
  -- the manifest: the endpoint as the client resolved it.
  if job.endpoint == nil then job.endpoint = client.endpoint end
  local target, why, code = open_target(job)
  if not target then return nil, why, code end
  local summary = { written = 0, skipped = 0, already = target.already, pages = 0,
    start_page = target.start_page }
  local ok, err = pcall(copy_segments, client, job, target, summary)
  if target.close_out then
    -- close reports a write error the last flush did not see (NFS, quota).
    local closed, cerr = target.out:close()
    if ok and not closed then ok, err = false, { io_error = cerr, target = job.output } end
  end
  if job.progress then
    if ok then job.progress:finish() else job.progress:clear() end
  end
  if not ok then
    if type(err) == "table" and err.refuse then return nil, "braze-segments: " .. err.refuse, 2 end
    return nil, err, 1, summary
  end
  return summary
end

return M
