--- Lua loaded by spec/transport/haproxy/haproxy.cfg.in (lua-load): a service, an
-- action and a task that call the mock through braze.transport.haproxy.
-- The spec calls the service over HTTP and checks its JSON.
--
-- The service `braze` dispatches on the path:
--   /list, /details?segment_id=, /each, /details_many?n=&concurrency=,
--   /task (what the task registered at load time got), /pool (worker stats),
--   /conformance?endpoint=&opts=<JSON>&segment_id= (client:details(id) with a
--   client of exactly these options: spec/support/conformance.lua).
-- Query parameters: mock=fast|slow|tls|badtls|refused (with port=)|unresolvable
-- |trickle (with mode=, spec/support/trickle_server.lua's misbehaviour): which server;
-- fresh=1 (a new client), max_retries, timeout, max_body. Answers
-- {"ok":true,"result":...} or {"ok":false,"error":{...},"text":tostring(err)}.
local braze = require("braze")
local transport = require("braze.transport.haproxy")
local cjson = require("cjson")

local API_KEY = os.getenv("BRAZE_SPEC_API_KEY")
local URLS = {
  fast = os.getenv("BRAZE_SPEC_FAST_URL"),
  slow = os.getenv("BRAZE_SPEC_SLOW_URL"),
  tls = os.getenv("BRAZE_SPEC_TLS_URL"),
  badtls = os.getenv("BRAZE_SPEC_BADTLS_URL"),
  trickle = os.getenv("BRAZE_SPEC_TRICKLE_URL"),
}

local function parse_query(qs)
  local t = {}
  for k, v in (qs or ""):gmatch("([^&=]+)=([^&]*)") do
    t[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return t
end

local clients = {}

local function client(q)
  local opts = {
    endpoint = q.mock == "refused" and ("http://127.0.0.1:" .. tostring(q.port))
      or q.mock == "unresolvable" and "http://braze-spec.invalid:8080" -- RFC 6761: never resolves
      or q.mock == "trickle" and (URLS.trickle .. "/" .. tostring(q.mode))
      or URLS[q.mock or "fast"],
    allow_http = q.mock == "unresolvable" or nil,
    api_key = API_KEY,
    transport = transport,
    max_retries = tonumber(q.max_retries) or 0,
    retry_base = 0.05,
    timeout = tonumber(q.timeout),
    max_body = tonumber(q.max_body),
  }
  if q.fresh == "1" then return braze.new(opts) end
  local key = table.concat({ opts.endpoint, tostring(opts.max_retries), tostring(opts.timeout),
    tostring(opts.max_body) }, "|")
  clients[key] = clients[key] or braze.new(opts)
  return clients[key]
end

local function error_fields(err)
  if type(err) ~= "table" then return { kind = "lua", message = tostring(err) } end
  local f = {}
  for _, k in ipairs({ "kind", "status", "message", "errors", "request_id", "endpoint",
    "attempts", "retry_after", "position" }) do
    f[k] = err[k]
  end
  return f
end

local function answer(res, err)
  if res then return { ok = true, result = res } end
  return { ok = false, error = error_fields(err), text = tostring(err) }
end

local routes = {}

function routes.list(q)
  return answer(client(q):list({ page = tonumber(q.page) }))
end

function routes.details(q)
  return answer(client(q):details(q.segment_id))
end

function routes.each(q)
  local count, first, pages = 0, nil, {}
  local ok, err = pcall(function()
    for segment, page in client(q):each() do
      count = count + 1
      first = first or segment.id
      pages[page + 1] = true
    end
  end)
  if not ok then return answer(nil, err) end
  return answer({ count = count, first = first, pages = #pages })
end

function routes.details_many(q)
  local ids = {}
  for i = 1, tonumber(q.n) or 8 do ids[i] = "x" .. i end
  local res, errs = client(q):details_many(ids, { concurrency = tonumber(q.concurrency) })
  local kinds = {}
  for i = 1, #ids do kinds[i] = res[i] and "ok" or errs[i].kind end
  return answer({ kinds = kinds })
end

-- A task started at load time: one list call, its outcome kept for /task.
local task_outcome = { state = "pending" }
core.register_task(function()
  local res, err = client({}):list()
  task_outcome = res and { state = "done", count = #res.segments }
    or { state = "failed", error = error_fields(err) }
end)

--- /pool[?linger=S]: the transport's worker pool (after setting
--- worker_linger when given).
function routes.pool(q)
  if q.linger then transport.worker_linger = tonumber(q.linger) end
  return answer(transport.stats())
end

function routes.conformance(q)
  local opts = cjson.decode(q.opts)
  opts.endpoint, opts.transport = q.endpoint, transport
  local c = braze.new(opts)
  local res, err = c:details(q.segment_id)
  c:close()
  return answer(res, err)
end

--- /bench?n=N&how=bare|transport|msleep: N sequential list calls to the
--- fast mock, by bare core.httpclient or by lua-braze with this transport
--- (or N core.msleep(1)); answers the seconds they took
--- (bench/haproxy_sequential.lua compares them).
function routes.bench(q)
  local n, url = tonumber(q.n) or 100, URLS.fast .. "/segments/list?page=0"
  local headers = { ["Authorization"] = { "Bearer " .. API_KEY }, ["Accept"] = { "application/json" } }
  local c = client({})
  local t0 = core.now()
  for _ = 1, n do
    if q.how == "msleep" then
      core.msleep(1)
    elseif q.how == "bare" then
      local res = core.httpclient():get{ url = url, headers = headers }
      assert(res.status == 200, "bare call: " .. tostring(res.status))
    else
      assert(c:list())
    end
  end
  local t1 = core.now()
  return answer({ seconds = (t1.sec - t0.sec) + (t1.usec - t0.usec) / 1e6, n = n })
end

function routes.task()
  return answer(task_outcome)
end

core.register_service("braze", "http", function(applet)
  local route = routes[(applet.path or ""):match("^/([%w_]+)$") or ""]
  local status, doc = 200
  if not route then
    status, doc = 404, { ok = false, error = { kind = "lua", message = "no route " .. tostring(applet.path) } }
  else
    local ok, res = pcall(route, parse_query(applet.qs))
    doc = ok and res or { ok = false, error = { kind = "lua", message = tostring(res) } }
  end
  local body = cjson.encode(doc)
  applet:set_status(status)
  applet:add_header("content-type", "application/json")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)

-- An action: counts the first page's segments into txn.braze_count.
core.register_action("braze_count", { "http-req" }, function(txn)
  local res, err = client({ mock = "slow" }):list()
  txn:set_var("txn.braze_count", res and tostring(#res.segments) or ("error " .. tostring(err.kind)))
end)
