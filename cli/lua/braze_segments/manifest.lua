--- What an export file was written with, kept beside it in FILE.braze.json:
-- the format, --sort, --details, the series length and its end date as
-- resolved (a default "now" is resolved once, when the file is started),
-- and the endpoint (the workspace; never the key).
-- `--resume` reads it back and refuses to mix anything else into the file:
-- a series window ending on another day, another order, details or not,
-- another endpoint; and refuses a file that has records but no manifest.
-- @module braze_segments.manifest
local json = require("braze_segments.json")
local braze = require("braze")

local format = string.format

local M = {}

--- The manifest's path for an export written to `output`.
function M.path(output)
  return output .. ".braze.json"
end

-- The fields compared, in the order a message names them.
local FIELDS = { "format", "sort", "details", "series", "ending_at", "endpoint" }

--- An endpoint as a manifest records it: scheme://host[:port][/path], with
--- no user, password, query or fragment (the client refuses those anyway).
function M.endpoint(url)
  if type(url) ~= "string" then return false end
  url = url:gsub("[?#].*$", ""):gsub("^(%a[%w+.-]*://)[^/]*@", "%1"):gsub("/+$", "")
  return url
end

-- Endpoints compare without case in the scheme and host.
local function same_endpoint(a, b)
  if type(a) ~= "string" or type(b) ~= "string" then return a == b end
  local function key(u)
    local head, path = u:match("^(%a[%w+.-]*://[^/]*)(.*)$")
    if not head then return u end
    return head:lower() .. path
  end
  return key(a) == key(b)
end

-- The fields of `job` as the manifest records them.
local function of_job(job)
  return { format = job.format, sort = job.sort or "asc", details = job.details == true,
    series = job.series or false, ending_at = job.series and job.ending_at or false,
    endpoint = M.endpoint(job.endpoint) }
end

--- Write the manifest for `job` (before the first record). Returns true or nil, message.
function M.write(job)
  local path = M.path(job.output)
  local f, err = io.open(path, "wb")
  if not f then return nil, format("cannot write %s: %s", path, tostring(err)) end
  local ok, werr = f:write(json.encode(of_job(job)), "\n")
  f:close()
  if not ok then return nil, format("cannot write %s: %s", path, tostring(werr)) end
  return true
end

--- Read the manifest of `output`: the table, or nil when there is none
--- (a file written before manifests, or one being started), or false and
--- a message when it is unreadable.
function M.read(output)
  local path = M.path(output)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local manifest = braze.decode(text)
  if type(manifest) ~= "table" then
    return false, format("%s is not a manifest written by braze-segments, so nothing says what "
      .. "%s holds: export to a new file (another --output, without --resume)", path, output)
  end
  return manifest
end

-- How the command line says a field: "--sort desc", "--series 14", "no --details".
local function flag(name, value)
  if name == "format" then return "--format " .. tostring(value) end
  if name == "sort" then return "--sort " .. tostring(value) end
  if name == "details" then return value and "--details" or "no --details" end
  if name == "series" then return value and "--series " .. tostring(value) or "no --series" end
  if name == "endpoint" then
    return value and "the endpoint " .. tostring(value) or "no endpoint recorded"
  end
  return value and "--end " .. tostring(value) or "no --end"
end

--- The refusal of a resume of `output`, which holds something but has no
--- manifest: nil when `output` is empty (nothing to mix with).
function M.missing(output)
  local f = io.open(output, "rb")
  local size = f and f:seek("end") or 0
  if f then f:close() end
  if size == 0 then return nil end
  return format("cannot resume %s: %s is missing, and it is what records the options, the "
    .. "end date and the endpoint %s was written with, so this run could mix another export "
    .. "into it: export to a new file (another --output, without --resume), or remove %s to "
    .. "start it again", output, M.path(output), output, output)
end

--- Reconcile a resume's `job` with the `manifest` of its file: the end
--- date the file was started with becomes the job's when --end was not
--- given (`job.end_given`); anything else that differs is refused. Returns
--- nil, or the message naming every difference.
function M.reconcile(job, manifest)
  if job.series and not job.end_given and type(manifest.ending_at) == "string" then
    job.ending_at = manifest.ending_at
  end
  local want, differences, written = of_job(job), {}, {}
  for _, name in ipairs(FIELDS) do
    local had = manifest[name]
    if had == nil then had = false end
    local differ
    if name == "endpoint" then differ = not same_endpoint(had, want[name])
    else differ = had ~= want[name] end
    if differ then
      differences[#differences + 1] = flag(name, want[name])
      written[#written + 1] = flag(name, had)
    end
  end
  if #differences == 0 then return nil end
  return format("%s was written with %s, and this run asks for %s: resume with the same options "
    .. "and endpoint it was written with (see %s), or export to another --output", job.output,
    table.concat(written, ", "), table.concat(differences, ", "), M.path(job.output))
end

return M
