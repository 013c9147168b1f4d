-- braze.catch_interrupt(), as its documentation shows it: in a user's own
-- program, Ctrl-C (SIGINT) stops a hung call at once with an error of kind
-- "interrupted" (the program exits 130 as the snippet says) instead of
-- waiting for the request's timeout.
local helpers = require("spec.support.helpers")
local socket = require("socket")

local q = helpers.shell_quote

-- The snippet in braze.catch_interrupt's documentation, as written.
local function documented_snippet()
  local source = assert(helpers.read_file(helpers.root .. "/lua/braze/init.lua"))
  local doc = assert(source:match("\n(%-%-%- Let Ctrl%-C stop.-)\nfunction braze%.catch_interrupt"))
  local lines = {}
  for line in doc:gmatch("[^\n]+") do
    local code = line:match("^%-%-     (.*)$")
    if code then lines[#lines + 1] = code end
  end
  assert(#lines > 0, "no snippet in braze.catch_interrupt's documentation")
  return table.concat(lines, "\n")
end

describe("#lua53 braze.catch_interrupt", function()
  local mock, tmp
  setup(function()
    mock = helpers.start_mock({ segments = 10 })
    tmp = helpers.read_pipe("mktemp -d /tmp/braze-sigint.XXXXXX"):gsub("\n$", "")
  end)
  teardown(function()
    if mock then mock:stop() end
    if tmp and tmp:match("^/tmp/braze%-sigint") then os.execute("rm -rf " .. q(tmp)) end
  end)

  it("is public, and its documented snippet stops a hung call at once on SIGINT", function()
    local braze = require("braze")
    assert.is_function(braze.catch_interrupt)
    assert.is_function(braze.release_interrupt)
    assert.is_function(braze.interrupted)
    local script = tmp .. "/program.lua"
    helpers.write_file(script, table.concat({
      "package.path = " .. string.format("%q", helpers.root .. "/lua/?.lua;" .. helpers.root
        .. "/lua/?/init.lua;") .. " .. package.path",
      "package.cpath = " .. string.format("%q", package.cpath),
      'local braze = require("braze")',
      "local client = braze.new({ timeout = 8 })",
      documented_snippet(),
      'io.stderr:write("not interrupted\\n")',
    }, "\n"))
    mock:fault({ type = "hang" })
    local pipe = assert(io.popen("echo $$; exec env " .. q("BRAZE_API_KEY=" .. mock.api_key) .. " "
      .. q("BRAZE_REST_ENDPOINT=" .. mock.url) .. " " .. helpers.interpreter() .. " " .. q(script)
      .. " </dev/null >/dev/null 2>" .. q(tmp .. "/err"), "r"))
    local pid = assert(tonumber(pipe:read("*l")))
    local deadline = socket.gettime() + 10
    repeat socket.sleep(0.05) until #mock:requests() > 0 or socket.gettime() > deadline
    socket.sleep(0.3) -- inside the hung transfer
    local sent = socket.gettime()
    os.execute("kill -INT " .. pid)
    local _, how, code = pipe:close()
    local took = socket.gettime() - sent
    assert.equal("exit", how)
    assert.equal(130, code, helpers.read_file(tmp .. "/err"))
    assert.is_true(took < 3, "took " .. took .. " s (the timeout is 8 s)")
  end)

  it("release_interrupt clears the flag", function()
    local braze = require("braze")
    assert.is_true(braze.catch_interrupt())
    assert.is_false(braze.interrupted())
    braze.release_interrupt()
    assert.is_false(braze.interrupted())
  end)
end)
