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
    if kind == "redis" then
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
  reply({ state = plain(s), err = err })
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

function M.dispatch()
  local name = ngx.var.uri:match("^/(%w+)$")
  local fn = name and M[name]
  if not fn or name == "dispatch" then ngx.status = 404; return reply({ err = "no handler" }) end
  fn()
end

return M
