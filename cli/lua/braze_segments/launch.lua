--- Start-up checks for the two commands, `braze-segments` and `braze-mock`.
--
-- A command calls `launch.check{...}` first thing, after putting its
-- checkout's or rock tree's directories on package.path/cpath. `check`
-- returns when everything the command needs loads. Otherwise it either
-- runs the same script with another Lua that has what is missing (say
-- `lua5.4` when `lua` is 5.3 and braze.core was built for 5.4, or when a
-- Lua 5.1 rock tree has the command but the command needs 5.3+), or it
-- prints what is missing and how to get it, and exits with status 2.
--
-- Runs on every Lua (5.1, LuaJIT too): it must, to say that it is the
-- wrong one. Environment variables it sets for the script it re-runs:
-- BRAZE_LAUNCH_PROBE=1 (check only, exit 0 when all loads, 3 when not:
-- is this Lua a suitable one?) and BRAZE_LAUNCHED=1 (do not re-run again).
-- @module braze_segments.launch

---@class braze_segments.launch.Spec
---@field name string the command's name, for messages
---@field script? string the script's path (default arg[0]), to run it again
---@field tree? string the LuaRocks tree it is installed in, if any
---@field checkout? boolean run from a checkout (hints say cmake, not luarocks)
---@field min_lua? number the oldest Lua it runs on (5.3 for braze-segments)
---@field core? boolean whether it needs braze.core
---@field needs? string[] third-party modules it requires
---@field main? string the module with its code, loaded as the last check
---@field built_for? fun(so_path: string): string? which Lua a braze.core was built for (a checkout's build directories)
local M = {}

local format, concat = string.format, table.concat

--- Where the third-party modules the commands need come from: the Debian
--- package and the rock that provide each.
M.PROVIDERS = {
  argparse = { debian = "lua-argparse", rock = "argparse" },
  socket = { debian = "lua-socket", rock = "luasocket" },
}

--- Interpreters tried, in order, when the running one is unsuitable.
M.CANDIDATES = { "lua5.4", "lua5.3", "lua", "lua5.1", "luajit" }

--- The running Lua: "5.1", "5.3", "5.4" or "luajit".
function M.running_version()
  if rawget(_G, "jit") then return "luajit" end
  return (_VERSION:match("%d+%.%d+"))
end

-- "5.4" -> 5.4; "luajit" -> 5.1.
local function number_of(version)
  return version == "luajit" and 5.1 or tonumber(version)
end

--- The interpreter as it was invoked (`lua5.3`, `/usr/bin/lua5.4`, `lua`),
--- from the lowest index of `arg`; nil when not known.
function M.interpreter(argv)
  argv = argv or rawget(_G, "arg")
  if type(argv) ~= "table" then return nil end
  local i = 0
  while argv[i - 1] ~= nil do i = i - 1 end
  if i < 0 then return argv[i] end
  return nil
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- package.searchpath for Lua 5.1 too: the first file `name` maps to in `path`.
local function searchpath(name, path)
  local file_name = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file_name)
    local f = io.open(candidate, "rb")
    if f then
      f:close()
      return candidate
    end
  end
  return nil
end

--- Which Lua the braze.core at `so_path` was built for, when its place
--- says so: a LuaRocks tree (lib/lua/5.x/). Returns "5.4", "5.1", ... or nil.
--- (A checkout's launcher passes `spec.built_for` to read its build
--- directories; nothing installed looks at them.)
function M.built_for(so_path)
  return so_path:match("/lib/lua/(%d+%.%d+)/braze/core%.so$")
end

-- The command that builds braze.core for `version` in a checkout, or
-- installs the rock for it.
local function build_hint(version, checkout)
  if checkout then
    if version == "5.4" then
      return "cmake -S . -B build && cmake --build build"
    end
    return format("cmake -S . -B build-%s -DBRAZE_LUA=%s && cmake --build build-%s",
      version, version, version)
  end
  if version == "luajit" then -- wrappers that run luajit, not lua5.1 (README, "Install and build")
    return "LUAROCKS_CONFIG=TJ/luajit.lua luarocks --lua-version=5.1 --tree TJ make, in a LuaJIT tree of its own "
      .. "(README, \"Install and build\")"
  end
  return format("luarocks --lua-version=%s make", version)
end

--- Everything wrong with running `spec` on this Lua: nil when nothing is,
--- else a table { reexec = whether another Lua may do better, text = the
--- message lines }.
---@param spec braze_segments.launch.Spec
function M.problem(spec)
  local version = M.running_version()
  local interp = M.interpreter() or "lua"
  local this = format("this is %s (%s)", version == "luajit" and "LuaJIT" or "Lua " .. version, interp)

  if spec.min_lua and number_of(version) < spec.min_lua then
    return { reexec = true, text = {
      format("needs Lua %s or later; %s.", spec.min_lua, this),
      spec.checkout and format("Run it with lua5.4: lua5.4 %s ...", spec.script or spec.name)
        or format("This rock tree is for %s, where the library works but this command does not: "
          .. "install lua-braze and %s for Lua 5.4 in a tree of their own, one tree per Lua (from "
          .. "lua-braze's checkout: %s --tree %s, then the same with cli/braze-segments-scm-0.rockspec) "
          .. "and run %s/bin/%s.",
          version == "luajit" and "LuaJIT" or "Lua " .. version, spec.name, build_hint("5.4", false),
          (spec.tree or "T") .. "-5.4", (spec.tree or "T") .. "-5.4", spec.name),
    } }
  end

  if spec.core then
    local ok, err = pcall(require, "braze.core")
    if not ok then
      err = tostring(err)
      local so = searchpath("braze.core", package.cpath)
      local text
      if not so then
        text = {
          format("braze.core (the C module) is not built for %s.", this:gsub("^this is ", "")),
          "Build it: " .. build_hint(version, spec.checkout),
        }
      else
        local built = (spec.built_for and spec.built_for(so)) or M.built_for(so)
        text = {
          format("cannot load braze.core (the C module) from %s:", so),
          built and format("it is built for %s, and %s.",
            built == "luajit" and "LuaJIT" or "Lua " .. built, this)
            or format("%s; it may be built for another Lua.", this),
        }
        text[#text + 1] = format("Run it with %s, or build braze.core for this Lua: %s",
          built and (built == "luajit" and "luajit" or "lua" .. built) or "the Lua it is built for",
          build_hint(version, spec.checkout))
      end
      text[#text + 1] = "The loader said: " .. err
      return { reexec = true, text = text }
    end
  end

  -- Every missing module at once, so one install fixes them all.
  local lua = version == "luajit" and "5.1" or version
  local missing, debian, rocks = {}, {}, {}
  for _, name in ipairs(spec.needs or {}) do
    local ok, err = pcall(require, name)
    if not ok then
      err = tostring(err)
      if not err:find("module '" .. name .. "' not found", 1, true) then
        return { text = { format("cannot load the Lua module '%s': %s", name, err) } }
      end
      local p = M.PROVIDERS[name] or { debian = "lua-" .. name, rock = name }
      missing[#missing + 1] = "'" .. name .. "'"
      debian[#debian + 1], rocks[#rocks + 1] = p.debian, p.rock
    end
  end
  if #missing > 0 then
    return { text = {
      format("needs the Lua module%s %s, which %s cannot find (it looks in LUA_PATH, LUA_CPATH "
        .. "and Lua %s's usual directories).", #missing > 1 and "s" or "", concat(missing, " and "),
        interp, lua),
      format("Install: apt-get install %s (Debian), or luarocks --lua-version=%s install %s.",
        concat(debian, " "), lua, concat(rocks, " ")),
    } }
  end

  if spec.main then
    local ok, err = pcall(require, spec.main)
    if not ok then
      return { text = { format("cannot load %s: %s", spec.main, tostring(err)) } }
    end
  end
  return nil
end

-- Whether `cmd` is a program on PATH.
local function on_path(cmd)
  local ok = os.execute("command -v " .. quote(cmd) .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

-- os.execute's result as an exit status, on every Lua.
local function status_of(a, how, code)
  if type(a) == "number" then -- 5.1/LuaJIT: a wait status
    if a >= 256 then return math.floor(a / 256) end
    return a == 0 and 0 or 128 + a
  end
  if how == "signal" then return 128 + (code or 0) end
  return code or (a and 0 or 1)
end

--- Another interpreter on PATH that runs `script` with everything it
--- needs (each is asked with BRAZE_LAUNCH_PROBE=1); nil when none does.
function M.find_interpreter(script)
  local running = M.running_version()
  for _, cand in ipairs(M.CANDIDATES) do
    if on_path(cand) then
      local version = io.popen(quote(cand) .. " -e " .. quote(
        "io.write(rawget(_G, 'jit') and 'luajit' or _VERSION:match('%d+%.%d+'))") .. " 2>/dev/null")
      local v = version and version:read("*a")
      if version then version:close() end
      if v and v ~= "" and v ~= running then
        local probe = "BRAZE_LAUNCH_PROBE=1 " .. quote(cand) .. " " .. quote(script)
          .. " </dev/null >/dev/null 2>&1"
        if status_of(os.execute(probe)) == 0 then return cand end
      end
    end
  end
  return nil
end

--- Return when the command can run on this Lua; otherwise run it with a
--- Lua that can and exit with its status, or explain and exit 2.
---@param spec braze_segments.launch.Spec
function M.check(spec)
  local problem = M.problem(spec)
  if os.getenv("BRAZE_LAUNCH_PROBE") then os.exit(problem and 3 or 0) end
  if not problem then return end
  local argv = rawget(_G, "arg") or {}
  local script = spec.script or argv[0]
  if problem.reexec and script and not os.getenv("BRAZE_LAUNCHED") then
    local cand = M.find_interpreter(script)
    if cand then
      local words = { "BRAZE_LAUNCHED=1", "exec", quote(cand), quote(script) }
      for i = 1, #argv do words[#words + 1] = quote(argv[i]) end
      io.stdout:flush()
      os.exit(status_of(os.execute(concat(words, " "))))
    end
  end
  io.stderr:write(spec.name, ": ", concat(problem.text, "\n  "), "\n")
  os.exit(2)
end

return M
