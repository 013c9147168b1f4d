-- Run braze-segments' main in this process with captured output and a
-- given environment, for the specs in spec/cli/.
local M = {}

local function sink()
  local parts = {}
  return {
    write = function(self, ...)
      for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
      return self
    end,
    flush = function(self) return self end,
    text = function() return table.concat(parts) end,
  }
end

--- main(argv) with env (a table; nothing else is visible): { code, stdout, stderr }.
function M.run(argv, env)
  local cli = require("braze_segments")
  local out, err = sink(), sink()
  local code = cli.main(argv, { stdout = out, stderr = err, getenv = function(name) return env[name] end })
  return { code = code, stdout = out:text(), stderr = err:text() }
end

return M
