--- URLs: the endpoint's checks, query strings, and URL splitting for the
-- transports that speak HTTP themselves (nginx, HAProxy).
-- @module braze.url
local check = require("braze.check")
local instances = require("braze.instances")

local M = {}

local format, byte, tostring, select, type = string.format, string.byte, tostring, select, type

--- Percent-encode everything but RFC 3986 unreserved characters.
function M.escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

--- Split an http(s) URL for a transport that speaks HTTP itself: scheme,
-- host (no brackets), port (a number), the Host header's value, and the
-- request target; or nil and what is wrong with it.
function M.split_url(url)
  local scheme, authority, target = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "not an absolute URL" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil, "unsupported scheme " .. scheme end
  local host, port = authority:match("^%[([%x:.]+)%](.*)$")
  if not host then host, port = authority:match("^([^:]+)(.*)$") end
  if not host or host == "" then return nil, "no host" end
  if port ~= "" then
    port = port:match("^:(%d+)$")
    if not port then return nil, "bad port" end
    port = tonumber(port)
  else
    port = scheme == "https" and 443 or 80
  end
  if target == "" then target = "/" end
  if target:find("[%c ]") then return nil, "control characters or spaces in the URL" end
  return scheme, host, port, authority, target
end

--- `?k=v&...` from key, value, key, value, ... (pairs with a nil value are
-- skipped; "" when none is left). No table is made: this runs on every call.
function M.query(...)
  local q = ""
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    if v ~= nil then
      q = q .. (q == "" and "?" or "&") .. M.escape(k) .. "=" .. M.escape(tostring(v))
    end
  end
  return q
end

local function is_loopback(host)
  host = host:lower()
  if host == "localhost" or host == "[::1]" then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a ~= nil and tonumber(a) == 127 and tonumber(b) < 256 and tonumber(c) < 256
    and tonumber(d) < 256
end
M.is_loopback = is_loopback

--- Validate a base URL; returns it without a trailing '/'.
-- https:// always; http:// only for loopback hosts unless allow_http.
function M.endpoint(url, allow_http)
  if type(url) ~= "string" then
    return check.bad("endpoint must be a string URL (got %s)", type(url))
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    return check.bad("endpoint %s is not a URL: expected https://host[:port][/path]", check.show(url))
  end
  scheme = scheme:lower()
  if scheme ~= "https" and scheme ~= "http" then
    return check.bad("endpoint %s: scheme must be https (got %s)", check.show(url), scheme)
  end
  local authority, path = rest:match("^([^/?#]*)(.*)$")
  if path:find("[?#]") then
    return check.bad("endpoint %s must not carry a query or fragment", check.show(url))
  end
  if authority:find("@", 1, true) then
    return check.bad("endpoint %s must not carry credentials; use api_key", check.show(url))
  end
  if path:find("[%c%s]") then
    return check.bad("endpoint %s: path contains spaces or control characters", check.show(url))
  end
  local host, port = authority:match("^(%[[%x:.]+%])(.*)$")
  if not host then host, port = authority:match("^([%w.-]+)(.*)$") end
  if not host or host == "" then return check.bad("endpoint %s has no host", check.show(url)) end
  if port ~= "" then
    local n = port:match("^:(%d+)$")
    if not n or tonumber(n) < 1 or tonumber(n) > 65535 then
      return check.bad("endpoint %s has a bad port %s", check.show(url), check.show(port))
    end
  end
  -- Only a real boolean: allow_http = "false" or 0 (truthy in Lua, as read
  -- from an environment variable, say) must not quietly allow plain http.
  if allow_http ~= nil and type(allow_http) ~= "boolean" then
    return check.bad("allow_http must be true or false (got %s)", check.show(allow_http))
  end
  if scheme == "http" and not allow_http and not is_loopback(host) then
    return check.bad("endpoint %s: plain http is only allowed for loopback hosts "
      .. "(use https, or allow_http = true if you really mean it)", check.show(url))
  end
  return (url:gsub("/+$", ""))
end

local function instance_url(name)
  if type(name) ~= "string" then return nil end
  return instances[name:upper()]
end

-- "AU-01, EU-01, ..." for messages.
local function instance_names()
  local names = {}
  for name in pairs(instances) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

-- Why `endpoint` (not a URL) was refused, with what it may have meant: an
-- instance a near miss names, https:// before a host, or the instances.
local function endpoint_hint(endpoint, why)
  if type(endpoint) ~= "string" or endpoint:find("://", 1, true) then return why end
  local guess = instances.suggest(endpoint)
  if guess then return format("%s (did you mean instance = %q?)", why, guess) end
  if endpoint:find("^[%w-]+%.[%w.-]+[%w/:]*$") then
    return format("%s (did you mean \"https://%s\"?)", why, endpoint)
  end
  return format("%s, or an instance name (one of %s)", why, instance_names())
end

--- The base URL of `braze.new`'s options: `instance`, or `endpoint` (a URL
--- or an instance name), else the BRAZE_REST_ENDPOINT environment variable
--- (the same); or nil and a message. An instance name works wherever an
--- endpoint is accepted.
function M.base(opts)
  if opts.endpoint ~= nil and opts.instance ~= nil then
    return nil, "braze: give endpoint or instance, not both"
  end
  if opts.instance ~= nil then
    local base = instance_url(opts.instance)
    if base then return base end
    local guess = instances.suggest(opts.instance)
    if guess then
      return nil, format("braze: unknown instance %s: did you mean %s?", check.show(opts.instance), guess)
    end
    return nil, format("braze: unknown instance %s (one of %s)", check.show(opts.instance), instance_names())
  end
  local endpoint = opts.endpoint
  if endpoint == nil then
    endpoint = os.getenv("BRAZE_REST_ENDPOINT")
    if endpoint == nil or endpoint == "" then
      return nil, "braze: no endpoint: set endpoint = \"https://rest.<instance>.braze.com\" or "
        .. "instance = \"US-01\" (or the BRAZE_REST_ENDPOINT environment variable)"
    end
  end
  local base = instance_url(endpoint)
  if base then return base end
  local why
  base, why = M.endpoint(endpoint, opts.allow_http)
  if not base then why = endpoint_hint(endpoint, why) end
  return base, why
end

return M
