-- The report page in a real browser: headless Chromium (Debian `chromium`)
-- opens it from a file:// URL with the network off (its own network
-- namespace when `unshare -n` works, and a dead proxy in any case), with
-- no console message (a blocked request, a script error or a CSP
-- violation would print one), renders every row, runs its sorting script,
-- and takes a screenshot. Tagged #browser: the default run leaves it out;
-- CI runs it in a stage that installs Chromium:
--
--     lua5.4 /usr/bin/busted --exclude-tags= --tags=browser spec/cli/report_browser_spec.lua
local helpers = require("spec.support.helpers")
local page = require("braze_segments.page")
local report = require("braze_segments.report")

local KEY = "spec-browser-secret-key-0123456789"
local SEGMENTS = 250
local END = "2024-06-30"
local BIN = helpers.root .. "/bin/braze-segments"
local shell_quote = helpers.shell_quote

local tmpdir, mock
local function tmp(name) return tmpdir .. "/" .. name end

local function chromium_path()
  for _, name in ipairs({ "chromium", "chromium-browser", "google-chrome" }) do
    local p = helpers.read_pipe("command -v " .. name .. " 2>/dev/null"):match("[^\n]+")
    if p then return p end
  end
  error("no chromium: install the Debian package chromium (BRAZE_DEPS=full scripts/install-deps.sh)")
end

local no_net -- "unshare -n " when this machine lets us, else ""

-- Open `file` in headless Chromium; `how` is "--dump-dom" or
-- "--screenshot=PATH". Returns stdout and the console messages.
local function open(file, how, size)
  local cmd = table.concat({
    "timeout 60", no_net, shell_quote(chromium_path()), "--headless --no-sandbox --disable-gpu",
    "--no-first-run --disable-extensions --disable-background-networking",
    "--proxy-server=http://127.0.0.1:9 --proxy-bypass-list='<-loopback>'",
    "--user-data-dir=" .. shell_quote(tmp("profile")),
    "--enable-logging=stderr --log-level=0",
    "--window-size=" .. (size or "1280,1600"), how,
    shell_quote("file://" .. file),
    "2>" .. shell_quote(tmp("chromium.log")),
  }, " ")
  local out = helpers.read_pipe(cmd)
  local console = {}
  for line in (helpers.read_file(tmp("chromium.log")) or ""):gmatch("[^\n]+") do
    -- The page's own messages (Chromium's internal pages log too).
    if line:find(":CONSOLE", 1, true) and line:find("source: file://", 1, true) then
      console[#console + 1] = line
    end
  end
  return out, console
end

-- The rows of the table in a dumped DOM (every row has one <tr class="...">).
local function rows_of(dom)
  local body = assert(dom:match("<tbody>(.*)</tbody>"), "no tbody in the DOM")
  local rows = {}
  for tr in body:gmatch("<tr[^>]*>(.-)</tr>") do
    local cells = {}
    for td in tr:gmatch("<td[^>]*>(.-)</td>") do cells[#cells + 1] = td end
    rows[#rows + 1] = { html = tr, name = cells[1], size = cells[4] }
  end
  return rows
end

-- A copy of `src` with `script` run after the page's own one.
local function with_script(src, dst, script)
  local text = assert(helpers.read_file(src))
  text = text:gsub("</body>", function() return "<script>" .. script .. "</script>\n</body>" end)
  helpers.write_file(dst, text)
end

describe("#lua53 the report page in Chromium #browser", function()
  setup(function()
    tmpdir = helpers.read_pipe("mktemp -d"):match("[^\n]+")
    no_net = os.execute("unshare -n true 2>/dev/null") and "unshare -n" or ""
    mock = helpers.start_mock({ segments = SEGMENTS, api_key = KEY })
    local cmd = table.concat({ "env", shell_quote("BRAZE_API_KEY=" .. KEY),
      shell_quote("BRAZE_REST_ENDPOINT=" .. mock.url), helpers.lua, shell_quote(BIN),
      "-q report --end", END, "-o", shell_quote(tmp("page.html")), "; echo $?" }, " ")
    assert(helpers.read_pipe(cmd):match("^0"), "braze-segments report failed")
  end)

  teardown(function()
    if mock then mock:stop() end
    if tmpdir and tmpdir:match("^/tmp/") then os.execute("rm -rf " .. shell_quote(tmpdir)) end
  end)

  it("loads from file:// without a console message and renders every row", function()
    local dom, console = open(tmp("page.html"), "--dump-dom")
    assert.are.same({}, console)
    -- The script ran: it marked the document and made the headings focusable.
    assert.matches('<html lang="en" class="%s*js">', dom)
    assert.matches('<th data%-t="n" tabindex="0">Size</th>', dom)
    assert.are.equal(SEGMENTS, #rows_of(dom))
    assert.are.equal(20, select(2, dom:gsub('<li class="', "")))
  end)

  it("detects a page that tries to fetch something (the check can fail)", function()
    with_script(tmp("page.html"), tmp("fetching.html"),
      "var i=new Image();i.src='http://example.com/x.png';document.body.appendChild(i)")
    local _, console = open(tmp("fetching.html"), "--dump-dom")
    assert.are.equal(1, #console)
    assert.matches("Content Security Policy", console[1])
  end)

  it("sorts by a column when its heading is clicked, and back on a second click", function()
    -- Size: largest first, then smallest first; then names A to Z.
    for _, case in ipairs({ { "3", 1, "desc" }, { "3", 2, "asc" }, { "0", 1, "name" } }) do
      local clicks = {}
      for k = 1, case[2] do clicks[k] = "document.querySelectorAll('th')[" .. case[1] .. "].click();" end
      with_script(tmp("page.html"), tmp("sorted.html"), table.concat(clicks))
      local dom, console = open(tmp("sorted.html"), "--dump-dom")
      assert.are.same({}, console)
      local rows = rows_of(dom)
      assert.are.equal(SEGMENTS, #rows)
      for i = 2, #rows do
        if case[3] == "name" then
          assert.is_true(rows[i - 1].name:lower() <= rows[i].name:lower(), rows[i].name)
        else
          local a, b = tonumber((rows[i - 1].size:gsub(",", ""))), tonumber((rows[i].size:gsub(",", "")))
          if case[3] == "desc" then assert.is_true(a >= b) else assert.is_true(a <= b) end
        end
      end
    end
  end)

  it("orders sizes past 2^53 exactly, and rows with no data last", function()
    local function row(name, sizes)
      return report.row({ id = name, name = name, tags = {},
        series = { data = (function()
          local d = {}
          for i, s in ipairs(sizes) do d[i] = { time = "2024-06-0" .. i, size = s } end
          return d
        end)() } })
    end
    local rows = {
      row("a", { 9007199254740992, 9007199254740993 }), row("b", { 9007199254740993, 9007199254740995 }),
      row("c", {}), row("d", { 9007199254740992, 9007199254740994 }), row("e", { 1, 2 }),
    }
    local up, down = report.movers(rows)
    helpers.write_file(tmp("big.html"), page.render({ rows = rows, risers = up, fallers = down,
      sort = "name", endpoint = "x", days = 2, made_at = "now", first_day = "2024-06-01",
      last_day = "2024-06-02" }))
    for _, clicks in ipairs({ 1, 2 }) do
      with_script(tmp("big.html"), tmp("big-sorted.html"),
        ("document.querySelectorAll('th')[3].click();"):rep(clicks))
      local dom, console = open(tmp("big-sorted.html"), "--dump-dom")
      assert.are.same({}, console)
      local names = {}
      for i, r in ipairs(rows_of(dom)) do names[i] = r.name end
      assert.are.same(clicks == 1 and { "b", "d", "a", "e", "c" } or { "e", "a", "d", "b", "c" }, names)
    end
  end)

  it("keeps the column headings in view when the table scrolls (wide windows)", function()
    with_script(tmp("page.html"), tmp("scrolled.html"), 'addEventListener("load",function(){'
      .. 'window.scrollTo(0,4000);var r=function(s){return Math.round(document.querySelector(s)'
      .. '.getBoundingClientRect().top)};document.body.setAttribute("data-top",'
      .. 'r("#segments thead")+" "+r("#segments tbody tr"))})')
    local dom, console = open(tmp("scrolled.html"), "--dump-dom", "1280,700")
    assert.are.same({}, console)
    local head, first = dom:match('data%-top="(%-?%d+) (%-?%d+)"')
    assert.are.equal("0", head)
    assert.is_true(tonumber(first) < -1000, first)
  end)

  it("takes a screenshot, at desktop and at phone width", function()
    for _, size in ipairs({ "1280,1600", "390,844" }) do
      local png = tmp("shot-" .. size:gsub(",", "x") .. ".png")
      local _, console = open(tmp("page.html"), "--screenshot=" .. png, size)
      assert.are.same({}, console)
      local bytes = assert(helpers.read_file(png), "no screenshot")
      assert.are.equal("\137PNG\r\n\26\n", bytes:sub(1, 8))
      assert.is_true(#bytes > 20000, "a blank screenshot? " .. #bytes .. " bytes")
    end
  end)
end)
