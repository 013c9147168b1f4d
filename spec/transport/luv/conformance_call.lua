--- One call of the transport conformance suite inside Neovim, for
-- spec/transport/conformance_neovim_spec.lua:
--
--   BRAZE_CONF_OPTS='<braze.new options as JSON>' BRAZE_CONF_ID=<segment id> \
--   BRAZE_CONF_OUT=/tmp/result nvim --headless -u NONE --cmd 'set rtp+=.' \
--     -c 'luafile spec/transport/luv/conformance_call.lua' -c 'qa!'
--
-- Runs client:details(id) through braze.transport.luv in a coroutine on
-- Neovim's loop and writes JSON to $BRAZE_CONF_OUT: { ok = true, body = }
-- or { ok = false, error = { kind =, status =, ... }, text = tostring(err) }.
-- lua-braze and braze.core are found through runtimepath only.
-- luacheck: globals vim
local out_path = assert(os.getenv("BRAZE_CONF_OUT"), "set BRAZE_CONF_OUT")
local FIELDS = { "kind", "status", "attempts", "message", "position", "retry_after", "endpoint" }

local function write(doc)
  local f = assert(io.open(out_path, "w"))
  f:write(vim.json.encode(doc))
  f:close()
end

local result
local ok, err = pcall(function()
  local braze = require("braze")
  local opts = vim.json.decode(assert(os.getenv("BRAZE_CONF_OPTS")))
  opts.transport = require("braze.transport.luv")
  local client = braze.new(opts)
  coroutine.wrap(function()
    local called, res, cerr = pcall(client.details, client, assert(os.getenv("BRAZE_CONF_ID")))
    client:close()
    if not called then
      result = { ok = false, error = { kind = "lua", message = tostring(res) }, text = tostring(res) }
    elseif res ~= nil then
      result = { ok = true, body = res }
    else
      local e = {}
      for _, k in ipairs(FIELDS) do e[k] = cerr[k] end
      result = { ok = false, error = e, text = tostring(cerr) }
    end
  end)()
  vim.wait(30000, function() return result ~= nil end, 5)
end)
if not ok then result = { ok = false, error = { kind = "lua", message = tostring(err) }, text = tostring(err) } end
write(result or { ok = false, error = { kind = "lua", message = "no result within 30 s" } })
