-- braze-segments report, run as a process against the mock: the page is
-- read back with Python's html.parser (spec/cli/report_page.py) and checked
-- against the API's own answers, fetched here with raw HTTP and lua-cjson
-- (independently of the library): one row per segment in the expected
-- order, every number equal to the series' values, a sparkline point per
-- day, nothing fetched from outside the page, and hostile names, tags and
-- teams, and sizes past 2^53, kept as data.
local helpers = require("spec.support.helpers")
local cjson = require("cjson")

local KEY = "spec-report-secret-key-0123456789"
local SEGMENTS = 250
local END = "2024-06-30"
local BIN = helpers.root .. "/bin/braze-segments"
local PARSER = helpers.root .. "/spec/cli/report_page.py"
local shell_quote = helpers.shell_quote

local mock, tmpdir
local function tmp(name) return tmpdir .. "/" .. name end

-- Run braze-segments with `args` (stdout to a file); returns code, stdout, stderr.
local function run(args)
  local parts = { "env", shell_quote("BRAZE_API_KEY=" .. KEY),
    shell_quote("BRAZE_REST_ENDPOINT=" .. mock.url), helpers.lua, shell_quote(BIN) }
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  local p = assert(io.popen(table.concat(parts, " ") .. " >" .. tmp("stdout") .. " 2>"
    .. tmp("stderr") .. " </dev/null; echo $?", "r"))
  local code = tonumber(p:read("a"):match("%d+"))
  p:close()
  return code, helpers.read_file(tmp("stdout")), helpers.read_file(tmp("stderr"))
end

local function parse(path)
  local out = helpers.read_pipe("python3 " .. shell_quote(PARSER) .. " " .. shell_quote(path))
  return cjson.decode(out)
end

local function api(target)
  local resp = assert(mock:api(target, { auth = KEY }))
  assert(resp.status == 200, "API " .. target .. ": HTTP " .. resp.status)
  return cjson.decode(resp.body)
end

local function enc(s) return helpers.url_encode(s) end

-- Every segment with its details and series, from the API, and what the
-- page should show for it (computed here, not by the command's code).
local function expected(days)
  local segs, page = {}, 0
  repeat
    local r = api("/segments/list?page=" .. page)
    for _, s in ipairs(r.segments) do segs[#segs + 1] = s end
    page = page + 1
  until #r.segments < 100
  for _, s in ipairs(segs) do
    s.details = api("/segments/details?segment_id=" .. enc(s.id))
    local data = api("/segments/data_series?segment_id=" .. enc(s.id) .. "&length=" .. days
      .. "&ending_at=" .. END).data
    s.sizes = {}
    for i, p in ipairs(data) do s.sizes[i] = p.size end
    s.first, s.last = s.sizes[1], s.sizes[#s.sizes]
    s.min, s.max = math.huge, -math.huge
    for _, v in ipairs(s.sizes) do s.min, s.max = math.min(s.min, v), math.max(s.max, v) end
    s.pct = (s.last - s.first) / s.first * 100
  end
  return segs
end

local function by_name(a, b)
  if a.name ~= b.name then return a.name < b.name end
  return a.id < b.id
end

-- "1,234,567" back to "1234567" (and "+12" to "12").
local function digits(text) return (text:gsub("[,+]", "")) end
local function thousands(v)
  return (string.format("%d", v):reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end
local function int(v) return string.format("%d", math.tointeger(v) or v) end

local function check_rows(page, segs, how)
  local rows = page.rows
  assert.are.equal(#segs, #rows)
  for i, s in ipairs(segs) do
    local c = rows[i].cells
    assert.are.equal(11, #c, "row " .. i)
    assert.are.equal(s.name, c[1], "row " .. i .. " (" .. how .. ")")
    assert.are.equal(table.concat(s.tags, ", "), c[2])
    assert.are.equal(table.concat(s.details.teams, ", "), c[3])
    assert.are.equal(int(s.last), digits(c[4]))
    assert.are.equal(int(s.last - s.first), digits(c[5]))
    assert.are.equal(s.last > s.first and "+" or s.last < s.first and "-" or "",
      c[5]:sub(1, 1):match("[+-]") or "")
    assert.is_true(math.abs(tonumber(rows[i].v[6]) - s.pct) < 1e-5, c[6])
    assert.are.equal(s.pct > 0 and "+" or "-", c[6]:sub(1, 1))
    assert.are.equal(int(s.min), digits(c[7]))
    assert.are.equal(int(s.max), digits(c[8]))
    assert.are.equal(#s.sizes, rows[i].points)
    assert.are.equal(s.details.created_at:sub(1, 10), c[10])
    assert.are.equal(s.details.updated_at:sub(1, 10), (c[11]:gsub("\n$", "")))
  end
end

describe("#lua53 braze-segments report", function()
  local segs, page, html_text

  setup(function()
    mock = helpers.start_mock({ segments = SEGMENTS, api_key = KEY })
    tmpdir = helpers.read_pipe("mktemp -d"):match("[^\n]+")
    segs = expected(30)
    local code, _, err = run({ "-q", "report", "--end", END, "-o", tmp("page.html") })
    assert(code == 0, err)
    html_text = assert(helpers.read_file(tmp("page.html")))
    page = parse(tmp("page.html"))
  end)

  teardown(function()
    if mock then mock:stop() end
    if tmpdir and tmpdir:match("^/tmp/") then os.execute("rm -rf " .. shell_quote(tmpdir)) end
  end)

  before_each(function() mock:reset() end)

  it("has one row per segment, largest change in percent first, numbers equal to the series'", function()
    local want = {}
    for i, s in ipairs(segs) do want[i] = s end
    table.sort(want, function(a, b)
      local ka, kb = math.abs(a.pct), math.abs(b.pct)
      if ka ~= kb then return ka > kb end
      return by_name(a, b)
    end)
    check_rows(page, want, "change")
    -- The mock's awkward names are all there, as text: a comma, quotes, a
    -- newline, a tab, a backslash, an ampersand, non-ASCII.
    local seen = {}
    for _, r in ipairs(page.rows) do seen[r.cells[1]] = true end
    for _, name in ipairs({ 'VIP, "Gold" tier', "Push opt-ins\n(iOS)", "Import\tC:\\exports\\legacy",
      "Zürich & München commuters", "日本のユーザー", "Churn risk (score ≥ 0.8)" }) do
      assert.is_true(seen[name], name)
    end
  end)

  it("sorts by size or name when asked", function()
    for _, how in ipairs({ "size", "name" }) do
      local code, _, err = run({ "-q", "report", "--end", END, "--sort", how, "-o", tmp(how .. ".html") })
      assert.are.equal(0, code, err)
      local want = {}
      for i, s in ipairs(segs) do want[i] = s end
      table.sort(want, how == "name" and by_name or function(a, b)
        if a.last ~= b.last then return a.last > b.last end
        return by_name(a, b)
      end)
      check_rows(parse(tmp(how .. ".html")), want, how)
    end
  end)

  it("heads the page with the endpoint, the days and the counts, and never the key", function()
    assert.are.equal(mock.url, page.facts["Workspace"])
    assert.are.equal("2024-06-01 to 2024-06-30 (30 days)", page.facts["Days (UTC)"])
    assert.are.equal(tostring(SEGMENTS), page.facts["Segments"])
    local off = 0
    for _, s in ipairs(segs) do if s.analytics_tracking_enabled == false then off = off + 1 end end
    assert.is_true(off > 0)
    assert.are.equal(tostring(off), page.facts["Analytics tracking off"])
    assert.are.equal("0", page.facts["No data"])
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d UTC$", page.facts["Made"])
    assert.is_nil(html_text:find(KEY, 1, true))
  end)

  it("lists the 10 biggest risers and fallers, each with a sparkline of every day", function()
    local up, down = {}, {}
    for _, s in ipairs(segs) do
      if s.pct > 0 then up[#up + 1] = s elseif s.pct < 0 then down[#down + 1] = s end
    end
    table.sort(up, function(a, b) return a.pct > b.pct end)
    table.sort(down, function(a, b) return a.pct < b.pct end)
    for kind, list in pairs({ risers = up, fallers = down }) do
      local got = page.movers[kind]
      assert.are.equal(10, #got)
      for i = 1, 10 do
        assert.are.equal(list[i].name, got[i].name)
        assert.are.equal(30, got[i].points)
        assert.are.equal(list[i].name .. ": " .. thousands(list[i].first) .. " to "
          .. thousands(list[i].last), got[i].title)
        -- Each links to its row, inside the page.
        local target = got[i].href:match("^#(.+)$")
        local found
        for _, r in ipairs(page.rows) do if r.id == target then found = r end end
        assert.are.equal(list[i].name, found and found.cells[1])
      end
    end
  end)

  it("loads nothing from outside the page and runs only its own script", function()
    assert.are.same({}, page.urls)
    assert.are.same({}, page.handlers)
    assert.are.equal(1, page.scripts)
    -- No URL anywhere but the endpoint shown as text in the header.
    local rest = html_text:gsub(mock.url:gsub("%p", "%%%0"), "")
    assert.is_nil(rest:find("//", 1, true))
    assert.is_nil(html_text:find("@import", 1, true))
    assert.is_nil(html_text:find("url(", 1, true))
    assert.matches("default%-src 'none'", html_text)
  end)

  it("keeps hostile names, tags and teams as text, and sizes past 2^53 exact", function()
    mock:config({ segments = 5 })
    local ids = {}
    for i, s in ipairs(api("/segments/list?page=0").segments) do ids[i] = s.id end
    local hostile = {
      { id = ids[1], name = "</script><script>alert(1)</script>",
        tags = { "<b>bold</b>", "a\"b'c" } },
      { id = ids[2], name = "\u{5E9}\u{5DC}\u{5D5}\u{5DD} \u{202E}evil\u{202C} & <i>", tags = { "&amp; &lt;" } },
      { id = ids[3], name = "line one\nline two <img src=x onerror=alert(1)>", tags = {} },
      { id = ids[4], name = "\"><svg onload=alert(1)>'", tags = { "</td></tr><tr><td>" } },
      { id = ids[5], name = "Flat & steady", tags = {} },
    }
    local list = { segments = {}, message = "success" }
    for i, h in ipairs(hostile) do
      list.segments[i] = { id = h.id, name = h.name, analytics_tracking_enabled = true, tags = h.tags }
    end
    mock:fault({ type = "raw", path = "/segments/list", body = cjson.encode(list) })
    -- Sizes the decoder gives as exact integers on Lua 5.3+: 2^53 + 1 and
    -- neighbours, and a few units on top of 2^62.
    mock:fault({ type = "raw", path = "/segments/data_series", segment_id = ids[1],
      body = '{"data":[{"time":"2024-06-28","size":9007199254740993},'
        .. '{"time":"2024-06-29","size":9007199254740995},'
        .. '{"time":"2024-06-30","size":9007199254740992}],"message":"success"}' })
    mock:fault({ type = "raw", path = "/segments/data_series", segment_id = ids[2],
      body = '{"data":[{"time":"2024-06-29","size":4611686018427387904},'
        .. '{"time":"2024-06-30","size":4611686018427387907}],"message":"success"}' })
    mock:fault({ type = "raw", path = "/segments/data_series", segment_id = ids[3],
      body = '{"data":[],"message":"success"}' })
    mock:fault({ type = "raw", path = "/segments/data_series", segment_id = ids[5],
      body = '{"data":[{"time":"2024-06-29","size":7},{"time":"2024-06-30","size":7}],'
        .. '"message":"success"}' })
    mock:fault({ type = "raw", path = "/segments/details", segment_id = ids[4],
      body = cjson.encode({ name = "x", teams = { "<script>t</script>", "R&D" },
        created_at = "2020-01-01T00:00:00Z", updated_at = "2020-01-02T00:00:00Z",
        message = "success" }) })
    -- One transfer at a time, so the faked list answers page 0.
    local code, _, err = run({ "-q", "report", "--end", END, "--concurrency", "1", "--sort",
      "name", "-o", tmp("hostile.html") })
    mock:config({ segments = SEGMENTS })
    assert.are.equal(0, code, err)
    local text = helpers.read_file(tmp("hostile.html"))
    local p = parse(tmp("hostile.html"))
    assert.are.same({}, p.urls)
    assert.are.same({}, p.handlers)
    assert.are.equal(1, p.scripts)
    assert.is_nil(p.elements.img)
    assert.is_nil(p.elements.i)
    assert.is_nil(p.elements.b)
    assert.are.equal(#hostile, #p.rows)
    assert.are.equal(#hostile * 11, p.elements.td)
    local by = {}
    for _, r in ipairs(p.rows) do by[r.cells[1]] = r end
    for _, h in ipairs(hostile) do
      local r = by[h.name]
      assert.is_truthy(r, h.name)
      assert.are.equal(table.concat(h.tags, ", "), r.cells[2])
      assert.is_nil(text:find(h.name, 1, true), h.name) -- only ever escaped
    end
    local r1, r2, r3, r4 = by[hostile[1].name], by[hostile[2].name], by[hostile[3].name],
      by[hostile[4].name]
    assert.are.same({ "9,007,199,254,740,992", "-1", "9,007,199,254,740,992",
      "9,007,199,254,740,995" }, { r1.cells[4], r1.cells[5], r1.cells[7], r1.cells[8] })
    assert.are.equal(3, r1.points)
    assert.are.same({ "4,611,686,018,427,387,907", "+3", "4,611,686,018,427,387,904" },
      { r2.cells[4], r2.cells[5], r2.cells[7] })
    assert.are.equal(2, r2.points)
    assert.are.equal("empty", r3.class)
    assert.are.equal("no data", r3.cells[6])
    assert.are.equal(0, r3.points)
    assert.are.equal("<script>t</script>, R&D", r4.cells[3])
    assert.are.equal("1", p.facts["No data"])
    local r5 = by[hostile[5].name]
    assert.are.same({ "flat", "7", "0", "flat", 2 }, { r5.class, r5.cells[4], r5.cells[5], r5.cells[6],
      r5.points })
    assert.are.equal("1", p.facts["Flat"])
    -- A risers' entry carries a name in an SVG <title> too.
    assert.are.equal(hostile[2].name .. ": 4,611,686,018,427,387,904 to 4,611,686,018,427,387,907",
      p.movers.risers[1].title)
  end)

  it("makes a row of whatever an answer holds: no name, null tags, sizes that are not numbers", function()
    local report = require("braze_segments.report")
    local r = report.row({ id = "x", tags = { "a", {}, 3 }, details = { teams = "none" },
      series = { data = { { time = "2024-06-01", size = "12" }, { size = 0 / 0 }, 5,
        { time = "2024-06-03", size = 4 }, { time = "2024-06-04", size = 6 } } } })
    assert.are.same({ "", { "a", "3" }, {}, { 4, 6 }, "2024-06-03", "2024-06-04", "up" },
      { r.name, r.tags, r.teams, r.values, r.start, r["end"], r.state })
    assert.are.same({ 2, 50.0 }, { r.change, r.percent })
  end)

  it("draws a few units on top of 2^62 across the whole sparkline", function()
    local svg = require("braze_segments.svg")
    local s = svg.sparkline({ 4611686018427387904, 4611686018427387907, 4611686018427387905 })
    assert.are.equal('<svg viewBox="0 0 2 20" preserveAspectRatio="none">'
      .. '<polyline points="0,19 1,1 2,13"/></svg>', s)
  end)

  it("fails like export: exit 1 and no page when a call keeps failing, 2 on a bad option", function()
    mock:fault({ type = "500", count = 5, path = "/segments/details", segment_id = segs[120].id })
    local code, _, err = run({ "-q", "--max-retries", "1", "report", "--end", END,
      "-o", tmp("failed.html") })
    assert.are.equal(1, code)
    assert.matches("500", err)
    assert.is_nil(helpers.read_file(tmp("failed.html")))
    assert.is_nil(helpers.read_file(tmp("failed.html.tmp-report")))
    code, _, err = run({ "report", "--days", "0" })
    assert.are.equal(2, code)
    assert.matches("%-%-days must be an integer in 1..100", err)
    code, _, err = run({ "report", "--sort", "size-ish" })
    assert.are.equal(2, code)
    assert.matches("sort", err)
    assert.is_nil(err:find(KEY, 1, true))
  end)

  it("exits 130 on SIGINT while a call hangs, leaving no page", function()
    mock:fault({ type = "hang", path = "/segments/details", after = 20 })
    local parts = { "env", shell_quote("BRAZE_API_KEY=" .. KEY),
      shell_quote("BRAZE_REST_ENDPOINT=" .. mock.url), helpers.lua, shell_quote(BIN),
      "report", "--end", END, "-o", shell_quote(tmp("interrupted.html")) }
    -- sh prints its pid, then becomes the command (exec keeps the pid).
    local pipe = assert(io.popen("echo $$; exec " .. table.concat(parts, " ")
      .. " </dev/null >/dev/null 2>" .. shell_quote(tmp("stderr")), "r"))
    local pid = assert(tonumber(pipe:read("l")))
    local socket = require("socket")
    local deadline = socket.gettime() + 20
    repeat
      local details = 0
      for _, r in ipairs(mock:requests()) do
        if r.path == "/segments/details" then details = details + 1 end
      end
      socket.sleep(0.05)
    until details > 20 or socket.gettime() > deadline
    socket.sleep(0.3)
    os.execute("kill -INT " .. pid)
    local _, how, code = pipe:close()
    assert.are.same({ "exit", 130 }, { how, code })
    assert.matches("interrupted", helpers.read_file(tmp("stderr")))
    assert.is_nil(helpers.read_file(tmp("interrupted.html")))
    assert.is_nil(helpers.read_file(tmp("interrupted.html.tmp-report")))
  end)

  it("writes the page to stdout without -o", function()
    mock:config({ segments = 3 })
    local code, out = run({ "-q", "report", "--end", END, "--days", "7" })
    mock:config({ segments = SEGMENTS })
    assert.are.equal(0, code)
    assert.matches("^<!DOCTYPE html>", out)
    helpers.write_file(tmp("stdout.html"), out)
    local p = parse(tmp("stdout.html"))
    assert.are.equal(3, #p.rows)
    for _, r in ipairs(p.rows) do assert.are.equal(7, r.points) end
  end)
end)
