-- The braze-segments command, run as a separate process against the mock:
-- output formats read back and compared with the API's own answers (fetched
-- here with raw HTTP and lua-cjson, independently of the library), exit
-- codes, --resume after a crash, the plot, and that the key never leaks.
local helpers = require("spec.support.helpers")
local cjson = require("cjson")

local KEY = "spec-cli-secret-key-0123456789abcdef"
local WRONG_KEY = "wrong-cli-key-fedcba9876543210"
local SEGMENTS = 250 -- three pages, the last one short
local END = "2024-06-30"

local BIN = helpers.root .. "/bin/braze-segments"

local shell_quote = helpers.shell_quote

local function slurp(path) return assert(helpers.read_file(path)) end

local spit = helpers.write_file

-- A cut copy of the export `from`, as a crash leaves it: `text` in `path`,
-- with the manifest (FILE.braze.json) the export wrote beside it.
local function spit_cut(path, text, from)
  spit(path, text)
  spit(path .. ".braze.json", assert(helpers.read_file(from .. ".braze.json")))
end

local tmpdir
local function tmp(name) return tmpdir .. "/" .. name end

local mock
local runs = {} -- every run, for the final leak check

-- Run braze-segments with `args`. env: table of variables (false unsets);
-- BRAZE_API_KEY and BRAZE_REST_ENDPOINT default to the mock's.
local function run(args, env, stdout_path)
  env = env or {}
  -- a UTF-8 locale whatever the caller's (tables and plots are ASCII under LC_ALL=C)
  local vars = { BRAZE_API_KEY = KEY, BRAZE_REST_ENDPOINT = mock.url, LC_ALL = "C.UTF-8" }
  for k, v in pairs(env) do vars[k] = v end
  local parts = { "env", "-u", "BRAZE_API_KEY", "-u", "BRAZE_REST_ENDPOINT" }
  local names = {}
  for k in pairs(vars) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    if vars[k] then parts[#parts + 1] = shell_quote(k .. "=" .. vars[k]) end
  end
  parts[#parts + 1] = helpers.lua
  parts[#parts + 1] = shell_quote(BIN)
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  local cmd = table.concat(parts, " ") .. " >" .. (stdout_path or tmp("stdout")) .. " 2>"
    .. tmp("stderr") .. " </dev/null; echo $?"
  local p = assert(io.popen(cmd, "r"))
  local code = tonumber(p:read("a"):match("%d+"))
  p:close()
  local r = { code = code, stdout = stdout_path and "" or slurp(tmp("stdout")),
    stderr = slurp(tmp("stderr")),
    args = args }
  runs[#runs + 1] = r
  return r
end

-- The API's own answer, decoded with cjson.
local function api(target, key)
  local resp = assert(mock:api(target, { auth = key or KEY }))
  assert(resp.status == 200, "API " .. target .. ": HTTP " .. resp.status)
  return cjson.decode(resp.body)
end

local all_segments
local function api_segments()
  if not all_segments then
    all_segments = {}
    local page = 0
    repeat
      local r = api("/segments/list?page=" .. page)
      for _, s in ipairs(r.segments) do all_segments[#all_segments + 1] = s end
      page = page + 1
    until #r.segments < 100
  end
  return all_segments
end

local function without_message(t)
  local c = {}
  for k, v in pairs(t) do if k ~= "message" then c[k] = v end end
  return c
end

local details_cache, series_cache = {}, {}
local function api_details(id)
  details_cache[id] = details_cache[id]
    or api("/segments/details?segment_id=" .. helpers.url_encode(id))
  return details_cache[id]
end
local function api_series(id, days)
  local k = id .. "/" .. days
  series_cache[k] = series_cache[k] or api("/segments/data_series?segment_id="
    .. helpers.url_encode(id) .. "&length=" .. days .. "&ending_at=" .. END)
  return series_cache[k]
end

-- A small RFC 4180 reader, independent of the command's own: returns the
-- records, and whether the text ended exactly at a record's end.
local function parse_csv(text)
  local records, record, field = {}, {}, {}
  local i, n, quoted = 1, #text, false
  while i <= n do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' then
        if text:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
        else quoted = false end
      else
        field[#field + 1] = c
      end
    elseif c == '"' then
      assert(#field == 0, "quote inside an unquoted field at byte " .. i)
      quoted = true
    elseif c == "," then
      record[#record + 1] = table.concat(field); field = {}
    elseif c == "\r" and text:sub(i + 1, i + 1) == "\n" then
      record[#record + 1] = table.concat(field); field = {}
      records[#records + 1] = record; record = {}
      i = i + 1
    else
      assert(c ~= "\r" and c ~= "\n", "bare line break outside quotes at byte " .. i)
      field[#field + 1] = c
    end
    i = i + 1
  end
  return records, (#record == 0 and #field == 0 and not quoted)
end

local function csv_text(v)
  if v == nil or v == cjson.null then return "" end
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "number" then return string.format("%d", v) end
  if type(v) == "table" then return table.concat(v, ";") end
  return v
end

local function jsonl(text)
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = cjson.decode(line) end
  return out
end

local function ids_of(records)
  local ids = {}
  for i, r in ipairs(records) do ids[i] = r.id or r[1] end
  return ids
end

describe("#lua53 braze-segments", function()
  setup(function()
    mock = helpers.start_mock({ segments = SEGMENTS, api_key = KEY })
    local p = io.popen("mktemp -d")
    tmpdir = p:read("l")
    p:close()
  end)

  teardown(function()
    if mock then mock:stop() end
    if tmpdir and tmpdir:match("^/tmp/") then os.execute("rm -rf " .. shell_quote(tmpdir)) end
  end)

  before_each(function() mock:reset() end)

  describe("list", function()
    it("writes every segment as RFC 4180 CSV, names with commas, quotes and newlines intact", function()
      local r = run({ "list", "--format", "csv" })
      assert.are.equal(0, r.code)
      local records, complete = parse_csv(r.stdout)
      assert.is_true(complete)
      assert.are.same({ "id", "name", "analytics_tracking_enabled", "tags" }, records[1])
      local segs = api_segments()
      assert.are.equal(#segs + 1, #records)
      local tricky = { comma = false, quote = false, newline = false }
      for i, s in ipairs(segs) do
        local row = records[i + 1]
        assert.are.same({ s.id, s.name, tostring(s.analytics_tracking_enabled),
          table.concat(s.tags, ";") }, row)
        tricky.comma = tricky.comma or s.name:find(",", 1, true) ~= nil
        tricky.quote = tricky.quote or s.name:find('"', 1, true) ~= nil
        tricky.newline = tricky.newline or s.name:find("\n", 1, true) ~= nil
      end
      assert.are.same({ comma = true, quote = true, newline = true }, tricky)
    end)

    it("writes JSON that reads back to the API's segments", function()
      local r = run({ "list", "--format", "json" })
      assert.are.equal(0, r.code)
      assert.are.same(api_segments(), cjson.decode(r.stdout))
    end)

    it("lists newest first with --sort desc", function()
      local r = run({ "list", "--format", "json", "--sort", "desc" })
      local got, segs = cjson.decode(r.stdout), api_segments()
      assert.are.equal(#segs, #got)
      assert.are.equal(segs[#segs].id, got[1].id)
    end)

    it("draws a table with a count", function()
      local r = run({ "list" })
      assert.are.equal(0, r.code)
      assert.matches("^ID%s+NAME%s+TRACKED%s+TAGS\n", r.stdout)
      assert.matches("\n" .. SEGMENTS .. " segments\n$", r.stdout)
      assert.is_nil(r.stdout:find("\n(iOS)", 1, true)) -- newlines in names are shown as ↵
    end)
  end)

  describe("details and series", function()
    local id
    before_each(function() id = api_segments()[2].id end)

    it("details --format json is the API's object without message, with the id", function()
      local r = run({ "details", id, "--format", "json" })
      assert.are.equal(0, r.code)
      local want = without_message(api_details(id))
      assert.is_nil(want.id) -- the API's answer has none: the command adds it
      want.id = id
      assert.are.same(want, cjson.decode(r.stdout))
    end)

    it("details --format csv quotes the fields that need it", function()
      local r = run({ "details", id, "--format", "csv" })
      local records = parse_csv(r.stdout)
      local d = api_details(id)
      assert.are.equal("id", records[1][1])
      assert.are.equal(id, records[2][1])
      assert.are.equal(d.name, records[2][2])
      assert.are.equal(csv_text(d.description), records[2][3])
    end)

    it("series --format json and csv carry the API's data, sizes as integers", function()
      local want = api_series(api_segments()[1].id, 10)
      local r = run({ "series", api_segments()[1].id, "--days", "10", "--end", END, "--format", "json" })
      assert.are.equal(0, r.code)
      assert.are.same(without_message(want), cjson.decode(r.stdout))
      assert.is_nil(r.stdout:find("%d%.0[,}]"))
      local c = run({ "series", api_segments()[1].id, "--days", "10", "--end", END, "--format", "csv" })
      local records = parse_csv(c.stdout)
      assert.are.same({ "time", "size" }, records[1])
      for i, p in ipairs(want.data) do
        assert.are.same({ p.time, string.format("%d", p.size) }, records[i + 1])
      end
    end)

    it("series --format plot draws a sparkline, labelled axes and a summary in 80 columns", function()
      local r = run({ "series", id, "--days", "30", "--end", END, "--format", "plot" })
      assert.are.equal(0, r.code)
      local out = r.stdout
      assert.matches("[▁▂▃▄▅▆▇█][▁▂▃▄▅▆▇█][▁▂▃▄▅▆▇█][▁▂▃▄▅▆▇█]", out) -- the sparkline
      assert.matches("\n%s*[%d.]+[KMBT]? ┤", out)                     -- y labels
      assert.matches("└─+", out)                                      -- x axis
      assert.matches("06%-01", out)                                   -- first date
      assert.matches("06%-30", out)                                   -- last date
      assert.matches("\nmin [%d,]+ ", out)
      assert.matches("\nmax [%d,]+ ", out)
      assert.matches("\nchange [+-][%d,]+", out)
      for line in out:gmatch("[^\n]+") do
        assert.is_true(utf8.len(line) <= 80, "too wide: " .. line)
      end
    end)
  end)

  describe("export", function()
    it("writes JSON Lines that read back to the API's list entries, details and series", function()
      local out = tmp("e.jsonl")
      local r = run({ "export", "--details", "--series", "7", "--end", END, "--output", out })
      assert.are.equal(0, r.code)
      local text = slurp(out)
      assert.is_nil(text:find('"size":%d+%.0'))
      local lines, segs = jsonl(text), api_segments()
      assert.are.equal(#segs, #lines)
      for i, s in ipairs(segs) do
        local want = {}
        for k, v in pairs(s) do want[k] = v end
        want.details = without_message(api_details(s.id))
        want.series = api_series(s.id, 7).data
        assert.are.same(want, lines[i])
      end
    end)

    it("writes CSV with the documented columns", function()
      local out = tmp("e.csv")
      local r = run({ "export", "--format", "csv", "--details", "--series", "7", "--end", END,
        "-o", out })
      assert.are.equal(0, r.code)
      local records, complete = parse_csv(slurp(out))
      assert.is_true(complete)
      assert.are.same({ "id", "name", "analytics_tracking_enabled", "tags", "description",
        "created_at", "updated_at", "series_start", "series_end", "series_first", "series_last",
        "series_min", "series_max" }, records[1])
      for i, s in ipairs(api_segments()) do
        local d, data = api_details(s.id), api_series(s.id, 7).data
        local lo, hi = math.huge, -math.huge
        for _, p in ipairs(data) do lo, hi = math.min(lo, p.size), math.max(hi, p.size) end
        assert.are.same({ s.id, s.name, tostring(s.analytics_tracking_enabled),
          table.concat(s.tags, ";"), csv_text(d.description), d.created_at, d.updated_at,
          data[1].time, data[#data].time, csv_text(data[1].size), csv_text(data[#data].size),
          csv_text(lo), csv_text(hi) }, records[i + 1])
      end
    end)

    it("writes JSON Lines to stdout without --output", function()
      local r = run({ "--quiet", "export" })
      assert.are.equal(0, r.code)
      assert.are.same(api_segments(), jsonl(r.stdout))
      assert.are.equal("", r.stderr)
    end)

    describe("--resume", function()
      local full
      before_each(function()
        full = tmp("full.jsonl")
        assert.are.equal(0, run({ "export", "--details", "--series", "5", "--end", END,
          "-o", full }).code)
      end)

      local function assert_complete(path)
        local got = jsonl(slurp(path))
        local seen = {}
        for _, r in ipairs(got) do
          assert.is_nil(seen[r.id], "duplicate " .. r.id)
          seen[r.id] = true
        end
        assert.are.same(ids_of(api_segments()), ids_of(got))
        assert.are.equal(slurp(full), slurp(path))
      end

      it("drops a record cut mid-line, then adds the rest once, in order", function()
        local part = tmp("part.jsonl")
        local text = slurp(full)
        local cut = select(2, text:find("\n", 140 * 1000, true)) or #text // 2
        spit_cut(part, text:sub(1, cut + 57), full) -- 57 bytes into the next record
        local r = run({ "export", "--details", "--series", "5", "--end", END, "-o", part,
          "--resume" })
        assert.are.equal(0, r.code)
        assert.matches("incomplete last record", r.stderr)
        assert_complete(part)
      end)

      it("continues after the API failed (exit 1, what was written is kept)", function()
        local part = tmp("failed.jsonl")
        local text = slurp(full)
        local cut = 0
        for _ = 1, 230 do cut = text:find("\n", cut + 1, true) end
        spit_cut(part, text:sub(1, cut), full) -- 230 records: pages 0 and 1 and 30 of page 2
        mock:fault({ type = "500", count = 5, path = "/segments/list" })
        local r1 = run({ "--max-retries", "0", "export", "--details", "--series", "5", "--end",
          END, "-o", part, "--resume" })
        assert.are.equal(1, r1.code)
        assert.matches("HTTP 500", r1.stderr)
        assert.matches("%-%-resume", r1.stderr)
        assert.are.equal(text:sub(1, cut), slurp(part))
        mock:reset()
        local r2 = run({ "export", "--details", "--series", "5", "--end", END, "-o", part,
          "--resume" })
        assert.are.equal(0, r2.code)
        assert_complete(part)
        -- It went on from page 1 (one page of overlap), not from page 0; the
        -- pipeline may list one page past the short last one, no more.
        local pages = {}
        for _, req in ipairs(mock:requests()) do
          if req.path == "/segments/list" then pages[#pages + 1] = req.query.page end
        end
        table.sort(pages)
        assert.are.same({ "1", "2" }, { pages[1], pages[2] })
        assert.is_true(#pages <= 3 and (pages[3] == nil or pages[3] == "3"), table.concat(pages, ","))
      end)

      it("completes an export that was killed (SIGKILL) part way through", function()
        local part = tmp("killed.jsonl")
        spit(part, "")
        -- Every list page after the first is slow, so the kill lands after
        -- the first page's records are on disk and before the export ends,
        -- however fast or slow this machine is.
        mock:reset()
        local cmd = table.concat({ "env", shell_quote("BRAZE_API_KEY=" .. KEY),
          shell_quote("BRAZE_REST_ENDPOINT=" .. mock.url), helpers.lua, shell_quote(BIN),
          "export --details --series 5 --end", END, "-o", shell_quote(part) }, " ")
        mock:fault({ type = "delay", ms = 0, count = 1, path = "/segments/list" })
        mock:fault({ type = "delay", ms = 5000, count = 10, path = "/segments/list" })
        os.execute("(" .. cmd .. " >/dev/null 2>&1 & pid=$!; i=0; "
          .. "while [ ! -s " .. shell_quote(part) .. " ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
          .. "sleep 0.2; kill -9 $pid; wait $pid) 2>/dev/null")
        local written = #slurp(part)
        assert.is_true(written > 0 and written < #slurp(full), "killed too early or too late")
        mock:reset()
        local r = run({ "export", "--details", "--series", "5", "--end", END, "-o", part,
          "--resume" })
        assert.are.equal(0, r.code)
        assert_complete(part)
      end)

      it("resumes a CSV cut inside a quoted name that holds a newline", function()
        local fullcsv, part = tmp("full.csv"), tmp("part.csv")
        local args = { "export", "--format", "csv", "--details", "--end", END, "--series", "5" }
        local function with(extra)
          local a = {}
          for _, v in ipairs(args) do a[#a + 1] = v end
          for _, v in ipairs(extra) do a[#a + 1] = v end
          return a
        end
        assert.are.equal(0, run(with({ "-o", fullcsv })).code)
        local text = slurp(fullcsv)
        local at
        local from = 1
        while true do
          local a, b = text:find("Push opt-ins\n", from, true)
          if not a then break end
          at, from = b, b + 1
        end
        assert.is_not_nil(at)
        spit_cut(part, text:sub(1, at), fullcsv) -- ends with a newline, but inside quotes
        local r = run(with({ "-o", part, "--resume" }))
        assert.are.equal(0, r.code)
        assert.are.equal(text, slurp(part))
        local records = parse_csv(slurp(part))
        assert.are.equal(SEGMENTS + 1, #records)
      end)

      it("refuses to resume with another --sort, and writes nothing", function()
        local part = tmp("sorted.jsonl")
        local text = slurp(full)
        local cut = 0
        for _ = 1, 230 do cut = text:find("\n", cut + 1, true) end
        spit_cut(part, text:sub(1, cut), full) -- written oldest first: pages 0, 1 and 30 of page 2
        local r = run({ "export", "--details", "--series", "5", "--end", END, "-o", part,
          "--resume", "--sort", "desc" })
        assert.are.equal(2, r.code)
        assert.matches("%-%-sort", r.stderr)
        assert.are.equal(text:sub(1, cut), slurp(part))
        -- a manifest that (wrongly) says desc: the first page listed refuses it
        local recorded = slurp(part .. ".braze.json")
        spit(part .. ".braze.json", (recorded:gsub('"sort":"asc"', '"sort":"desc"')))
        r = run({ "export", "--details", "--series", "5", "--end", END, "-o", part,
          "--resume", "--sort", "desc" })
        assert.are.equal(2, r.code)
        assert.matches("does not continue a --sort desc listing", r.stderr, 1, true)
        assert.are.equal(text:sub(1, cut), slurp(part))
      end)

      it("resumes a --sort desc export with --sort desc", function()
        local fulld, part = tmp("full-desc.jsonl"), tmp("part-desc.jsonl")
        assert.are.equal(0, run({ "export", "--sort", "desc", "-o", fulld }).code)
        local text = slurp(fulld)
        local cut = 0
        for _ = 1, 130 do cut = text:find("\n", cut + 1, true) end
        spit_cut(part, text:sub(1, cut), fulld)
        local r = run({ "export", "--sort", "desc", "-o", part, "--resume" })
        assert.are.equal(0, r.code)
        assert.are.equal(text, slurp(part))
      end)

      it("refuses to resume a file written with other options", function()
        local r = run({ "export", "--series", "5", "--end", END, "-o", full, "--resume" })
        assert.are.equal(2, r.code)
        assert.matches("same options", r.stderr)
      end)
    end)
  end)

  describe("exit codes", function()
    it("is 0 on success and prints --help for every command", function()
      for _, cmd in ipairs({ "list", "details", "series", "export" }) do
        local r = run({ cmd, "--help" })
        assert.are.equal(0, r.code)
        assert.matches("Usage: braze%-segments " .. cmd, r.stdout)
      end
      assert.are.equal(0, run({ "--help" }).code)
    end)

    it("is 1 on a 401, with the key redacted even though the server echoes it", function()
      local r = run({ "list" }, { BRAZE_API_KEY = WRONG_KEY })
      assert.are.equal(1, r.code)
      assert.matches("HTTP 401", r.stderr)
      assert.matches("Invalid API key", r.stderr)
      assert.is_nil(r.stderr:find(WRONG_KEY, 1, true))
      assert.is_nil(r.stdout:find(WRONG_KEY, 1, true))
    end)

    it("says a 401 for a short key without mangling words (the echo still masked)", function()
      for _, key in ipairs({ "wrong", "e", "k3y" }) do
        local r = run({ "list" }, { BRAZE_API_KEY = key })
        assert.are.equal(1, r.code)
        assert.matches("Invalid API key: ***", r.stderr, 1, true)
        assert.matches("Braze answers 401 for the wrong instance too", r.stderr, 1, true)
        assert.matches("check the key", r.stderr, 1, true)
        assert.are.equal(1, select(2, r.stderr:gsub("%*%*%*", "")), r.stderr)
      end
    end)

    it("says an unknown segment id once, not twice", function()
      for _, cmd in ipairs({ "details", "series" }) do
        local r = run({ cmd, "no-such-segment" })
        assert.are.equal(1, r.code)
        assert.matches("HTTP 400", r.stderr)
        local _, n = r.stderr:gsub("Invalid segment_id", "")
        assert.are.equal(1, n, r.stderr)
      end
    end)

    it("is 1 when the endpoint is unreachable", function()
      local r = run({ "--endpoint", "http://127.0.0.1:1", "--max-retries", "0", "list" })
      assert.are.equal(1, r.code)
      assert.matches("network error", r.stderr)
    end)

    it("is 1 after retries run out on 5xx", function()
      mock:fault({ type = "503", count = 2 })
      local r = run({ "--max-retries", "1", "details", api_segments()[1].id })
      assert.are.equal(1, r.code)
      assert.matches("HTTP 503.*after 2 attempts", r.stderr)
    end)

    it("is 2 on usage errors", function()
      local cases = {
        {}, { "frobnicate" }, { "list", "--format", "xml" }, { "details" },
        { "series", "x", "--days", "0" }, { "series", "x", "--days", "101" },
        { "series", "x", "--end", "2024-02-30" }, { "export", "--resume" },
        { "export", "--series", "abc" }, { "--timeout", "-1", "list" },
        { "--endpoint", "http://127.0.0.1:1", "--instance", "US-01", "list" },
        { "--instance", "US-09", "list" },
      }
      for _, args in ipairs(cases) do
        local r = run(args)
        assert.are.equal(2, r.code, table.concat(args, " "))
        assert.are_not.equal("", r.stderr)
      end
    end)

    it("suggests the instance a near-miss name meant", function()
      local cases = {
        { { "--instance", "us01", "list" }, {}, "US-01" },
        { { "list" }, { BRAZE_REST_ENDPOINT = "US-1" }, "US-01" },
        { { "--endpoint", "eu2", "list" }, {}, "EU-02" },
        { { "--instance", "iad-03", "list" }, {}, "US-03" },
      }
      for _, c in ipairs(cases) do
        local r = run(c[1], c[2])
        assert.are.equal(2, r.code)
        assert.matches("did you mean " .. c[3]:gsub("%-", "%%-") .. "%?", r.stderr)
      end
      local r = run({ "--instance", "US-09", "list" })
      assert.are.equal(2, r.code)
      assert.matches("one of AU%-01, ", r.stderr)
    end)

    it("advises --allow-http (not the library's allow_http) for a plain http endpoint", function()
      local r = run({ "--endpoint", "http://example.com", "list" })
      assert.are.equal(2, r.code)
      assert.matches("--allow-http", r.stderr, 1, true)
      assert.is_nil(r.stderr:find("allow_http", 1, true))
      assert.matches("%-%-allow%-http.*unencrypted", run({ "--help" }).stdout)
    end)

    it("reaches a plain http endpoint with --allow-http", function()
      -- The mock as 2130706433 (127.0.0.1 as one number): the resolver knows
      -- it is this machine, the endpoint check does not, so only the flag
      -- lets it through.
      local url = mock.url:gsub("127%.0%.0%.1", "2130706433")
      local refused = run({ "--endpoint", url, "list", "--format", "csv" })
      assert.are.equal(2, refused.code)
      local r = run({ "--allow-http", "--endpoint", url, "list", "--format", "csv" })
      assert.are.equal(0, r.code)
      assert.are.equal(SEGMENTS + 1, #parse_csv(r.stdout))
    end)

    it("points a usage error to the help of the command it is about", function()
      local cases = {
        { { "details", "x", "--format", "xml" }, "braze-segments details --help" },
        { { "--timeout", "5", "export", "--bogus" }, "braze-segments export --help" },
        { { "--instance", "list", "series" }, "braze-segments series --help" },
        { { "--bogus", "list" }, "braze-segments --help" },
        { { "-q", "--max-retries=2", "list", "--sort", "up" }, "braze-segments list --help" },
        { { "frobnicate" }, "braze-segments --help" },
      }
      for _, c in ipairs(cases) do
        local r = run(c[1])
        assert.are.equal(2, r.code)
        assert.matches("Try '" .. c[2] .. "'.", r.stderr, 1, true)
      end
    end)

    it("is 2 without BRAZE_API_KEY or an endpoint", function()
      local r = run({ "list" }, { BRAZE_API_KEY = false })
      assert.are.equal(2, r.code)
      assert.matches("BRAZE_API_KEY", r.stderr)
      r = run({ "list" }, { BRAZE_REST_ENDPOINT = false })
      assert.are.equal(2, r.code)
      assert.matches("endpoint", r.stderr)
    end)

    it("is 2 when a key is passed on the command line, and does not echo it", function()
      for _, args in ipairs({ { "--api-key", WRONG_KEY, "list" }, { "list", "--api-key=" .. WRONG_KEY },
        { "--api_key", WRONG_KEY, "export" } }) do
        local r = run(args)
        assert.are.equal(2, r.code)
        assert.matches("BRAZE_API_KEY", r.stderr)
        assert.matches("not accepted", r.stderr)
        assert.is_nil(r.stderr:find(WRONG_KEY, 1, true))
      end
    end)
  end)

  describe("terminal width", function()
    -- Run the command in a pseudo-terminal of `cols` columns (script(1)),
    -- without COLUMNS; returns its output lines, progress lines left out.
    local function in_terminal(cols, args)
      local cmd = { "stty cols " .. cols .. " rows 50;", helpers.lua, shell_quote(BIN) }
      for _, a in ipairs(args) do cmd[#cmd + 1] = shell_quote(a) end
      local out = helpers.read_pipe(table.concat({ "env -u COLUMNS",
        shell_quote("BRAZE_API_KEY=" .. KEY), shell_quote("BRAZE_REST_ENDPOINT=" .. mock.url),
        "script -qec", shell_quote(table.concat(cmd, " ")), "/dev/null </dev/null" }, " "))
      local lines = {}
      for line in out:gsub("\r", ""):gmatch("[^\n]+") do
        if not line:find("\27", 1, true) then lines[#lines + 1] = line end
      end
      return lines
    end

    local function widest(lines)
      local w = 0
      for _, l in ipairs(lines) do w = math.max(w, utf8.len(l)) end
      return w
    end

    it("core.terminal_width is nil when stdout is a pipe, and reads a terminal's size", function()
      local code = "package.cpath = " .. string.format("%q", package.cpath)
        .. "; print(require('braze.core').terminal_width())"
      local cmd = helpers.interpreter() .. " -e " .. shell_quote(code)
      assert.are.equal("nil\n", helpers.read_pipe(cmd .. " | cat"))
      local tty = helpers.read_pipe("script -qec " .. shell_quote("stty cols 123; " .. cmd)
        .. " /dev/null </dev/null")
      assert.matches("^123\r?\n", tty)
    end)

    it("fills a wide terminal and fits a narrow one (list table, series plot)", function()
      local wide = in_terminal(150, { "list" })
      assert.matches("^ID%s+NAME", wide[1])
      assert.is_true(widest(wide) > 80 and widest(wide) <= 150, "width " .. widest(wide))
      local id = api_segments()[2].id
      local plot = in_terminal(120, { "series", id, "--end", END, "--format", "plot" })
      assert.is_true(widest(plot) > 80 and widest(plot) <= 120, "width " .. widest(plot))
      local narrow = in_terminal(60, { "series", id, "--end", END, "--format", "plot" })
      assert.is_true(widest(narrow) <= 60, "width " .. widest(narrow))
    end)
  end)

  describe("write errors", function()
    it("exit 1 with a message when --help cannot be written (stdout is /dev/full)", function()
      for _, args in ipairs({ { "--help" }, { "details", "--help" } }) do
        local r = run(args, nil, "/dev/full")
        assert.are.equal(1, r.code)
        assert.matches("cannot write to standard output: No space left on device", r.stderr)
      end
    end)

    it("exit 1 when list output cannot be written", function()
      local r = run({ "list", "--format", "csv" }, nil, "/dev/full")
      assert.are.equal(1, r.code)
      assert.matches("cannot write to standard output", r.stderr)
    end)

    it("name the --output file and do not advise --resume for a device", function()
      local r = run({ "export", "-o", "/dev/full" })
      assert.are.equal(1, r.code)
      assert.matches("cannot write to /dev/full: No space left on device", r.stderr)
      assert.is_nil(r.stderr:find("resume", 1, true))
    end)

    it("do not advise --resume when nothing could be written to the file", function()
      local r = run({ "export", "-o", "/proc/version" })
      assert.are.equal(1, r.code)
      assert.matches("/proc/version", r.stderr)
      assert.is_nil(r.stderr:find("resume", 1, true))
    end)

    it("--resume refuses what is not a regular file instead of reading it forever", function()
      local r = run({ "export", "-o", "/dev/full", "--resume" })
      assert.are.equal(2, r.code)
      assert.matches("regular file", r.stderr)
    end)
  end)

  describe("progress", function()
    it("goes to stderr with --progress and never to stdout", function()
      local r = run({ "--progress", "export", "--series", "3", "--end", END })
      assert.are.equal(0, r.code)
      assert.matches("%d+ segments of " .. SEGMENTS .. ", 3 pages", r.stderr)
      assert.are.equal(SEGMENTS, #jsonl(r.stdout))
    end)

    it("is silenced by --quiet and off when stderr is not a terminal", function()
      assert.are.equal("", run({ "list", "--format", "csv" }).stderr)
      assert.are.equal("", run({ "--quiet", "--progress", "list", "--format", "csv" }).stderr)
    end)
  end)

  it("never prints the API key, in any run above", function()
    assert.is_true(#runs > 30)
    for _, r in ipairs(runs) do
      for _, key in ipairs({ KEY, WRONG_KEY }) do
        assert.is_nil(r.stdout:find(key, 1, true), table.concat(r.args, " "))
        assert.is_nil(r.stderr:find(key, 1, true), table.concat(r.args, " "))
      end
    end
  end)
end)

describe("#lua53 braze.errors.redactor", function()
  local errors = require("braze.errors")
  local LONG = "0123abcd-4567-89ef-0123-456789abcdef"

  it("masks a real-length key everywhere, even glued to other text", function()
    local r = errors.redactor(LONG)
    assert.are.equal("a 0123... b x0123...y 0123...", r("a " .. LONG .. " b x" .. LONG .. "y " .. LONG))
  end)

  it("masks a short key only as a whole token, never inside a word", function()
    local r = errors.redactor("k3y-1")
    assert.are.equal("key *** here; ak3y-1 and k3y-12 stay", r("key k3y-1 here; ak3y-1 and k3y-12 stay"))
    assert.are.equal("***", r("k3y-1"))
  end)

  it("leaves words alone for a short key that is a word, but masks Braze's echo of it", function()
    for _, key in ipairs({ "e", "wrong" }) do
      local r = errors.redactor(key)
      assert.are.equal("Invalid API key: *** (the wrong instance, every e)",
        r("Invalid API key: " .. key .. " (the wrong instance, every e)"))
    end
  end)
end)

describe("#lua53 braze_segments.json", function()
  local json = require("braze_segments.json")
  local braze = require("braze")

  it("encodes null, integers without .0, exact large integers and short floats", function()
    assert.are.equal("null", json.encode(braze.null))
    assert.are.equal("[1,2.5,9007199254740993,1000,0.1,-3]",
      json.encode({ 1, 2.5, 9007199254740993, 1000.0, 0.1, -3 }))
    assert.are.equal("[null,null]", json.encode({ 0 / 0, math.huge }))
  end)

  it("escapes strings and repairs invalid UTF-8", function()
    assert.are.equal([["a\"b\\c\n\r\t\u0001é"]], json.encode('a"b\\c\n\r\t\1é'))
    assert.are.equal('"x\u{FFFD}y"', json.encode("x\255y"))
    assert.are.equal([["\u2028"]], json.encode("\u{2028}"))
  end)

  it("keeps a stable key order and knows which empty fields are arrays", function()
    assert.are.equal('{"id":"i","name":"n","tags":[],"teams":[],"x":{},"z":1}',
      json.encode({ z = 1, x = {}, teams = {}, tags = {}, name = "n", id = "i" }))
    assert.are.same({ a = { 1, 2 }, tags = {} },
      cjson.decode(json.encode({ a = { 1, 2 }, tags = {} })))
  end)
end)

describe("#lua53 braze_segments.export", function()
  local export = require("braze_segments.export")

  it("runs on the pipelined each, asking it for details, series and the concurrency", function()
    local segs = {}
    for i = 1, 3 do
      segs[i] = { id = "s" .. i, name = "n" .. i, tags = {},
        details = { message = "success", name = "d-s" .. i },
        series = { message = "success", data = { { time = "2026-11-01", size = i } } } }
    end
    local asked
    local fake = {
      each = function(_, opts)
        asked = opts
        local i = 0
        return function()
          i = i + 1
          if segs[i] then return segs[i], 0 end
        end
      end,
    }
    local lines = {}
    local sink = {
      write = function(_, s) lines[#lines + 1] = s; return true end,
      flush = function() return true end,
    }
    local summary = assert(export.run(fake, { format = "jsonl", details = true, series = 1,
      ending_at = "2026-11-01T00:00:00Z", concurrency = 12, stdout = sink }))
    assert.are.equal(3, summary.written)
    assert.is_true(asked.details)
    assert.are.same({ length = 1, ending_at = "2026-11-01T00:00:00Z" }, asked.series)
    assert.are.equal(12, asked.concurrency)
    assert.are.same({ id = "s2", name = "n2", tags = {}, details = { name = "d-s2" },
      series = { { time = "2026-11-01", size = 2 } } }, cjson.decode(lines[2]))
  end)
end)
