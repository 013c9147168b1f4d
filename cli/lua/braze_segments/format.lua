--- Output formats of the braze-segments command: CSV (RFC 4180), aligned
-- terminal tables, and human-readable numbers.
-- @module braze_segments.format
local json = require("braze_segments.json")

local M = {}

--- The characters tables and plots are drawn with: Unicode, or ASCII for a
-- locale that is not UTF-8 (LC_ALL=C, say), where the others would print
-- as mojibake. `M.use_ascii(true)` switches; `M.glyphs()` is the set in use.
M.UNICODE = { ellipsis = "…", newline = "↵", replacement = "\u{FFFD}", rule = "─",
  sparks = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" }, eighths = { "▁", "▂", "▃", "▄", "▅", "▆", "▇" },
  full = "█", tick = "┤", axis = "│", corner = "└" }
M.ASCII = { ellipsis = "...", newline = "|", replacement = "?", rule = "-",
  sparks = { "_", ".", "-", "~", "=", "+", "*", "#" }, eighths = { ".", ".", ".", ":", ":", ":", ":" },
  full = "#", tick = "+", axis = "|", corner = "+" }
local glyphs = M.UNICODE

function M.use_ascii(ascii) glyphs = ascii and M.ASCII or M.UNICODE end
function M.glyphs() return glyphs end

--- Whether the environment's locale (LC_ALL, else LC_CTYPE, else LANG;
--- `getenv` as os.getenv) is a UTF-8 one.
function M.utf8_locale(getenv)
  for _, name in ipairs({ "LC_ALL", "LC_CTYPE", "LANG" }) do
    local value = getenv(name)
    if value and value ~= "" then return value:upper():find("UTF%-?8") ~= nil end
  end
  return false
end

local concat, format, type, tostring = table.concat, string.format, type, tostring
local null = json.null

-- -------------------------------------------------------------------------
-- CSV (RFC 4180): records end with CRLF; a field holding a comma, a double
-- quote, CR or LF is quoted, with quotes doubled. Booleans are true/false,
-- null and missing values are empty, arrays are joined with ';'.

M.CRLF = "\r\n"

--- A value as CSV field text (not yet quoted).
function M.text(v, sep)
  local tv = type(v)
  if v == nil or v == null then return "" end
  if tv == "boolean" then return v and "true" or "false" end
  if tv == "number" then return json.number(v) end
  if tv == "string" then return json.valid_utf8(v) end
  if tv == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = M.text(v[i]) end
    return concat(parts, sep or ";")
  end
  return tostring(v)
end

-- Formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell
-- that begins with = + - @ TAB or CR as a formula. A string cell that
-- begins so (after any run of quotes ') gets one ' in front, which shows it
-- as text; counting the quotes keeps it reversible (M.csv_unguard), and a
-- name that merely begins with ' ("'90s fans") is left alone. A NUL byte
-- becomes U+FFFD. Numbers and booleans are written as they are.
local FORMULA = "^'*[=+%-@\t\r]"
local GUARDED = "^'+[=+%-@\t\r]"

--- A string as a CSV cell's text: valid UTF-8, no NUL, guarded against formulas.
function M.csv_string(s)
  s = json.valid_utf8(s)
  if s:find("%z") then s = s:gsub("%z", "\u{FFFD}") end
  if s:find(FORMULA) then s = "'" .. s end
  return s
end

--- Undo M.csv_string's guard on a cell read back (the NUL and UTF-8
--- repairs cannot be undone: M.csv_string(x) is what a cell of x reads back as).
function M.csv_unguard(s)
  if s:find(GUARDED) then return s:sub(2) end
  return s
end

-- A value as a CSV cell's text: strings guarded, arrays guarded element by
-- element (so a program splitting the cell on ';' finds no formula either).
local function csv_text(v)
  local tv = type(v)
  if tv == "string" then return M.csv_string(v) end
  if tv == "table" and v ~= null then
    local parts = {}
    for i = 1, #v do
      local e = v[i]
      parts[i] = type(e) == "string" and M.csv_string(e) or M.text(e)
    end
    local s = concat(parts, ";")
    if s:find("^[=+%-@\t\r]") then s = "'" .. s end -- a number first: -1;...
    return s
  end
  return M.text(v)
end

--- One CSV field, quoted when needed.
function M.csv_field(v)
  local s = csv_text(v)
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- One CSV record (with its CRLF) from an array of values (`n` fields).
function M.csv_row(values, n)
  local out = {}
  for i = 1, n or #values do out[i] = M.csv_field(values[i]) end
  return concat(out, ",") .. M.CRLF
end

--- Parse CSV text. Returns the complete records (arrays of strings) and,
-- for each, the byte offset just after it; a trailing record that is not
-- ended by a line break outside quotes is left out (it is incomplete).
---@param text string
---@return string[][] records
---@return integer[] ends
function M.parse_csv(text)
  local records, ends = {}, {}
  local i, n = 1, #text
  local record, field, quoted = {}, {}, false
  while i <= n do
    local c = text:sub(i, i)
    if quoted then
      local q = text:find('"', i, true)
      if not q then return records, ends end -- unterminated quoted field
      field[#field + 1] = text:sub(i, q - 1)
      if text:sub(q + 1, q + 1) == '"' then
        field[#field + 1] = '"'
        i = q + 2
      else
        quoted = false
        i = q + 1
      end
    elseif c == '"' then
      quoted = true
      i = i + 1
    elseif c == "," then
      record[#record + 1] = concat(field)
      field = {}
      i = i + 1
    elseif c == "\r" or c == "\n" then
      if c == "\r" and text:sub(i + 1, i + 1) ~= "\n" then
        if i + 1 > n then return records, ends end -- CR without its LF yet
      end
      record[#record + 1] = concat(field)
      records[#records + 1] = record
      i = (c == "\r" and text:sub(i + 1, i + 1) == "\n") and i + 2 or i + 1
      ends[#ends + 1] = i - 1
      record, field = {}, {}
    else
      local j = text:find('[,"\r\n]', i) or n + 1
      field[#field + 1] = text:sub(i, j - 1)
      i = j
    end
  end
  return records, ends
end

-- -------------------------------------------------------------------------
-- Numbers

--- 1234567 -> "1,234,567".
function M.thousands(v)
  if type(v) ~= "number" then return M.text(v) end
  local s = json.number(v)
  local sign, int, rest = s:match("^(%-?)(%d+)(.*)$")
  if not int then return s end
  int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return sign .. int .. rest
end

local UNITS = { { 1e12, "T" }, { 1e9, "B" }, { 1e6, "M" }, { 1e3, "K" } }

--- 1234567 -> "1.2M" (K, M, B, T), with `decimals` digits (default 1;
-- trailing zeros dropped). Values under 1000 are shown whole.
function M.human(v, decimals)
  if type(v) ~= "number" then return M.text(v) end
  decimals = decimals or 1
  for _, u in ipairs(UNITS) do
    local s = format("%." .. decimals .. "f", v / u[1])
    if tonumber(s:match("[%d.]+")) >= 1 then
      if s:find("%.") then s = s:gsub("0+$", ""):gsub("%.$", "") end
      return s .. u[2]
    end
  end
  return format("%.0f", v)
end

--- "+1,234 (+5.6%)": the change from `a` to `b`.
function M.change(a, b)
  local d = b - a
  local s = (d >= 0 and "+" or "-") .. M.thousands(math.abs(d))
  if a ~= 0 then
    s = s .. format(" (%s%.2f%%)", d >= 0 and "+" or "-", math.abs(d) / math.abs(a) * 100)
  end
  return s
end

-- -------------------------------------------------------------------------
-- Terminal width of text

-- East Asian wide and emoji ranges (two columns in a terminal).
local WIDE = {
  { 0x1100, 0x115F }, { 0x231A, 0x231B }, { 0x2329, 0x232A }, { 0x23E9, 0x23EC },
  { 0x23F0, 0x23F0 }, { 0x23F3, 0x23F3 }, { 0x25FD, 0x25FE }, { 0x2614, 0x2615 },
  { 0x2648, 0x2653 }, { 0x267F, 0x267F }, { 0x2693, 0x2693 }, { 0x26A1, 0x26A1 },
  { 0x26AA, 0x26AB }, { 0x26BD, 0x26BE }, { 0x26C4, 0x26C5 }, { 0x26CE, 0x26CE },
  { 0x26D4, 0x26D4 }, { 0x26EA, 0x26EA }, { 0x26F2, 0x26F3 }, { 0x26F5, 0x26F5 },
  { 0x26FA, 0x26FA }, { 0x26FD, 0x26FD }, { 0x2705, 0x2705 }, { 0x270A, 0x270B },
  { 0x2728, 0x2728 }, { 0x274C, 0x274C }, { 0x274E, 0x274E }, { 0x2753, 0x2755 },
  { 0x2757, 0x2757 }, { 0x2795, 0x2797 }, { 0x27B0, 0x27B0 }, { 0x27BF, 0x27BF },
  { 0x2B1B, 0x2B1C }, { 0x2B50, 0x2B50 }, { 0x2B55, 0x2B55 }, { 0x2E80, 0x303E },
  { 0x3041, 0x33FF }, { 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF }, { 0xA000, 0xA4CF },
  { 0xAC00, 0xD7A3 }, { 0xF900, 0xFAFF }, { 0xFE30, 0xFE4F }, { 0xFF00, 0xFF60 },
  { 0xFFE0, 0xFFE6 }, { 0x1F004, 0x1F004 }, { 0x1F0CF, 0x1F0CF }, { 0x1F18E, 0x1F18E },
  { 0x1F191, 0x1F19A }, { 0x1F200, 0x1F64F }, { 0x1F680, 0x1F6FF }, { 0x1F7E0, 0x1F7EB },
  { 0x1F900, 0x1F9FF }, { 0x1FA70, 0x1FAFF }, { 0x20000, 0x3FFFD },
}

local function char_width(cp)
  if cp == 0 or (cp >= 0x300 and cp <= 0x36F) or cp == 0x200D
    or (cp >= 0xFE00 and cp <= 0xFE0F) then
    return 0
  end
  if cp < 0x1100 then return 1 end
  for _, r in ipairs(WIDE) do
    if cp < r[1] then return 1 end
    if cp <= r[2] then return 2 end
  end
  return 1
end

--- Text made safe for one table cell: control characters shown visibly
-- (newline as ↵, tab as a space, others as U+FFFD), valid UTF-8.
function M.cell(v)
  local s = M.text(v, ", ")
  s = s:gsub("\r\n", "\n"):gsub("\n", glyphs.newline):gsub("\t", " ")
    :gsub("[%z\1-\31\127]", glyphs.replacement)
  return s
end

--- Columns `s` takes in a terminal.
function M.width(s)
  local w = 0
  for _, cp in utf8.codes(s) do w = w + char_width(cp) end
  return w
end

--- `s` cut to at most `max` columns, ending with … (or ...) when cut.
function M.truncate(s, max)
  if M.width(s) <= max then return s end
  local out, w, room = {}, 0, max - M.width(glyphs.ellipsis)
  for _, cp in utf8.codes(s) do
    local cw = char_width(cp)
    if w + cw > room then break end
    out[#out + 1] = utf8.char(cp)
    w = w + cw
  end
  return concat(out) .. glyphs.ellipsis
end

local function pad(s, w, right)
  local gap = string.rep(" ", w - M.width(s))
  return right and gap .. s or s .. gap
end
M.pad = pad

--- Render rows as an aligned table.
-- `columns`: array of `{title=, min=, right=}`; `rows`: arrays of cell
-- strings (already made safe with M.cell). Columns shrink, widest first and
-- not below `min`, until the table fits `width` (nil: never cut).
---@return string
function M.table(columns, rows, width)
  local n = #columns
  local w = {}
  for c = 1, n do
    w[c] = M.width(columns[c].title)
    for _, row in ipairs(rows) do w[c] = math.max(w[c], M.width(row[c] or "")) end
  end
  local function total()
    local t = 2 * (n - 1)
    for c = 1, n do t = t + w[c] end
    return t
  end
  while width and total() > width do
    local best
    for c = 1, n do
      local min = columns[c].min or w[c]
      if w[c] > min and (not best or w[c] - min > w[best] - (columns[best].min or w[best])) then
        best = c
      end
    end
    if not best then break end
    w[best] = w[best] - math.min(total() - width, w[best] - (columns[best].min or w[best]))
  end
  local lines = {}
  local function line(cells, rule)
    local out = {}
    for c = 1, n do
      local s = rule and string.rep(glyphs.rule, w[c]) or M.truncate(cells[c] or "", w[c])
      out[c] = c == n and not columns[c].right and s or pad(s, w[c], columns[c].right)
    end
    lines[#lines + 1] = concat(out, "  ")
  end
  local titles = {}
  for c = 1, n do titles[c] = columns[c].title end
  line(titles)
  line(nil, true)
  for _, row in ipairs(rows) do line(row) end
  return concat(lines, "\n") .. "\n"
end

--- Render key/value pairs: `pairs_list` is an array of `{key, text}`.
function M.keyvalue(pairs_list)
  local kw = 0
  for _, kv in ipairs(pairs_list) do kw = math.max(kw, M.width(kv[1])) end
  local lines = {}
  for _, kv in ipairs(pairs_list) do lines[#lines + 1] = pad(kv[1], kw) .. "  " .. kv[2] end
  return concat(lines, "\n") .. "\n"
end

return M
