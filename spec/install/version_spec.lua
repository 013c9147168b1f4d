-- One version, defined in lua/braze/version.lua, in all the places a user
-- sees one: braze._VERSION, the User-Agent, both commands' --version (run
-- as the README runs them, from a checkout), the mock's module, the
-- versioned rockspec beside the scm one, the C core's _VERSION, the README
-- and CHANGELOG.md.
local helpers = require("spec.support.helpers")

local ROOT = helpers.root
local VERSION = require("braze.version")
local q = helpers.shell_quote

local function read(path) return assert(helpers.read_file(ROOT .. "/" .. path), path) end

describe("#lua53 the version", function()
  it("is a semantic version, defined once", function()
    assert.matches("^%d+%.%d+%.%d+$", VERSION)
  end)

  it("is braze._VERSION, the C core's and the mock's", function()
    assert.equal("lua-braze " .. VERSION, require("braze")._VERSION)
    assert.equal(VERSION, require("braze.core")._VERSION)
    assert.equal(VERSION, require("braze_mock")._VERSION)
  end)

  it("is in the default User-Agent", function()
    local transport = helpers.recording_transport()
    require("braze").new({ api_key = "k", endpoint = "https://x.invalid", transport = transport })
    assert.equal("lua-braze/" .. VERSION, transport.configs[1].user_agent)
  end)

  it("is what braze-segments --version and braze-mock --version print", function()
    local out = helpers.read_pipe("cd " .. q(ROOT) .. " && " .. helpers.lua .. " bin/braze-segments --version 2>&1")
    assert.matches("^braze%-segments " .. VERSION:gsub("%.", "%%.") .. " %(lua%-braze " .. VERSION:gsub("%.", "%%.")
      .. ", [^)]+%)\n$", out)
    out = helpers.read_pipe("cd " .. q(ROOT) .. " && " .. helpers.lua .. " bin/braze-mock --version 2>&1")
    assert.equal("braze-mock " .. VERSION .. "\n", out)
  end)

  it("has a versioned rockspec that is the scm one with that version and a tagged source", function()
    local scm = read("lua-braze-scm-0.rockspec")
    local released = read("lua-braze-" .. VERSION .. "-1.rockspec")
    assert.matches('\nversion = "' .. VERSION .. '-1"\n', released, 1, true)
    assert.matches('tag = "v' .. VERSION .. '"', released, 1, true)
    local function body(text)
      return (text:gsub("^%-%-[^\n]*\n%-%-[^\n]*\n", ""):gsub('\nversion = "[^"]*"', "")
        :gsub("\nsource = {[^\n]*}", ""))
    end
    assert.equal(body(scm), body(released))
  end)

  it("is named in the README and has a CHANGELOG entry", function()
    assert.matches("Version " .. VERSION, read("README.md"), 1, true)
    assert.matches("\n## " .. VERSION:gsub("%.", "%%.") .. " ", read("CHANGELOG.md"))
  end)
end)

describe("#lua53 a release's paperwork", function()
  it("LICENSE is MIT with a copyright holder, as every rockspec says", function()
    local license = read("LICENSE")
    assert.matches("^MIT License\n", license)
    assert.matches("Copyright %(c%) %d%d%d%d The lua%-braze authors\n", license)
    assert.matches("THE SOFTWARE IS PROVIDED \"AS IS\"", license, 1, true)
  end)

  it("every rockspec has the metadata an upload needs", function()
    for _, path in ipairs({ "lua-braze-scm-0.rockspec", "lua-braze-" .. VERSION .. "-1.rockspec",
      "cli/braze-segments-scm-0.rockspec", "mock/braze-mock-scm-0.rockspec" }) do
      local spec = {} -- a rockspec is Lua assignments: run it into a table (Lua 5.2+ load)
      assert(load(read(path), "@" .. path, "t", spec))()
      local d = spec.description
      assert.equal("MIT", d.license, path)
      assert.is_string(d.summary, path)
      assert.is_string(d.detailed, path)
      assert.matches("^https://", d.homepage, path)
      assert.equal("The lua-braze authors", d.maintainer, path)
      assert.is_table(d.labels, path)
      assert.matches("^git%+https://", spec.source.url, path)
    end
  end)
end)
