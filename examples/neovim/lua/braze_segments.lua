--- A small Neovim plugin on lua-braze: `:BrazeSegments` opens a scratch
-- buffer and fills it with every segment (id, name), a page at a time,
-- without freezing the editor: the calls go through braze.transport.luv,
-- so each one yields to Neovim's loop until its answer is in.
--
-- Install: add lua-braze's checkout (after `bash scripts/build.sh
-- build-luajit -DBRAZE_LUA=luajit -DBRAZE_RUNTIMEPATH=ON`, which also puts
-- core.so at lua/braze/core.so) and this directory to 'runtimepath', e.g. in
-- init.lua:
--
--   vim.opt.runtimepath:append("~/src/lua-braze")
--   vim.opt.runtimepath:append("~/src/lua-braze/examples/neovim")
--
-- The key and the instance come from $BRAZE_API_KEY and $BRAZE_REST_ENDPOINT
-- (e.g. US-01), or from require("braze_segments").setup{ api_key =, endpoint = }.
-- luacheck: globals vim
local braze = require("braze")

local M = { options = {}, running = 0 }

--- Options for braze.new (api_key, endpoint, timeout...); the transport is always luv.
function M.setup(opts)
  M.options = opts or {}
end

local function client()
  local opts = { timeout = 15, max_retries = 2 }
  for k, v in pairs(M.options) do opts[k] = v end
  opts.api_key = opts.api_key or os.getenv("BRAZE_API_KEY")
  opts.endpoint = opts.endpoint or os.getenv("BRAZE_REST_ENDPOINT")
  opts.transport = require("braze.transport.luv")
  return braze.new(opts)
end

--- Open the buffer and start filling it. `on_done(count, err)` runs at the end.
function M.open(on_done)
  local ok, c = pcall(client)
  if not ok then
    vim.notify("BrazeSegments: " .. tostring(c), vim.log.levels.ERROR)
    if on_done then on_done(nil, c) end
    return
  end
  vim.cmd("enew")
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype, vim.bo[buf].bufhidden, vim.bo[buf].swapfile = "nofile", "wipe", false
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "Braze segments: loading..." })
  M.running = M.running + 1
  coroutine.wrap(function()
    local count, batch = 0, {}
    -- Runs in a coroutine: every call yields to the loop while it waits, and
    -- resumes outside the fast event, so the whole API is usable here.
    local done, err = pcall(function()
      for segment in c:each() do
        count = count + 1
        batch[#batch + 1] = segment.id .. "  " .. tostring(segment.name):gsub("%c", "?") -- a line each
        if #batch == 100 and vim.api.nvim_buf_is_valid(buf) then
          vim.api.nvim_buf_set_lines(buf, -1, -1, false, batch)
          batch = {}
        end
      end
    end)
    c:close()
    if vim.api.nvim_buf_is_valid(buf) then
      vim.api.nvim_buf_set_lines(buf, -1, -1, false, batch)
      vim.api.nvim_buf_set_lines(buf, 0, 1, false, { done and ("Braze segments: " .. count)
        or ("Braze segments: failed after " .. count .. ": " .. tostring(err):gsub("%c", " ")) })
    end
    M.running = M.running - 1
    if on_done then on_done(done and count or nil, not done and err or nil) end
  end)()
end

return M
