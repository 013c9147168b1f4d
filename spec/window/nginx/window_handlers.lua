-- luacheck: globals ngx
-- Content handlers for spec/window/shdict_spec.lua, in a real nginx with
-- several workers (spec/support/nginx_workers.lua). Each answers JSON. The
-- store is `store=shdict` (ngx.shared.braze, default) or `store=redis`
-- (braze.window.redis through lua-resty-redis on 127.0.0.1:`redis_port`).
--   /merge?ws=&limit=&remaining=&reset=   store:merge
--   /state?ws=                            store:state
--   /grab?ws=&want=&reserve=&now=         wait for /go, then acquire `want` at
--                                         a time (never releasing) until 20
--                                         grants of 0 in a row: {granted, pid}
--   /go  /stop                            start the grabs / clear the flag
--   /hold?ws=&n=&ttl=                     acquire n for ttl s: {held, pid}
--   /failing?port=                        a redis store on a dead port: 20
--                                         acquires, {results, reports, log}
--   /paced?n=&concurrency=&reserve=&first= a client made for this request only
--                                         (`window = ` the store; store=none:
--                                         none) runs details_many of n ids (the
--                                         ids file's, from `first`) against the
--                                         mock at $braze_endpoint<mock=>: {ok, kinds,
--                                         statuses, lowest} (what the answers
--                                         said of the rate limit); sequential=1:
--                                         client:details one id at a time
--   /eachsleep?sleep=1                    the pipelined each, its loop body
--                                         sleeping 1 ms: {count, err}
local cjson = require("cjson")
local shdict_store = require("braze.window.shdict")
local redis_store = require("braze.window.redis")

local M = {}

local stores = {}

local function args() return ngx.req.get_uri_args() end

local function store(a)
  local kind = a.store or "shdict"
  local key = kind .. (a.redis_port or "")
  local s = stores[key]
  if not s then
    if kind == "noop" then -- the seam's own cost: a store that knows nothing
      local empty = function() return {} end
      s = { id = "noop", state = empty, merge = empty, hold = empty, release = function() return true end,
        settle = empty, acquire = function(_, _, want) return want, false, {} end }
    elseif kind == "redis" then
      s = redis_store.new{ port = tonumber(a.redis_port), timeout = 2 }
    else
      s = shdict_store.new("braze")
    end
    stores[key] = s
  end
  return s
end

local function reply(t)
  ngx.say(cjson.encode(t))
end

local function plain(s)
  if not s then return cjson.null end
  return { limit = s.limit, remaining = s.remaining, reset = s.reset, offset = s.offset,
    hold_until = s.hold_until, inflight = s.inflight }
end

function M.merge()
  local a = args()
  local s, err = store(a):merge(a.ws, tonumber(a.limit), tonumber(a.remaining), tonumber(a.reset),
    tonumber(a.offset))
  reply({ state = plain(s), err = err })
end

function M.state()
  local a = args()
  local s, err = store(a):state(a.ws)
  reply({ state = plain(s), err = err, paced_pid = ngx.shared.spec:get("paced_pid") })
end

function M.go() ngx.shared.spec:set("go", true); reply({}) end
function M.stop() ngx.shared.spec:delete("go"); reply({}) end

function M.grab()
  local a = args()
  local st = store(a)
  local want, reserve, now = tonumber(a.want), tonumber(a.reserve), tonumber(a.now)
  local waited = 0
  while not ngx.shared.spec:get("go") and waited < 5 do
    ngx.sleep(0.005)
    waited = waited + 0.005
  end
  local total, zeros = 0, 0
  while zeros < 20 do
    local g, err = st:acquire(a.ws, want, reserve, 60, now, 1)
    if not g then return reply({ err = err }) end
    if g == 0 then zeros = zeros + 1 else total, zeros = total + g, 0 end
    ngx.sleep(0) -- let the other requests of this worker run
  end
  reply({ granted = total, pid = ngx.worker.pid() })
end

function M.hold()
  local a = args()
  local g, _, s = store(a):acquire(a.ws, tonumber(a.n), 0, tonumber(a.ttl), ngx.time(), tonumber(a.n))
  reply({ held = g, pid = ngx.worker.pid(), state = plain(type(s) == "table" and s or nil) })
end

function M.failing()
  local a = args()
  local reports = {}
  local s = redis_store.new{ port = tonumber(a.port), retry_after = 60,
    on_error = a.hook and function(err) reports[#reports + 1] = err end or nil }
  local results = {}
  for i = 1, 20 do
    local g, err = s:acquire("ws", 1, 0, 10, ngx.time())
    results[i] = g == nil and ("nil: " .. tostring(err)) or tostring(g)
  end
  reply({ results = results, reports = reports, errors = s.errors })
end

local ids
function M.paced()
  local a = args()
  local braze = require("braze")
  local recording = require("recording_transport")
  if not ids then
    ids = {}
    for line in io.lines(ngx.var.braze_ids_file) do ids[#ids + 1] = line end
  end
  local first, n = tonumber(a.first) or 1, tonumber(a.n) or 100
  local mine = {}
  for i = 0, n - 1 do mine[#mine + 1] = ids[(first + i - 1) % #ids + 1] end
  ngx.shared.spec:set("paced_pid", ngx.worker.pid())
  local rec = recording.new(require("braze.transport.ngx"))
  local opts = {
    endpoint = ngx.var["braze_endpoint" .. (a.mock or "")], api_key = ngx.var.braze_api_key,
    transport = rec, sleep = ngx.sleep, reserve = tonumber(a.reserve) or 0,
    max_retries = 5, retry_base = 0.05, allow_http = true,
  }
  local st = (a.store or "shdict") ~= "none" and store(a) or nil
  opts.window = st
  local client = braze.new(opts)
  local res, errs
  if a.sequential then -- one call after the other: no light threads
    res, errs = {}, {}
    for i, id in ipairs(mine) do res[i], errs[i] = client:details(id) end
  else
    res, errs = client:details_many(mine, { concurrency = tonumber(a.concurrency) or 16 })
  end
  client:close()
  local ok, kinds, messages = 0, {}, {}
  for i = 1, #mine do
    if res[i] then ok = ok + 1 else
      local k = errs[i] and errs[i].kind or "none"
      kinds[k] = (kinds[k] or 0) + 1
      messages[k] = errs[i] and errs[i].message
    end
  end
  local statuses, lowest = {}, {}
  for k, v in pairs(rec.statuses) do statuses[tostring(k)] = v end
  for k, v in pairs(rec.lowest) do lowest[tostring(k)] = v end
  reply({ ok = ok, kinds = kinds, messages = messages, statuses = statuses, lowest = lowest,
    pid = ngx.worker.pid(), store_errors = st and st.errors, last_error = st and st.last_error })
end

--- /opcost?n=: seconds per acquire(1) + settle pair, over n pairs (a
--- benchmark of the store alone, for bench/README.md).
function M.opcost()
  local a = args()
  local st, n = store(a), tonumber(a.n) or 10000
  local ws = "bench#" .. (a.store or "shdict")
  st:merge(ws, 1e9, 1e9, ngx.time() + 3600)
  ngx.update_time()
  local t0 = ngx.now()
  for _ = 1, n do
    local _, id = st:acquire(ws, 1, 0, 30, ngx.time(), 1)
    st:settle(ws, id, 1, 1e9, 1e9, ngx.time() + 3600)
  end
  ngx.update_time()
  reply({ per_pair = (ngx.now() - t0) / n })
end

--- /eachsleep: the pipelined each with details, the loop body sleeping 1 ms
--- (any yield of the request while the batch's light threads run).
function M.eachsleep()
  local braze = require("braze")
  local client = braze.new{ endpoint = ngx.var.braze_endpoint, api_key = ngx.var.braze_api_key,
    transport = require("braze.transport.ngx"), sleep = ngx.sleep, max_retries = 0 }
  local count, err = 0, nil
  local ok, e = pcall(function()
    for _ in client:each{ details = true, concurrency = 8 } do
      count = count + 1
      if args().sleep then ngx.sleep(0.001) end
    end
  end)
  if not ok then err = tostring(e) end
  reply({ count = count, err = err })
end

-- A per-request client of the mock at $braze_endpoint (store=shdict|none).
local function bench_client(a)
  local braze = require("braze")
  return braze.new{ endpoint = ngx.var.braze_endpoint, api_key = ngx.var.braze_api_key,
    transport = require("braze.transport.ngx"), sleep = ngx.sleep, max_retries = 0,
    window = (a.store or "shdict") ~= "none" and store(a) or nil }
end

--- /seqlist?n=&store=: seconds for n sequential client:list{} of one
--- per-request client (bench/README.md: what the shared dict adds).
function M.seqlist()
  local a = args()
  local client = bench_client(a)
  ngx.update_time()
  local t0 = ngx.now()
  for _ = 1, tonumber(a.n) or 1000 do assert(client:list{}) end
  ngx.update_time()
  client:close()
  reply({ seconds = ngx.now() - t0 })
end

--- /many?n=160&store=: seconds for a per-request client's details_many of
--- n ids at 16 (a fresh client each time: with a store it finds the window).
function M.many()
  local a = args()
  if not ids then
    ids = {}
    for line in io.lines(ngx.var.braze_ids_file) do ids[#ids + 1] = line end
  end
  local mine = {}
  for i = 1, tonumber(a.n) or 160 do mine[i] = ids[(i - 1) % #ids + 1] end
  ngx.update_time()
  local t0 = ngx.now()
  local client = bench_client(a)
  local res, errs = client:details_many(mine, { concurrency = 16 })
  ngx.update_time()
  local took = ngx.now() - t0
  client:close()
  for i = 1, #mine do if not res[i] then error(tostring(errs[i])) end end
  reply({ seconds = took })
end

-- One GET over a cosocket from the keep-alive pool, the body read by
-- Content-Length and decoded: a minimal client, for comparison.
local function raw_get(host, port, target, key)
  local sock = ngx.socket.tcp()
  sock:settimeout(10000)
  assert(sock:connect(host, port))
  assert(sock:send("GET " .. target .. " HTTP/1.1\r\nHost: " .. host .. "\r\nAuthorization: Bearer "
    .. key .. "\r\n\r\n"))
  local status = assert(sock:receive("*l"))
  local length
  while true do
    local line = assert(sock:receive("*l"))
    if line == "" then break end
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  local body = assert(sock:receive(length))
  sock:setkeepalive(60000, 32)
  assert(status:find(" 200 ", 1, true), status)
  return cjson.decode(body)
end

--- /raw?n=160: seconds for n details GETs by 16 light threads of raw_get.
function M.raw()
  local a = args()
  local n = tonumber(a.n) or 160
  local host, port = ngx.var.braze_endpoint:match("^http://([^:/]+):(%d+)")
  port = tonumber(port)
  local key = ngx.var.braze_api_key
  local mine = {}
  for i = 1, n do mine[i] = ids and ids[(i - 1) % #ids + 1] or "x" end
  ngx.update_time()
  local t0 = ngx.now()
  local next_i = 0
  local function worker()
    while next_i < n do
      next_i = next_i + 1
      raw_get(host, port, "/segments/details?segment_id=" .. mine[next_i], key)
    end
  end
  local threads = {}
  for i = 1, 16 do threads[i] = ngx.thread.spawn(worker) end
  for i = 1, 16 do assert(ngx.thread.wait(threads[i])) end
  ngx.update_time()
  reply({ seconds = ngx.now() - t0 })
end

--- /seamcost?n=: seconds per request of the seam alone (grant, landed,
--- an answer's update) on a window attached to the shdict store.
function M.seamcost()
  local a = args()
  local window = require("braze.window")
  local win = window.of("http://seam.invalid", "seam-key", store(a))
  local n = tonumber(a.n) or 10000
  local headers = { ["x-ratelimit-limit"] = "1000000000", ["x-ratelimit-remaining"] = "999999999",
    ["x-ratelimit-reset"] = tostring(ngx.time() + 3000) }
  ngx.update_time()
  local t0 = ngx.now()
  for _ = 1, n do
    win:grant(1, 0, true, ngx.sleep)
    win.inflight = win.inflight + 1
    win:landed(1)
    win:update(headers)
  end
  ngx.update_time()
  reply({ per_request = (ngx.now() - t0) / n })
end

function M.dispatch()
  local name = ngx.var.uri:match("^/(%w+)$")
  local fn = name and M[name]
  if not fn or name == "dispatch" then ngx.status = 404; return reply({ err = "no handler" }) end
  fn()
end

return M
