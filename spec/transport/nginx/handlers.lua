-- Content handlers for spec/transport/nginx_spec.lua: each calls lua-braze through the
-- cosocket transport and answers JSON, so the spec can check from outside
-- what a real nginx worker got.
--
--   /list?page=N          client:list{page=N}
--   /details?segment_id=  client:details(id)
--   /series?segment_id=&length=N
--   /each?max_pages=N     iterates client:each(), answers counts and ids
--   /batch?n=&sleep=&close=  the transport's batch alone (see M.batch)
--   /batchmem?n=          its memory over 2 x n calls (see M.batchmem)
--   /conformance?endpoint=&opts=<JSON>&segment_id=
--                         client:details(id) with a client made of exactly
--                         these options (spec/support/conformance.lua)
--
-- Every handler takes, as query arguments: mock=fast|slow|tls|badtls|trickle
-- (which endpoint, set as nginx variables by the config), mode= (a path
-- prefix added to the endpoint: spec/support/trickle_server.lua's misbehaviour),
-- max_retries, timeout, max_body, max_depth, and fresh=1 for a client made
-- for this request only (otherwise clients are cached per worker and shared
-- by concurrent requests).
--
-- Answers: 200 {"ok":true,"result":...} or 200 {"ok":false,"error":{fields of
-- the braze.Error},"text":tostring(err)}.
local braze = require("braze")
local ngx_transport = require("braze.transport.ngx")
local cjson = require("cjson")

local M = {}

local clients = {} -- per worker: "endpoint|retries|timeout|max_body|max_depth" -> client

-- A query argument, percent-decoded (the last one when repeated).
local function arg(name)
  local v = ngx.req.get_uri_args()[name]
  if type(v) == "table" then v = v[#v] end
  if type(v) ~= "string" then return nil end
  return v
end

local function number_arg(name)
  local v = arg(name)
  return v and tonumber(v) or nil
end

local function client()
  local mock = arg("mock") or "fast"
  local endpoint = ngx.var["braze_" .. mock .. "_endpoint"]
  if not endpoint or endpoint == "" then error("no endpoint for mock=" .. mock) end
  local mode = arg("mode")
  if mode then endpoint = endpoint .. "/" .. mode end
  local opts = {
    endpoint = endpoint,
    api_key = ngx.var.braze_api_key,
    transport = ngx_transport,
    sleep = ngx.sleep,
    max_retries = number_arg("max_retries") or 0,
    retry_base = 0.05,
    timeout = number_arg("timeout"),
    max_body = number_arg("max_body"),
    max_depth = number_arg("max_depth"),
  }
  if arg("fresh") == "1" then return braze.new(opts) end
  local key = table.concat({ endpoint, tostring(opts.max_retries), tostring(opts.timeout),
    tostring(opts.max_body), tostring(opts.max_depth) }, "|")
  local c = clients[key]
  if not c then
    c = braze.new(opts)
    clients[key] = c
  end
  return c
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

-- The braze.Error as a plain table (cjson ignores metatables anyway).
local function error_fields(err)
  if type(err) ~= "table" then return { kind = "lua", message = tostring(err) } end
  local f = {}
  for _, k in ipairs({ "kind", "status", "message", "errors", "request_id", "endpoint",
    "attempts", "retry_after", "position", "rate_limit" }) do
    f[k] = err[k]
  end
  return f
end

local function answer(res, err)
  if res then
    reply({ ok = true, result = res })
  else
    reply({ ok = false, error = error_fields(err), text = tostring(err) })
  end
end

function M.list()
  local page = number_arg("page")
  answer(client():list({ page = page }))
end

function M.details()
  answer(client():details(arg("segment_id")))
end

function M.series()
  answer(client():data_series({
    segment_id = arg("segment_id"),
    length = number_arg("length") or 7,
    ending_at = arg("ending_at"),
  }))
end

--- /details_many?n=N&concurrency=C: N unknown ids (the mock answers 400
--- to each after its latency); answers how many came back, and their kinds.
function M.details_many()
  local ids = {}
  for i = 1, number_arg("n") or 8 do ids[i] = "x" .. i end
  local res, errs = client():details_many(ids, { concurrency = number_arg("concurrency") })
  local kinds = {}
  for i = 1, #ids do kinds[i] = res[i] and "ok" or errs[i].kind end
  answer({ kinds = kinds })
end

function M.each()
  local c = client()
  local count, first, last, pages = 0, nil, nil, {}
  local ok, err = pcall(function()
    for segment, page in c:each({ max_pages = number_arg("max_pages") }) do
      count = count + 1
      first = first or segment.id
      last = segment.id
      pages[page + 1] = true
    end
  end)
  if not ok then return answer(nil, err) end
  answer({ count = count, first = first, last = last, pages = #pages })
end

--- /pipeline?details=1&series=N&concurrency=C&page=P&max_pages=M&sleep=S: the
--- pipelined each (its loop body sleeping S seconds, when given); answers the ids in order, how many carried details and
--- series, and the error (with its page and segment_id) if the loop raised.
function M.pipeline()
  local c = client()
  local ids, with_details, with_series = {}, 0, 0
  local opts = {
    details = arg("details") == "1",
    series = number_arg("series") and { length = number_arg("series"), ending_at = "2026-11-01" },
    concurrency = number_arg("concurrency") or 8,
    page = number_arg("page"),
    max_pages = number_arg("max_pages"),
  }
  local pause = number_arg("sleep")
  local ok, err = pcall(function()
    for segment in c:each(opts) do
      if pause then ngx.sleep(pause) end -- the request yields while the batch runs
      ids[#ids + 1] = segment.id
      if type(segment.details) == "table" and segment.details.name == segment.name then
        with_details = with_details + 1
      end
      if type(segment.series) == "table" and #segment.series.data == opts.series.length then
        with_series = with_series + 1
      end
    end
  end)
  local result = { ids = ids, details = with_details, series = with_series }
  if not ok then
    result.error = error_fields(err)
    result.error.page = type(err) == "table" and err.page or nil
    result.error.segment_id = type(err) == "table" and err.segment_id or nil
  end
  answer(result)
end

--- /batch?mock=&n=N&sleep=S&close=K: braze.transport.ngx's batch alone.
--- Submits N details calls (unknown ids: the mock answers 400), polls until
--- the first outcome, then sleeps S seconds (the request parks in ngx.sleep
--- while the other light threads finish), then submits N more, sleeps S
--- between submit and poll, and polls until every outcome is in. close=K
--- closes the batch after K outcomes instead (the rest abandoned) and then
--- sleeps S: the abandoned threads must not write into the request.
--- Answers the statuses by tag, the polls made and the seconds taken.
--- nosema=1: a copy of the module loaded as if lua-resty-core's
--- ngx.semaphore were missing (its poll sleeps in slices).
local without_semaphore
function M.batch()
  local mock = arg("mock") or "fast"
  local endpoint = ngx.var["braze_" .. mock .. "_endpoint"]
  local transport = ngx_transport
  if arg("nosema") == "1" then
    if not without_semaphore then -- (no yield in here: other requests see no change)
      local loaded, sema = package.loaded["braze.transport.ngx"], package.loaded["ngx.semaphore"]
      package.loaded["braze.transport.ngx"], package.loaded["ngx.semaphore"] = nil, nil
      package.preload["ngx.semaphore"] = function() error("no ngx.semaphore here") end
      without_semaphore = require("braze.transport.ngx")
      package.preload["ngx.semaphore"] = nil
      package.loaded["braze.transport.ngx"], package.loaded["ngx.semaphore"] = loaded, sema
    end
    transport = without_semaphore
  end
  local session = transport.new{ api_key = ngx.var.braze_api_key, timeout = 10,
    connect_timeout = 5, user_agent = "braze-spec", max_body = 1e6, max_depth = 64 }
  local n, pause, close_after = number_arg("n") or 4, number_arg("sleep") or 0.2, number_arg("close")
  local b = session:batch(2 * n)
  local statuses, polls, got = {}, 0, 0
  ngx.update_time()
  local t0 = ngx.now()
  local function collect(timeout)
    polls = polls + 1
    for _, out in ipairs(b:poll(timeout)) do
      statuses[out.tag] = out.status or out.error
      got = got + 1
    end
  end
  local function submit(from)
    for i = from, from + n - 1 do
      b:submit(endpoint .. "/segments/details?segment_id=x" .. i, "t" .. i)
    end
  end
  submit(1)
  -- poll's timeout with requests in flight: an empty array, after about that long
  ngx.update_time()
  local t1 = ngx.now()
  local early = #b:poll(0.05) + #b:poll(0)
  ngx.update_time()
  local early_seconds = ngx.now() - t1
  collect() -- waits for the first one
  ngx.sleep(pause)
  submit(n + 1)
  ngx.sleep(pause)
  while got < 2 * n and polls < 100 and not (close_after and got >= close_after) do collect(5) end
  if close_after then
    b:close()
    b:close() -- twice is safe
    ngx.sleep(pause)
  end
  ngx.update_time()
  answer({ statuses = statuses, got = got, polls = polls, seconds = ngx.now() - t0,
    empty = #b:poll(0.01), semaphore = b.sema ~= nil, early = early, early_seconds = early_seconds })
end

--- /batchmem?n=N: one batch of braze.transport.ngx runs N details calls at
--- 16 at a time, then N more; answers the Lua memory (KB, after a full
--- collection) after the first N and after the second: the light threads
--- that ended must not pile up in the request.
function M.batchmem()
  local endpoint = ngx.var.braze_fast_endpoint
  local session = ngx_transport.new{ api_key = ngx.var.braze_api_key, timeout = 10,
    connect_timeout = 5, user_agent = "braze-spec", max_body = 1e6, max_depth = 64 }
  local n = number_arg("n") or 400
  local b = session:batch(16)
  local sent, got = 0, 0
  local function run(upto)
    while got < upto do
      while sent < upto and sent - got < 16 do
        sent = sent + 1
        b:submit(endpoint .. "/segments/details?segment_id=x" .. sent, sent)
      end
      got = got + #b:poll(5)
    end
    collectgarbage()
    collectgarbage()
    return collectgarbage("count")
  end
  local first = run(n)
  local second = run(2 * n)
  b:close()
  answer({ first = first, second = second, got = got })
end

--- A case of spec/support/conformance.lua: a client made of the options
--- the suite gives (JSON), with this transport.
function M.conformance()
  local opts = cjson.decode(arg("opts"))
  opts.endpoint, opts.transport = arg("endpoint"), ngx_transport
  local c = braze.new(opts)
  local res, err = c:details(arg("segment_id"))
  c:close()
  answer(res, err)
end

return M
