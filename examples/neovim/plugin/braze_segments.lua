-- luacheck: globals vim
-- :BrazeSegments lists every Braze segment in a scratch buffer, page by
-- page as they arrive, while the editor keeps working (lua/braze_segments.lua).
vim.api.nvim_create_user_command("BrazeSegments", function()
  require("braze_segments").open()
end, { desc = "List Braze segments (BRAZE_API_KEY, BRAZE_REST_ENDPOINT)" })
