-- The window store's costs in one nginx (bench/README.md, "Window stores"):
-- each figure is measured side by side in one run, alternating the
-- variants, and given as a ratio.
--   lua5.4 spec/support/window_bench.lua [ROUNDS]
-- Needs what spec/window/nginx_shared_spec.lua needs.
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local nginx = require("spec.support.nginx_workers")
local helpers = require("spec.support.helpers")
local cjson = require("cjson")

local rounds = tonumber(arg[1]) or 5

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or (t[n / 2] + t[n / 2 + 1]) / 2
end

local function measure(srv, variants, path)
  local times = {}
  for _, v in ipairs(variants) do times[v] = {} end
  for _ = 1, rounds do
    for _, v in ipairs(variants) do
      local t = times[v]
      t[#t + 1] = srv:get(path .. v, 120).seconds
    end
  end
  local out = {}
  for _, v in ipairs(variants) do out[v] = median(times[v]) end
  return out
end

-- sequential list: a mock without latency (the request path dominates)
local fast = helpers.start_mock{ segments = 100 }
local srv = nginx.start{ workers = 1, vars = { braze_endpoint = fast.url, braze_api_key = fast.api_key,
  braze_ids_file = "/dev/null" } }
local seq = measure(srv, { "store=none", "store=shdict", "store=noop" }, "/seqlist?n=2000&")
srv:stop()
fast:stop()
print(string.format("sequential client:list{} x2000, per call: in-process window %.1f us, "
  .. "shdict store %.1f us: ratio %.3f (shdict / in-process)",
  seq["store=none"] / 2000 * 1e6, seq["store=shdict"] / 2000 * 1e6, seq["store=shdict"] / seq["store=none"]))
print(string.format("  a no-op store (the seam alone): %.1f us per call, ratio %.3f", seq["store=noop"] / 2000 * 1e6,
  seq["store=noop"] / seq["store=none"]))

-- details_many of 160 at 16 against 20 ms, a fresh client per request
local slow = helpers.start_mock{ segments = 250, latency = 20 }
local ids = {}
for page = 0, 2 do
  local doc = cjson.decode(assert(slow:api("/segments/list?page=" .. page)).body)
  for _, s in ipairs(doc.segments) do ids[#ids + 1] = s.id end
end
helpers.write_file("/tmp/braze-window-bench-ids", table.concat(ids, "\n") .. "\n")
srv = nginx.start{ workers = 1, vars = { braze_endpoint = slow.url, braze_api_key = slow.api_key,
  braze_ids_file = "/tmp/braze-window-bench-ids" } }
srv:get("/many?n=16&store=shdict") -- the store learns the window once
local many = measure(srv, { "store=none", "store=shdict" }, "/many?n=160&")
local raw = measure(srv, { "n=160" }, "/raw?")
srv:stop()
slow:stop()
os.remove("/tmp/braze-window-bench-ids")
print(string.format("details_many 160 at 16, 20 ms server, per-request client: no store %.3f s, "
  .. "shdict store %.3f s, 16 raw cosocket light threads %.3f s", many["store=none"], many["store=shdict"], raw["n=160"]))
print(string.format("  speed vs the raw light threads: no store %.2fx, shdict %.2fx; shdict vs no store %.2fx",
  raw["n=160"] / many["store=none"], raw["n=160"] / many["store=shdict"], many["store=none"] / many["store=shdict"]))
