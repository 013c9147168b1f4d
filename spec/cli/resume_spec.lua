-- --resume cannot mix date windows, orders, columns or workspaces into one
-- file: the export records what it was written with (FILE.braze.json: sort,
-- details, series length and end date as resolved, the endpoint), and a
-- resume with anything else is refused, naming the difference, as is a
-- resume of a file whose FILE.braze.json is missing; a default end date is
-- resolved once and a resume on another day keeps it.
local helpers = require("spec.support.helpers")
local support = require("spec.cli.support")

local function lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

describe("#lua53 braze-segments export --resume and what the file was written with", function()
  local mock, env, tmp
  setup(function()
    mock = helpers.start_mock({ segments = 250 })
    env = { BRAZE_API_KEY = mock.api_key, BRAZE_REST_ENDPOINT = mock.url }
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-resume.XXXXXX"):gsub("\n$", "")
  end)
  teardown(function()
    if mock then mock:stop() end
    if tmp and tmp:match("^/tmp/braze%-resume") then os.execute("rm -rf '" .. tmp .. "'") end
  end)

  -- Export to `path`, then keep its first `keep` records: a cut export.
  local function cut_export(path, argv, keep)
    local full = { "--quiet", "export", "-o", path }
    for _, word in ipairs(argv) do full[#full + 1] = word end
    local r = support.run(full, env)
    assert.equal(0, r.code, r.stderr)
    local kept = {}
    for i, line in ipairs(lines(assert(helpers.read_file(path)))) do
      if i <= keep then kept[#kept + 1] = line .. "\n" end
    end
    helpers.write_file(path, table.concat(kept))
  end

  it("refuses a resume with another --end, naming both, and leaves the file as it was", function()
    local path = tmp .. "/window.jsonl"
    cut_export(path, { "--series", "14", "--end", "2026-12-04" }, 93)
    local before = helpers.read_file(path)
    local r = support.run({ "--quiet", "export", "--series", "14", "--end", "2026-11-01", "-o", path,
      "--resume" }, env)
    assert.equal(2, r.code)
    assert.matches("was written with --end 2026-12-04, and this run asks for --end 2026-11-01", r.stderr, 1, true)
    assert.equal(before, helpers.read_file(path))
  end)

  it("refuses a resume with another series length", function()
    local path = tmp .. "/length.jsonl"
    cut_export(path, { "--series", "14", "--end", "2026-12-04" }, 10)
    local r = support.run({ "export", "--series", "7", "--end", "2026-12-04", "-o", path, "--resume" }, env)
    assert.equal(2, r.code)
    assert.matches("--series 14", r.stderr, 1, true)
    assert.matches("--series 7", r.stderr, 1, true)
  end)

  it("refuses a --sort desc resume of an asc file cut inside page 0", function()
    local path = tmp .. "/order.jsonl"
    cut_export(path, {}, 40)
    local r = support.run({ "export", "--sort", "desc", "-o", path, "--resume" }, env)
    assert.equal(2, r.code)
    assert.matches("was written with --sort asc, and this run asks for --sort desc", r.stderr, 1, true)
  end)

  it("keeps the default end the file was started with when resumed on another day", function()
    local path = tmp .. "/today.jsonl"
    cut_export(path, { "--series", "3" }, 120)
    -- as if the export had been started on 2026-06-01 (another UTC day)
    local manifest_path = path .. ".braze.json"
    local recorded = assert(helpers.read_file(manifest_path))
    local started = assert(recorded:match('"ending_at":"([^"]+)"'))
    local at = assert(recorded:find(started, 1, true))
    helpers.write_file(manifest_path, recorded:sub(1, at - 1) .. "2026-06-01T10:00:00Z" .. recorded:sub(at + #started))
    local r = support.run({ "--quiet", "export", "--series", "3", "-o", path, "--resume" }, env)
    assert.equal(0, r.code, r.stderr)
    local records = lines(assert(helpers.read_file(path)))
    assert.equal(250, #records)
    local cjson = require("cjson")
    for i = 121, 250 do
      local series = cjson.decode(records[i]).series
      assert.equal("2026-06-01", series[#series].time:sub(1, 10), "record " .. i)
    end
  end)

  it("refuses a resume of a file without its FILE.braze.json, naming it, and writes nothing", function()
    -- export -o r.jsonl; head -93 r.jsonl > t2.jsonl; export ... -o t2.jsonl --resume
    local path, copy = tmp .. "/r.jsonl", tmp .. "/t2.jsonl"
    cut_export(path, { "--details", "--series", "14", "--end", "2026-12-04" }, 93)
    local text = assert(helpers.read_file(path))
    helpers.write_file(copy, text)
    for _, end_date in ipairs({ "2026-11-01", "2026-12-04" }) do
      local r = support.run({ "--quiet", "export", "--details", "--series", "14", "--end", end_date,
        "-o", copy, "--resume" }, env)
      assert.equal(2, r.code)
      assert.matches("cannot resume " .. copy .. ": " .. copy .. ".braze.json is missing", r.stderr, 1, true)
      assert.matches("export to a new file", r.stderr, 1, true)
      assert.equal(text, helpers.read_file(copy))
      assert.is_nil(helpers.read_file(copy .. ".braze.json"))
    end
  end)

  it("starts an empty or missing file on --resume, recording the endpoint and never the key", function()
    for _, path in ipairs({ tmp .. "/empty.jsonl", tmp .. "/absent.jsonl" }) do
      if path:find("empty") then helpers.write_file(path, "") end
      local r = support.run({ "--quiet", "export", "-o", path, "--resume" }, env)
      assert.equal(0, r.code, r.stderr)
      assert.equal(250, #lines(helpers.read_file(path)))
      local recorded = assert(helpers.read_file(path .. ".braze.json"))
      assert.equal((mock.url:gsub("/+$", "")), require("cjson").decode(recorded).endpoint)
      assert.is_nil(recorded:find(mock.api_key, 1, true))
    end
  end)

  it("refuses a resume against another endpoint, naming both, and writes nothing", function()
    local path = tmp .. "/workspace.jsonl"
    cut_export(path, {}, 120)
    local before = helpers.read_file(path)
    local other = helpers.start_mock({ segments = 250 })
    local ok, r = pcall(support.run, { "--quiet", "--endpoint", other.url, "export", "-o", path,
      "--resume" }, env)
    other:stop()
    assert(ok, r)
    assert.equal(2, r.code)
    assert.matches("was written with the endpoint " .. mock.url:gsub("/+$", "")
      .. ", and this run asks for the endpoint " .. other.url:gsub("/+$", ""), r.stderr, 1, true)
    assert.equal(before, helpers.read_file(path))
    -- the same endpoint spelt with another case in its scheme goes on
    r = support.run({ "--quiet", "--endpoint", (mock.url:gsub("^http:", "HTTP:")), "export", "-o",
      path, "--resume" }, env)
    assert.equal(0, r.code, r.stderr)
    assert.equal(250, #lines(helpers.read_file(path)))
  end)

  it("refuses a manifest that records no endpoint (an older one)", function()
    local path = tmp .. "/older.jsonl"
    cut_export(path, {}, 50)
    local manifest_path = path .. ".braze.json"
    local recorded = require("cjson").decode((assert(helpers.read_file(manifest_path))))
    recorded.endpoint = nil
    helpers.write_file(manifest_path, require("cjson").encode(recorded))
    local r = support.run({ "--quiet", "export", "-o", path, "--resume" }, env)
    assert.equal(2, r.code)
    assert.matches("was written with no endpoint recorded", r.stderr, 1, true)
  end)

  it("refuses a manifest that is not one, without advising to remove it", function()
    local path = tmp .. "/garbled.jsonl"
    cut_export(path, {}, 30)
    helpers.write_file(path .. ".braze.json", "not json\n")
    local r = support.run({ "--quiet", "export", "-o", path, "--resume" }, env)
    assert.equal(2, r.code)
    assert.matches(path .. ".braze.json is not a manifest written by braze-segments", r.stderr, 1, true)
    assert.matches("export to a new file", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("remove it", 1, true))
  end)

  it("records an endpoint without user, password, query or fragment", function()
    local manifest = require("braze_segments.manifest")
    assert.equal("https://rest.iad-01.braze.com/v1",
      manifest.endpoint("https://user:secret@rest.iad-01.braze.com/v1/?api_key=k#frag"))
    assert.equal("http://127.0.0.1:8080", manifest.endpoint("http://127.0.0.1:8080/"))
  end)

  it("goes on when everything matches", function()
    local path = tmp .. "/same.jsonl"
    cut_export(path, { "--details", "--series", "5", "--end", "2026-12-04" }, 150)
    local r = support.run({ "--quiet", "export", "--details", "--series", "5", "--end", "2026-12-04",
      "-o", path, "--resume" }, env)
    assert.equal(0, r.code, r.stderr)
    assert.equal(250, #lines(helpers.read_file(path)))
  end)
end)
