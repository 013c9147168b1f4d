#!/usr/bin/env bash
# Run examples/haproxy in the foreground on http://127.0.0.1:8081 (Ctrl-C stops it):
#   BRAZE_API_KEY=... BRAZE_REST_ENDPOINT=US-01 examples/haproxy/run.sh
# From any directory. It sets the variables haproxy.cfg uses from this
# machine: lua-braze's Lua files and braze/core.so built for Lua 5.3
# (HAProxy's Lua) from this clone (lua/ and build-5.3/; BRAZE_LUA53_BUILD=DIR
# for another build), or from a LuaRocks tree with BRAZE_TREE=T (luarocks
# --lua-version=5.3 --tree T make). BRAZE_BIND=ADDR:PORT to listen elsewhere,
# HAPROXY=path for another haproxy (2.6 or later, built with Lua).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
haproxy=${HAPROXY:-haproxy}
die() { echo "examples/haproxy: $*" >&2; exit 1; }

command -v "$haproxy" >/dev/null || die "no $haproxy: apt-get install haproxy (Debian 12 has 2.6)"
"$haproxy" -vv 2>/dev/null | grep 'Built with Lua version' >/dev/null || die "$haproxy is built without Lua"
version=$("$haproxy" -v 2>/dev/null | sed -n 's/^HAProxy version \([0-9]*\.[0-9]*\).*/\1/p' | head -n 1)
case $version in
  1.*|2.[0-5]) die "$haproxy is version $version: braze.transport.haproxy needs 2.6 or later (core.httpclient)" ;;
esac

if [ -n "${BRAZE_TREE:-}" ]; then
  tree=$(cd "$BRAZE_TREE" && pwd) || die "BRAZE_TREE=$BRAZE_TREE is not a directory"
  export BRAZE_LUA="$tree/share/lua/5.3" BRAZE_CPATH="$tree/lib/lua/5.3"
  build_hint="luarocks --lua-version=5.3 --tree $tree make"
else
  export BRAZE_LUA="$root/lua"
  BRAZE_CPATH=${BRAZE_LUA53_BUILD:-$root/build-5.3}
  case $BRAZE_CPATH in /*) ;; *) BRAZE_CPATH="$PWD/$BRAZE_CPATH" ;; esac
  export BRAZE_CPATH
  build_hint="bash $root/scripts/build.sh build-5.3 -DBRAZE_LUA=5.3"
fi
[ -f "$BRAZE_CPATH/braze/core.so" ] || die "no $BRAZE_CPATH/braze/core.so (braze.core built for Lua 5.3): $build_hint"
[ -f "$BRAZE_LUA/braze/init.lua" ] || die "no $BRAZE_LUA/braze/init.lua"
[ -n "${BRAZE_API_KEY:-}" ] || die "set BRAZE_API_KEY (and BRAZE_REST_ENDPOINT, e.g. US-01)"
export BRAZE_EXAMPLE="$here" BRAZE_BIND=${BRAZE_BIND:-127.0.0.1:8081}

echo "examples/haproxy: http://$BRAZE_BIND/segments/sizes?segment_id=ID&days=7" >&2
exec "$haproxy" -db -f "$here/haproxy.cfg"
