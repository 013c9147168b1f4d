-- Run a Lua chunk in a child interpreter that loads the same braze.core as
-- this run (same package.cpath and package.path; LD_PRELOAD, e.g. the
-- sanitizer runtimes, is inherited), so a crash fails one test instead of
-- the whole run. Shared by the specs in spec/core/.
--
--   local child = require("spec.core.child")
--   local out, code = child.run(chunk, { args = { "x" }, env = "A=1" })
--
-- The chunk gets `on_gc(f)`: a garbage object whose finalizer calls f
-- (a newproxy on 5.1 and LuaJIT, where tables have no __gc), and
-- `aggressive_gc()`: the collector running a step at every allocation.
local helpers = require("spec.support.helpers")

local child = {}

local PRELUDE = [[
local function on_gc(f)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = f
    return p
  end
  return setmetatable({}, { __gc = f })
end
local function aggressive_gc()
  if _VERSION == "Lua 5.4" then collectgarbage("incremental", 1, 1000)
  else collectgarbage("setpause", 1); collectgarbage("setstepmul", 1000) end
end
]]

local counter = 0

--- Output (stdout and stderr) and exit code of `chunk` run in a child.
function child.run(chunk, opts)
  opts = opts or {}
  counter = counter + 1
  local file = os.tmpname()
  helpers.write_file(file, "package.cpath = " .. string.format("%q", package.cpath) .. "\n"
    .. "package.path = " .. string.format("%q", package.path) .. "\n" .. PRELUDE .. chunk)
  local args = {}
  for i, a in ipairs(opts.args or {}) do args[i] = helpers.shell_quote(a) end
  local out = helpers.read_pipe((opts.env or "") .. " " .. helpers.interpreter() .. " "
    .. helpers.shell_quote(file) .. " " .. table.concat(args, " ") .. " 2>&1; echo \"exit=$?\"")
  os.remove(file)
  local code = tonumber(out:match("exit=(%d+)\n$"))
  return out:gsub("exit=%d+\n$", ""), code
end

return child
