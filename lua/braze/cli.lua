--- The `braze-segments` command: list, details, series and export of Braze
-- segments from the shell.
--
--     braze-segments [--endpoint URL | --instance NAME] [--allow-http] [--timeout S]
--                    [--max-retries N] [--quiet] [--progress] COMMAND ...
--     braze-segments list    [--sort asc|desc] [--format table|json|csv]
--     braze-segments details SEGMENT_ID [--format table|json|csv]
--     braze-segments series  SEGMENT_ID [--days N] [--end DATE] [--format table|json|csv|plot|svg]
--     braze-segments export  [--details] [--series DAYS] [--end DATE] [--format jsonl|csv]
--                            [--output FILE [--resume]] [--sort asc|desc]
--                            [--concurrency N] [--reserve N]
--     braze-segments report  [--days N] [--end DATE] [--sort change|size|name] [-o FILE] ...
--
-- The API key comes only from the `BRAZE_API_KEY` environment variable (a
-- key on the command line would show in `ps` and in shell history); the
-- endpoint from --endpoint, --instance or `BRAZE_REST_ENDPOINT` (a URL or an
-- instance name such as `US-01`).
--
-- Exit status: 0 success, 1 API, network or file error (one line on
-- stderr, key redacted), 2 usage or configuration error, 130 interrupted
-- (Ctrl-C stops a wait or a request at once).
--
-- `main(argv)` returns the exit status instead of exiting, so the command
-- can be driven from Lua; `bin/braze-segments` calls `os.exit(main(arg))`.
-- @module braze.cli
local argparse = require("argparse")
local braze = require("braze")
local json = require("braze.cli.json")
local fmt = require("braze.cli.format")
local plot = require("braze.cli.plot")
local export = require("braze.cli.export")
local progress_mod = require("braze.cli.progress")
local report = require("braze.cli.report")
local bargs = require("braze.args")
local core = require("braze.core")

local M = {}

local format, concat = string.format, table.concat

M.NAME = "braze-segments"
M.EXIT_OK, M.EXIT_FAILURE, M.EXIT_USAGE, M.EXIT_INTERRUPTED = 0, 1, 2, 130

-- Raised (as a table) to leave main with an exit status.
local Exit = {}
Exit.__index = Exit
local function exit_with(code, message)
  error(setmetatable({ code = code, message = message }, Exit), 0)
end
local function usage_error(message) exit_with(M.EXIT_USAGE, message) end

-- Arguments that would carry the API key: refused before anything else.
local KEY_OPTIONS = { "--api-key", "--api_key", "--apikey", "--key", "--braze-api-key" }

local function key_on_command_line(argv)
  for _, a in ipairs(argv) do
    if a == "--" then return nil end
    for _, name in ipairs(KEY_OPTIONS) do
      if a == name or a:sub(1, #name + 1) == name .. "=" then return name end
    end
  end
  return nil
end

-- -------------------------------------------------------------------------
-- Command line

local function build_parser(on_help)
  local function with_help(p)
    p:add_help({ action = function() on_help(p) end })
    p:help_max_width(80):help_description_margin(29)
    return p
  end
  local parser = with_help(argparse(M.NAME,
    "Read Braze segments: list them, show one, plot its size, export them all."))
    :epilog(concat({
      "Environment:",
      "  BRAZE_API_KEY        REST API key (required; there is no --api-key option)",
      "  BRAZE_REST_ENDPOINT  REST endpoint URL or instance name (e.g. US-01), unless",
      "                       --endpoint or --instance is given",
      "Exit status: 0 ok, 1 API/network/file error, 2 usage error.",
      "Run 'braze-segments COMMAND --help' for a command's options.",
    }, "\n"))
  parser:option("--endpoint", "REST endpoint URL, e.g. https://rest.iad-01.braze.com.")
    :argname("<url>")
  parser:option("--instance", "Braze instance instead of --endpoint, e.g. US-01 or EU-01.")
    :argname("<name>")
  parser:option("--timeout", "Seconds allowed for one request attempt (default 30).")
    :argname("<seconds>")
  parser:option("--max-retries", "Retries after a failed attempt (default 3).")
    :argname("<n>")
  parser:flag("--allow-http", "Allow a plain http:// endpoint that is not this machine "
    .. "(risky: the API key and the data then cross the network unencrypted).")
  parser:flag("-q --quiet", "No progress or notes on stderr.")
  parser:flag("--progress", "Show progress even when stderr is not a terminal.")
  parser:command_target("command")
  parser:require_command(false)

  local list = with_help(parser:command("list", "List every segment (all pages)."))
  list:option("--sort", "Creation order.", "asc"):choices({ "asc", "desc" })
  list:option("--format", "Output format.", "table"):choices({ "table", "json", "csv" })

  local details = with_help(parser:command("details", "Show one segment's details."))
  details:argument("segment_id", "The segment's API identifier.")
  details:option("--format", "Output format.", "table"):choices({ "table", "json", "csv" })

  local series = with_help(parser:command("series", "Show a segment's estimated size, day by day."))
  series:argument("segment_id", "The segment's API identifier.")
  series:option("--days", "Number of days, 1..100.", "30"):argname("<n>")
  series:option("--end", "Last day: YYYY-MM-DD or an ISO 8601 date-time (default: now).")
    :argname("<date>")
  series:option("--format", "Output format (plot: a chart for the terminal; svg: one to paste).", "table")
    :choices({ "table", "json", "csv", "plot", "svg" })

  local exp = with_help(parser:command("export",
    "Export every segment, optionally with details and a size series, as JSON Lines or CSV."))
    :epilog(concat({
      "CSV columns: id,name,analytics_tracking_enabled,tags",
      "  then description,created_at,updated_at with --details,",
      "  then series_start,series_end,series_first,series_last,series_min,series_max",
      "  with --series (dates, then sizes). Tags are joined with ';'.",
      "JSON Lines: one object per segment: the list entry, plus \"details\" (the",
      "details response) and \"series\" (the data array) when asked for.",
      "Records are flushed one by one; after a failure, run the same command with",
      "--resume to continue where it stopped.",
    }, "\n"))
  exp:flag("--details", "Add each segment's details (one more request per segment).")
  exp:option("--series", "Add each segment's size over the last DAYS days (1..100).")
    :argname("<days>")
  exp:option("--end", "Last day of the series: YYYY-MM-DD or ISO 8601 (default: now).")
    :argname("<date>")
  exp:option("--format", "Output format.", "jsonl"):choices({ "jsonl", "csv" })
  exp:option("-o --output", "Write to FILE instead of stdout."):argname("<file>")
  exp:flag("--resume", "Continue an interrupted export into --output: skip the segments "
    .. "already in it (same options and --sort as the first run).")
  exp:option("--sort", "Creation order.", "asc"):choices({ "asc", "desc" })
  exp:option("--concurrency", "Requests in flight at once, 1..64: the next pages, details and "
    .. "series are fetched while earlier records are written.", "8"):argname("<n>")
  exp:option("--reserve", "Requests of each rate-limit window left to the workspace's other "
    .. "integrations (a count; default 0).", "0"):argname("<n>")
  report.add_command(parser, with_help)
  return parser
end

local function integer_option(value, name, lo, hi)
  local n = tonumber(value)
  if not n or n ~= math.floor(n) or n < lo or n > hi then
    usage_error(format("%s must be an integer in %d..%d (got %q)", name, lo, hi, tostring(value)))
  end
  return math.tointeger(n)
end

local function date_option(value, name)
  if value == nil then return nil end
  local ok, why = bargs.parse_iso8601(value)
  if not ok then
    usage_error(format("%s must be YYYY-MM-DD or an ISO 8601 date-time (got %q: %s)", name,
      value, why))
  end
  return value
end

-- -------------------------------------------------------------------------
-- Client

local function strip_position(msg)
  msg = tostring(msg)
  msg = msg:gsub("^[^\n]-:%d+: ", "")
  return (msg:gsub("^braze: ", ""))
end

local function make_client(a, env)
  local key = env("BRAZE_API_KEY")
  if key == nil or key == "" then
    usage_error("no API key (set the BRAZE_API_KEY environment variable; "
      .. "it is never taken from the command line)")
  end
  if a.endpoint and a.instance then usage_error("give --endpoint or --instance, not both") end
  local opts = { api_key = key }
  local instances = braze.instances
  -- A near miss of an instance name (us01, US-1) gets a "did you mean".
  local function check_name(what, value, url_allowed)
    if instances[value:upper()] or (url_allowed and value:find("://", 1, true)) then return end
    local guess = instances.suggest(value)
    if not guess and url_allowed then return end -- braze.new says what is wrong with it
    local names = {}
    for name in pairs(instances) do names[#names + 1] = name end
    table.sort(names)
    usage_error(format("%s %s is not %s%s", what, bargs.show(value),
      url_allowed and "a URL or an instance name" or "a Braze instance",
      guess and format(": did you mean %s?", guess)
        or format(" (one of %s)", concat(names, ", "))))
  end
  if a.instance then
    check_name("--instance", a.instance)
    opts.instance = a.instance
  elseif a.endpoint then
    check_name("--endpoint", a.endpoint, true)
    if instances[a.endpoint:upper()] then
      opts.instance = a.endpoint
    else
      opts.endpoint = a.endpoint
    end
  else
    local e = env("BRAZE_REST_ENDPOINT")
    if e == nil or e == "" then
      usage_error("no endpoint: pass --endpoint URL or --instance NAME, or set "
        .. "BRAZE_REST_ENDPOINT")
    end
    check_name("BRAZE_REST_ENDPOINT", e, true)
    if instances[e:upper()] then opts.instance = e else opts.endpoint = e end
  end
  if a.timeout then
    local t = tonumber(a.timeout)
    if not t or t <= 0 or t > 86400 then
      usage_error(format("--timeout must be a number of seconds in (0, 86400] (got %q)", a.timeout))
    end
    opts.timeout = t
  end
  if a.max_retries then opts.max_retries = integer_option(a.max_retries, "--max-retries", 0, 100) end
  if a.allow_http then opts.allow_http = true end
  if a.reserve then opts.reserve = integer_option(a.reserve, "--reserve", 0, 1000000) end
  local ok, client = pcall(braze.new, opts)
  -- The library's advice names its option; the command has a flag for it.
  if not ok then usage_error((strip_position(client):gsub("allow_http = true", "--allow-http"))) end
  return client
end

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
-- width when stdout is one, else 80 (a file or a pipe). At least 40.
local function terminal_width(ctx)
  local w = tonumber(ctx.env("COLUMNS") or "")
  if w and w >= 1 then return math.max(40, math.floor(w)) end
  if ctx.stdout == io.stdout then
    w = core.terminal_width(1)
    if w then return math.max(40, w) end
  end
  return 80
end

local function cmd_list(client, a, ctx)
  local out = ctx.out
  local f = a.format
  local progress = ctx.progress
  local rows, count, last_page = {}, 0, nil
  if f == "csv" then out(fmt.csv_row(LIST_COLUMNS)) end
  if f == "json" then out("[") end
  for seg, page in client:each({ sort_direction = a.sort }) do
    if page ~= last_page then
      last_page = page
      if progress then progress:page() end
    end
    count = count + 1
    if f == "csv" then
      out(fmt.csv_row({ seg.id, seg.name, seg.analytics_tracking_enabled, seg.tags }, 4))
    elseif f == "json" then
      out((count > 1 and ",\n" or "\n") .. json.encode(seg))
    else
      rows[#rows + 1] = seg
    end
    if progress then progress:segment() end
  end
  if progress then progress:finish() end
  if f == "json" then
    out(count > 0 and "\n]\n" or "]\n")
  elseif f == "table" then
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

local function cmd_details(client, a, ctx)
  local out = ctx.out
  check_segment_id(a.segment_id)
  local d, err = client:details(a.segment_id)
  if not d then error(err, 0) end
  if a.format == "json" then
    -- With its id, as in the table and CSV forms (the API's answer has none).
    local obj = export.without_message(d)
    if type(obj) == "table" and obj.id == nil then obj.id = a.segment_id end
    out(json.encode(obj) .. "\n")
    return
  end
  local known = { message = true }
  for _, k in ipairs(DETAIL_FIELDS) do known[k] = true end
  local extra = {}
  for k in pairs(d) do if not known[k] then extra[#extra + 1] = tostring(k) end end
  table.sort(extra)
  if a.format == "csv" then
    local header, values = { "id" }, { a.segment_id }
    for _, k in ipairs(DETAIL_FIELDS) do header[#header + 1], values[#values + 1] = k, d[k] end
    for _, k in ipairs(extra) do
      header[#header + 1] = k
      local v = d[k]
      values[#values + 1] = type(v) == "table" and json.encode(v) or v
    end
    out(fmt.csv_row(header))
    out(fmt.csv_row(values, #header))
    return
  end
  local kv = { { "id", fmt.cell(a.segment_id) } }
  for _, k in ipairs(DETAIL_FIELDS) do
    local v = d[k]
    kv[#kv + 1] = { k, v == braze.null and "(null)" or fmt.cell(v) }
  end
  for _, k in ipairs(extra) do
    local v = d[k]
    kv[#kv + 1] = { k, fmt.cell(type(v) == "table" and json.encode(v) or v) }
  end
  out(fmt.keyvalue(kv))
end

local function cmd_series(client, a, ctx)
  local out = ctx.out
  check_segment_id(a.segment_id)
  local days = integer_option(a.days, "--days", 1, 100)
  local ending_at = date_option(a["end"], "--end")
  local r, err = client:data_series({ segment_id = a.segment_id, length = days,
    ending_at = ending_at })
  if not r then error(err, 0) end
  local data = type(r.data) == "table" and r.data or {}
  if a.format == "json" then
    out(json.encode(export.without_message(r)) .. "\n")
  elseif a.format == "csv" then
    out(fmt.csv_row({ "time", "size" }))
    for _, p in ipairs(data) do out(fmt.csv_row({ p.time, p.size }, 2)) end
  elseif a.format == "svg" then
    out(report.svg.chart(data, { title = "Segment " .. a.segment_id .. ": estimated size per day" }))
  elseif a.format == "plot" then
    out(plot.render(data, { width = terminal_width(ctx), title = "Segment " .. fmt.cell(a.segment_id)
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

local function cmd_export(client, a, ctx)
  local o = {
    format = a.format, details = a.details, sort = a.sort, output = a.output,
    resume = a.resume, progress = ctx.progress, stdout = ctx.stdout, note = ctx.note,
    concurrency = integer_option(a.concurrency, "--concurrency", 1, 64),
  }
  if a.series then o.series = integer_option(a.series, "--series", 1, 100) end
  if a["end"] and not o.series then usage_error("--end needs --series") end
  if a.resume and not a.output then usage_error("--resume needs --output FILE") end
  if o.series then
    -- One end for every segment, so the series of one export line up.
    o.ending_at = date_option(a["end"], "--end") or os.date("!%Y-%m-%dT%H:%M:%SZ")
  end
  local summary, err, code, partial = export.run(client, o)
  if not summary then
    -- Our own messages (bad --output, a file that cannot be resumed) exit
    -- here; error objects, write errors, interrupts and bugs go to main.
    if type(err) == "string" and err:find("^braze%-segments: ") then exit_with(code, err) end
    -- --resume can go on only from a regular file that holds records.
    if a.output and partial and partial.written + partial.already > 0
      and export.is_regular_file(a.output) then
      ctx.hint = format("%s holds what was written before the failure: run the same command "
        .. "with --resume to continue", a.output)
    end
    error(err, 0)
  end
  if a.output then
    local msg = format("wrote %d segment%s to %s", summary.written,
      summary.written == 1 and "" or "s", a.output)
    if a.resume then
      msg = msg .. format(" (%d already there)", summary.already)
    end
    ctx.note(msg)
  end
end

local COMMANDS = { list = cmd_list, details = cmd_details, series = cmd_series,
  export = cmd_export }
COMMANDS.report = function(c, a, ctx) report.run(c, a, ctx, integer_option, date_option) end

-- -------------------------------------------------------------------------
-- main

-- Global options: the words each takes after it.
local GLOBAL_OPTIONS = { ["--endpoint"] = 1, ["--instance"] = 1, ["--timeout"] = 1,
  ["--max-retries"] = 1, ["--allow-http"] = 0, ["-q"] = 0, ["--quiet"] = 0, ["--progress"] = 0 }

-- The command named in `argv` (for "Try 'braze-segments details --help'"),
-- or nil when a word before it is not a global option (the error is then
-- about the global part).
local function command_in(argv)
  local i = 1
  while i <= #argv do
    local word = argv[i]
    if COMMANDS[word] then return word end
    local name = word:match("^(%-%-[%w-]+)=")
    local takes = GLOBAL_OPTIONS[name or word]
    if takes == nil or (name and takes == 0) then return nil end
    i = i + 1 + (name and 0 or takes)
  end
  return nil
end

--- An error object without the `errors` entries that only repeat its
-- message (Braze sends "Invalid segment_id: ..." as both), so it does not
-- print the same words twice; anything else as it is.
function M.without_echo(err)
  if not braze.errors.is(err) or type(err.errors) ~= "table" or #err.errors == 0 then
    return err
  end
  local kept = {}
  for _, e in ipairs(err.errors) do
    if e ~= err.message then kept[#kept + 1] = e end
  end
  if #kept == #err.errors then return err end
  local copy = setmetatable({}, getmetatable(err))
  for k, v in pairs(err) do copy[k] = v end
  copy.errors = kept
  return copy
end

-- Report a failure from main's command run; returns the exit status.
local function report_failure(err, say)
  if getmetatable(err) == Exit then
    if err.internal then
      say("internal error: " .. err.message)
    elseif err.message ~= nil then
      say(type(err.message) == "string" and err.message:gsub("^braze%-segments: ", "")
        or err.message)
    end
    return err.code
  end
  if type(err) == "table" and err.io_error then
    local msg = tostring(err.io_error)
    -- A reader that went away (`| head`) is not worth a message.
    if not msg:find("Broken pipe", 1, true) then
      say(format("cannot write to %s: %s", err.target or "standard output", msg))
    end
    return M.EXIT_FAILURE
  end
  -- An API or network failure: the error object prints itself, key redacted.
  say(strip_position(tostring(M.without_echo(err))))
  return M.EXIT_FAILURE
end

--- Run the command. `argv` is the argument array (like `arg`); `io_` may
-- give `stdout`, `stderr` (file-like) and `getenv` for tests and embedding.
-- Returns the exit status.
---@param argv string[]
---@param io_? {stdout?: file*, stderr?: file*, getenv?: fun(name: string): string?}
---@return integer
function M.main(argv, io_)
  io_ = io_ or {}
  local stdout, stderr = io_.stdout or io.stdout, io_.stderr or io.stderr
  local env = io_.getenv or os.getenv
  local key = env("BRAZE_API_KEY")
  local redact = braze.errors.redactor(key ~= "" and key or nil)
  local progress

  local function say(msg)
    if progress then progress:clear() end
    stderr:write(redact(M.NAME .. ": " .. tostring(msg)), "\n")
    stderr:flush()
  end

  local args_list = {}
  for i = 1, #argv do args_list[i] = argv[i] end

  local refused = key_on_command_line(args_list)
  if refused then
    say(refused .. " is not accepted: a key on the command line shows in 'ps' and in shell "
      .. "history. Set the BRAZE_API_KEY environment variable instead.")
    return M.EXIT_USAGE
  end

  local help_text
  local parser = build_parser(function(p)
    help_text = p:get_help()
    error("braze-segments: help", 0)
  end)
  local pok, ok, a = pcall(parser.pparse, parser, args_list)
  if help_text then
    local wok, werr = stdout:write(help_text, "\n")
    if wok then wok, werr = stdout:flush() end
    if not wok then return report_failure({ io_error = werr }, say) end
    return M.EXIT_OK
  end
  if not pok then
    say("internal error while reading arguments: " .. tostring(ok))
    return M.EXIT_USAGE
  end
  if not ok then
    say(tostring(a))
    local cmd = command_in(args_list)
    stderr:write("Try '" .. M.NAME .. (cmd and " " .. cmd or "") .. " --help'.\n")
    return M.EXIT_USAGE
  end
  if not a.command then
    stderr:write(parser:get_usage(), "\n\n")
    say("a command is required (list, details, series, export or report)")
    return M.EXIT_USAGE
  end

  local quiet = a.quiet
  local ctx = {
    env = env, stdout = stdout,
    note = function(msg) if not quiet then say(msg) end end,
    out = function(s)
      -- Output made in Lua alone (a long table) stops on Ctrl-C too.
      if core.interrupted() then error("braze-segments: interrupted", 0) end
      local w, err = stdout:write(s)
      if not w then error({ io_error = err }, 0) end
    end,
  }
  local want_progress = (a.command == "list" or a.command == "export" or a.command == "report") and not quiet
    and (a.progress or progress_mod.stderr_is_tty())
  if want_progress then
    progress = progress_mod.new(true, stderr, redact)
    ctx.progress = progress
  end

  -- Ctrl-C stops a wait or a transfer at once (the flag it sets wakes
  -- core.sleep and aborts curl), not when the request ends; the handler is
  -- the command's, put back when main returns.
  local interrupt = { code = M.EXIT_INTERRUPTED, message = "interrupted" }
  setmetatable(interrupt, Exit)
  local caught = core.catch_interrupt()
  local run_ok, err = xpcall(function()
    local client = make_client(a, env)
    local cok, cerr = pcall(COMMANDS[a.command], client, a, ctx)
    client:close()
    if not cok then error(cerr, 0) end
  end, function(e)
    -- Whatever failed after SIGINT (an aborted transfer, a write cut by
    -- EINTR, core.sleep's error) is the interrupt.
    if core.interrupted() or tostring(e):find("interrupted!$") then return interrupt end
    if type(e) == "table" then return e end
    -- The library's own messages ("braze: ..."): a run-time failure such as
    -- each's max_pages guard. Anything else is a bug: keep the traceback.
    if strip_position(e) ~= tostring(e):gsub("^[^\n]-:%d+: ", "") then
      return setmetatable({ code = M.EXIT_FAILURE, message = strip_position(e) }, Exit)
    end
    return setmetatable({ code = M.EXIT_FAILURE, internal = true,
      message = tostring(e) .. "\n" .. debug.traceback("", 2) }, Exit)
  end)
  local fok, ferr = stdout:flush()
  if run_ok and not fok then run_ok, err = false, { io_error = ferr } end
  if core.interrupted() then run_ok, err = false, interrupt end
  if caught then core.release_interrupt() end
  if run_ok then return M.EXIT_OK end
  local code = report_failure(err, say)
  if ctx.hint then ctx.note(ctx.hint) end
  return code
end

return M
