--- bench/request.lua: sequential GETs of the list page, one client per process.
--
--   lua5.4 bench/request.lua braze  BASE_URL N [WARMUP [SEGMENTS]]
--       client:list{} over the client's one keep-alive connection
--   lua5.4 bench/request.lua session BASE_URL N [WARMUP [SEGMENTS]]
--       braze.core's session:get alone (the C core: the transfer and the
--       decoding into Lua tables, without the Lua front): a diagnostic
--   lua5.4 bench/request.lua socket BASE_URL N [WARMUP [SEGMENTS]]
--       socket.http.request + cjson.decode (LuaSocket's http opens a
--       connection per request: it has no keep-alive)
--   lua5.4 bench/request.lua front BASE_URL N [WARMUP [SEGMENTS]]
--       client:list{} over a transport that answers one canned response
--       (the page fetched once from BASE_URL, decoded): no network, so the
--       rate is the Lua front's own (checks, query, scheduler, window,
--       retry, shape); 1e6 / RATE is its cost per call in microseconds
-- SEGMENTS (default 100) is how many segments the page must have.
-- Prints: RATE <requests/s> segments=<n>
local mode, base, n, warmup = arg[1], arg[2], tonumber(arg[3] or "1000"), tonumber(arg[4] or "")
local expect = tonumber(arg[5] or "100")
assert(base and n, "usage: request.lua braze|session|socket|front BASE_URL N [WARMUP [SEGMENTS]]")
warmup = warmup or (n // 10 + 1)
local now = require("braze.core").monotonic

local get
if mode == "braze" then
  local braze = require("braze")
  local client = braze.new({ api_key = "bench-key", endpoint = base, max_retries = 0 })
  get = function()
    local page, err = client:list({})
    if not page then error(tostring(err)) end
    return page
  end
elseif mode == "front" then
  local braze = require("braze")
  local session = require("braze.core").session({ api_key = "bench-key" })
  local canned = assert(session:get(base .. "/segments/list"))
  session:close()
  local conn = { get = function() return canned end, close = function() end }
  local client = braze.new({ api_key = "bench-key", endpoint = base, max_retries = 0,
    transport = { new = function() return conn end } })
  get = function()
    local page, err = client:list({})
    if not page then error(tostring(err)) end
    return page
  end
elseif mode == "session" then
  local session = require("braze.core").session({ api_key = "bench-key" })
  local url = base .. "/segments/list"
  get = function()
    local res, kind, msg = session:get(url)
    if not res or res.status ~= 200 then error(tostring(res and res.status or msg or kind)) end
    return res.body
  end
elseif mode == "socket" then
  local http = require("socket.http")
  local ltn12 = require("ltn12")
  local cjson = require("cjson")
  local url = base .. "/segments/list"
  local headers = { authorization = "Bearer bench-key", accept = "application/json" }
  get = function()
    local chunks = {}
    local ok, status = http.request({ url = url, headers = headers, sink = ltn12.sink.table(chunks) })
    if not ok or status ~= 200 then error("socket.http: " .. tostring(status)) end
    return cjson.decode(table.concat(chunks))
  end
else
  error("mode must be braze, session, socket or front")
end

local page
for _ = 1, warmup do page = get() end
assert(#page.segments == expect, "expected a page of " .. expect .. " segments")
local t0 = now()
for _ = 1, n do page = get() end
local t = now() - t0
print(string.format("RATE %.1f segments=%d", n / t, #page.segments))
