-- braze.date: ending_at, ISO 8601 and timegm, independent of the local zone.
local date = require("braze.date")

describe("braze.date", function()
  it("timegm is UTC calendar time to epoch seconds", function()
    assert.equal(0, date.timegm(1970, 1, 1, 0, 0, 0))
    assert.equal(951782400, date.timegm(2000, 2, 29, 0, 0, 0))
    assert.equal(1798761600, date.timegm(2027, 1, 1, 0, 0, 0))
    assert.equal(253402300799, date.timegm(9999, 12, 31, 23, 59, 59))
    assert.equal(-86400, date.timegm(1969, 12, 31, 0, 0, 0))
  end)

  it("parse_iso8601 takes dates, date-times, fractions and zones", function()
    assert.equal(1717113600, date.parse_iso8601("2024-05-31"))
    assert.equal(1717113600 + 3600 + 120, date.parse_iso8601("2024-05-31T01:02"))
    assert.equal(1717113600 + 3723, date.parse_iso8601("2024-05-31T01:02:03.250Z"))
    assert.equal(1717113600 - 7200, date.parse_iso8601("2024-05-31T00:00:00+02:00"))
    assert.equal(1717113600 + 5400, date.parse_iso8601("2024-05-31 00:00:00-0130"))
    assert.equal(1717113600 - 3600, date.parse_iso8601("2024-05-31T00:00+01"))
  end)

  it("parse_iso8601 says what is wrong", function()
    local cases = {
      { "31/05/2024", "expected YYYY-MM-DD" }, { "2024-13-01", "month out of range" },
      { "2023-02-29", "day out of range" }, { "2024-02-30", "day out of range" },
      { "2024-05-31X", "expected THH:MM after the date" }, { "2024-05-31T24:00", "time out of range" },
      { "2024-05-31T10:00PST", "bad time zone" }, { "2024-05-31T10:00+25:00", "time zone out of range" },
    }
    for _, c in ipairs(cases) do
      local v, why = date.parse_iso8601(c[1])
      assert.is_nil(v, c[1])
      assert.equal(c[2], why, c[1])
    end
    assert.is_number(date.parse_iso8601("2024-02-29"))
  end)

  it("ending_at sends strings as given and epoch seconds as UTC", function()
    assert.equal("2024-05-31", date.ending_at("2024-05-31", "data_series"))
    assert.equal("1970-01-02T00:00:00Z", date.ending_at(86400, "data_series"))
    assert.equal("2024-05-31T01:02:03Z", date.ending_at(1717113600 + 3723.9, "data_series"))
    local v, why = date.ending_at(-1, "data_series")
    assert.is_nil(v)
    assert.matches("braze: data_series: ending_at must be epoch seconds from 1970 to 9999 (got -1)", why, 1, true)
    v, why = date.ending_at("yesterday", "each")
    assert.is_nil(v)
    assert.matches('braze: each: ending_at must be an ISO 8601 date-time (got "yesterday": expected YYYY-MM-DD)',
      why, 1, true)
    v, why = date.ending_at(true, "each")
    assert.is_nil(v)
    assert.matches("ending_at must be an ISO 8601 string or epoch seconds (got boolean)", why, 1, true)
    assert.is_nil((date.ending_at(0 / 0, "x")))
  end)
end)
