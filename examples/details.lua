-- Show one segment's details: `lua5.4 examples/details.lua [SEGMENT_ID]`
-- (without an id, the first segment of the first page).
--
-- Run from the repository root (after `cmake -S . -B build && cmake --build build`):
--   BRAZE_API_KEY=... BRAZE_REST_ENDPOINT=US-01 \
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/details.lua
local braze = require("braze")

local client = braze.new({})

local function fail(err)
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local id = arg[1]
if not id then
  local page, err = client:list({ page = 0 })
  if not page then fail(err) end
  if not page.segments or #page.segments == 0 then fail("no segments in this workspace") end
  id = page.segments[1].id
end

local d, err = client:details(id)
if not d then fail(err) end

local function show(v)
  if v == nil then return "(absent)" end
  if v == braze.null then return "(null)" end -- JSON null decodes to braze.null
  if type(v) == "table" then return table.concat(v, ", ") end
  return tostring(v)
end

print("segment          " .. id)
for _, field in ipairs({ "name", "description", "text_description", "tags", "teams",
  "created_at", "updated_at" }) do
  print(("%-16s %s"):format(field, show(d[field])))
end
client:close()
