#!/usr/bin/env bash
# Run examples/nginx in the foreground on http://127.0.0.1:8080 (Ctrl-C stops it):
#   BRAZE_API_KEY=... BRAZE_REST_ENDPOINT=US-01 examples/nginx/run.sh
# BRAZE_BIND=ADDR:PORT to listen elsewhere; BRAZE_STATE=DIR for the run's
# files (default: a new /tmp/braze-example-nginx.XXXXXX each run, so two
# copies run side by side; its nginx.pid is the master's pid). From any
# directory and any clone (one private to root too). Into the state
# directory it copies nginx.conf and writes main.conf, http.conf and
# listen.conf (see nginx.conf) from this machine: the nginx Lua module's
# load_module lines, the nameservers of
# /etc/resolv.conf (or BRAZE_RESOLVER="IP ..."), and where lua-braze is: this
# clone's lua/ and build-luajit/ (BRAZE_LUAJIT_BUILD=DIR for another build),
# or a LuaRocks tree with BRAZE_TREE=T (luarocks --lua-version=5.1 --tree T make
# LUA_INCDIR=/usr/include/luajit-2.1). NGINX=/usr/local/openresty/bin/openresty
# for OpenResty.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bind=${BRAZE_BIND:-127.0.0.1:8080}
export PATH="$PATH:/usr/sbin:/sbin"
nginx=${NGINX:-nginx}
die() { echo "examples/nginx: $*" >&2; exit 1; }

command -v "$nginx" >/dev/null || die "no $nginx: apt-get install nginx libnginx-mod-http-lua (Debian), or NGINX=<OpenResty's nginx>"

# Where lua-braze is, for LuaJIT (nginx's Lua).
if [ -n "${BRAZE_TREE:-}" ]; then
  tree=$(cd "$BRAZE_TREE" && pwd) || die "BRAZE_TREE=$BRAZE_TREE is not a directory"
  lua_path="$tree/share/lua/5.1/?.lua;$tree/share/lua/5.1/?/init.lua"
  core_dir="$tree/lib/lua/5.1"
  build_hint="luarocks --lua-version=5.1 --tree $tree make LUA_INCDIR=/usr/include/luajit-2.1"
else
  lua_path="$root/lua/?.lua;$root/lua/?/init.lua"
  core_dir=${BRAZE_LUAJIT_BUILD:-$root/build-luajit}
  case $core_dir in /*) ;; *) core_dir="$PWD/$core_dir" ;; esac
  build_hint="cmake -S $root -B $root/build-luajit -DBRAZE_LUA=luajit && cmake --build $root/build-luajit"
fi
[ -f "$core_dir/braze/core.so" ] || die "no $core_dir/braze/core.so (braze.core built for LuaJIT): $build_hint"

# nginx's resolver is a DNS server; it does not read /etc/hosts.
resolvers=${BRAZE_RESOLVER:-$(awk '$1 == "nameserver" && $2 !~ /%/ {
  print ($2 ~ /:/ ? "[" $2 "]" : $2) }' /etc/resolv.conf 2>/dev/null | xargs)}
[ -n "$resolvers" ] || die "no nameserver in /etc/resolv.conf: set BRAZE_RESOLVER to a DNS server's IP address"
ipv6=off
case $resolvers in *"["*) ipv6=on ;; esac

# Debian's dynamic Lua module; nothing when nginx has it built in (OpenResty).
modules=$("$nginx" -V 2>&1 | sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p')
main_conf=
for m in ndk_http_module.so ngx_http_lua_module.so; do
  [ -f "${modules:-/usr/lib/nginx/modules}/$m" ] && main_conf+="load_module ${modules:-/usr/lib/nginx/modules}/$m;"$'\n'
done
if [ -z "$main_conf" ] && ! "$nginx" -V 2>&1 | grep -q lua; then
  die "$nginx has no Lua module: apt-get install libnginx-mod-http-lua (Debian), or use OpenResty"
fi

case $bind in *:[0-9]*) ;; *) die "BRAZE_BIND=$bind: expected ADDR:PORT, e.g. 127.0.0.1:8080" ;; esac
if [ -n "${BRAZE_STATE:-}" ]; then
  mkdir -p "$BRAZE_STATE" || die "cannot make BRAZE_STATE=$BRAZE_STATE"
  state=$(cd "$BRAZE_STATE" && pwd)
else
  state=$(mktemp -d /tmp/braze-example-nginx.XXXXXX)
fi
chmod 755 "$state" # the workers (nobody when started as root) use its temp/
cp "$here/nginx.conf" "$state/nginx.conf"
printf '%s' "$main_conf" >"$state/main.conf"
printf 'listen %s;\n' "$bind" >"$state/listen.conf"
cat >"$state/http.conf" <<CONF
resolver $resolvers ipv6=$ipv6 valid=300s;
resolver_timeout 5s;
lua_package_path "$lua_path;$here/?.lua;;";
lua_package_cpath "$core_dir/?.so;;";
CONF
echo "examples/nginx: http://$bind/segments/sizes?segment_id=ID&days=7 (state: $state, pid in $state/nginx.pid)" >&2
exec "$nginx" -p "$state/" -c nginx.conf -e stderr
