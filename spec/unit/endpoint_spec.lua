-- braze.new's endpoint: an instance name works wherever an endpoint is
-- accepted (endpoint = "US-01", BRAZE_REST_ENDPOINT=US-01 passed on as
-- endpoint, as the nginx, HAProxy and Neovim examples do), and a refused
-- endpoint says what it may have meant.
local braze = require("braze")
local helpers = require("spec.support.helpers")

local function new(opts)
  opts.api_key = opts.api_key or "k"
  opts.transport = helpers.recording_transport()
  return braze.new(opts)
end

local function refusal(opts)
  local ok, err = pcall(new, opts)
  assert.is_false(ok)
  return err
end

describe("braze.new's endpoint", function()
  it("takes an instance name as endpoint, in any case", function()
    assert.equal("https://rest.iad-01.braze.com", new({ endpoint = "US-01" }).endpoint)
    assert.equal("https://rest.fra-02.braze.eu", new({ endpoint = "eu-02" }).endpoint)
    assert.equal("https://rest.iad-01.braze.com", new({ instance = "us-01" }).endpoint)
  end)

  it("takes BRAZE_REST_ENDPOINT=US-01 handed on as endpoint, as the examples do", function()
    local snippet = [[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = ]] .. string.format("%q", package.cpath) .. [[
      local braze = require("braze")
      local transport = { new = function() return { get = function() end, close = function() end } end }
      local client = braze.new({ endpoint = os.getenv("BRAZE_REST_ENDPOINT"), transport = transport })
      io.write(client.endpoint)
    ]]
    local out = helpers.read_pipe("cd " .. helpers.shell_quote(helpers.root)
      .. " && BRAZE_API_KEY=k BRAZE_REST_ENDPOINT=US-01 " .. helpers.interpreter() .. " -e " .. helpers.shell_quote(snippet)
      .. " 2>&1")
    assert.equal("https://rest.iad-01.braze.com", out)
  end)

  it("lists the instances for a name that is neither a URL nor an instance", function()
    local err = refusal({ endpoint = "EU-07" })
    assert.matches('endpoint "EU-07" is not a URL', err, 1, true)
    assert.matches("or an instance name (one of AU-01, EU-01, EU-02,", err, 1, true)
    err = refusal({ instance = "US-99" })
    assert.matches('unknown instance "US-99" (one of AU-01, EU-01, EU-02,', err, 1, true)
  end)

  it("suggests https:// for a bare host", function()
    local err = refusal({ endpoint = "rest.iad-01.braze.com" })
    assert.matches('(did you mean "https://rest.iad-01.braze.com"?)', err, 1, true)
  end)

  it("still suggests the instance a near miss meant", function()
    assert.matches('did you mean instance = "US-01"?', refusal({ endpoint = "US-1" }), 1, true)
  end)
end)
