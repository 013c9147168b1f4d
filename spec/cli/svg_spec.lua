-- The drawing code shared by the report's sparklines and `series --format
-- svg`: the chart parses as XML (Python's xml.etree, not our code) with one
-- point per day, its labels print sizes exactly, and any text (a hostile
-- segment id, control characters, broken UTF-8) stays well-formed data.
local helpers = require("spec.support.helpers")
local cjson = require("cjson")
local svg = require("braze_segments.svg")
local html = require("braze_segments.html")

local KEY = "spec-svg-secret-key-0123456789"
local END = "2024-06-30"
local BIN = helpers.root .. "/bin/braze-segments"
local shell_quote = helpers.shell_quote

-- What xml.etree reads from an SVG document: the title, the polyline's
-- points, each dot's <title>, the size and date labels.
local READ = [[
import json, sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
line = root.find("s:polyline", ns)
out = {
  "root": root.tag,
  "title": root.find("s:title", ns).text,
  "points": len(line.get("points").split()) if line is not None else 0,
  "dots": [c.find("s:title", ns).text for c in root.iter("{%s}circle" % ns["s"])],
  "sizes": [t.text for t in root.find("s:g[@class='sizes']", ns).findall("s:text", ns)],
  "dates": [t.text for t in root.find("s:g[@class='dates']", ns).findall("s:text", ns)],
  "texts": [t.text for t in root.iter("{%s}text" % ns["s"])],
}
json.dump(out, sys.stdout, ensure_ascii=False)
]]

local tmpdir
local function read_svg(text)
  local path = tmpdir .. "/chart.svg"
  helpers.write_file(path, text)
  helpers.write_file(tmpdir .. "/read.py", READ)
  local out = helpers.read_pipe("python3 " .. shell_quote(tmpdir .. "/read.py") .. " "
    .. shell_quote(path) .. " 2>&1")
  local ok, doc = pcall(cjson.decode, out)
  assert(ok, "not XML: " .. out)
  return doc
end

local function thousands(v)
  return (string.format("%d", v):reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

describe("#lua53 svg", function()
  setup(function() tmpdir = helpers.read_pipe("mktemp -d"):match("[^\n]+") end)
  teardown(function()
    if tmpdir and tmpdir:match("^/tmp/") then os.execute("rm -rf " .. shell_quote(tmpdir)) end
  end)

  describe("series --format svg", function()
    local mock
    setup(function() mock = helpers.start_mock({ segments = 30, api_key = KEY }) end)
    teardown(function() if mock then mock:stop() end end)

    it("charts one point per day, the dates and sizes labelled, as the API gives them", function()
      local list = cjson.decode(assert(mock:api("/segments/list", { auth = KEY })).body)
      for _, days in ipairs({ 1, 30, 100 }) do
        local id = list.segments[days == 30 and 1 or 7].id
        local cmd = table.concat({ "env", shell_quote("BRAZE_API_KEY=" .. KEY),
          shell_quote("BRAZE_REST_ENDPOINT=" .. mock.url), helpers.lua, shell_quote(BIN),
          "series", shell_quote(id), "--days", days, "--end", END, "--format", "svg" }, " ")
        local doc = read_svg(helpers.read_pipe(cmd))
        local data = cjson.decode(assert(mock:api("/segments/data_series?segment_id=" .. id
          .. "&length=" .. days .. "&ending_at=" .. END, { auth = KEY })).body).data
        assert.are.equal(days, #data)
        assert.are.equal("{http://www.w3.org/2000/svg}svg", doc.root)
        assert.are.equal("Segment " .. id .. ": estimated size per day", doc.title)
        assert.are.equal(days, doc.points)
        local lo, hi = math.huge, -math.huge
        for i, p in ipairs(data) do
          assert.are.equal(p.time:sub(1, 10) .. ": " .. thousands(p.size), doc.dots[i])
          lo, hi = math.min(lo, p.size), math.max(hi, p.size)
        end
        assert.are.equal(days, #doc.dots)
        assert.are.equal(thousands(lo), doc.sizes[1])
        assert.are.equal(thousands(hi), doc.sizes[#doc.sizes])
        assert.are.equal(data[1].time:sub(1, 10), doc.dates[1])
        assert.are.equal(data[#data].time:sub(1, 10), doc.dates[#doc.dates])
      end
    end)
  end)

  describe("chart", function()
    it("labels sizes past 2^53 exactly, the steps between them exact too", function()
      local doc = read_svg(svg.chart({
        { time = "2024-06-29T00:00:00Z", size = 9007199254740993 },
        { time = "2024-06-30T00:00:00Z", size = 9007199254741001 },
      }))
      assert.are.same({ "9,007,199,254,740,993", "9,007,199,254,740,995", "9,007,199,254,740,997",
        "9,007,199,254,740,999", "9,007,199,254,741,001" }, doc.sizes)
      assert.are.same({ "2024-06-29: 9,007,199,254,740,993", "2024-06-30: 9,007,199,254,741,001" },
        doc.dots)
    end)

    it("keeps a hostile title, control characters and broken UTF-8 well-formed", function()
      local title = "a</title><script>x</script>&\"'\0\27\r\n \xff\xfe \xED\xA0\x80 \u{202E}z"
      local doc = read_svg(svg.chart({ { time = "<d>", size = 1 } }, { title = title }))
      assert.are.equal("a</title><script>x</script>&\"'\u{FFFD}\u{FFFD}\r\n \u{FFFD}\u{FFFD} "
        .. "\u{FFFD}\u{FFFD}\u{FFFD} \u{202E}z", doc.title)
      assert.are.same({ "<d>: 1" }, doc.dots)
    end)

    it("says so when there is no data point", function()
      local doc = read_svg(svg.chart({}))
      assert.are.equal(0, doc.points)
      assert.are.same({}, doc.dots)
      assert.are.same({}, doc.sizes)
      assert.is_truthy(table.concat(doc.texts, "|"):find("no data points", 1, true))
    end)

    it("draws a flat series and a single day in the middle", function()
      local doc = read_svg(svg.chart({ { time = "2024-01-01", size = 5 }, { time = "2024-01-02", size = 5 } }))
      assert.are.equal(2, doc.points)
      assert.are.same({ "5" }, doc.sizes)
    end)
  end)

  describe("sparkline", function()
    it("has one point per value, none for no values", function()
      for _, n in ipairs({ 0, 1, 2, 30, 100 }) do
        local values = {}
        for i = 1, n do values[i] = (i * 7919) % 1000 end
        local s = svg.sparkline(values)
        local pts = s:match('points="([^"]*)"')
        local count = 0
        for _ in (pts or ""):gmatch("%S+") do count = count + 1 end
        assert.are.equal(n, count)
      end
    end)
  end)

  describe("html", function()
    it("escapes the five characters that matter in text and attributes", function()
      assert.are.equal("&lt;a href=&quot;x&quot;&gt;&amp;&#39;", html.escape("<a href=\"x\">&'"))
    end)

    it("prints integers, integral floats and fractions exactly", function()
      assert.are.equal("9,007,199,254,740,993", html.number(9007199254740993))
      assert.are.equal("9,223,372,036,854,775,807", html.number(math.maxinteger))
      assert.are.equal("18,446,744,073,709,551,616", html.number(2.0 ^ 64))
      assert.are.equal("+12", html.number(12, true))
      assert.are.equal("-1,000", html.number(-1000, true))
      assert.are.equal("0.1", html.number(0.1))
      assert.are.equal("", html.number("12"))
    end)
  end)
end)
