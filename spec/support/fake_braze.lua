--- A Braze kept in memory, served through a fake transport: for specs of
--- the scheduler and the pipelined each that need exact control (which
--- request fails, in which order answers come, the rate-limit window)
--- without a server. Every request is recorded.
---
---   local fake = require("spec.support.fake_braze").new{ segments = 250, mode = "async" }
---   local c = braze.new{ api_key = "k", instance = "US-01", transport = fake.transport }
---
--- mode: "serial" (get only) or "async" (get and batch(): answers come back
--- in a shuffled order, a few at a time).
--- fake.fail[path .. "?" .. segment_id or page] = { status =, count = } makes
--- those requests fail (count times, or always without count).
--- fake.window = { limit =, remaining =, reset = } adds rate-limit headers and
--- answers 429 once remaining is 0.
local M = {}

local format = string.format

local function segment_id(i) return format("seg-%05d", i) end

function M.new(opts)
  local fake = {
    segments = opts.segments or 0,
    mode = opts.mode or "serial",
    fail = {},
    window = opts.window,
    log = {},          -- every request: { path =, key = }
    served_429 = 0,
    inflight = 0, max_inflight = 0,
    max_list_ahead = 0, -- how far list requests ran ahead of the page consumed
    consumed_page = nil,
    batches_closed = 0,
    seed = opts.seed or 12345,
  }

  local function random(n) -- a small LCG, the same on every Lua
    fake.seed = (fake.seed * 1103515245 + 12345) % 2147483648
    return fake.seed % n + 1
  end

  local function query_of(url)
    local path, q = url:match("^https?://[^/]+(/[^?]*)%??(.*)$")
    local t = {}
    for k, v in (q or ""):gmatch("([^&=]+)=([^&]*)") do t[k] = v end
    return path, t
  end

  local function headers()
    local h = { ["x-request-id"] = "fake-" .. #fake.log }
    local w = fake.window
    if w then
      h["x-ratelimit-limit"] = tostring(w.limit)
      h["x-ratelimit-remaining"] = tostring(w.remaining)
      h["x-ratelimit-reset"] = tostring(w.reset)
    end
    return h
  end

  local function answer(url)
    local path, q = query_of(url)
    local key = path .. "?" .. (q.segment_id or q.page or "")
    fake.log[#fake.log + 1] = { path = path, key = key, query = q }
    if path == "/segments/list" then
      local page = tonumber(q.page or "0")
      if fake.consumed_page then
        fake.max_list_ahead = math.max(fake.max_list_ahead, page - fake.consumed_page)
      end
    end
    local w = fake.window
    if w then
      if w.remaining <= 0 then
        fake.served_429 = fake.served_429 + 1
        return { status = 429, headers = headers(), body = { message = "rate limited" } }
      end
      w.remaining = w.remaining - 1
    end
    local f = fake.fail[key]
    if f and (f.count == nil or f.count > 0) then
      if f.count then f.count = f.count - 1 end
      if f.kind then return nil, f.kind, "fake " .. f.kind end
      return { status = f.status or 500, headers = headers(), body = { message = "fake failure" } }
    end
    if path == "/segments/list" then
      local page = tonumber(q.page or "0")
      local segs = {}
      local lo = page * 100 + 1
      for i = lo, math.min(lo + 99, fake.segments) do
        segs[#segs + 1] = { id = segment_id(i), name = "Segment " .. i, tags = {} }
      end
      return { status = 200, headers = headers(), body = { message = "success", segments = segs } }
    elseif path == "/segments/details" then
      local i = tonumber(q.segment_id:match("%d+"))
      return { status = 200, headers = headers(),
        body = { message = "success", name = "Segment " .. i, description = "d" .. i } }
    elseif path == "/segments/data_series" then
      local data = {}
      for d = 1, tonumber(q.length) do data[d] = { time = "day" .. d, size = d } end
      return { status = 200, headers = headers(), body = { message = "success", data = data, id = q.segment_id } }
    end
    return { status = 404, headers = headers(), body = { message = "Invalid URL" } }
  end

  local function outcome(url)
    local res, kind, msg = answer(url)
    return res or { error = kind, message = msg }
  end

  local conn = {}
  function conn.get(_, url) return answer(url) end
  function conn.close() fake.closed = true end
  if fake.mode == "async" then
    function conn.batch()
      local b = { pending = {} }
      function b.submit(_, url, tag)
        fake.inflight = fake.inflight + 1
        fake.max_inflight = math.max(fake.max_inflight, fake.inflight)
        b.pending[#b.pending + 1] = { url = url, tag = tag }
      end
      function b.poll()
        -- Answer one to three of the requests in flight, picked at random.
        local outs = {}
        for _ = 1, math.min(random(3), #b.pending) do
          local k = random(#b.pending)
          local r = table.remove(b.pending, k)
          fake.inflight = fake.inflight - 1
          local out = outcome(r.url)
          out.tag = r.tag
          outs[#outs + 1] = out
        end
        return outs
      end
      function b.close()
        fake.inflight = fake.inflight - #b.pending
        b.pending = {}
        fake.batches_closed = fake.batches_closed + 1
      end
      return b
    end
  end
  fake.transport = { new = function() return conn end }
  fake.segment_id = segment_id

  --- How many requests were made to `path` (all paths when nil).
  function fake.count(path)
    local n = 0
    for _, r in ipairs(fake.log) do if path == nil or r.path == path then n = n + 1 end end
    return n
  end
  return fake
end

return M
