-- Export every segment with its details to CSV (RFC 4180):
--   lua5.4 examples/export_csv.lua [FILE]      (default: stdout)
-- The braze-segments command does this and more (`braze-segments export
-- --format csv --details`); this shows the library calls behind it.
--
-- Run from the repository root (after `cmake -S . -B build && cmake --build build`):
--   BRAZE_API_KEY=... BRAZE_REST_ENDPOINT=US-01 \
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/export_csv.lua out.csv
local braze = require("braze")

-- Ctrl-C stops a waiting or running call at once (its error has kind
-- "interrupted"), instead of waiting for the request's timeout.
assert(braze.catch_interrupt())
local client = braze.new({})
local out = io.stdout
if arg[1] then out = assert(io.open(arg[1], "wb")) end

-- Quote a field when it holds a comma, a quote or a line break; double quotes.
-- Text that a spreadsheet would run as a formula (=, +, -, @, tab, CR first:
-- segment names are anyone's input) gets a leading ' so it stays text.
local function field(v)
  if v == nil or v == braze.null then return "" end
  if type(v) == "table" then v = table.concat(v, ";") end
  local s = tostring(v)
  if type(v) == "string" and s:find("^'*[=+%-@\t\r]") then s = "'" .. s end
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local function row(values, n)
  local parts = {}
  for i = 1, n do parts[i] = field(values[i]) end
  out:write(table.concat(parts, ","), "\r\n")
end

local columns = { "id", "name", "analytics_tracking_enabled", "tags", "description",
  "created_at", "updated_at" }
row(columns, #columns)

local count = 0
local ok, err = pcall(function()
  for seg in client:each() do
    local d, derr = client:details(seg.id)
    if not d then error(derr, 0) end
    row({ seg.id, seg.name, seg.analytics_tracking_enabled, seg.tags, d.description,
      d.created_at, d.updated_at }, #columns)
    out:flush() -- what is written survives a failure later on
    count = count + 1
  end
end)
client:close()
if out ~= io.stdout then out:close() end
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(type(err) == "table" and err.kind == "interrupted" and 130 or 1)
end
io.stderr:write(("exported %d segments\n"):format(count))
