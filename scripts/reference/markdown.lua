--- scripts/reference/markdown.lua: the Markdown text of docs/reference.md
-- from what scripts/reference.lua collected (its `collect`). Part of
-- scripts/reference.lua (which loads it with dofile). Plain Lua 5.1-5.4.

local M = {}

local format, concat = string.format, table.concat

local here = debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$") or "."
local has_prose = dofile(here .. "/luals.lua").has_prose

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
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

local function render_options(out, api, paths)
  if api.options and #api.options > 0 then
    out[#out + 1] = format("Every option, its default and its range, from %s (the one table that "
      .. "`braze.new` validates from and `braze-segments` builds its flags from).", code(paths.OPTIONS))
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

--- The Markdown text of the reference of the tree `api` (from
-- reference.collect); `paths` names the files it mentions (OPTIONS, TYPES,
-- TRANSPORT_README).
function M.render(api, paths)
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
    render_options(body, api, paths)
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
      .. "return and the error object.", code(paths.TYPES))
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
  if exists(api.root .. "/" .. paths.TRANSPORT_README) then
    body[#body + 1] = format("The contract a transport keeps (what `braze.new{ transport = ... }` "
      .. "takes) is written once, in [%s](../%s).", paths.TRANSPORT_README, paths.TRANSPORT_README)
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

return M
