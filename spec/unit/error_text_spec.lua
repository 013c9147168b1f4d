-- tostring(err) names the segment and the page an error is about, and
-- details, data_series and their *_many put the segment id on their errors
-- (redacted like every other field); the export command's failure line
-- names them as the user sees it.
local braze = require("braze")
local errors = require("braze.errors")
local helpers = require("spec.support.helpers")

local function answering(status)
  return helpers.recording_transport(function()
    return { status = status, headers = {}, body = { message = "Service Unavailable" } }
  end)
end

describe("error text", function()
  it("tostring names the segment and the page when the error has them", function()
    local err = errors.new({ kind = "http", status = 503, endpoint = "/segments/details",
      message = "Service Unavailable", attempts = 4 })
    err.segment_id, err.page = "abc-1", 2
    assert.equal("braze: HTTP 503 on /segments/details (segment abc-1, page 2): Service Unavailable "
      .. "after 4 attempts", tostring(err))
    err.segment_id = nil
    assert.equal("braze: HTTP 503 on /segments/details (page 2): Service Unavailable after 4 attempts",
      tostring(err))
  end)

  it("a segment id set after the error was made is redacted in tostring", function()
    local key = "0123456789abcdef0123"
    local err = errors.new({ kind = "http", status = 400, endpoint = "/segments/details", message = "bad" },
      errors.redactor(key))
    err.segment_id = "id-" .. key
    assert.is_nil(tostring(err):find(key, 1, true))
    assert.matches("(segment id-0123...)", tostring(err), 1, true)
  end)

  it("details, data_series, details_many and data_series_many errors carry segment_id", function()
    local client = braze.new({ api_key = "k", endpoint = "https://x.invalid", transport = answering(400),
      max_retries = 0 })
    local _, err = client:details("seg-a")
    assert.equal("seg-a", err.segment_id)
    assert.matches("(segment seg-a)", tostring(err), 1, true)
    _, err = client:data_series({ segment_id = "seg-b", length = 3 })
    assert.equal("seg-b", err.segment_id)
    local _, errs = client:details_many({ "m1", "m2" })
    assert.equal("m1", errs[1].segment_id)
    assert.equal("m2", errs[2].segment_id)
    _, errs = client:data_series_many({ { segment_id = "s1", length = 2 } })
    assert.equal("s1", errs[1].segment_id)
    assert.matches("(segment s1)", tostring(errs[1]), 1, true)
  end)

  it("an export's failure line names the segment and the page", function()
    if _VERSION == "Lua 5.1" then return pending("braze-segments needs Lua 5.3+") end
    local mock = helpers.start_mock({ segments = 30 })
    finally(function() mock:stop() end)
    mock:fault({ type = "503", path = "/segments/details", count = 100 })
    local r = require("spec.cli.support").run({ "--max-retries", "0", "--quiet", "export", "--details" },
      { BRAZE_API_KEY = mock.api_key, BRAZE_REST_ENDPOINT = mock.url })
    assert.equal(1, r.code)
    assert.matches("braze%-segments: HTTP 503 on /segments/details %(segment [%x-]+, page 0%): ", r.stderr)
  end)
end)
