-- --resume cannot mix date windows, orders or columns into one file: the
-- export records what it was written with (FILE.braze.json: sort, details,
-- series length and end date as resolved), and a resume with anything else
-- is refused, naming the difference; a default end date is resolved once
-- and a resume on another day keeps it.
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

  it("goes on when everything matches", function()
    local path = tmp .. "/same.jsonl"
    cut_export(path, { "--details", "--series", "5", "--end", "2026-12-04" }, 150)
    local r = support.run({ "--quiet", "export", "--details", "--series", "5", "--end", "2026-12-04",
      "-o", path, "--resume" }, env)
    assert.equal(0, r.code, r.stderr)
    assert.equal(250, #lines(helpers.read_file(path)))
  end)
end)
