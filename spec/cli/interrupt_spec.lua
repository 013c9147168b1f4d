-- Ctrl-C in braze-segments: SIGINT stops a wait or a hung transfer at once
-- (exit 130), and an export's output file holds only complete records.
-- The command runs as a child process against the mock.
local helpers = require("spec.support.helpers")
local socket = require("socket")
local cjson = require("cjson")

local KEY = "spec-interrupt-secret-key-0123456789"
local BIN = helpers.root .. "/bin/braze-segments"
local q = helpers.shell_quote

describe("#lua53 braze-segments on SIGINT", function()
  local mock, tmpdir

  setup(function()
    mock = helpers.start_mock({ segments = 250, api_key = KEY })
    tmpdir = helpers.read_pipe("mktemp -d"):match("^(%S+)")
  end)

  teardown(function()
    if mock then mock:stop() end
    if tmpdir and tmpdir:match("^/tmp/") then os.execute("rm -rf " .. q(tmpdir)) end
  end)

  before_each(function() mock:reset() end)

  -- Start the command; `ready()` says when to interrupt it. Returns the
  -- exit status, the seconds from SIGINT to exit, and stderr.
  local function interrupt(args, ready)
    local parts = { "env", q("BRAZE_API_KEY=" .. KEY), q("BRAZE_REST_ENDPOINT=" .. mock.url),
      helpers.interpreter(), q(BIN) }
    for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
    local err_file = tmpdir .. "/stderr"
    -- sh prints its pid, then becomes the command (exec keeps the pid).
    local pipe = assert(io.popen("echo $$; exec " .. table.concat(parts, " ")
      .. " </dev/null >/dev/null 2>" .. q(err_file), "r"))
    local pid = assert(tonumber(pipe:read("l")))
    local deadline = socket.gettime() + 20
    while not ready() and socket.gettime() < deadline do socket.sleep(0.05) end
    socket.sleep(0.3) -- inside the wait or the transfer
    local sent = socket.gettime()
    os.execute("kill -INT " .. pid)
    local _, how, code = pipe:close()
    local took = socket.gettime() - sent
    return how == "exit" and code or (how .. " " .. tostring(code)), took,
      helpers.read_file(err_file) or ""
  end

  local function requested(path, n)
    return function()
      local count = 0
      for _, r in ipairs(mock:requests()) do
        if r.path == path then count = count + 1 end
      end
      return count >= n
    end
  end

  it("exits 130 at once while a request hangs, the output holding only complete records",
    function()
      local out = tmpdir .. "/hung.jsonl"
      -- Page 0's 100 series answer, the next (page 1's first) never does:
      -- page 0 is written (a page is written once all its calls are done).
      mock:fault({ type = "delay", ms = 0, count = 100, path = "/segments/data_series" })
      mock:fault({ type = "hang", path = "/segments/data_series" })
      local code, took, stderr = interrupt({ "--timeout", "60", "export", "--series", "3",
        "--concurrency", "1", "-o", out }, requested("/segments/data_series", 101))
      assert.are.equal(130, code)
      assert.is_true(took < 3, "took " .. took .. " s after SIGINT")
      assert.matches("interrupted", stderr)
      local text = helpers.read_file(out)
      assert.are.equal("\n", text:sub(-1))
      local n = 0
      for line in text:gmatch("([^\n]*)\n") do
        local rec = cjson.decode(line)
        assert.is_string(rec.id)
        assert.is_table(rec.series)
        n = n + 1
      end
      assert.are.equal(100, n)
    end)

  it("exits 130 at once while it waits out a Retry-After: 20", function()
    mock:fault({ type = "429", retry_after = 20, path = "/segments/list" })
    local code, took, stderr = interrupt({ "list", "--format", "csv" },
      requested("/segments/list", 1))
    assert.are.equal(130, code)
    assert.is_true(took < 3, "took " .. took .. " s after SIGINT")
    assert.matches("interrupted", stderr)
    -- It stopped: no second request after the wait.
    assert.is_false(requested("/segments/list", 2)())
  end)
end)

describe("#lua53 braze-segments main on SIGINT between requests", function()
  local mock
  setup(function() mock = helpers.start_mock({ segments = 250, api_key = KEY }) end)
  teardown(function() if mock then mock:stop() end end)

  it("stops writing and returns 130 when SIGINT comes while it formats output", function()
    local cli = require("braze_segments")
    local core = require("braze.core")
    local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
    local writes, errs = 0, {}
    local stdout = {
      write = function(self)
        writes = writes + 1
        if writes == 150 then
          -- SIGINT now, in the middle of page 1's rows: only Lua code runs
          -- before the next write (page 2 is fetched 50 rows later). In the
          -- background, a little later: system() ignores SIGINT until its
          -- shell exits.
          os.execute("(sleep 0.2; kill -INT " .. pid .. ") &")
          local deadline = socket.gettime() + 5
          while not core.interrupted() and socket.gettime() < deadline do socket.sleep(0.01) end
        end
        return self
      end,
      flush = function(self) return self end,
    }
    local stderr = { write = function(self, ...) errs[#errs + 1] = table.concat({ ... }); return self end,
      flush = function(self) return self end }
    local env = { BRAZE_API_KEY = KEY, BRAZE_REST_ENDPOINT = mock.url }
    local code = cli.main({ "list", "--format", "csv" },
      { stdout = stdout, stderr = stderr, getenv = function(k) return env[k] end })
    assert.are.equal(130, code)
    assert.are.equal(150, writes) -- no row after the signal
    assert.matches("interrupted", table.concat(errs))
    assert.is_false(core.interrupted()) -- released when main returned
  end)
end)

describe("#lua53 braze.core interrupt hooks", function()
  local core = require("braze.core")

  it("wake core.sleep at once with an error once SIGINT is caught, and release it", function()
    assert.is_false(core.interrupted())
    assert.is_true(core.catch_interrupt())
    finally(function() core.release_interrupt() end)
    local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
    os.execute("(sleep 0.3; kill -INT " .. pid .. ") &")
    local started = core.monotonic()
    local ok, err = pcall(core.sleep, 20)
    assert.is_false(ok)
    assert.matches("interrupted", err)
    assert.is_true(core.monotonic() - started < 10)
    assert.is_true(core.interrupted())
    core.release_interrupt()
    assert.is_false(core.interrupted())
    assert.is_true(pcall(core.sleep, 0.01))
  end)
end)
