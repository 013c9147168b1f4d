#!/usr/bin/env lua5.4
--[[ 2>/dev/null; exec "$(command -v lua5.4 || command -v lua5.3 || command -v lua)" "$0" "$@"
]]
--- scripts/reference.lua: writes docs/reference.md, the reference of the
-- public API, from the lua-language-server annotations (`---@param`,
-- `---@return`, `---@class`, `---@field`) and doc comments in the sources,
-- so that one annotation dialect serves the editor and the reference.
--
--     lua5.4 scripts/reference.lua            write docs/reference.md
--     lua5.4 scripts/reference.lua --check    exit 1 when docs/reference.md is
--                                             stale, or a public function or
--                                             value has no doc comment
--     lua5.4 scripts/reference.lua --stdout   print it instead
--     ... --root DIR                          another checkout (specs use it)
--
-- (`bash scripts/reference.lua` works too.) Plain Lua 5.1-5.4, no module.
-- The public API: module `braze` (lua/braze/init.lua: its functions, its
-- values, the methods of the classes it declares), `braze.errors`
-- (lua/braze/errors.lua), the classes of lua/braze/types.lua, the options
-- (the table of lua/braze/options.lua when it exists, else the fields of
-- the class braze.Options) and the transport contract
-- (lua/braze/transport/README.md, linked). Everything is found by its
-- annotation or definition syntax, never by line numbers.
-- Loaded with dofile (not run), it returns its parser and renderer.

local M = {}

local format, concat = string.format, table.concat

M.PUBLIC = {
  { path = "lua/braze/init.lua", module = "braze" },
  { path = "lua/braze/errors.lua", module = "braze.errors" },
}
M.TYPES = "lua/braze/types.lua"
M.OPTIONS = "lua/braze/options.lua"
M.TRANSPORT_README = "lua/braze/transport/README.md"
M.OUTPUT = "docs/reference.md"

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

---------------------------------------------------------------------------
-- The public API of a parsed tree
---------------------------------------------------------------------------

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- The names of the classes declared (`---@class`) in any Lua file under
-- root/lua, as a set.
function M.declared_classes(root)
  local names = {}
  local list = io.popen("find '" .. (root .. "/lua"):gsub("'", "'\\''") .. "' -name '*.lua' -type f 2>/dev/null")
  if not list then return names end
  for path in list:lines() do
    local text = read(path) or ""
    for name in ("\n" .. text):gmatch("\n%s*%-%-%-@class%s+([%w_.]+)") do names[name] = true end
  end
  list:close()
  return names
end

-- Every class by name, merged over files in the order given: a later
-- file's fields are added when the earlier ones lack them, its doc used
-- when they have none.
local function merge_classes(files)
  local by_name, order = {}, {}
  for _, file in ipairs(files) do
    for _, class in ipairs(file.classes) do
      local into = by_name[class.name]
      if not into then
        into = { name = class.name, parent = class.parent, fields = {}, seen = {}, text = {},
          file = file.path }
        by_name[class.name] = into
        order[#order + 1] = into
      end
      if not has_prose({ doc = true, text = into.text }) then into.text = class.text end
      for _, field in ipairs(class.fields) do
        if not into.seen[field.name] then
          into.seen[field.name] = field
          into.fields[#into.fields + 1] = field
        end
      end
      into.local_name = into.local_name or class.local_name
    end
  end
  return by_name, order
end

--- Read the tree at `root`: { modules = { {module, path, file, functions,
-- values, classes} }, classes, class_order, types (classes of types.lua in
-- order), options, problems = {...} }.
function M.collect(root)
  local api = { modules = {}, problems = {}, root = root }
  local function problem(fmt, ...) api.problems[#api.problems + 1] = format(fmt, ...) end

  local parsed = {}
  local types_text = read(root .. "/" .. M.TYPES)
  local types_file = types_text and M.parse(types_text, M.TYPES)
  if types_file then parsed[#parsed + 1] = types_file end
  for _, public in ipairs(M.PUBLIC) do
    local text = read(root .. "/" .. public.path)
    if not text then
      problem("%s: missing (a public module)", public.path)
    else
      local file = M.parse(text, public.path)
      parsed[#parsed + 1] = file
      api.modules[#api.modules + 1] = { module = public.module, path = public.path, file = file }
    end
  end
  -- options.lua may declare braze.Options (the editor's type of braze.new's
  -- argument) beside the table it is checked against.
  local options_text = read(root .. "/" .. M.OPTIONS)
  if options_text then parsed[#parsed + 1] = M.parse(options_text, M.OPTIONS) end
  api.classes, api.class_order = merge_classes(parsed)
  api.types = {}
  if types_file then
    for _, class in ipairs(types_file.classes) do api.types[#api.types + 1] = api.classes[class.name] end
  end

  for _, mod in ipairs(api.modules) do
    local file = mod.file
    local mt = file.returns
    if not mt then problem("%s: no `return <module table>` at its end", mod.path) end
    -- The classes this file declares on a local: their methods are public.
    local class_of = {}
    mod.classes = {}
    for _, class in ipairs(file.classes) do
      if class.local_name then
        class_of[class.local_name] = api.classes[class.name]
        mod.classes[#mod.classes + 1] = api.classes[class.name]
        api.classes[class.name].methods = api.classes[class.name].methods or {}
      end
    end
    mod.functions, mod.values = {}, {}
    local module_class = api.classes[mod.module]
    for _, item in ipairs(file.items) do
      local public_name = not item.name:match("^_") or item.name == "_VERSION"
      local where = format("%s:%d", mod.path, item.line)
      if item.kind == "function" and item.table == mt and public_name then
        mod.functions[#mod.functions + 1] = item
        item.full = mod.module .. "." .. item.name
        if not has_prose(item.doc) then problem("%s: %s has no doc comment", where, item.full) end
      elseif item.kind == "function" and class_of[item.table] and not item.name:match("^_") then
        local class = class_of[item.table]
        class.methods[#class.methods + 1] = item
        item.full = class.name .. (item.method and ":" or ".") .. item.name
        if not has_prose(item.doc) then problem("%s: %s has no doc comment", where, item.full) end
      elseif item.kind == "assign" and class_of[item.table] and not item.name:match("^_") then
        -- Client.each = each_iterator: a method defined elsewhere; the doc is
        -- the assignment's, else the local function's.
        local class = class_of[item.table]
        local target = file.locals[item.value]
        local method = { kind = "function", method = true, name = item.name, line = item.line,
          doc = has_prose(item.doc) and item.doc or (target and target.doc) or item.doc }
        method.args = {}
        for k, a in ipairs(target and target.args or {}) do
          if not (k == 1 and a == "self") then method.args[#method.args + 1] = a end
        end
        if not target and method.doc then
          for _, p in ipairs(method.doc.params) do method.args[#method.args + 1] = p.name end
        end
        method.full = class.name .. ":" .. item.name
        class.methods[#class.methods + 1] = method
        if not has_prose(method.doc) then problem("%s: %s has no doc comment", where, method.full) end
      elseif (item.kind == "assign" and item.table == mt or item.kind == "key" and item.table == mt)
        and public_name then
        item.full = mod.module .. "." .. item.name
        local target = file.locals[item.value or ""]
        if target then -- M.f = f: the local function's doc is the doc
          target.full, target.alias = item.full, item
          mod.functions[#mod.functions + 1] = target
          if not has_prose(target.doc) then problem("%s: %s has no doc comment", where, item.full) end
        else
          item.field = module_class and module_class.seen[item.name]
          mod.values[#mod.values + 1] = item
          if not has_prose(item.doc) and not (item.field and item.field.desc ~= "") then
            problem("%s: %s has no doc comment (nor a ---@field in class %s)", where, item.full,
              mod.module)
          end
        end
      end
    end
    -- ---@param names must be parameters.
    for _, fn in ipairs(mod.functions) do
      local args = {}
      for _, a in ipairs(fn.args or {}) do args[a] = true end
      for _, p in ipairs(fn.doc and fn.doc.params or {}) do
        if not args[p.name] then
          problem("%s:%d: %s documents a parameter %s it does not have", mod.path, fn.line, fn.full,
            p.name)
        end
      end
    end
  end
  -- Every braze.X an annotation names must be a class declared somewhere
  -- under lua/ (internal modules may declare the types they hand over).
  local declared = M.declared_classes(root)
  local function check_types(t, where)
    for name in (t or ""):gmatch("braze%.[%w_.]*[%w_]") do
      if not api.classes[name] and not declared[name] then
        problem("%s: unknown type %s (no ---@class %s)", where, name, name)
      end
    end
  end
  for _, mod in ipairs(api.modules) do
    local fns = {}
    for _, fn in ipairs(mod.functions) do fns[#fns + 1] = fn end
    for _, class in ipairs(mod.classes) do
      for _, fn in ipairs(class.methods or {}) do fns[#fns + 1] = fn end
    end
    for _, fn in ipairs(fns) do
      for _, list in ipairs({ fn.doc and fn.doc.params or {}, fn.doc and fn.doc.returns or {} }) do
        for _, p in ipairs(list) do check_types(p.type, format("%s:%d: %s", mod.path, fn.line, fn.full)) end
      end
    end
  end
  for _, class in ipairs(api.class_order) do
    for _, field in ipairs(class.fields) do
      check_types(field.type, format("%s: %s.%s", class.file, class.name, field.name))
    end
  end
  api.options = M.load_options(root, api)
  return api
end

-- A stand-in for a C module (braze.core) while loading a Lua one: any
-- field is another stand-in, callable, so a module that keeps references
-- to C functions loads without a build.
local function stand_in()
  local t
  t = setmetatable({}, { __index = function() return t end, __call = function() return t end })
  return t
end

--- Load the Lua module `name` of the tree at `root` (its own requires
-- resolved in that tree, C modules replaced by stand-ins), in a fresh
-- environment: never the installed copy, never a build.
function M.load_module(root, name)
  local loaded = {}
  local env = setmetatable({}, { __index = _G })
  local function load_one(modname)
    if loaded[modname] ~= nil then return loaded[modname] end
    if package.loaded[modname] ~= nil and not modname:match("^braze") then return package.loaded[modname] end
    local base = root .. "/lua/" .. modname:gsub("%.", "/")
    local chunk
    for _, path in ipairs({ base .. ".lua", base .. "/init.lua" }) do
      if exists(path) then
        local err
        if setfenv then -- Lua 5.1, LuaJIT
          chunk, err = loadfile(path)
          if chunk then setfenv(chunk, env) end
        else
          chunk, err = loadfile(path, "t", env)
        end
        if not chunk then error(err, 0) end
        break
      end
    end
    if not chunk then
      loaded[modname] = stand_in()
      return loaded[modname]
    end
    local value = chunk(modname)
    if value == nil then value = true end
    loaded[modname] = value
    return value
  end
  env.require = load_one
  return load_one(name)
end

-- The option tables of lua/braze/options.lua when it exists: a list of
-- { key, title, list = {options} } (every array field of the module whose
-- items have a `name` and a `doc`, in the order of the source), or nil.
function M.load_options(root, api)
  local path = root .. "/" .. M.OPTIONS
  local text = read(path)
  if not text then return nil end
  local ok, options = pcall(M.load_module, root, "braze.options")
  if not ok or type(options) ~= "table" then
    api.problems[#api.problems + 1] = format("%s: cannot be loaded to read its options: %s", M.OPTIONS,
      tostring(options))
    return nil
  end
  local file = M.parse(text, M.OPTIONS)
  local tables = {}
  for _, item in ipairs(file.items) do
    local value = item.kind == "assign" and item.table == file.returns and options[item.name]
    if type(value) == "table" and type(value[1]) == "table" and type(value[1].name) == "string"
      and type(value[1].doc) == "string" then
      local title = item.doc and item.doc.text[1] or item.name
      title = title:gsub("^The%s+", ""):gsub("^%l", string.upper)
      title = title:match("^(.-)[,.:;]%s") or title:gsub("[,.:;]$", "")
      tables[#tables + 1] = { key = item.name, title = title, list = value }
    end
  end
  -- braze.Options (the editor's type of braze.new's argument) must name the
  -- same options as the table it is closest to.
  local class = api.classes["braze.Options"]
  if class and #tables > 0 then
    local best, best_overlap
    for _, t in ipairs(tables) do
      local overlap = 0
      for _, o in ipairs(t.list) do if class.seen[o.name] then overlap = overlap + 1 end end
      if not best or overlap > best_overlap then best, best_overlap = t, overlap end
    end
    local names = {}
    for _, o in ipairs(best.list) do
      names[o.name] = true
      if not class.seen[o.name] then
        api.problems[#api.problems + 1] = format("%s: option %s has no ---@field in class braze.Options",
          M.OPTIONS, o.name)
      end
    end
    for _, field in ipairs(class.fields) do
      if not names[field.name] then
        api.problems[#api.problems + 1] = format("braze.Options declares %s, which the %s of %s lacks",
          field.name, best.key, M.OPTIONS)
      end
    end
  end
  return tables
end

---------------------------------------------------------------------------
-- Markdown
---------------------------------------------------------------------------

-- Doc lines -> Markdown: lines indented 4 spaces or more (after a blank
-- line) become a fenced Lua block.
local function markdown(lines)
  local out, i = {}, 1
  while i <= #lines do
    local line = lines[i]
    if line:match("^    ") and (i == 1 or not lines[i - 1]:match("%S")) then
      out[#out + 1] = "```lua"
      while i <= #lines and (lines[i]:match("^    ") or
        (not lines[i]:match("%S") and lines[i + 1] and lines[i + 1]:match("^    "))) do
        out[#out + 1] = lines[i]:sub(5)
        i = i + 1
      end
      out[#out + 1] = "```"
    else
      out[#out + 1] = line
      i = i + 1
    end
  end
  -- No blank lines at either end, none doubled.
  local text = concat(out, "\n"):gsub("^%s*\n", ""):gsub("%s+$", ""):gsub("\n%s*\n%s*\n+", "\n\n")
  return text
end

local function cell(s)
  return (tostring(s or ""):gsub("|", "\\|"):gsub("\n", " "))
end

local function code(s) return "`" .. s .. "`" end

local function anchor(heading)
  return "#" .. heading:lower():gsub("[^%w%- ]", ""):gsub(" ", "-")
end

local function number_text(v)
  if type(v) ~= "number" then return tostring(v) end
  if v == math.floor(v) and math.abs(v) < 2 ^ 63 then return format("%.0f", v) end
  return tostring(v)
end

local function signature(fn, prefix)
  local optional = {}
  for _, p in ipairs(fn.doc and fn.doc.params or {}) do optional[p.name] = p.optional end
  local args = {}
  for _, a in ipairs(fn.args or {}) do args[#args + 1] = a .. (optional[a] and "?" or "") end
  return prefix .. "(" .. concat(args, ", ") .. ")"
end

local function render_function(out, fn, heading)
  out[#out + 1] = "### " .. code(heading)
  out[#out + 1] = ""
  local doc = fn.doc
  if doc and has_prose(doc) then
    out[#out + 1] = markdown(doc.text)
    out[#out + 1] = ""
  end
  if doc and #doc.params > 0 then
    out[#out + 1] = "Parameters:"
    out[#out + 1] = ""
    for _, p in ipairs(doc.params) do
      local line = "- " .. code(p.name) .. (p.type and (" " .. code(p.type)) or "")
      if p.optional then line = line .. " (optional)" end
      if p.desc ~= "" then line = line .. ": " .. p.desc end
      out[#out + 1] = line
    end
    out[#out + 1] = ""
  end
  if doc and #doc.returns > 0 then
    out[#out + 1] = "Returns:"
    out[#out + 1] = ""
    for _, r in ipairs(doc.returns) do
      local line = "- " .. code(r.type or "any")
      if r.name then line = line .. " " .. code(r.name) end
      if r.desc ~= "" then line = line .. ": " .. r.desc end
      out[#out + 1] = line
    end
    out[#out + 1] = ""
  end
end

local function render_fields(out, class)
  out[#out + 1] = "| field | type | |"
  out[#out + 1] = "|---|---|---|"
  for _, f in ipairs(class.fields) do
    out[#out + 1] = format("| %s | %s | %s |", code(f.name .. (f.optional and "?" or "")),
      f.type and code(cell(f.type)) or "", cell(f.desc))
  end
  out[#out + 1] = ""
end

local function render_options(out, api)
  if api.options and #api.options > 0 then
    out[#out + 1] = format("Every option, its default and its range, from %s (the one table that "
      .. "`braze.new` validates from and `braze-segments` builds its flags from).", code(M.OPTIONS))
    out[#out + 1] = ""
    for _, t in ipairs(api.options) do
      out[#out + 1] = "### " .. t.title
      out[#out + 1] = ""
      out[#out + 1] = "| option | type | default | range | |"
      out[#out + 1] = "|---|---|---|---|---|"
      for _, o in ipairs(t.list) do
        local default = o.default_doc or (o.default ~= nil and code(number_text(o.default))) or ""
        local range = ""
        if o.min and o.max then
          range = o.kind == "integer" and format("%s..%s", number_text(o.min), number_text(o.max))
            or format("[%s, %s]", number_text(o.min), number_text(o.max))
        end
        out[#out + 1] = format("| %s | %s | %s | %s | %s |", code(o.name), cell(o.kind or ""),
          cell(default), range, cell(o.doc))
      end
      out[#out + 1] = ""
    end
  elseif api.classes["braze.Options"] then
    out[#out + 1] = "The fields of `braze.Options`, the table `braze.new` takes:"
    out[#out + 1] = ""
    render_fields(out, api.classes["braze.Options"])
  end
end

--- The Markdown text of the reference of the tree read by M.collect.
function M.render(api)
  local out = {}
  local braze_mod, others = api.modules[1], {}
  for i = 2, #api.modules do others[#others + 1] = api.modules[i] end

  out[#out + 1] = "# lua-braze reference"
  out[#out + 1] = ""
  out[#out + 1] = "<!-- Generated by scripts/reference.lua from the annotations in lua/braze/: do not "
    .. "edit; run `lua5.4 scripts/reference.lua` after changing them. -->"
  out[#out + 1] = ""
  if braze_mod and braze_mod.file.doc then
    out[#out + 1] = markdown(braze_mod.file.doc.text)
    out[#out + 1] = ""
  end

  local sections = {}
  local function section(title) sections[#sections + 1] = title; return "## " .. title end
  local body = {}

  if braze_mod then
    body[#body + 1] = section("Module " .. code(braze_mod.module))
    body[#body + 1] = ""
    for _, fn in ipairs(braze_mod.functions) do render_function(body, fn, signature(fn, fn.full)) end
    if #braze_mod.values > 0 then
      body[#body + 1] = "### Values"
      body[#body + 1] = ""
      local class = api.classes[braze_mod.module]
      if class and has_prose({ doc = true, text = class.text }) then
        body[#body + 1] = markdown(class.text)
        body[#body + 1] = ""
      end
      body[#body + 1] = "| value | type | |"
      body[#body + 1] = "|---|---|---|"
      for _, v in ipairs(braze_mod.values) do
        local desc = has_prose(v.doc) and markdown(v.doc.text) or (v.field and v.field.desc) or ""
        body[#body + 1] = format("| %s | %s | %s |", code(v.full),
          v.field and v.field.type and code(cell(v.field.type)) or "", cell(desc))
      end
      body[#body + 1] = ""
    end
  end

  if (api.options and #api.options > 0) or api.classes["braze.Options"] then
    body[#body + 1] = section("Options")
    body[#body + 1] = ""
    render_options(body, api)
  end

  for _, mod in ipairs(api.modules) do
    for _, class in ipairs(mod.classes or {}) do
      if class.methods and #class.methods > 0 then
        body[#body + 1] = section(code(class.name))
        body[#body + 1] = ""
        if has_prose({ doc = true, text = class.text }) then
          body[#body + 1] = markdown(class.text)
          body[#body + 1] = ""
        end
        local var = class.name:match("([%w_]+)$"):lower()
        for _, fn in ipairs(class.methods) do
          render_function(body, fn, signature(fn, var .. (fn.method and ":" or ".") .. fn.name))
        end
      end
    end
  end

  for _, mod in ipairs(others) do
    body[#body + 1] = section("Module " .. code(mod.module))
    body[#body + 1] = ""
    if mod.file.doc then
      body[#body + 1] = markdown(mod.file.doc.text)
      body[#body + 1] = ""
    end
    for _, fn in ipairs(mod.functions) do render_function(body, fn, signature(fn, fn.full)) end
  end

  local listed = {}
  if #api.types > 0 then
    body[#body + 1] = section("Types")
    body[#body + 1] = ""
    body[#body + 1] = format("Classes for lua-language-server, declared in %s: what the calls "
      .. "return and the error object.", code(M.TYPES))
    body[#body + 1] = ""
    for _, class in ipairs(api.types) do
      if not listed[class.name] and class.name ~= braze_mod.module then
        listed[class.name] = true
        body[#body + 1] = "### " .. code(class.name)
        body[#body + 1] = ""
        if has_prose({ doc = true, text = class.text }) then
          body[#body + 1] = markdown(class.text)
          body[#body + 1] = ""
        end
        if class.parent and api.classes[class.parent] then
          body[#body + 1] = format("The fields of [%s](%s), and:", code(class.parent),
            anchor(code(class.parent)))
          body[#body + 1] = ""
        elseif class.parent then
          body[#body + 1] = "A " .. code(class.parent) .. "."
          body[#body + 1] = ""
        end
        if #class.fields > 0 then render_fields(body, class) end
      end
    end
  end

  body[#body + 1] = section("Transports")
  body[#body + 1] = ""
  if exists(api.root .. "/" .. M.TRANSPORT_README) then
    body[#body + 1] = format("The contract a transport keeps (what `braze.new{ transport = ... }` "
      .. "takes) is written once, in [%s](../%s).", M.TRANSPORT_README, M.TRANSPORT_README)
  else
    body[#body + 1] = "A transport is a module with `new(config)` returning an object with "
      .. "`get(url)` and `close()` (see the `transport` option)."
  end
  body[#body + 1] = ""

  local contents = {}
  for _, title in ipairs(sections) do
    contents[#contents + 1] = format("[%s](%s)", title, anchor(title))
  end
  out[#out + 1] = "Contents: " .. concat(contents, " · ")
  out[#out + 1] = ""
  for _, line in ipairs(body) do out[#out + 1] = line end
  return (concat(out, "\n"):gsub("\n\n+$", "\n"):gsub("([^\n])$", "%1\n"))
end

---------------------------------------------------------------------------
-- Command line
---------------------------------------------------------------------------

local function main(argv)
  local root = arg and arg[0] and arg[0]:match("^(.*)/scripts/[^/]*$") or "."
  if arg and arg[0] and arg[0]:match("^scripts/[^/]*$") then root = "." end
  local mode = "write"
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--check" then mode = "check"
    elseif a == "--stdout" then mode = "stdout"
    elseif a == "--root" then i = i + 1; root = argv[i]
    elseif a == "--help" or a == "-h" then
      io.write("usage: lua5.4 scripts/reference.lua [--check | --stdout] [--root DIR]\n")
      return 0
    else
      io.stderr:write("reference.lua: unknown argument " .. tostring(a) .. " (try --help)\n")
      return 2
    end
    i = i + 1
  end
  if not root or not exists(root .. "/lua/braze/init.lua") then
    io.stderr:write("reference.lua: no lua/braze/init.lua under " .. tostring(root) .. "\n")
    return 2
  end
  local api = M.collect(root)
  local text = M.render(api)
  local out_path = root .. "/" .. M.OUTPUT
  if mode == "stdout" then
    io.write(text)
  elseif mode == "write" then
    os.execute("mkdir -p '" .. (root .. "/docs"):gsub("'", "'\\''") .. "'")
    local f = assert(io.open(out_path, "wb"))
    f:write(text)
    f:close()
    print("wrote " .. M.OUTPUT)
  end
  local status = 0
  for _, p in ipairs(api.problems) do
    io.stderr:write(p .. "\n")
    status = 1
  end
  if mode == "check" then
    if read(out_path) ~= text then
      io.stderr:write(M.OUTPUT .. " is stale: run `lua5.4 scripts/reference.lua` and commit it\n")
      status = 1
    end
    if status == 0 then print("reference: " .. M.OUTPUT .. " up to date, every public function documented") end
  end
  return status
end

if arg and arg[0] and arg[0]:match("reference%.lua$") and not package.loaded["scripts.reference"] then
  os.exit(main(arg))
end
return M
