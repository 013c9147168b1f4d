-- luacheck configuration (Debian: lua-check). CI runs `luacheck .` and
-- wants zero warnings. The library runs on Lua 5.1 .. 5.4 and LuaJIT.
std = "max"
max_line_length = 130
exclude_files = { "build*/**", "bench/node_modules/**", ".git/**" }

-- Methods keep the `obj:method()` form even where `self` is unused.
self = false

-- `jit` exists only under LuaJIT; code that looks for it reads it with rawget
-- or checks it first.
read_globals = { "jit" }

files["spec/**/*_spec.lua"] = { std = "+busted" }
-- Decoder specs hold JSON documents and number tables on one line each.
files["spec/core/decode_spec.lua"] = { std = "+busted", max_line_length = false }
files["spec/support/helpers.lua"] = { std = "+busted" }

-- Code that runs inside nginx (OpenResty): `ngx` is the host's global, and
-- handlers may set fields on it (ngx.status, ngx.header...).
local openresty = { globals = { "ngx" } }
files["lua/braze/transport/ngx.lua"] = openresty
files["spec/transport/nginx/**/*.lua"] = openresty
files["examples/nginx/**/*.lua"] = openresty
files["bench/**/*.lua"] = { globals = { "ngx" } }

-- Code that runs inside HAProxy: `core` is the host's global (the transport
-- itself reads it with rawget, so it also loads outside HAProxy).
local haproxy = { read_globals = { "core" } }
files["spec/transport/haproxy/**/*.lua"] = haproxy
files["examples/haproxy/**/*.lua"] = haproxy

-- fuzz/alloc_fail.c runs this file with its own globals: arm() starts
-- failing allocations, disarm() stops and says whether one failed.
files["fuzz/alloc_fail.lua"] = { read_globals = { "arm", "disarm" } }
