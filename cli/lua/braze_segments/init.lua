--- The `braze-segments` command: list, details, series and export of Braze
-- segments from the shell.
--
--     braze-segments [--endpoint URL | --instance NAME] [--allow-http] [--timeout S]
--                    [--max-retries N] [--max-wait S] [--quiet] [--progress] [--version]
--                    COMMAND ...
--     braze-segments list    [--sort asc|desc] [--format table|json|csv]
--     braze-segments details SEGMENT_ID [--format table|json|csv]
--     braze-segments series  SEGMENT_ID [--days N] [--end DATE] [--format table|json|csv|plot|svg]
--     braze-segments export  [--details] [--series DAYS] [--end DATE] [--format jsonl|csv]
--                            [--output FILE [--resume]] [--sort asc|desc]
--                            [--concurrency N] [--reserve N]
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
-- @module braze_segments
local argparse = require("argparse")
local braze = require("braze")
local progress_mod = require("braze_segments.progress")
local usage = require("braze_segments.usage")
local fmt = require("braze_segments.format")
local check = require("braze.check")
local options = require("braze.options")
local core = require("braze.core")
local VERSION = require("braze.version")

local M = {}

local format, concat = string.format, table.concat

M.NAME = "braze-segments"
M.EXIT_OK, M.EXIT_FAILURE, M.EXIT_USAGE, M.EXIT_INTERRUPTED =
  usage.EXIT_OK, usage.EXIT_FAILURE, usage.EXIT_USAGE, usage.EXIT_INTERRUPTED

local Exit, usage_error, option_value = usage.Exit, usage.usage_error, usage.option_value


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

local function build_parser(on_help, on_version)
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
      "Exit status: 0 ok, 1 API/network/file error, 2 usage error, 130 interrupted (Ctrl-C).",
      "Run 'braze-segments COMMAND --help' for a command's options.",
    }, "\n"))
  parser:option("--endpoint", "REST endpoint URL, e.g. https://rest.iad-01.braze.com.")
    :argname("<url>")
  parser:option("--instance", "Braze instance instead of --endpoint, e.g. US-01 or EU-01.")
    :argname("<name>")
  -- Ranges and defaults come from braze.options, the library's own table.
  parser:option("--timeout", options.help("timeout", "seconds allowed for one request attempt"))
    :argname("<seconds>")
  parser:option("--max-retries", options.help("max_retries", "retries after a failed attempt"))
    :argname("<n>")
  parser:option("--max-wait", options.help("max_wait", "longest rate-limit wait accepted, in seconds "
    .. "(a longer one fails)")):argname("<seconds>")
  parser:flag("--allow-http", "Allow a plain http:// endpoint that is not this machine "
    .. "(risky: the API key and the data then cross the network unencrypted).")
  parser:flag("-q --quiet", "No progress or notes on stderr.")
  parser:flag("--version", "Show the version and exit."):action(on_version)
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
  series:option("--days", options.help("length", "number of days")):argname("<n>")
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
      "--resume to continue where it stopped. FILE.braze.json records what FILE was",
      "written with (--sort, --details, --series and its end date, a default end",
      "resolved once); a resume with other options is refused.",
    }, "\n"))
  exp:flag("--details", "Add each segment's details (one more request per segment).")
  local series_help = options.help("length", "add each segment's size over the last DAYS days")
  exp:option("--series", (series_help:gsub(" %(default %d+%)", ""))):argname("<days>")
  exp:option("--end", "Last day of the series: YYYY-MM-DD or ISO 8601 (default: now).")
    :argname("<date>")
  exp:option("--format", "Output format.", "jsonl"):choices({ "jsonl", "csv" })
  exp:option("-o --output", "Write to FILE instead of stdout."):argname("<file>")
  exp:flag("--resume", "Continue an interrupted export into --output: skip the segments "
    .. "already in it (same options and --sort as the first run).")
  exp:option("--sort", "Creation order.", "asc"):choices({ "asc", "desc" })
  exp:option("--concurrency", options.help("concurrency", "requests in flight at once (the next "
    .. "pages, details and series are fetched while earlier records are written)")):argname("<n>")
  exp:option("--reserve", options.help("reserve", "requests of each rate-limit window left to the "
    .. "workspace's other integrations: a count, or below 1 a fraction of the limit")):argname("<n>")
  require("braze_segments.report").add_command(parser, with_help)
  return parser
end

-- -------------------------------------------------------------------------
-- Client

local function strip_position(msg)
  msg = tostring(msg)
  msg = msg:gsub("^[^\n]-:%d+: ", "")
  return (msg:gsub("^braze: ", ""))
end

local function make_client(args, env)
  local key = env("BRAZE_API_KEY")
  if key == nil or key == "" then
    usage_error("no API key (set the BRAZE_API_KEY environment variable; "
      .. "it is never taken from the command line)")
  end
  if args.endpoint and args.instance then usage_error("give --endpoint or --instance, not both") end
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
    usage_error(format("%s %s is not %s%s", what, check.show(value),
      url_allowed and "a URL or an instance name" or "a Braze instance",
      guess and format(": did you mean %s?", guess)
        or format(" (one of %s)", concat(names, ", "))))
  end
  if args.instance then
    check_name("--instance", args.instance)
    opts.instance = args.instance
  elseif args.endpoint then
    check_name("--endpoint", args.endpoint, true)
    if instances[args.endpoint:upper()] then
      opts.instance = args.endpoint
    else
      opts.endpoint = args.endpoint
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
  opts.timeout = option_value("timeout", args.timeout, "--timeout")
  opts.max_retries = option_value("max_retries", args.max_retries, "--max-retries")
  opts.max_wait = option_value("max_wait", args.max_wait, "--max-wait")
  if args.allow_http then opts.allow_http = true end
  opts.reserve = option_value("reserve", args.reserve, "--reserve")
  local ok, client = pcall(braze.new, opts)
  -- The library's advice names its option; the command has a flag for it.
  if not ok then usage_error((strip_position(client):gsub("allow_http = true", "--allow-http"))) end
  return client
end

local COMMANDS = require("braze_segments.commands")


-- -------------------------------------------------------------------------
-- main

-- Global options: the words each takes after it.
local GLOBAL_OPTIONS = { ["--endpoint"] = 1, ["--instance"] = 1, ["--timeout"] = 1,
  ["--max-retries"] = 1, ["--max-wait"] = 1, ["--allow-http"] = 0, ["-q"] = 0, ["--quiet"] = 0,
  ["--progress"] = 0, ["--version"] = 0 }

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
  -- An API or network failure: the error object prints itself, key redacted;
  -- the library's option is the command's flag.
  say((strip_position(tostring(err)):gsub("longer than max_wait", "longer than --max-wait")))
  return M.EXIT_FAILURE
end

-- Flags that take no value; every other --option takes one.
local FLAGS = { ["--allow-http"] = true, ["--quiet"] = true, ["--progress"] = true, ["--version"] = true,
  ["--help"] = true, ["--details"] = true, ["--resume"] = true }

-- `--timeout -1` as `--timeout=-1`: argparse reads a word starting with
-- "-" as an option, and would say "unknown option '-1'" instead of what is
-- wrong with the value.
local function join_negative_values(argv)
  local joined, i = {}, 1
  while i <= #argv do
    local word, value = argv[i], argv[i + 1]
    if word == "--" then
      for j = i, #argv do joined[#joined + 1] = argv[j] end
      break
    end
    if word:match("^%-%-[%w-]+$") and not FLAGS[word] and value and value:match("^%-%.?%d") then
      joined[#joined + 1] = word .. "=" .. value
      i = i + 2
    else
      joined[#joined + 1] = word
      i = i + 1
    end
  end
  return joined
end

-- Parse `argv`. Returns the parsed arguments, or nil and the exit status
-- after printing the help, or the usage error and where to look for help.
local function parse_arguments(argv, term)
  local argv_copy = join_negative_values(argv)

  local refused = key_on_command_line(argv_copy)
  if refused then
    term.say(refused .. " is not accepted: a key on the command line shows in 'ps' and in shell "
      .. "history. Set the BRAZE_API_KEY environment variable instead.")
    return nil, M.EXIT_USAGE
  end

  local help_text
  local parser = build_parser(function(command_parser)
    help_text = command_parser:get_help()
    error("braze-segments: help", 0)
  end, function()
    help_text = format("%s %s (%s, %s)", M.NAME, VERSION, braze._VERSION,
      rawget(_G, "jit") and jit.version or _VERSION)
    error("braze-segments: version", 0)
  end)
  local parsed, ok, args = pcall(parser.pparse, parser, argv_copy)
  if help_text then
    local written, werr = term.stdout:write(help_text, "\n")
    if written then written, werr = term.stdout:flush() end
    if not written then return nil, report_failure({ io_error = werr }, term.say) end
    return nil, M.EXIT_OK
  end
  if not parsed then
    term.say("internal error while reading arguments: " .. tostring(ok))
    return nil, M.EXIT_USAGE
  end
  if not ok then
    term.say(tostring(args))
    local command = command_in(argv_copy)
    term.stderr:write("Try '" .. M.NAME .. (command and " " .. command or "") .. " --help'.\n")
    return nil, M.EXIT_USAGE
  end
  if not args.command then
    term.stderr:write(parser:get_usage(), "\n\n")
    term.say("a command is required (list, details, series, export or report)")
    return nil, M.EXIT_USAGE
  end
  return args
end

-- What the commands write through: `out` (stdout, stopping on Ctrl-C),
-- `note` (stderr unless --quiet), the progress display when wanted.
local function command_context(args, term)
  local quiet = args.quiet
  -- Box-drawing, blocks, … and ↵ only where the locale is UTF-8.
  fmt.use_ascii(not fmt.utf8_locale(term.env))
  local ctx = {
    env = term.env, stdout = term.stdout,
    note = function(msg) if not quiet then term.say(msg) end end,
    out = function(text)
      -- Output made in Lua alone (a long table) stops on Ctrl-C too.
      if core.interrupted() then error("braze-segments: interrupted", 0) end
      local written, err = term.stdout:write(text)
      if not written then error({ io_error = err }, 0) end
    end,
  }
  local want_progress = (args.command == "list" or args.command == "export" or args.command == "report")
    and not quiet
    and (args.progress or progress_mod.stderr_is_tty())
  if want_progress then
    -- Plain lines, no \r and escape sequences, into a file, a pipe or a dumb terminal.
    local plain = term.env("TERM") == "dumb" or not progress_mod.stderr_is_tty()
    term.progress = progress_mod.new(true, term.stderr, term.redact, plain)
    ctx.progress = term.progress
  end
  return ctx
end

local INTERRUPTED = setmetatable({ code = M.EXIT_INTERRUPTED, message = "interrupted" }, Exit)

-- What a failure inside the command becomes (xpcall's handler).
local function classify_failure(err)
  -- Whatever failed after SIGINT (an aborted transfer, a write cut by
  -- EINTR, core.sleep's error) is the interrupt.
  if core.interrupted() or tostring(err):find("interrupted!$") then return INTERRUPTED end
  if type(err) == "table" then return err end
  -- The library's own messages ("braze: ..."): a run-time failure such as
  -- each's max_pages guard. Anything else is a bug: keep the traceback.
  if strip_position(err) ~= tostring(err):gsub("^[^\n]-:%d+: ", "") then
    return setmetatable({ code = M.EXIT_FAILURE, message = strip_position(err) }, Exit)
  end
  return setmetatable({ code = M.EXIT_FAILURE, internal = true,
    message = tostring(err) .. "\n" .. debug.traceback("", 2) }, Exit)
end

-- Make the client and run the command. Ctrl-C stops a wait or a transfer
-- at once (the flag it sets wakes core.sleep and aborts curl), not when the
-- request ends; the handler is the command's, put back before returning.
-- Returns true, or false and the failure.
local function run_command(args, ctx, term)
  local caught = core.catch_interrupt()
  local ok, err = xpcall(function()
    local client = make_client(args, term.env)
    local command_ok, command_err = pcall(COMMANDS[args.command], client, args, ctx)
    client:close()
    if not command_ok then error(command_err, 0) end
  end, classify_failure)
  local flushed, flush_err = term.stdout:flush()
  if ok and not flushed then ok, err = false, { io_error = flush_err } end
  if core.interrupted() then ok, err = false, INTERRUPTED end
  if caught then core.release_interrupt() end
  return ok, err
end

--- Run the command. `argv` is the argument array (like `arg`); `io_` may
-- give `stdout`, `stderr` (file-like) and `getenv` for tests and embedding.
-- Returns the exit status.
---@param argv string[]
---@param io_? {stdout?: file*, stderr?: file*, getenv?: fun(name: string): string?}
---@return integer
function M.main(argv, io_)
  io_ = io_ or {}
  local env = io_.getenv or os.getenv
  local key = env("BRAZE_API_KEY")
  local term = { stdout = io_.stdout or io.stdout, stderr = io_.stderr or io.stderr, env = env,
    redact = braze.errors.redactor(key ~= "" and key or nil) }
  function term.say(msg)
    if term.progress then term.progress:clear() end
    term.stderr:write(term.redact(M.NAME .. ": " .. tostring(msg)), "\n")
    term.stderr:flush()
  end

  local args, code = parse_arguments(argv, term)
  if not args then return code end
  local ctx = command_context(args, term)
  local ok, err = run_command(args, ctx, term)
  if ok then return M.EXIT_OK end
  code = report_failure(err, term.say)
  if ctx.hint then ctx.note(ctx.hint) end
  return code
end

return M
