-- braze.decode: the C JSON decoder (csrc/decode.c), strict RFC 8259.
--
-- Run: lua5.4 /usr/bin/busted spec/decode_spec.lua
-- (with no .busted file: add --lpath="lua/?.lua;lua/?/init.lua;spec/?.lua;./?.lua" --cpath="build/?.so")
local braze = require("braze")
local core = require("braze.core")
local decode = braze.decode

local mtype, huge, maxinteger, mininteger = math.type, math.huge, math.maxinteger, math.mininteger

-- Decoding `text` fails with exactly `message` .. " at byte " .. position.
local function rejects(text, message, position, max_depth)
  local n = select("#", decode(text, max_depth))
  local v, msg, pos = decode(text, max_depth)
  assert.are.equal(3, n)
  assert.is_nil(v)
  assert.are.equal(message .. " at byte " .. position, msg)
  assert.are.equal(position, pos)
  assert.are.equal("integer", mtype(pos))
end

-- Decoding `text` gives a single string equal to `expected` (byte for byte).
local function gives_string(text, expected)
  local v, err = decode(text)
  assert.is_nil(err)
  assert.are.equal("string", type(v))
  assert.are.equal(#expected, #v)
  assert.are.equal(expected, v)
end

local function gives_integer(text, expected)
  local v, err = decode(text)
  assert.is_nil(err)
  assert.are.equal("integer", mtype(v))
  assert.are.equal(expected, v)
end

-- A float equal to `expected`, with the same sign for zeros.
local function gives_float(text, expected)
  local v, err = decode(text)
  assert.is_nil(err)
  assert.are.equal("float", mtype(v))
  assert.are.equal(expected, v)
  if expected == 0 then assert.are.equal(1 / expected, 1 / v) end
end

local function nest(open, close, n, inner)
  return open:rep(n) .. (inner or "") .. close:rep(n)
end

local function depth_of(t)
  local d = 0
  while type(t) == "table" do d, t = d + 1, t[1] end
  return d
end

-- Switch every category to the first of `names` that the C library has;
-- returns the locale it got, or nil. The caller restores with finally().
local function try_locale(names)
  for _, name in ipairs(names) do
    local got = os.setlocale(name)
    if got then return got end
  end
  return nil
end

describe("braze.decode", function()
  it("is the C decoder from braze.core", function()
    assert.are.equal(core.decode("[1,2]")[2], decode("[1,2]")[2])
    assert.are.equal(core.null, braze.null)
  end)

  describe("values", function()
    it("decodes the literals true and false as booleans", function()
      assert.is_true(decode("true"))
      assert.is_false(decode("false"))
    end)

    it("decodes null as braze.null (lightuserdata NULL, one value, not nil)", function()
      assert.are.equal(1, select("#", decode("null")))
      assert.are.equal(braze.null, decode("null"))
      assert.are.equal("userdata", type(decode("null")))
    end)

    it("makes braze.null equal to cjson.null", function()
      local ok, cjson = pcall(require, "cjson")
      if not ok then pending("lua-cjson is not installed") end
      assert.are.equal(cjson.null, braze.null)
      assert.are.equal(cjson.null, decode("null"))
    end)

    it("keeps null inside arrays as braze.null, so the length counts it", function()
      local t = decode("[null, 1, null]")
      assert.are.equal(3, #t)
      assert.are.equal(braze.null, t[1])
      assert.are.equal(1, t[2])
      assert.are.equal(braze.null, t[3])
    end)

    it("keeps null object members as braze.null, so the key is present", function()
      local t = decode('{"description": null, "name": "x"}')
      assert.are.equal(braze.null, t.description)
      assert.are.equal("x", t.name)
    end)

    it("decodes empty arrays and objects as empty tables", function()
      assert.are.same({}, decode("[]"))
      assert.are.same({}, decode("{}"))
      assert.are.same({ {}, { {} } }, decode("[[],[{}]]"))
    end)

    it("decodes objects with string keys and arrays with keys 1..n", function()
      local t = decode('{"a": [10, 20, 30], "b": {"c": "d"}, "": 0}')
      assert.are.same({ a = { 10, 20, 30 }, b = { c = "d" }, [""] = 0 }, t)
    end)

    it("lets the last of duplicate keys win", function()
      local t = decode('{"a": 1, "b": 2, "a": 3}')
      assert.are.equal(3, t.a)
      local n = 0
      for _ in pairs(t) do n = n + 1 end
      assert.are.equal(2, n)
    end)

    it("accepts the four JSON white-space bytes everywhere between tokens", function()
      local t = decode(' \t\r\n{ \t"a"\r\n:\n[ 1 ,\t2 ] , "b" : true }\n ')
      assert.are.same({ a = { 1, 2 }, b = true }, t)
    end)

    it("decodes a Braze /segments/list body", function()
      local t = decode('{"segments":[{"id":"6d68ea15-26c4-4109-835a-65b81773a5e2",'
        .. '"name":"Lapsed Users - 7 days","analytics_tracking_enabled":true,"tags":[]}],'
        .. '"message":"success"}')
      assert.are.equal("success", t.message)
      assert.are.equal(1, #t.segments)
      assert.are.equal("Lapsed Users - 7 days", t.segments[1].name)
      assert.is_true(t.segments[1].analytics_tracking_enabled)
      assert.are.same({}, t.segments[1].tags)
    end)

    it("returns exactly one value on success", function()
      assert.are.equal(1, select("#", decode('{"a":1}')))
      assert.are.equal(1, select("#", decode("false")))
    end)
  end)

  describe("string escapes", function()
    it('decodes \\" as a double quote', function() gives_string([["a\"b"]], 'a"b') end)
    it("decodes \\\\ as a backslash", function() gives_string([["a\\b"]], "a\\b") end)
    it("decodes \\/ as a slash", function() gives_string([["a\/b"]], "a/b") end)
    it("decodes \\b as backspace", function() gives_string([["\b"]], "\8") end)
    it("decodes \\f as form feed", function() gives_string([["\f"]], "\12") end)
    it("decodes \\n as line feed", function() gives_string([["\n"]], "\10") end)
    it("decodes \\r as carriage return", function() gives_string([["\r"]], "\13") end)
    it("decodes \\t as tab", function() gives_string([["\t"]], "\9") end)

    it("decodes every escape in one string, in order", function()
      gives_string([["\"\\\/\b\f\n\r\tx\u0041"]], '"\\/\8\12\10\13\9xA')
    end)

    it("decodes \\uXXXX to 1-, 2- and 3-byte UTF-8", function()
      gives_string([["\u0041"]], "A")
      gives_string([["\u007F"]], "\127")
      gives_string([["\u0080"]], "\xC2\x80")
      gives_string([["\u00e9"]], "\xC3\xA9")
      gives_string([["\u07FF"]], "\xDF\xBF")
      gives_string([["\u0800"]], "\xE0\xA0\x80")
      gives_string([["\u20AC"]], "\xE2\x82\xAC")
      gives_string([["\uD7FF"]], "\xED\x9F\xBF")
      gives_string([["\uE000"]], "\xEE\x80\x80")
      gives_string([["\uFFFF"]], "\xEF\xBF\xBF")
    end)

    it("accepts upper- and lower-case hex digits in \\u escapes", function()
      gives_string([["\u00aB\u00Ab"]], "\xC2\xAB\xC2\xAB")
    end)

    it("decodes a surrogate pair to one 4-byte UTF-8 sequence", function()
      gives_string([["\uD83D\uDE00"]], "\xF0\x9F\x98\x80") -- U+1F600
      gives_string([["\ud800\udc00"]], "\xF0\x90\x80\x80") -- U+10000
      gives_string([["\uDBFF\uDFFF"]], "\xF4\x8F\xBF\xBF") -- U+10FFFF
    end)

    it("rejects a lone high surrogate", function()
      rejects([["\uD800"]], "lone high surrogate in \\u escape", 2)
      rejects([["ab\uDBFFxxxxxxx"]], "lone high surrogate in \\u escape", 4)
    end)

    it("rejects a high surrogate followed by an escape that is not a low surrogate", function()
      rejects([["\uD800\u0041"]], "high surrogate not followed by a low surrogate", 2)
      rejects([["\uD800\uD800"]], "high surrogate not followed by a low surrogate", 2)
      rejects([["\uD800\uZZZZ"]], "high surrogate not followed by a low surrogate", 2)
    end)

    it("rejects a lone low surrogate, and a pair in the wrong order", function()
      rejects([["\uDC00"]], "lone low surrogate in \\u escape", 2)
      rejects([["x\uDFFF\uD800"]], "lone low surrogate in \\u escape", 3)
    end)

    it("rejects non-hex digits in \\u escapes", function()
      rejects([["\u12G4"]], "invalid hex digit in \\u escape", 2)
      rejects([["ab\u 123"]], "invalid hex digit in \\u escape", 4)
      rejects([["\u-123"]], "invalid hex digit in \\u escape", 2)
    end)

    it("rejects a \\u escape cut short by the end of the string", function()
      rejects([["\u12"]], "truncated \\u escape", 2)
      rejects([["\u]], "truncated \\u escape", 2)
    end)

    it("rejects unknown escapes", function()
      rejects([["ab\x41"]], "invalid escape in string", 4)
      rejects([["\U0041"]], "invalid escape in string", 2)
      rejects([["\'"]], "invalid escape in string", 2)
      rejects('"\\\0"', "invalid escape in string", 2)
    end)

    it("keeps the bytes after an escaped \\u0000 (embedded NUL)", function()
      local s = decode([["a\u0000b"]])
      assert.are.equal(3, #s)
      assert.are.equal("a\0b", s)
      local t = decode([[{"k\u0000ey": "\u0000\u0000"}]])
      assert.are.equal(2, #t["k\0ey"])
    end)

    it("decodes escapes in object keys", function()
      local t = decode([[{"a\nb": 1, "\u00e9": 2, "\"": 3}]])
      assert.are.equal(1, t["a\nb"])
      assert.are.equal(2, t["\xC3\xA9"])
      assert.are.equal(3, t['"'])
    end)

    it("keeps raw UTF-8 that follows an escape (unescaping in place)", function()
      gives_string('"\\n\xE2\x82\xAC\xF0\x9F\x98\x80x\\t\xC3\xA9"', "\n\xE2\x82\xAC\xF0\x9F\x98\x80x\t\xC3\xA9")
    end)

    it("decodes a long string with many escapes", function()
      local text = '"' .. ("ab\\n\\u00e9\\uD83D\\uDE00"):rep(10000) .. '"'
      gives_string(text, ("ab\n\xC3\xA9\xF0\x9F\x98\x80"):rep(10000))
    end)
  end)

  describe("raw string bytes", function()
    it("accepts valid UTF-8 at the boundaries of each sequence length", function()
      for _, s in ipairs {
        "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF",
        "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "\127",
      } do
        gives_string('"' .. s .. '"', s)
      end
    end)

    it("rejects raw control characters in strings, with their position", function()
      rejects('"a\1b"', "control character in string (must be escaped)", 3)
      rejects('"\t"', "control character in string (must be escaped)", 2)
      rejects('"ab\n"', "control character in string (must be escaped)", 4)
      rejects('"\0"', "control character in string (must be escaped)", 2)
      rejects('"\\n\31"', "control character in string (must be escaped)", 4)
    end)

    it("rejects the overlong encoding C0 80", function()
      rejects('"\xC0\x80"', "invalid UTF-8 in string", 2)
      rejects('"\xC1\xBF"', "invalid UTF-8 in string", 2)
      rejects('"\xE0\x80\x80"', "invalid UTF-8 in string", 2)
      rejects('"\xF0\x80\x80\x80"', "invalid UTF-8 in string", 2)
    end)

    it("rejects an encoded UTF-16 surrogate (ED A0 80)", function()
      rejects('"\xED\xA0\x80"', "invalid UTF-8 in string", 2)
      rejects('"ab\xED\xBF\xBF"', "invalid UTF-8 in string", 4)
    end)

    it("rejects code points above U+10FFFF (F4 90 80 80, F5..FF)", function()
      rejects('"\xF4\x90\x80\x80"', "invalid UTF-8 in string", 2)
      rejects('"\xF5\x80\x80\x80"', "invalid UTF-8 in string", 2)
      rejects('"\xFF"', "invalid UTF-8 in string", 2)
    end)

    it("rejects a stray continuation byte", function()
      rejects('"\x80"', "invalid UTF-8 in string", 2)
      rejects('"a\xBFb"', "invalid UTF-8 in string", 3)
    end)

    it("rejects truncated sequences, inside the string and at the end of input", function()
      rejects('"\xC3"', "invalid UTF-8 in string", 2)
      rejects('"\xE2\x82"', "invalid UTF-8 in string", 2)
      rejects('"ab\xF0\x9F\x98"', "invalid UTF-8 in string", 4)
      rejects('"\xE2\x82', "invalid UTF-8 in string", 2)
      rejects('"\xE2\x82x"', "invalid UTF-8 in string", 2)
    end)

    it("rejects invalid UTF-8 after an escape too", function()
      rejects('"\\n\xC0\x80"', "invalid UTF-8 in string", 4)
    end)

    it("rejects invalid UTF-8 in object keys", function()
      rejects('{"\xFF": 1}', "invalid UTF-8 in string", 3)
    end)
  end)

  describe("numbers", function()
    it("decodes integer lexemes as Lua integers", function()
      gives_integer("0", 0)
      gives_integer("1", 1)
      gives_integer("-1", -1)
      gives_integer("1234567890", 1234567890)
      gives_integer("9007199254740993", 9007199254740993)
    end)

    it("decodes int64 max and min exactly, as integers", function()
      gives_integer("9223372036854775807", maxinteger)
      gives_integer("-9223372036854775808", mininteger)
      local t = decode("[9223372036854775807, -9223372036854775808]")
      assert.are.equal("integer", mtype(t[1]))
      assert.are.equal(maxinteger, t[1])
      assert.are.equal("integer", mtype(t[2]))
      assert.are.equal(mininteger, t[2])
    end)

    it("decodes integers beyond int64 as floats (2^63, -2^63-1, 20+ digits)", function()
      gives_float("9223372036854775808", 2.0 ^ 63)
      gives_float("-9223372036854775809", -(2.0 ^ 63))
      gives_float("18446744073709551616", 2.0 ^ 64)
      gives_float("123456789012345678901234567890", 1.2345678901234568e29)
      gives_float("100000000000000000000", 1e20)
    end)

    it("decodes -0 as integer zero and -0.0 as a negative zero float", function()
      gives_integer("-0", 0)
      gives_float("-0.0", -0.0)
      gives_float("-0e0", -0.0)
      gives_float("0.0", 0.0)
    end)

    it("decodes lexemes with a fraction as floats, even when whole", function()
      gives_float("1.0", 1.0)
      gives_float("1.5", 1.5)
      gives_float("-2.25", -2.25)
      gives_float("123.456", 123.456)
    end)

    it("decodes exponents (e, E, signs) as floats", function()
      gives_float("1e2", 100.0)
      gives_float("1E2", 100.0)
      gives_float("1e+2", 100.0)
      gives_float("1e-2", 0.01)
      gives_float("-1.5e3", -1500.0)
      gives_float("0e0", 0.0)
      gives_float("25E-1", 2.5)
    end)

    it("decodes 0.1, 1e22 and 1e23 to the nearest double", function()
      gives_float("0.1", 0.1)
      gives_float("1e22", 1e22)
      gives_float("1e23", 1e23)
      gives_float("0.3", 0.3)
      gives_float("0.30000000000000004", 0.30000000000000004)
    end)

    it("decodes the smallest denormal 5e-324 and other denormals", function()
      gives_float("5e-324", 5e-324)
      assert.is_true(decode("5e-324") > 0)
      gives_float("4.9406564584124654e-324", 5e-324)
      gives_float("2.2250738585072009e-308", 2.2250738585072009e-308)
      gives_float("1e-310", 1e-310)
    end)

    it("decodes the smallest normal and the largest finite double", function()
      gives_float("2.2250738585072014e-308", 2.2250738585072014e-308)
      gives_float("1.7976931348623157e308", 1.7976931348623157e308)
      gives_float("-1.7976931348623157e308", -1.7976931348623157e308)
    end)

    it("underflows numbers far below the denormals to zero", function()
      gives_float("1e-400", 0.0)
      gives_float("-1e-400", -0.0)
      gives_float("2e-324", 0.0)
    end)

    it("rejects numbers beyond the double range (1e400), at the number", function()
      rejects("1e400", "number out of range", 1)
      rejects("-1e400", "number out of range", 1)
      rejects("[1, 1.8e308]", "number out of range", 5)
      rejects("1" .. ("0"):rep(400), "number out of range", 1)
    end)

    it("round-trips 17-digit doubles exactly as tonumber does", function()
      -- A fixed-seed xorshift over bit patterns: every finite double is fair game.
      local x = 88172645463325252
      for _ = 1, 2000 do
        x = x ~ (x << 13); x = x ~ (x >> 7); x = x ~ (x << 17)
        local f = string.unpack("<d", string.pack("<i8", x))
        if f == f and f ~= huge and f ~= -huge then
          local text = string.format("%.17g", f)
          local v = decode(text)
          assert.are.equal(tonumber(text), v, text)
          assert.are.equal(f, v, text)
        end
      end
    end)

    it("rounds correctly where a fast path would not (Clinger boundaries, many digits)", function()
      for _, text in ipairs {
        "9007199254740993.0", "9007199254740992e-22", "9007199254740993e-22", "1e-22", "123456789e22",
        "0.1000000000000000055511151231257827021181583404541015625",
        "2.2250738585072011e-308", "7.2057594037927933e16", "1.00000000000000011102230246251565404236316680908203125",
        "0.000000000000000000000000000001", "1234567890123456789.5", "9999999999999999999",
        "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.9999",
      } do
        assert.are.equal(tonumber(text), decode(text), text)
      end
    end)

    it("rejects a leading zero", function()
      rejects("01", "leading zero in number", 1)
      rejects("-01", "leading zero in number", 2)
      rejects("[00]", "leading zero in number", 2)
      rejects("00.5", "leading zero in number", 1)
    end)

    it("rejects '1.' and '1.e5' (a digit must follow the point)", function()
      rejects("1.", "expected a digit after '.' but found end of input", 3)
      rejects("1.e5", "expected a digit after '.' but found 'e'", 3)
      rejects("[1.]", "expected a digit after '.' but found ']'", 4)
    end)

    it("rejects a lone '-' and a '-' not followed by a digit", function()
      rejects("-", "expected a digit but found end of input", 2)
      rejects("-a", "expected a digit but found 'a'", 2)
      rejects("--1", "expected a digit but found '-'", 2)
      rejects("- 1", "expected a digit but found ' '", 2)
    end)

    it("rejects an exponent with no digits", function()
      rejects("1e", "expected a digit in the exponent but found end of input", 3)
      rejects("1e+", "expected a digit in the exponent but found end of input", 4)
      rejects("1E-x", "expected a digit in the exponent but found 'x'", 4)
    end)

    it("rejects '+1', '.5', hex, NaN and Infinity", function()
      rejects("+1", "expected a JSON value but found '+'", 1)
      rejects(".5", "expected a JSON value but found '.'", 1)
      rejects("0x10", "expected end of input after the JSON value but found 'x'", 2)
      rejects("NaN", "expected a JSON value but found 'N'", 1)
      rejects("nan", "expected a JSON value but found 'n'", 1)
      rejects("Infinity", "expected a JSON value but found 'I'", 1)
      rejects("-Infinity", "expected a digit but found 'I'", 2)
    end)
  end)

  describe("malformed documents", function()
    it("rejects empty input and white space alone", function()
      rejects("", "expected a JSON value but found end of input", 1)
      rejects("   ", "expected a JSON value but found end of input", 4)
    end)

    it("rejects trailing garbage after the value", function()
      rejects("[1] x", "expected end of input after the JSON value but found 'x'", 5)
      rejects("[1]]", "expected end of input after the JSON value but found ']'", 4)
      rejects("1 2", "expected end of input after the JSON value but found '2'", 3)
      rejects("truex", "expected end of input after the JSON value but found 'x'", 5)
      rejects("[1]\0", "expected end of input after the JSON value but found byte 0x00", 4)
    end)

    it("rejects an unterminated string, pointing at its opening quote", function()
      rejects('"abc', "unterminated string", 1)
      rejects('["abc', "unterminated string", 2)
      rejects('"ab\\', "unterminated string", 1)
      rejects('"a\\"', "unterminated string", 1)
    end)

    it("rejects an unterminated array", function()
      rejects("[", "expected a JSON value but found end of input", 2)
      rejects("[1,2", "expected ',' or ']' in array but found end of input", 5)
      rejects("[1,", "expected a JSON value but found end of input", 4)
    end)

    it("rejects an unterminated object", function()
      rejects("{", "expected a string key in object but found end of input", 2)
      rejects('{"a":1', "expected ',' or '}' in object but found end of input", 7)
      rejects('{"a":', "expected a JSON value but found end of input", 6)
    end)

    it("rejects a missing colon after an object key", function()
      rejects('{"a" 1}', "expected ':' after object key but found '1'", 6)
      rejects('{"a"}', "expected ':' after object key but found '}'", 5)
      rejects('{"a"', "expected ':' after object key but found end of input", 5)
    end)

    it("rejects missing commas", function()
      rejects("[1 2]", "expected ',' or ']' in array but found '2'", 4)
      rejects('{"a":1 "b":2}', "expected ',' or '}' in object but found '\"'", 8)
    end)

    it("rejects keys that are not strings", function()
      rejects("{1:2}", "expected a string key in object but found '1'", 2)
      rejects("{'a':1}", "expected a string key in object but found '''", 2)
      rejects("{a:1}", "expected a string key in object but found 'a'", 2)
    end)

    it("rejects trailing commas", function()
      rejects("[1,]", "expected a JSON value but found ']'", 4)
      rejects('{"a":1,}', "expected a string key in object but found '}'", 8)
    end)

    it("rejects bad literals (tru, nul, fals, True), at the literal", function()
      rejects("tru", "expected a JSON value but found 't'", 1)
      rejects("nul", "expected a JSON value but found 'n'", 1)
      rejects("fals", "expected a JSON value but found 'f'", 1)
      rejects("True", "expected a JSON value but found 'T'", 1)
      rejects("[nulx]", "expected a JSON value but found 'n'", 2)
    end)

    it("rejects comments", function()
      rejects("[1]//c", "expected end of input after the JSON value but found '/'", 4)
      rejects("/*c*/[1]", "expected a JSON value but found '/'", 1)
    end)

    it("rejects a byte order mark and white space outside the JSON four", function()
      rejects("\xEF\xBB\xBF[1]", "expected a JSON value but found byte 0xEF", 1)
      rejects("\f1", "expected a JSON value but found byte 0x0C", 1)
      rejects("[1,\v2]", "expected a JSON value but found byte 0x0B", 4)
    end)

    it("reports errors deep inside a document at the right byte", function()
      rejects('{"a":[1,{"b":[true,fals]}]}', "expected a JSON value but found 'f'", 20)
    end)
  end)

  describe("nesting depth", function()
    it("accepts 1000 nested arrays by default", function()
      local t = decode(nest("[", "]", 1000))
      assert.are.equal(1000, depth_of(t))
    end)

    it("rejects 1001 nested arrays, at the 1001st bracket", function()
      rejects(nest("[", "]", 1001), "nesting deeper than 1000 levels", 1001)
    end)

    it("counts objects as levels too", function()
      assert.is_table(decode(nest('{"a":', "}", 1000, "1")))
      rejects(nest('{"a":', "}", 1001, "1"), "nesting deeper than 1000 levels", 5001)
    end)

    it("takes a custom max_depth as second argument", function()
      assert.are.same({ { 1 } }, decode("[[1]]", 2))
      rejects("[[[1]]]", "nesting deeper than 2 levels", 3, 2)
      assert.are.same({}, decode("[]", 1))
      rejects("[[]]", "nesting deeper than 1 levels", 2, 1)
      assert.are.equal(7, decode("7", 1))
    end)

    it("accepts up to 10000 levels when asked, and no more", function()
      assert.are.equal(10000, depth_of(decode(nest("[", "]", 10000), 10000)))
      rejects(nest("[", "]", 10001), "nesting deeper than 10000 levels", 10001, 10000)
    end)

    it("raises on a max_depth outside 1..10000 or not a number (argcheck)", function()
      assert.has_error(function() decode("[]", 0) end)
      assert.has_error(function() decode("[]", -1) end)
      assert.has_error(function() decode("[]", 10001) end)
      assert.has_error(function() decode("[]", "deep") end)
      local ok, err = pcall(core.decode, "[]", 0)
      assert.is_false(ok)
      assert.matches("bad argument #2", err, 1, true)
      assert.matches("max_depth must be in 1..10000", err, 1, true)
    end)

    it("raises when the text is not a string", function()
      assert.has_error(function() decode(nil) end)
      assert.has_error(function() decode({}) end)
    end)
  end)

  describe("large documents", function()
    it("decodes a 100k-element array", function()
      local parts = {}
      for i = 1, 100000 do parts[i] = tostring(i) end
      local t = decode("[" .. table.concat(parts, ",") .. "]")
      assert.are.equal(100000, #t)
      assert.are.equal(1, t[1])
      assert.are.equal(50000, t[50000])
      assert.are.equal(100000, t[100000])
    end)

    it("decodes a 100k-member object", function()
      local parts = {}
      for i = 1, 100000 do parts[i] = string.format('"k%d":%d', i, i) end
      local t = decode("{" .. table.concat(parts, ",") .. "}")
      assert.are.equal(1, t.k1)
      assert.are.equal(100000, t.k100000)
    end)

    it("decodes many array-of-object records (a big data_series body)", function()
      local parts = {}
      for i = 1, 20000 do parts[i] = string.format('{"time":"2024-01-%02d","size":%d}', i % 28 + 1, i * 1000003) end
      local t = decode('{"message":"success","data":[' .. table.concat(parts, ",") .. "]}")
      assert.are.equal(20000, #t.data)
      assert.are.equal(20000 * 1000003, t.data[20000].size)
      assert.are.equal("integer", mtype(t.data[20000].size))
    end)
  end)

  describe("the input string", function()
    it("is not modified by decoding (Lua strings are shared): decoding twice gives the same", function()
      -- Short strings are interned: the literal below *is* every equal string in the
      -- state, so an in-place unescape would show up in `doc` itself.
      local doc = '{"k\\n":"a\\u00e9\\"b\\\\","x":["\\uD83D\\uDE00\\t"]}'
      local bytes = { doc:byte(1, -1) }
      local first = decode(doc)
      local second = decode(doc)
      assert.are.same(first, second)
      assert.are.same({ ["k\n"] = 'a\xC3\xA9"b\\', x = { "\xF0\x9F\x98\x80\t" } }, second)
      assert.are.same(bytes, { doc:byte(1, -1) })
      assert.are.equal('{"k\\n":"a\\u00e9\\"b\\\\","x":["\\uD83D\\uDE00\\t"]}', doc)
    end)

    it("is not modified when it is long (not interned) either", function()
      local doc = '["' .. ("\\n\\u0041"):rep(100) .. '"]'
      local copy = table.concat { '["', ("\\n\\u0041"):rep(100), '"]' }
      assert.are.same(decode(doc), decode(doc))
      assert.are.equal(copy, doc)
    end)

    it("is not modified when decoding fails halfway through an escaped string", function()
      local doc = '["\\n\\t\\u0041", "\\n\\uD800"]'
      local bytes = { doc:byte(1, -1) }
      assert.is_nil(decode(doc))
      assert.are.same(bytes, { doc:byte(1, -1) })
    end)
  end)

  describe("the C locale", function()
    -- Expected values come from literals compiled before any locale switch.
    local cases = {
      { "0.30000000000000004", 0.30000000000000004 }, -- needs strtod, not the fast path
      { "1.5", 1.5 },
      { "123456789012345678.5", 123456789012345678.5 },
      { "1e23", 1e23 },
      { "5e-324", 5e-324 },
      { "-2.5e-3", -2.5e-3 },
      { "0.1000000000000000055511151231257827021181583404541015625", 0.1 },
    }

    local function check_cases()
      for _, c in ipairs(cases) do
        assert.are.equal(c[2], decode(c[1]), c[1])
        assert.are.equal(c[2], decode("[" .. c[1] .. "]")[1], c[1])
      end
      assert.are.same({ 1, 5 }, decode("[1,5]"))
      assert.is_nil(decode("1,5"))
    end

    it("does not matter: numbers decode the same under a comma-decimal locale (de_DE)", function()
      local old = os.setlocale()
      finally(function() os.setlocale(old) end)
      local got = try_locale { "de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8" }
      if not got then
        pending("no comma-decimal locale installed (apt-get install locales; "
          .. "sed -i 's/^# de_DE.UTF-8/de_DE.UTF-8/' /etc/locale.gen; locale-gen)")
      end
      assert.are.equal(",", string.format("%.1f", 0.5):sub(2, 2)) -- the switch took effect
      check_cases()
    end)

    -- Regression: the decoder put only the first byte of the locale's decimal
    -- point in place of '.', so under ps_AF (U+066B, two bytes) strtod stopped
    -- there and "0.30000000000000004" decoded as 0.
    it("does not matter with a multibyte decimal point either (ps_AF, U+066B)", function()
      local old = os.setlocale()
      finally(function() os.setlocale(old) end)
      local got = try_locale { "ps_AF.UTF-8", "ps_AF.utf8", "ps_AF" }
      if not got then
        pending("locale ps_AF not installed (apt-get install locales; "
          .. "sed -i 's/^# ps_AF UTF-8/ps_AF UTF-8/' /etc/locale.gen; locale-gen)")
      end
      assert.are.equal("\xD9\xAB", string.format("%.1f", 0.5):sub(2, 3)) -- the switch took effect
      check_cases()
    end)
  end)
end)
