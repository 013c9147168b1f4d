--- Helpers for the 1-byte-chunks cases (issue 18 item 19) of the event-loop
-- transports: spec/transport/luv/cases.lua (luv, Neovim) and
-- spec/transport/cqueues_spec.lua.
local M = {}

-- Resident memory of this process in bytes (Linux).
function M.rss()
  local f = io.open("/proc/self/statm")
  if not f then return 0 end
  local pages = f:read("*l"):match("^%d+ (%d+)")
  f:close()
  return tonumber(pages) * 4096
end

-- spec/transport/luv/tiny_chunks_server.lua in the background: { url =, stop = }.
function M.start_server(bytes)
  local helpers = require("spec.support.helpers")
  local pipe = assert(io.popen(helpers.lua .. " " .. helpers.shell_quote(helpers.root
    .. "/spec/transport/luv/tiny_chunks_server.lua") .. " " .. bytes .. " </dev/null &", "r"))
  local line = pipe:read("*l") or ""
  local url, pid = line:match("^tiny chunks server on (http://%S+) pid (%d+)$")
  if not url then
    pipe:close()
    error("spec/transport/luv/tiny_chunks_server.lua did not start: " .. line)
  end
  return { url = url, stop = function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
  end }
end

-- Wrap braze.transport.sockets' drivers so the time of every call into
-- the batch (libcurl's work and the decoding) is recorded in `work`
-- ({ longest =, calls = } in ms); returns the function that unwraps.
function M.time_drivers(hrtime, work)
  local sockets = require("braze.transport.sockets")
  local make = sockets.driver
  sockets.driver = function(...)
    local d = make(...)
    local b = d.b
    local function timed(_, ...)
      local t0 = hrtime()
      local outs = b:action(...)
      local ms = (hrtime() - t0) / 1e6
      work.calls = work.calls + 1
      if ms > work.longest then work.longest = ms end
      return outs
    end
    d.b = { action = timed, updates = function() return b:updates() end,
      submit = function(_, ...) return b:submit(...) end, close = function() return b:close() end }
    return d
  end
  return function() sockets.driver = make end
end

return M
