--- bench/docs.lua: the documents the benchmarks decode and serve, taken from
-- the mock's own routes (so they are byte for byte what braze-mock answers).
--
--   local docs = require("docs")   -- with bench/ on LUA_PATH
--   docs.list()          -> a 100-segment /segments/list page (page 0, asc)
--   docs.series()        -> a 100-point /segments/data_series body (segment 1)
--   lua5.4 bench/docs.lua list > file   -- write one to a file
local mock = require("braze_mock")

local M = {}

local server -- a mock that never listens: only its route handlers are used
local function body(path, query)
  if not server then server = assert(mock.new({ segments = 1000 })) end
  local resp = server:normal_response({
    method = "GET", path = path, query = query,
    headers = { authorization = "Bearer " .. server.api_key },
  })
  assert(resp.status == 200, path .. ": status " .. tostring(resp.status))
  return resp.body
end

function M.list()
  return body("/segments/list", { page = "0", sort_direction = "asc" })
end

function M.series()
  -- A fixed ending_at keeps the bytes identical from run to run.
  return body("/segments/data_series", {
    segment_id = mock.segment_id(1), length = "100", ending_at = "2024-06-30",
  })
end

function M.details(i)
  return body("/segments/details", { segment_id = mock.segment_id(i or 1) })
end

if arg and arg[0] and arg[0]:match("docs%.lua$") then
  local which = arg[1] or "list"
  local f = assert(M[which], "usage: docs.lua list|series|details")
  io.write(f())
end

return M
