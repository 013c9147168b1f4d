--- The transport conformance suite (spec/support/conformance.lua) against
-- the default transport: braze.core's libcurl session, a blocking call in
-- plain Lua. Runs on every Lua:
--   lua5.4 /usr/bin/busted --cpath='build/?.so' spec/transport/conformance_libcurl_spec.lua
local conformance = require("spec.support.conformance")
local braze = require("braze")

conformance.run("libcurl (the default transport)", function(case, url)
  local client = braze.new(conformance.options(case, { endpoint = url }))
  local got = conformance.result(client:details(conformance.SEGMENT_ID))
  client:close()
  return got
end)
