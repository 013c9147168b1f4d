-- Differential test: braze.decode against lua-cjson (Debian's 2.1.0) on
-- generated documents, plus a corpus of malformed ones.
--
-- Every value a seeded generator writes, both decoders must read the same
-- (numbers equal by value), and braze.decode must also give exactly the value
-- the generator meant (integer lexemes that fit int64 as Lua integers). Every
-- document cjson rejects, braze.decode must reject too.
--
-- Intentional differences (braze.decode is stricter or keeps more):
--   1. invalid UTF-8 in strings (overlongs, encoded surrogates, > U+10FFFF,
--      stray or missing continuation bytes): cjson passes the bytes through,
--      braze.decode rejects them.
--   2. raw control characters U+0000..U+001F inside strings: cjson accepts
--      them, braze.decode wants them escaped (RFC 8259 section 7).
--   3. a NUL byte outside strings: cjson stops reading at the first NUL
--      ("[1]\0garbage" is accepted), braze.decode reads the whole string.
--   4. number syntax beyond RFC 8259, which cjson hands to strtod: NaN, nan,
--      Infinity, inf (any case, signed), hex (0x10, 0x1p3), a leading '+',
--      leading zeros (01, -01, 00), a point with no digit after it (1., 1.e5)
--      or, after a '-', none before it (-.5).
--   5. numbers beyond the double range (1e400): cjson gives +-inf,
--      braze.decode rejects them ("number out of range").
--   6. integer lexemes that fit int64 are Lua integers (cjson: floats), so
--      integers beyond 2^53 stay exact; "-0" is integer 0 (cjson: -0.0).
--      On Luas without an integer subtype (5.1, LuaJIT) integer lexemes
--      within +-2^53 are exact numbers ("-0" is 0, not cjson's -0.0) and those
--      beyond +-2^53 are strings of their exact digits (cjson: rounded
--      floats, or +-inf beyond the double range, where difference 5 then
--      does not apply): compared as the lexeme's digits, and cjson's float
--      within a relative 1e-15 of them.
--   7. error messages and positions differ (not compared).
--
-- The seed is fixed; BRAZE_DIFF_SEED=<n> runs another. Every failure message
-- names the seed and the case. Written in Lua 5.1 syntax, and the generator
-- gives the same documents for a seed on every Lua: run it on 5.4, 5.3, 5.1
-- and LuaJIT alike, e.g.
--   luajit /usr/bin/busted --cpath='build-luajit/?.so' spec/core/decode_diff_spec.lua
local braze = require("braze")
local support = require("spec.support.json_support")
local decode = braze.decode

local has_cjson, cjson = pcall(require, "cjson")

local HAS_INTEGERS = math.type ~= nil -- 5.3+
local mtype, format, concat, char = math.type, string.format, table.concat, string.char
local floor, abs = math.floor, math.abs

local SEED = tonumber(os.getenv("BRAZE_DIFF_SEED") or "") or 20240611
local N_VALID = 3000
local N_MUTANTS = 10000

-- "integer"/"float" on 5.3+; "number" on Luas without an integer subtype.
local function kind(v)
  if HAS_INTEGERS and type(v) == "number" then return mtype(v) end
  return type(v)
end

-- UTF-8 of a code point, by arithmetic (utf8.char is 5.3+).
local function utf8char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64,
    0x80 + cp % 64)
end

local integer_beyond_2_53 = support.integer_beyond_2_53

---------------------------------------------------------------------------
-- PRNG: spec/support/json_support.lua's multiply-with-carry, so a seed means the
-- same documents on every platform and Lua build.
local next32 -- 32 random bits, as a whole number
local function seed(n) next32 = support.mwc32(n) end
local function bits(k) return floor(next32() / 2 ^ (32 - k)) end -- k <= 32 random bits
local function rand(lo, hi) -- integer in [lo, hi], for ranges up to 2^21
  local n = hi - lo + 1
  assert(n >= 1 and n <= 2097152, "rand range")
  return lo + floor(next32() * n / 4294967296)
end
local function chance(p) return rand(1, 1000) <= p * 1000 end
local function pick(list) return list[rand(1, #list)] end

local function show(s)
  if #s > 300 then s = s:sub(1, 300) .. "...(" .. #s .. " bytes)" end
  return (format("%q", s):gsub("\r", "\\r"):gsub("\n", "n"))
end

---------------------------------------------------------------------------
-- Generator: each function returns the JSON text and the Lua value
-- braze.decode must produce for it.

local function digits(n, first_nonzero)
  local t = {}
  for i = 1, n do t[i] = (i == 1 and first_nonzero) and rand(1, 9) or rand(0, 9) end
  return concat(t)
end

local EDGE_NUMBERS = {
  "0", "-0", "1", "-1", "0.0", "-0.0", "0e0", "-0E+0",
  "9007199254740991", "9007199254740992", "9007199254740993",
  "-9007199254740991", "-9007199254740992", "-9007199254740993",
  "9223372036854775807", "-9223372036854775808", "9223372036854775806",
  "9223372036854775808", "-9223372036854775809", "18446744073709551615",
  "18446744073709551616", "100000000000000000000", "99999999999999999999",
  "1e-7", "1E-7", "1e300", "-1e300", "1e308", "1.7976931348623157e308",
  "2.2250738585072014e-308", "2.2250738585072011e-308", "4.9406564584124654e-324",
  "5e-324", "1e-400", "0.1", "0.2", "0.3", "1e22", "1e23", "1e-22", "9007199254740993e-22",
  "123456789012345678901234567890", "0.30000000000000004", "3.141592653589793238462643383279",
  "1.00000000000000011102230246251565404236316680908203125",
  "0.000000000000000000000000000000000000000000000000001",
}

local function gen_number()
  local r = rand(1, 10)
  local text
  if r <= 2 then
    text = pick(EDGE_NUMBERS)
  elseif r <= 4 then -- integer lexemes of 1..25 digits
    local n = rand(1, 25)
    text = (chance(0.4) and "-" or "") .. (n == 1 and tostring(rand(0, 9)) or digits(n, true))
  elseif r <= 7 then -- decimal with fraction and/or exponent, in the double range
    local int = chance(0.3) and "0" or digits(rand(1, 20), true)
    text = (chance(0.4) and "-" or "") .. int
    if chance(0.7) then text = text .. "." .. digits(rand(1, 25)) end
    if chance(0.6) then
      local e = rand(-340, 300 - #int)
      local sign = e < 0 and "-" or pick { "", "+" }
      text = text .. pick { "e", "E" } .. sign .. math.abs(e)
    end
  else -- a random finite double printed with 15..17 significant digits
    -- a uniformly random bit pattern: sign, exponent below 2047 (not inf/NaN), fraction
    local e
    repeat e = bits(11) until e < 2047
    local fraction = bits(20) * 4294967296 + bits(32)
    local f = e == 0 and fraction * 2 ^ -1074 or (fraction + 2 ^ 52) * 2 ^ (e - 1075)
    if bits(1) == 1 then f = -f end
    if chance(0.3) then f = f / 2 ^ rand(0, 1000) end
    text = format(pick { "%.17g", "%.16g", "%.15g" }, f)
  end
  -- Lua's own reader is the oracle: tonumber("123") is an integer, "9223372036854775808"
  -- and anything with '.'/'e' a correctly rounded float; every JSON number is a Lua numeral.
  -- Without an integer subtype, an integer lexeme beyond +-2^53 is its own digits.
  if not HAS_INTEGERS and integer_beyond_2_53(text) then return text, text end
  -- "-0" is an integer lexeme: 0 on every Lua (tonumber gives -0.0 on 5.1 and LuaJIT).
  if text == "-0" then return text, 0 end
  return text, assert(tonumber(text), text)
end

local SIMPLE_ESCAPES = {
  { '\\"', '"' }, { "\\\\", "\\" }, { "\\/", "/" }, { "\\b", "\b" },
  { "\\f", "\f" }, { "\\n", "\n" }, { "\\r", "\r" }, { "\\t", "\t" },
}
local EDGE_CODEPOINTS = { 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF, 0x1F600 }

local function hex4(n)
  local s = format("%04x", n)
  return (s:gsub("%a", function(c) return chance(0.5) and c:upper() or c end))
end

local function random_codepoint()
  local r = rand(1, 4)
  if r == 1 then return pick(EDGE_CODEPOINTS) end
  if r == 2 then return rand(0x80, 0x7FF) end
  if r == 3 then
    local cp
    repeat cp = rand(0x800, 0xFFFF) until cp < 0xD800 or cp > 0xDFFF
    return cp
  end
  return rand(0x10000, 0x10FFFF)
end

local function gen_string()
  local text, raw = { '"' }, {}
  for _ = 1, rand(0, 12) do
    local r = rand(1, 10)
    local t, v
    if r <= 3 then -- printable ASCII except '"' and '\', or DEL
      local c
      repeat c = rand(0x20, 0x7F) until c ~= 0x22 and c ~= 0x5C
      t = char(c)
      v = t
    elseif r == 4 then
      local e = pick(SIMPLE_ESCAPES)
      t, v = e[1], e[2]
    elseif r == 5 then -- \u escape of a BMP code point (not a surrogate), \u0000 included
      local cp
      if chance(0.2) then cp = pick { 0, 0x1F, 0x7F, 0x22, 0x5C } else
        repeat cp = rand(0, 0xFFFF) until cp < 0xD800 or cp > 0xDFFF
      end
      t, v = "\\u" .. hex4(cp), utf8char(cp)
    elseif r == 6 then -- a surrogate pair
      local cp = chance(0.2) and pick { 0x10000, 0x10FFFF, 0x1F600 } or rand(0x10000, 0x10FFFF)
      local hi, lo = 0xD800 + floor((cp - 0x10000) / 1024), 0xDC00 + (cp - 0x10000) % 1024
      t, v = "\\u" .. hex4(hi) .. "\\u" .. hex4(lo), utf8char(cp)
    else -- raw UTF-8, 2 to 4 bytes
      t = utf8char(random_codepoint())
      v = t
    end
    text[#text + 1], raw[#raw + 1] = t, v
  end
  text[#text + 1] = '"'
  return concat(text), concat(raw)
end

local function ws()
  if chance(0.7) then return "" end
  local t = {}
  for i = 1, rand(1, 3) do t[i] = pick { " ", "\t", "\n", "\r" } end
  return concat(t)
end

local gen_value

local function gen_array(depth)
  local texts, value = {}, {}
  for i = 1, rand(0, 8) do
    texts[i], value[i] = gen_value(depth + 1)
    texts[i] = ws() .. texts[i] .. ws()
  end
  return "[" .. ws() .. concat(texts, ",") .. "]", value
end

local function gen_object(depth)
  local texts, value, keys = {}, {}, {}
  for i = 1, rand(0, 6) do
    local ktext, key
    if i > 1 and chance(0.1) then -- a duplicate key: the last one wins
      local k = keys[rand(1, #keys)]
      ktext, key = k[1], k[2]
    else
      ktext, key = gen_string()
    end
    keys[#keys + 1] = { ktext, key }
    local vtext, v = gen_value(depth + 1)
    texts[i] = ws() .. ktext .. ws() .. ":" .. ws() .. vtext .. ws()
    value[key] = v
  end
  return "{" .. ws() .. concat(texts, ",") .. "}", value
end

function gen_value(depth)
  local r = rand(1, depth >= 6 and 6 or 9)
  if r == 1 then return "null", braze.null end
  if r == 2 then return "true", true end
  if r == 3 then return "false", false end
  if r <= 5 then return gen_number() end
  if r == 6 then return gen_string() end
  if r <= 8 then return gen_array(depth) end
  return gen_object(depth)
end

local function gen_document(i)
  if i % 500 == 0 then -- now and then a deep chain, within both decoders' 1000 levels
    local n = rand(100, 1000)
    local inner_text, inner = gen_value(6)
    local v = inner
    for _ = 1, n do v = { v } end
    return ("["):rep(n) .. inner_text .. ("]"):rep(n), v
  end
  local text, v = gen_value(0)
  return ws() .. text .. ws(), v
end

---------------------------------------------------------------------------
-- Comparisons. Each returns nil when equal, else a description of the first
-- difference.

local function key_name(k)
  return type(k) == "string" and format("[%q]", k) or "[" .. tostring(k) .. "]"
end

-- braze.decode's value against the generator's: exact, number subtypes and
-- the sign of float zeros included.
local function exact(got, want, path)
  if type(got) ~= type(want) then
    return format("%s: %s vs wanted %s", path, type(got), type(want))
  end
  if type(got) == "number" then
    if kind(got) ~= kind(want) or got ~= want or (got == 0 and 1 / got ~= 1 / want) then
      return format("%s: %s %.17g vs wanted %s %.17g", path, kind(got), got, kind(want), want)
    end
  elseif type(got) == "table" then
    for k, v in pairs(got) do
      if want[k] == nil then return path .. key_name(k) .. ": not wanted" end
      local d = exact(v, want[k], path .. key_name(k))
      if d then return d end
    end
    for k in pairs(want) do
      if got[k] == nil then return path .. key_name(k) .. ": missing" end
    end
  elseif got ~= want then
    return format("%s: %s vs wanted %s", path, show(tostring(got)), show(tostring(want)))
  end
  return nil
end

-- cjson's value against braze.decode's: numbers equal by value. cjson reads
-- every number as a double, so an integer of ours beyond 2^53 is compared as
-- the double it rounds to, and our 0 matches cjson's -0.0 for "-0" (on 5.1
-- and LuaJIT too: there a zero whose expected value is +0, or unknown).
-- Without an integer subtype, our string for an integer lexeme beyond 2^53
-- must be that lexeme's digits (`lexeme`: the generator's, when known) and
-- cjson's double within a relative 1e-15 of them (or the same infinity).
local TWO53 = 2.0 ^ 53
local function same_value(theirs, ours, path, lexeme)
  if not HAS_INTEGERS and type(ours) == "string" and type(theirs) == "number" then
    if not integer_beyond_2_53(ours) then
      return format("%s: braze string %s for cjson's number %.17g", path, show(ours), theirs)
    end
    if lexeme ~= nil and ours ~= lexeme then
      return format("%s: braze digits %s vs lexeme %s", path, show(ours), show(tostring(lexeme)))
    end
    local v = tonumber(ours)
    if not (theirs == v or abs(theirs - v) <= 1e-15 * abs(v)) then
      return format("%s: cjson %.17g vs braze digits %s", path, theirs, ours)
    end
    return nil
  end
  if type(theirs) ~= type(ours) then
    return format("%s: cjson %s vs braze %s", path, type(theirs), type(ours))
  end
  if type(ours) == "number" then
    local ok
    if HAS_INTEGERS and mtype(ours) == "integer" then
      if ours > TWO53 or ours < -TWO53 then ok = theirs == ours + 0.0 else ok = theirs == ours end
    else
      ok = theirs == ours and (ours ~= 0 or 1 / ours == 1 / theirs
        or (1 / ours > 0 and (type(lexeme) ~= "number" or 1 / lexeme > 0)))
    end
    if not ok then return format("%s: cjson %.17g vs braze %.17g", path, theirs, ours) end
  elseif type(ours) == "table" then
    for k, v in pairs(ours) do
      if theirs[k] == nil then return path .. key_name(k) .. ": missing in cjson's" end
      local d = same_value(theirs[k], v, path .. key_name(k), type(lexeme) == "table" and lexeme[k] or nil)
      if d then return d end
    end
    for k in pairs(theirs) do
      if ours[k] == nil then return path .. key_name(k) .. ": missing in braze's" end
    end
  elseif theirs ~= ours then
    return format("%s: cjson %s vs braze %s", path, show(tostring(theirs)), show(tostring(ours)))
  end
  return nil
end

---------------------------------------------------------------------------
-- Which documented difference explains cjson accepting what we reject.

local function is_json_number(tok)
  return tok:match("^%-?0$") or tok:match("^%-?[1-9]%d*$")
    or tok:match("^%-?0%.%d+$") or tok:match("^%-?[1-9]%d*%.%d+$")
    or tok:match("^%-?0[eE][%+%-]?%d+$") or tok:match("^%-?[1-9]%d*[eE][%+%-]?%d+$")
    or tok:match("^%-?0%.%d+[eE][%+%-]?%d+$") or tok:match("^%-?[1-9]%d*%.%d+[eE][%+%-]?%d+$")
end

-- Returns the number (1..5, see the header) of the intentional difference the
-- document shows, or nil.
-- Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above
-- U+10FFFF). Not utf8.len: Lua 5.3's accepts 5- and 6-byte forms.
local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len
    local lo, hi = 0x80, 0xBF
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    else return false end
    if len > 1 then
      if i + len - 1 > n then return false end
      local b = s:byte(i + 1)
      if b < lo or b > hi then return false end
      for k = i + 2, i + len - 1 do
        local t = s:byte(k)
        if t < 0x80 or t > 0xBF then return false end
      end
    end
    i = i + len
  end
  return true
end

-- tonumber for a JSON number token. LuaJIT's reader gives up (nil) on exponents
-- of 7 or more digits: clamp those to 99999 first, which is as far outside the
-- double range (decode.c saturates them too).
local function json_tonumber(tok)
  local v = tonumber(tok)
  if v ~= nil then return v end
  return assert(tonumber((tok:gsub("([eE][%+%-]?)0*(%d+)$", function(sign, d)
    return sign .. (#d > 5 and "99999" or d)
  end))), tok)
end

local function intentional_difference(doc)
  if not valid_utf8(doc) then return 1 end -- strict: no surrogates, overlongs, > U+10FFFF
  -- Walk the text, telling string contents from the rest.
  local i, n = 1, #doc
  while i <= n do
    local c = doc:byte(i)
    if c == 0x22 then -- a string: look for raw control bytes up to the closing quote
      i = i + 1
      while i <= n do
        local b = doc:byte(i)
        if b == 0x5C then i = i + 2
        elseif b == 0x22 then break
        else
          if b < 0x20 then return 2 end
          i = i + 1
        end
      end
      i = i + 1
    elseif c == 0 then
      return 3
    elseif doc:find("^[%w%.%+%-]", i) then -- a literal or number token
      local tok = doc:match("^[%w%.%+%-]+", i)
      if tok ~= "true" and tok ~= "false" and tok ~= "null" then
        if not is_json_number(tok) then
          local t = tok:lower()
          if t:find("nan") or t:find("inf") or t:find("0x") or tok:find("^%+") or tok:find("^%-?0%d")
            or tok:find("%.$") or tok:find("%.[eE]") or tok:find("%.[^%d]") or tok:find("^%-%.") then
            return 4
          end
        elseif math.abs(json_tonumber(tok)) == math.huge then
          return 5
        end
      end
      i = i + #tok
    else
      i = i + 1
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- Malformed documents: every class of error, and what cjson is laxer about.

local MALFORMED = {
  "", " ", "\n\t", "[", "]", "{", "}", "[1,", "[1,2", "[1,]", "[,1]", "[1 2]", "[1,,2]",
  '{"a"', '{"a":', '{"a":1', '{"a":1,}', '{"a" 1}', '{"a"}', '{1:2}', "{'a':1}", "{a:1}",
  '{"a":1 "b":2}', '{"a":1,,"b":2}', '{,"a":1}', "[1]]", "[1] x", "1 2", "[1][2]", "{}{}",
  '"abc', '["abc', '"ab\\', '"a\\"', '"\\u12"', '"\\u12G4"', '"\\uD800"', '"\\uDC00"',
  '"\\uD800\\u0041"', '"\\uD800\\uD800"', '"\\uDFFF\\uD800"', '"\\x"', '"\\U0041"', "\"\\'\"",
  "tru", "nul", "fals", "True", "NULL", "truex", "[nulx]", "t", "f", "n", "nulll",
  "01", "-01", "00", "[00]", "1.", "1.e5", "-", "-a", "--1", "- 1", "1e", "1e+", "1E-x",
  ".5", "+1", "0x10", "0X1p3", "-0x10", "NaN", "nan", "-nan", "Infinity", "-Infinity", "inf", "+inf",
  "-.5", "1e400", "-1e400", "[1e309]", "1" .. ("0"):rep(400), "1.5.3", "1e5e5", "1_000", "1 .5", "0.0e",
  '"a\1b"', '"\t"', '"\n"', '"\0"', "[1]\0", "\0", "[\0]", '"\127"',
  '"\192\128"', '"\193\191"', '"\224\128\128"', '"\237\160\128"', '"\244\144\128\128"',
  '"\245\128\128\128"', '"\255"', '"\128"', '"\195"', '"\226\130"', '"\240\159\152"', '"\226\130',
  "\239\187\191[1]", "\f1", "\v1", "[1,\v2]", "/*c*/1", "[1]//c", "#1", "[1]#",
  ("["):rep(1001) .. ("]"):rep(1001), ('{"a":'):rep(1001) .. "1" .. ("}"):rep(1001),
  "<html><body>502 Bad Gateway</body></html>", "undefined", "[undefined]", "'a'",
}

local MUTATION_BYTES = {
  "{", "}", "[", "]", ",", ":", '"', "\\", "0", "1", "9", "-", "+", ".", "e", "E", "t", "n", "f",
  "u", "x", " ", "\n", "\0", "\1", "\31", "\127", "\128", "\192", "\237", "\244", "\255",
}

local function mutate(doc)
  local n = #doc
  local pos = rand(1, n + 1)
  local r = rand(1, 6)
  if r == 1 and n > 0 then return doc:sub(1, rand(0, n - 1)) end -- truncate
  if r == 2 and n > 0 then return doc:sub(1, pos - 1) .. doc:sub(pos + 1) end -- delete a byte
  if r == 3 then return doc:sub(1, pos - 1) .. pick(MUTATION_BYTES) .. doc:sub(pos) end -- insert
  if r == 4 and n > 0 then return doc:sub(1, pos - 1) .. pick(MUTATION_BYTES) .. doc:sub(pos + 1) end
  if r == 5 and n > 0 then return doc:sub(1, pos - 1) .. char(rand(0, 255)) .. doc:sub(pos + 1) end
  local a = rand(1, n + 1) -- duplicate a slice
  return doc:sub(1, a - 1) .. doc:sub(a, a + rand(0, 8)) .. doc:sub(a)
end

---------------------------------------------------------------------------

if not has_cjson then
  describe("braze.decode against cjson.decode", function()
    it("needs lua-cjson", function() pending("lua-cjson is not installed (apt-get install lua-cjson)") end)
  end)
  return
end

describe("braze.decode against cjson.decode (seed " .. SEED .. ")", function()
  local function where(i, doc) return format("seed %d, case %d, doc %s", SEED, i, show(doc)) end

  -- Both decoders on one document. Returns ok_cjson, cjson_value, braze_value, braze_message.
  local function both(doc)
    local ok, theirs = pcall(cjson.decode, doc)
    local ours, msg, pos = decode(doc)
    if ours == nil then
      assert(type(msg) == "string" and msg:find(" at byte %d+$") and pos >= 1 and pos <= #doc + 1,
        "bad error for " .. show(doc) .. ": " .. tostring(msg) .. " / " .. tostring(pos))
    end
    return ok, theirs, ours, msg
  end

  local valid = {}
  setup(function()
    seed(SEED)
    for i = 1, N_VALID do
      local text, value = gen_document(i)
      valid[i] = { text, value }
    end
  end)

  it("decodes every generated document to exactly the generated value", function()
    for i, case in ipairs(valid) do
      local ours, msg = decode(case[1])
      if ours == nil then error(where(i, case[1]) .. ": rejected: " .. msg, 0) end
      local d = exact(ours, case[2], "value")
      if d then error(where(i, case[1]) .. ": " .. d, 0) end
    end
  end)

  it("agrees with cjson on every generated document (numbers by value)", function()
    for i, case in ipairs(valid) do
      local ok, theirs, ours, msg = both(case[1])
      if not ok then error(where(i, case[1]) .. ": cjson rejected it: " .. tostring(theirs), 0) end
      if ours == nil then error(where(i, case[1]) .. ": braze rejected it: " .. msg, 0) end
      local d = same_value(theirs, ours, "value", case[2])
      if d then error(where(i, case[1]) .. ": " .. d, 0) end
    end
  end)

  it("generates the number and string edge cases it claims to", function()
    local seen = {}
    local function walk(v)
      if type(v) == "table" then for k, x in pairs(v) do walk(k); walk(x) end
      elseif kind(v) == "integer" then
        if v == math.maxinteger then seen.maxint = true end
        if v == math.mininteger then seen.minint = true end
        if v > 2 ^ 53 then seen.beyond53 = true end
      elseif kind(v) == "float" or kind(v) == "number" then
        if v == 0 and 1 / v < 0 then seen.negzero = true end
        if v ~= 0 and math.abs(v) < 2.2250738585072014e-308 then seen.denormal = true end
        if math.abs(v) >= 1e300 then seen.huge = true end
      elseif type(v) == "string" then
        if not HAS_INTEGERS and integer_beyond_2_53(v) then -- an integer lexeme's digits
          if v == "9223372036854775807" then seen.maxint = true end
          if v == "-9223372036854775808" then seen.minint = true end
          if v:sub(1, 1) ~= "-" then seen.beyond53 = true end
        end
        if v:find("\0", 1, true) then seen.nul = true end
        if v:find("[\240-\244]") then seen.four_byte = true end
      end
    end
    for _, case in ipairs(valid) do walk(case[2]) end
    assert.are.same({ maxint = true, minint = true, beyond53 = true, negzero = true, denormal = true,
      huge = true, nul = true, four_byte = true }, seen)
  end)

  it("both accept 1000 nested arrays and both reject 1001", function()
    local ok, _, ours = both(("["):rep(1000) .. ("]"):rep(1000))
    assert.is_true(ok)
    assert.is_table(ours)
    ok, _, ours = both(("["):rep(1001) .. ("]"):rep(1001))
    assert.is_false(ok)
    assert.is_nil(ours)
  end)

  -- Runs the malformed corpus and the mutants; returns the intentional
  -- differences seen, by number.
  local function check_rejections(docs, label)
    local differences = {}
    for i, doc in ipairs(docs) do
      local ok, theirs, ours, msg = both(doc)
      if not ok then
        if ours ~= nil then
          error(format("%s %s: cjson rejects it (%s) but braze accepted it", label, where(i, doc), theirs), 0)
        end
      elseif ours ~= nil then
        local d = same_value(theirs, ours, "value")
        if d then error(label .. " " .. where(i, doc) .. ": " .. d, 0) end
      else
        local why = intentional_difference(doc)
        if not why then
          error(format("%s %s: cjson accepts it, braze rejects it (%s), and no documented difference explains it",
            label, where(i, doc), msg), 0)
        end
        differences[why] = (differences[why] or 0) + 1
      end
    end
    return differences
  end

  it("rejects every malformed document cjson rejects, and differs from cjson only as documented", function()
    local differences = check_rejections(MALFORMED, "malformed")
    -- Each documented difference shows up in the corpus, so the list stays true.
    for why = 1, 5 do
      assert(differences[why], "intentional difference " .. why .. " never exercised")
    end
  end)

  it("rejects every mutated document cjson rejects", function()
    seed(SEED + 1)
    local docs = {}
    for i = 1, N_MUTANTS do
      local doc = valid[(i - 1) % #valid + 1][1]
      if #doc > 2000 then doc = doc:sub(1, 2000) end
      for _ = 1, rand(1, 3) do doc = mutate(doc) end
      docs[i] = doc
    end
    check_rejections(docs, "mutant")
  end)
end)
