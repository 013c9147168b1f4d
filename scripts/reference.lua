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
-- Loaded with dofile (not run), it returns its parser and renderer; the
-- annotation reader is reference/luals.lua, the Markdown reference/markdown.lua.

local M = {}

local format = string.format

M.PUBLIC = {
  { path = "lua/braze/init.lua", module = "braze" },
  { path = "lua/braze/errors.lua", module = "braze.errors" },
}
M.TYPES = "lua/braze/types.lua"
M.OPTIONS = "lua/braze/options.lua"
M.TRANSPORT_README = "lua/braze/transport/README.md"
M.OUTPUT = "docs/reference.md"

-- The parser and the renderer live beside this script.
local here = debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$") or "."
local luals = dofile(here .. "/reference/luals.lua")
local markdown = dofile(here .. "/reference/markdown.lua")
local has_prose = luals.has_prose
M.split_type, M.parse = luals.split_type, luals.parse

--- The Markdown text of the reference of the tree read by M.collect.
function M.render(api) return markdown.render(api, M) end

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

-- The public items of one parsed public module: fills mod.functions,
-- mod.values, mod.classes (with their methods) and reports what lacks a doc.
local function collect_module(api, mod, problem)
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
  local function needs_doc(doc, where, full)
    if not has_prose(doc) then problem("%s: %s has no doc comment", where, full) end
  end
  for _, item in ipairs(file.items) do
    local public_name = not item.name:match("^_") or item.name == "_VERSION"
    local where = format("%s:%d", mod.path, item.line)
    local class = class_of[item.table]
    if item.kind == "function" and item.table == mt and public_name then
      mod.functions[#mod.functions + 1] = item
      item.full = mod.module .. "." .. item.name
      needs_doc(item.doc, where, item.full)
    elseif item.kind == "function" and class and not item.name:match("^_") then
      class.methods[#class.methods + 1] = item
      item.full = class.name .. (item.method and ":" or ".") .. item.name
      needs_doc(item.doc, where, item.full)
    elseif item.kind == "assign" and class and not item.name:match("^_") then
      -- Client.each = each_iterator: a method defined elsewhere; the doc is
      -- the assignment's, else the local function's.
      local target = file.locals[item.value]
      local method = { kind = "function", method = true, name = item.name, line = item.line,
        doc = has_prose(item.doc) and item.doc or (target and target.doc) or item.doc, args = {},
        full = class.name .. ":" .. item.name }
      for k, a in ipairs(target and target.args or {}) do
        if not (k == 1 and a == "self") then method.args[#method.args + 1] = a end
      end
      if not target and method.doc then
        for _, param in ipairs(method.doc.params) do method.args[#method.args + 1] = param.name end
      end
      class.methods[#class.methods + 1] = method
      needs_doc(method.doc, where, method.full)
    elseif (item.kind == "assign" or item.kind == "key") and item.table == mt and public_name then
      item.full = mod.module .. "." .. item.name
      local target = file.locals[item.value or ""]
      if target then -- M.f = f: the local function's doc is the doc
        target.full, target.alias = item.full, item
        mod.functions[#mod.functions + 1] = target
        needs_doc(target.doc, where, item.full)
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
end

-- The annotations of the public functions and classes: a ---@param names a
-- parameter; every braze.X a type names is a class declared somewhere under
-- lua/ (internal modules may declare the types they hand over).
local function check_annotations(api, root, problem)
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
      local where = format("%s:%d: %s", mod.path, fn.line, fn.full)
      local args = {}
      for _, a in ipairs(fn.args or {}) do args[a] = true end
      for _, param in ipairs(fn.doc and fn.doc.params or {}) do
        if not args[param.name] then
          problem("%s documents a parameter %s it does not have", where, param.name)
        end
        check_types(param.type, where)
      end
      for _, ret in ipairs(fn.doc and fn.doc.returns or {}) do check_types(ret.type, where) end
    end
  end
  for _, class in ipairs(api.class_order) do
    for _, field in ipairs(class.fields) do
      check_types(field.type, format("%s: %s.%s", class.file, class.name, field.name))
    end
  end
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

  for _, mod in ipairs(api.modules) do collect_module(api, mod, problem) end
  check_annotations(api, root, problem)
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
