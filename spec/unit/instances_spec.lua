-- braze.instances: instance names, their REST endpoints, and near misses.
local instances = require("braze.instances")

describe("braze.instances", function()
  it("maps every instance to an https REST endpoint, and pairs lists instances only", function()
    local count = 0
    for name, base in pairs(instances) do
      count = count + 1
      assert.matches("^%u%u%-%d%d$", name)
      assert.matches("^https://rest%.[%w-]+%.braze%.%a+$", base)
    end
    assert.equal(13, count)
    assert.equal("https://rest.iad-01.braze.com", instances["US-01"])
    assert.is_nil(rawget(instances, "US-09"))
  end)

  it("suggest names the instance a near miss meant", function()
    assert.equal("US-01", instances.suggest("us01"))
    assert.equal("US-01", instances.suggest("US-1"))
    assert.equal("EU-02", instances.suggest("fra-02"))
    assert.equal("US-03", instances.suggest("iad-03"))
    assert.equal("EU-01", instances.suggest("eu-01"))
    assert.equal("AU-01", instances.suggest("AU-0l"))
  end)

  it("suggest says nothing when the guess is not one name", function()
    assert.is_nil(instances.suggest("US-09")) -- one away from eight names
    assert.is_nil(instances.suggest("https://rest.iad-01.braze.com"))
    assert.is_nil(instances.suggest(""))
    assert.is_nil(instances.suggest(string.rep("x", 65)))
    assert.is_nil(instances.suggest(7))
  end)
end)
