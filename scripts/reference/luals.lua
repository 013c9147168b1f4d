--- scripts/reference/luals.lua: reads lua-language-server annotations
-- (`---@param`, `---@return`, `---@class`, `---@field`) and the doc comments
-- of a Lua source, by their syntax: the functions a file defines, the keys
-- of its table constructors, the table it returns, the classes it declares.
-- Part of scripts/reference.lua (which loads it with dofile). Plain Lua 5.1-5.4.

local M = {}

---------------------------------------------------------------------------
-- Types: LuaLS type expressions may hold spaces, so they are scanned, not
-- split at the first blank.
---------------------------------------------------------------------------

local function skip_space(s, i)
  return (s:find("[^ \t]", i)) or #s + 1
end

-- The end of the balanced group opening at s[i] ("(", "{", "<", "["), or nil.
local function balanced(s, i)
  local open = s:sub(i, i)
  local close = ({ ["("] = ")", ["{"] = "}", ["<"] = ">", ["["] = "]" })[open]
  local depth, j = 0, i
  while j <= #s do
    local c = s:sub(j, j)
    if c == '"' or c == "'" then
      local e = s:find(c, j + 1, true)
      if not e then return nil end
      j = e
    elseif c == open then
      depth = depth + 1
    elseif c == close then
      depth = depth - 1
      if depth == 0 then return j end
    end
    j = j + 1
  end
  return nil
end

local scan_type

-- One type without `|`: returns the index after it, or nil.
local function scan_primary(s, i)
  local c = s:sub(i, i)
  local j
  if c == '"' or c == "'" then
    j = s:find(c, i + 1, true)
    if not j then return nil end
    j = j + 1
  elseif c == "{" or c == "(" then
    j = balanced(s, i)
    if not j then return nil end
    j = j + 1
  else
    local word = s:match("^[%a_][%w_.*]*", i)
    if not word then
      word = s:match("^%-?%d+", i) -- integer literal types
      if not word then return nil end
    end
    j = i + #word
    if word == "fun" and s:sub(j, j) == "(" then
      j = balanced(s, j)
      if not j then return nil end
      j = j + 1
      -- fun(...): A, B
      local k = skip_space(s, j)
      if s:sub(k, k) == ":" then
        k = skip_space(s, k + 1)
        local e = scan_type(s, k)
        if not e then return nil end
        j = e
        while true do
          k = skip_space(s, j)
          if s:sub(k, k) ~= "," then break end
          e = scan_type(s, skip_space(s, k + 1))
          if not e then break end
          j = e
        end
      end
    elseif s:sub(j, j) == "<" then
      j = balanced(s, j)
      if not j then return nil end
      j = j + 1
    end
  end
  while true do
    if s:sub(j, j + 1) == "[]" then
      j = j + 2
    elseif s:sub(j, j) == "?" then
      j = j + 1
    else
      break
    end
  end
  return j
end

-- A whole type (alternatives joined by `|`) from s[i]: the index after it, or nil.
scan_type = function(s, i)
  local j = scan_primary(s, i)
  if not j then return nil end
  while true do
    local k = skip_space(s, j)
    if s:sub(k, k) ~= "|" then return j end
    local e = scan_primary(s, skip_space(s, k + 1))
    if not e then return j end
    j = e
  end
end

--- Split "type rest" into the type and the rest (both trimmed); the type
-- is nil when `s` does not start with one.
function M.split_type(s)
  local i = skip_space(s, 1)
  local j = scan_type(s, i)
  if not j then return nil, s:match("^%s*(.-)%s*$") end
  return s:sub(i, j - 1), s:sub(j):match("^%s*(.-)%s*$")
end

---------------------------------------------------------------------------
-- Parsing one file
---------------------------------------------------------------------------

-- A doc comment's lines -> { text = {lines}, params, returns, classes }.
-- `---@class` starts a class: the prose before it and the `---@field`s
-- after it are the class's.
local function read_block(lines, first_line)
  local block = { text = {}, params = {}, returns = {}, classes = {}, line = first_line,
    doc = lines[1] and lines[1]:match("^%s*%-%-%-") ~= nil }
  local class
  for _, raw in ipairs(lines) do
    local body = raw:match("^%s*%-%-%-?(.*)$"):gsub("^ ", "", 1)
    local tag, value = body:match("^@(%a+)%s*(.*)$")
    if raw:match("^%s*%-%-%-@") then
      if tag == "param" then
        local name, optional, rest = value:match("^([%w_.]+)(%??)%s*(.*)$")
        if name then
          local t, desc = M.split_type(rest)
          block.params[#block.params + 1] = { name = name, optional = optional == "?", type = t,
            desc = desc }
        end
      elseif tag == "return" then
        local t, rest = M.split_type(value)
        local name, desc = rest:match("^([%a_][%w_]*)%s*(.*)$")
        if not name then desc = rest end
        block.returns[#block.returns + 1] = { type = t, name = name, desc = desc:gsub("^#%s*", "") }
      elseif tag == "class" then
        local name, parent = value:match("^([%w_.]+)%s*:?%s*([%w_.]*)")
        class = { name = name, parent = parent ~= "" and parent or nil, fields = {},
          text = block.text, line = first_line }
        block.classes[#block.classes + 1] = class
        block.text = {}
      elseif tag == "field" and class then
        local name, optional, rest = value:match("^([%w_]+)(%??)%s*(.*)$")
        if name then
          local t, desc = M.split_type(rest)
          class.fields[#class.fields + 1] = { name = name, optional = optional == "?", type = t,
            desc = desc }
        end
      end
    elseif not (tag or body:match("^%s*luacheck:")) then -- not an LDoc tag, not a directive
      block.text[#block.text + 1] = body
    end
  end
  return block
end

-- Does a block say something in words (not only annotations)?
local function has_prose(block)
  if not block or not block.doc then return false end
  for _, line in ipairs(block.text) do
    if line:match("%S") then return true end
  end
  return false
end
M.has_prose = has_prose

local function param_names(list)
  local names = {}
  for name in list:gmatch("[%w_.]+") do names[#names + 1] = name end
  return names
end

-- Braces opened minus braces closed on a line of code (strings and a
-- trailing comment left out).
local function brace_balance(line)
  local code_only = line:gsub("\\.", ""):gsub('"[^"]*"', ""):gsub("'[^']*'", ""):gsub("%-%-.*$", "")
  local _, opened = code_only:gsub("{", "")
  local _, closed = code_only:gsub("}", "")
  return opened - closed
end

--- Parse one Lua source: returns
-- `{ path, doc (the file's first comment block), returns (the name of the
-- table the file returns), items = { {kind, ...} in source order },
-- classes = { {name, fields, text, local_name} } }`.
-- Item kinds: "function" (`function T.f(...)`, `function T:f(...)`),
-- "local_function", "assign" (`T.k = expr`), "key" (a key of a top-level
-- `local t = {` constructor), each with its `doc` block (or nil) and line.
function M.parse(text, path)
  local file = { path = path, items = {}, classes = {}, locals = {} }
  local pending, pending_line = {}, nil
  local constructor, depth -- the local whose multi-line table constructor we are in, and its depth
  local n = 0
  local first_block_done = false

  local function take_block()
    if #pending == 0 then return nil end
    local block = read_block(pending, pending_line)
    pending = {}
    for _, class in ipairs(block.classes) do file.classes[#file.classes + 1] = class end
    return block
  end

  local function add(item, block)
    item.doc, item.line = block, n
    file.items[#file.items + 1] = item
  end

  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if n == 1 and line:match("^#!") then
      line = ""
    end
    if line:match("^%s*%-%-%[%[") or (n <= 3 and line:match("^%]%]")) then
      line = "" -- the shell trampoline of a script such as this one
    end
    if line:match("^%s*%-%-") then
      if #pending == 0 then pending_line = n end
      pending[#pending + 1] = line
    else
      local block = take_block()
      if block and not first_block_done and pending_line and pending_line <= 3 then
        file.doc = block
        block = nil
      end
      if line:match("%S") then first_block_done = true end
      if block and #block.classes > 0 then
        -- ---@class X above `local X = ...`: the local holds the class.
        local name = line:match("^local%s+([%a_][%w_]*)%s*=")
        if name then block.classes[#block.classes].local_name = name end
        block = nil
      end
      if constructor then
        local key = depth == 1 and line:match("^%s+([%a_][%w_]*)%s*=")
        if key then add({ kind = "key", table = constructor, name = key }, block) end
        depth = depth + brace_balance(line)
        if depth <= 0 then constructor = nil end
      else
        local t, sep, name, args = line:match("^function%s+([%a_][%w_]*)([.:])([%a_][%w_]*)%s*%(([^)]*)%)")
        if t then
          add({ kind = "function", table = t, method = sep == ":", name = name,
            args = param_names(args) }, block)
        else
          local lname, largs = line:match("^local%s+function%s+([%a_][%w_]*)%s*%(([^)]*)%)")
          if lname then
            add({ kind = "local_function", name = lname, args = param_names(largs) }, block)
            file.locals[lname] = file.items[#file.items]
          else
            local at, key, value = line:match("^([%a_][%w_]*)%.([%a_][%w_]*)%s*=%s*(.-)%s*$")
            if at then
              local fargs = value:match("^function%s*%(([^)]*)%)")
              if fargs then
                add({ kind = "function", table = at, name = key, args = param_names(fargs) }, block)
              else
                add({ kind = "assign", table = at, name = key, value = value }, block)
              end
            else
              local cname, rest = line:match("^local%s+([%a_][%w_]*)%s*=%s*(.-)%s*$")
              if cname and rest:match("^{") and brace_balance(rest) > 0 then
                constructor, depth = cname, brace_balance(rest)
              end
              local returned = line:match("^return%s+([%a_][%w_]*)%s*$")
              if returned then file.returns = returned end
            end
          end
        end
      end
    end
  end
  take_block()
  return file
end

return M
