-- List every segment, all pages, with client:each().
--
-- Run from the repository root (after `cmake -S . -B build && cmake --build build`):
--   BRAZE_API_KEY=... BRAZE_REST_ENDPOINT=US-01 \
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/list_all.lua
-- Against the mock: `lua5.4 bin/braze-mock --port 0` prints the URL to use as
-- BRAZE_REST_ENDPOINT; its key is braze-mock-key. examples/smoke.sh runs them all.
local braze = require("braze")

-- api_key and endpoint default to BRAZE_API_KEY and BRAZE_REST_ENDPOINT.
local client = braze.new({ timeout = 10 })

local count, pages, last_page, tracked = 0, 0, nil, 0
-- each() fetches a page only when the previous one is used up, and raises
-- the error object if a request fails (after its retries): a loop that ends
-- has seen every segment.
local ok, err = pcall(function()
  for segment, page in client:each({ sort_direction = "asc" }) do
    if page ~= last_page then
      pages, last_page = pages + 1, page
      print(("-- page %d"):format(page))
    end
    count = count + 1
    if segment.analytics_tracking_enabled then tracked = tracked + 1 end
    if count <= 5 or count % 50 == 0 then
      -- %q keeps names with newlines or quotes on one line.
      print(("%4d  %s  %q"):format(count, segment.id, segment.name))
    end
  end
end)
client:close()
if not ok then
  io.stderr:write(tostring(err), "\n") -- the key is already redacted
  os.exit(1)
end
print(("%d segments on %d page(s), %d with analytics tracking"):format(count, pages, tracked))
