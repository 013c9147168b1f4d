--- bench/decode.lua: braze.decode vs Debian's cjson.decode on the same bytes.
--
--   lua5.4 bench/decode.lua wall DOC N RUNS
--       DOC = list | series. Each run times N decodes with each decoder,
--       alternating which goes first, after a full collection. Prints one
--       line per run:  RESULT decode_<DOC> <cjson_time/braze_time> braze=<us/op> cjson=<us/op>
--   lua5.4 bench/decode.lua count DOC N WHICH
--       WHICH = braze | cjson | none: decode N times and exit; run under
--       valgrind --tool=callgrind to count instructions: bench/run.sh takes
--       (Ir(WHICH) - Ir(none)) / N, so start-up cost cancels out.
local braze = require("braze")
local cjson = require("cjson")
local docs = require("docs")
local now = require("braze.core").monotonic

local mode, which_doc = arg[1], arg[2] or "list"
local text = assert(docs[which_doc], "DOC must be list or series")()

local decoders = { braze = braze.decode, cjson = cjson.decode }

-- The two must agree before any timing means something.
local a, b = braze.decode(text), cjson.decode(text)
assert(type(a) == "table" and type(b) == "table")
local items_a = a.segments or a.data
local items_b = b.segments or b.data
assert(#items_a == #items_b and #items_a == 100, "expected 100 items")

local function time_n(decode, n)
  collectgarbage("collect")
  local t0 = now()
  for _ = 1, n do decode(text) end
  return now() - t0
end

if mode == "wall" then
  local n, runs = tonumber(arg[3]) or 2000, tonumber(arg[4]) or 9
  time_n(decoders.braze, n // 10 + 1) -- warm caches and the allocator
  time_n(decoders.cjson, n // 10 + 1)
  for r = 1, runs do
    local tb, tc
    if r % 2 == 1 then
      tb = time_n(decoders.braze, n); tc = time_n(decoders.cjson, n)
    else
      tc = time_n(decoders.cjson, n); tb = time_n(decoders.braze, n)
    end
    print(string.format("RESULT decode_%s %.4f braze=%.2fus cjson=%.2fus bytes=%d",
      which_doc, tc / tb, tb / n * 1e6, tc / n * 1e6, #text))
    io.stdout:flush()
  end
elseif mode == "count" then
  -- The collector runs as it would in a program decoding page after page;
  -- "none" (the same start-up, no loop) is subtracted. Lua 5.4 seeds its
  -- string hashes from the clock and addresses, so counts move by a percent
  -- or two from run to run: bench/run.sh takes the median of several.
  local n, which = tonumber(arg[3]) or 100, arg[4] or "braze"
  local decode = decoders[which]
  assert(decode or which == "none", "WHICH must be braze, cjson or none")
  collectgarbage("collect")
  if decode then
    for _ = 1, n do decode(text) end
  end
else
  io.stderr:write("usage: decode.lua wall DOC N RUNS | count DOC N braze|cjson|none\n")
  os.exit(2)
end
