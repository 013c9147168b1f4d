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

local M = {}

local PAGE_SIZE = 100
--- Transfers at once for the per-segment calls (--concurrency).
M.CONCURRENCY = 8

--- The CSV header for these options.
---@param o {details?: boolean, series?: integer}
---@return string[]
function M.columns(o)
  local cols = { "id", "name", "analytics_tracking_enabled", "tags" }
  if o.details then
    for _, c in ipairs({ "description", "created_at", "updated_at" }) do cols[#cols + 1] = c end
  end
  if o.series then
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
  local s = {}
  if type(data) ~= "table" then return s end
  for _, p in ipairs(data) do
    if type(p) == "table" and type(p.size) == "number" then
      local t = type(p.time) == "string" and p.time:sub(1, 10) or nil
      if s.first == nil then s.first, s.start = p.size, t end
      s.last, s["end"] = p.size, t
      s.min = (s.min == nil or p.size < s.min) and p.size or s.min
      s.max = (s.max == nil or p.size > s.max) and p.size or s.max
    end
  end
  return s
end

--- The JSON Lines line (with its newline) for one segment.
function M.jsonl_record(seg, extra, o)
  local obj = {}
  for k, v in pairs(seg) do obj[k] = v end
  if o.details then obj.details = without_message(extra.details) end
  if o.series then
    local data = type(extra.series) == "table" and extra.series.data or nil
    obj.series = type(data) == "table" and data or {}
  end
  return json.encode(obj) .. "\n"
end

--- The CSV record (with its CRLF) for one segment.
function M.csv_record(seg, extra, o)
  local v = { seg.id, seg.name, seg.analytics_tracking_enabled, seg.tags }
  if o.details then
    local d = type(extra.details) == "table" and extra.details or {}
    v[#v + 1], v[#v + 2], v[#v + 3] = d.description, d.created_at, d.updated_at
  end
  if o.series then
    local s = M.series_stats(type(extra.series) == "table" and extra.series.data)
    local n = #v
    v[n + 1], v[n + 2], v[n + 3], v[n + 4], v[n + 5], v[n + 6] =
      s.start, s["end"], s.first, s.last, s.min, s.max
  end
  return fmt.csv_row(v, #M.columns(o))
end

-- -------------------------------------------------------------------------
-- Resume

--- Read an earlier export. Returns `{ids=set, pos={id=record number},
-- count=, keep=bytes to keep, size=bytes in file, header=bool}`, or nil,
-- message when the file cannot be continued (different columns or options,
-- a corrupt record).
---@return table|nil state
---@return string|nil message
function M.scan(path, o)
  local f = io.open(path, "rb")
  if not f then return { ids = {}, pos = {}, count = 0, keep = 0, size = 0, missing = true } end
  local text = f:read("a")
  f:close()
  local st = { ids = {}, pos = {}, count = 0, keep = 0, size = #text }
  local function add(id)
    if type(id) == "string" and not st.ids[id] then
      st.ids[id] = true
      st.count = st.count + 1
      st.pos[id] = st.count
    end
  end
  if o.format == "csv" then
    local records, ends = fmt.parse_csv(text)
    if #records == 0 then return st end
    local want = M.columns(o)
    local got = records[1]
    if table.concat(got, ",") ~= table.concat(want, ",") then
      return nil, string.format("%s has the columns %s, but this export writes %s: use the "
        .. "same --details/--series options, or another --output", path,
        table.concat(got, ","), table.concat(want, ","))
    end
    st.keep, st.header = ends[1], true
    for i = 2, #records do
      if #records[i] ~= #want then
        if i == #records then break end -- a damaged last record: dropped
        return nil, string.format("%s: record %d has %d fields, expected %d", path, i - 1,
          #records[i], #want)
      end
      add(records[i][1])
      st.keep = ends[i]
    end
    return st
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
        if has_d ~= (o.details == true) or has_s ~= (o.series ~= nil) then
          return nil, string.format("%s was written %s --details and %s --series: resume with "
            .. "the same options, or use another --output", path, has_d and "with" or "without",
            has_s and "with" or "without")
        end
      end
      add(obj.id)
    end
    st.keep, pos = nl, nl + 1
  end
  return st
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

--- Run an export.
-- `o`: `format` ("jsonl"|"csv"), `details`, `series` (days), `ending_at`,
-- `output` (path, else `stdout`), `resume`, `sort`, `progress` (a
-- braze_segments.progress object), `stdout`, `note(message)` for stderr notes.
-- Returns a summary table, or nil, err, exit_code and the summary so far.
function M.run(client, o)
  local progress = o.progress
  local known, start_page, skipped_before = {}, 0, 0
  local file_pos -- resume: id -> record number in the file
  local out, close_out
  local write_header = o.format == "csv"
  if o.output then
    local mode = "wb"
    if o.resume then
      -- Reading /dev/zero or a FIFO to its end would never finish.
      -- (test: opening a FIFO to look would block.)
      local fresh = os.execute("test ! -e " .. shell_quote(o.output))
      if not (fresh == true or fresh == 0) and not M.is_regular_file(o.output) then
        return nil, "braze-segments: --resume needs a regular file: " .. o.output
          .. " is not one", 2
      end
      local st, why = M.scan(o.output, o)
      if not st then return nil, "braze-segments: " .. why, 2 end
      if st.keep < st.size then
        local ok, terr = truncate(o.output, st.keep)
        if not ok then
          return nil, string.format("braze-segments: cannot remove the incomplete last record "
            .. "of %s: %s", o.output, tostring(terr)), 1
        end
        if o.note then
          o.note(string.format("removed an incomplete last record (%d bytes) from %s",
            st.size - st.keep, o.output))
        end
      end
      known, skipped_before, file_pos = st.ids, st.count, st.pos
      write_header = o.format == "csv" and not st.header
      start_page = st.count // PAGE_SIZE
      if start_page > 0 then start_page = start_page - 1 end
      mode = "ab"
    end
    local f, err = io.open(o.output, mode)
    if not f then return nil, "braze-segments: " .. tostring(err), 1 end
    out, close_out = f, true
  else
    out = o.stdout or io.stdout
  end

  local function emit(s)
    local ok, err = out:write(s)
    if ok then ok, err = out:flush() end
    if not ok then error({ io_error = err, target = o.output }, 0) end
  end

  local summary = { written = 0, skipped = 0, already = skipped_before, pages = 0,
    start_page = start_page }
  local record = o.format == "csv" and M.csv_record or M.jsonl_record

  -- Resume: before anything is written, the first page listed must agree
  -- with the file. Listed in the file's --sort, its ids already in the file
  -- come in the file's order and, past page 0, before any new id (segments
  -- created since show up at the top of page 0 in desc order); with the
  -- other --sort they come reversed, or after new ids, or not at all, and
  -- the pages before it, never listed, would be skipped.
  local check_first, first_ids = skipped_before > 0, {}
  local function check_order()
    check_first = false
    local last, known_here, new_seen = 0, 0, false
    local agrees = true
    for _, id in ipairs(first_ids) do
      local pos = id and file_pos[id]
      if not pos then
        new_seen = true
      elseif pos < last or (new_seen and start_page > 0) then
        agrees = false
        break
      else
        last, known_here = pos, known_here + 1
      end
    end
    if agrees and (start_page == 0 or known_here > 0) then return end
    error({ refuse = string.format("%s does not continue a --sort %s listing: resume with "
      .. "the --sort it was written with (or, if many segments were created or archived "
      .. "since, export again without --resume)", o.output, o.sort or "asc") }, 0)
  end

  local function write(seg)
    local extra = { details = seg.details, series = seg.series }
    seg.details, seg.series = nil, nil -- the pipeline's fields, written as the record's own
    emit(record(seg, extra, o))
    summary.written = summary.written + 1
    if progress then progress:segment() end
  end

  local function run()
    if write_header then emit(fmt.csv_row(M.columns(o))) end
    -- The pipelined each: the next pages, details and series are on their way
    -- while this one is written; a page comes only when all its calls are done.
    local series = o.series and { length = o.series, ending_at = o.ending_at } or nil
    local iter, state, ctl, closer = client:each({ sort_direction = o.sort, page = start_page,
      details = o.details or nil, series = series, concurrency = o.concurrency or M.CONCURRENCY })
    local held, page_now = {}, nil -- resume: the first page waits for check_order
    local ok, err = pcall(function()
      for seg, page_no in iter, state, ctl do
        if page_no ~= page_now then
          summary.pages = summary.pages + 1
          if progress then progress:page() end
          if check_first and page_now ~= nil then
            check_order()
            for _, s in ipairs(held) do write(s) end
            held = {}
          end
          page_now = page_no
        end
        local id = type(seg) == "table" and seg.id or nil
        if check_first then first_ids[#first_ids + 1] = type(id) == "string" and id end
        if type(seg) ~= "table" or (type(id) == "string" and known[id]) then
          summary.skipped = summary.skipped + 1
        else
          if type(id) == "string" then known[id] = true end
          if check_first then held[#held + 1] = seg else write(seg) end
        end
      end
      if check_first then
        check_order()
        for _, s in ipairs(held) do write(s) end
      end
      if progress then progress:set_total(progress.done) end
    end)
    if closer then closer.close() end
    if not ok then error(err, 0) end
  end

  local ok, err = pcall(run)
  if close_out then
    -- close reports a write error the last flush did not see (NFS, quota).
    local cok, cerr = out:close()
    if ok and not cok then ok, err = false, { io_error = cerr, target = o.output } end
  end
  if progress then
    if ok then progress:finish() else progress:clear() end
  end
  if not ok then
    if type(err) == "table" and err.refuse then return nil, "braze-segments: " .. err.refuse, 2 end
    return nil, err, 1, summary
  end
  return summary
end

return M
