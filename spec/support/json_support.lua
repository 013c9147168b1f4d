-- What the two decoder specs share: a PRNG that gives the same numbers on
-- every Lua, and the rule for integers a Lua without integers keeps as digits.
local floor = math.floor

local M = {}

--- Marsaglia's two 16-bit multiply-with-carry generators, combined. Every
--- product stays below 2^53, so the arithmetic is exact alike on 5.3+
--- integers and 5.1/LuaJIT doubles: a seed means the same numbers on every
--- platform and Lua build. Returns a function giving 32 random bits, as a
--- whole number.
function M.mwc32(seed)
  local z, w = 362436069 + seed % 1048576, 521288629 + floor(seed / 1048576) % 1048576
  return function()
    z = 36969 * (z % 65536) + floor(z / 65536)
    w = 18000 * (w % 65536) + floor(w / 65536)
    return ((z % 65536) * 65536 + w) % 4294967296
  end
end

--- Is `text` a JSON integer lexeme (no fraction, no exponent) beyond +-2^53,
--- what a Lua without an integer subtype gets as a string of its digits?
function M.integer_beyond_2_53(text)
  local digits = text:match("^%-?([1-9]%d*)$")
  if not digits then return false end
  return #digits > 16 or (#digits == 16 and digits > "9007199254740992")
end

return M
