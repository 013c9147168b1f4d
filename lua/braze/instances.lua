--- Braze instances and their REST endpoints (from Braze's data-center list).
-- There is no US-09.
--
-- The table maps each name to its URL (so `pairs` lists instances only);
-- `instances.suggest(text)` (reached through the metatable) names the
-- instance a near miss such as `us01`, `US-1` or `iad-01` meant.
-- @module braze.instances
local instances = {
  ["US-01"] = "https://rest.iad-01.braze.com",
  ["US-02"] = "https://rest.iad-02.braze.com",
  ["US-03"] = "https://rest.iad-03.braze.com",
  ["US-04"] = "https://rest.iad-04.braze.com",
  ["US-05"] = "https://rest.iad-05.braze.com",
  ["US-06"] = "https://rest.iad-06.braze.com",
  ["US-07"] = "https://rest.iad-07.braze.com",
  ["US-08"] = "https://rest.iad-08.braze.com",
  ["US-10"] = "https://rest.us-10.braze.com",
  ["EU-01"] = "https://rest.fra-01.braze.eu",
  ["EU-02"] = "https://rest.fra-02.braze.eu",
  ["AU-01"] = "https://rest.au-01.braze.com",
  ["ID-01"] = "https://rest.id-01.braze.com",
}

-- "us-1", "US01", " us_01 " -> "US01"; "iad-01" -> "IAD01".
local function normal(s)
  local letters, digits = s:upper():gsub("[^%w]", ""):match("^(%a+)0*(%d+)$")
  if not letters then return s:upper():gsub("[^%w]", "") end
  return letters .. string.format("%02d", tonumber(digits))
end

local distance = require("braze.check").distance

--- The instance name `text` most likely meant (`us01`, `US-1` -> `US-01`;
-- a host label such as `iad-01` or `fra-02` -> its instance; one typo when
-- only one name is that close), or nil. The name itself for a name.
---@param text string
---@return string|nil
local function suggest(text)
  if type(text) ~= "string" or #text > 64 then return nil end
  if instances[text:upper()] then return text:upper() end
  local want = normal(text)
  if want == "" then return nil end
  local names = {}
  for name in pairs(instances) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local label = instances[name]:match("^https://rest%.([^.]+)%.")
    if normal(name) == want or (label and normal(label) == want) then return name end
  end
  -- One typo away from exactly one name (US-09 is one away from eight).
  local best
  for _, name in ipairs(names) do
    if distance(want, normal(name)) <= 1 then
      if best then return nil end
      best = name
    end
  end
  return best
end

return setmetatable(instances, { __index = { suggest = suggest } })
