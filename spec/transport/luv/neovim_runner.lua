--- Runs spec/transport/luv/cases.lua inside Neovim (LuaJIT, vim.loop), for
-- spec/transport/luv_spec.lua:
--
--   BRAZE_LUV_REPORT=/tmp/report nvim --headless -u NONE --cmd 'set rtp+=.' \
--     -c 'luafile spec/transport/luv/neovim_runner.lua' -c 'qa!'
--
-- from the repository root (after bash scripts/build.sh build-luajit
-- -DBRAZE_LUA=luajit -DBRAZE_RUNTIMEPATH=ON). lua-braze and braze.core are
-- found through runtimepath only (that build copies core.so to
-- lua/braze/core.so). Writes one
-- line per case ("ok <name>" or "fail <name>\t<error>"), "figure
-- <name>\t<value>" lines and a last line "done" to $BRAZE_LUV_REPORT.
-- luacheck: globals vim
local report = assert(io.open(assert(os.getenv("BRAZE_LUV_REPORT"), "set BRAZE_LUV_REPORT"), "w"))
local function line(s)
  report:write((s:gsub("\n", "\\n")), "\n")
  report:flush()
end

local ok, err = pcall(function()
  line("core " .. tostring(vim.api.nvim_get_runtime_file("lua/braze/core.so", false)[1]))
  require("braze") -- braze.core through runtimepath, before anything else touches the paths
  package.path = "./?.lua;" .. package.path -- spec.support.helpers, spec.transport.luv.cases
  local helpers = require("spec.support.helpers")
  local cases = require("spec.transport.luv.cases")
  local fast = helpers.start_mock{ segments = 250 }
  local slow = helpers.start_mock{ latency = 500 }
  -- LuaSocket cannot connect inside Neovim: the dynamic linker resolves its
  -- socket_connect to Neovim's own function of that name (a crash). The
  -- mocks' control requests go through braze.core instead; stop() kills.
  local control = require("braze.core").session{ api_key = "control", timeout = 5,
    connect_timeout = 5, user_agent = "spec", max_body = 1e6, max_depth = 100 }
  local Mock = getmetatable(fast)
  function Mock:control(name, params)
    local q = helpers.query(params)
    local res, kind, msg = control:get(self.url .. "/_mock/" .. name .. (q ~= "" and "?" .. q or ""))
    if not (res and res.status == 200) then
      error("braze-mock control " .. name .. ": " .. tostring(res and res.status or kind .. " " .. msg), 2)
    end
    return res.body
  end
  helpers.request = function() return nil, "no LuaSocket connections inside Neovim" end
  local function wait(seconds, done)
    vim.wait(seconds * 1000, done, 5)
  end
  local list = cases.new{ uv = vim.loop, fast = fast, slow = slow, wait = wait,
    figure = function(name, value) line("figure " .. name .. "\t" .. tostring(value)) end }
  local only = os.getenv("BRAZE_LUV_ONLY") -- a Lua pattern: run only the cases it matches
  for _, case in ipairs(list) do
    if only and not case.name:find(only) then goto skip end
    local passed, cerr = pcall(cases.run, case, wait)
    line((passed and "ok " or "fail ") .. case.name .. (passed and "" or "\t" .. tostring(cerr)))
    ::skip::
  end
  fast:stop()
  slow:stop()
end)
if not ok then line("error\t" .. tostring(err)) end
line("done")
report:close()
