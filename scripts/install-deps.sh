#!/usr/bin/env bash
# Install the Debian packages lua-braze needs to build, test and run its
# demo. Idempotent and quiet when everything is already there.
#   bash scripts/install-deps.sh          # build + tests (Lua 5.4)
#   BRAZE_DEPS=full bash scripts/...      # + sanitizers, fuzzing, other Luas, nginx, haproxy, neovim
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  lua5.4 liblua5.4-dev libcurl4-openssl-dev
  lua-socket lua-argparse lua-cjson lua-busted
  lua-luv  # spec/transport/luv_spec.lua: braze.transport.luv in plain Lua
  lua-cqueues  # spec/transport/cqueues_spec.lua: braze.transport.cqueues (Lua 5.1-5.4, LuaJIT)
  procps  # pgrep/pkill, used by the test scripts
  python3  # spec/cli/report_spec.lua, svg_spec.lua: the page and the SVG read back by html.parser and xml.etree
)
if [ "${BRAZE_DEPS:-}" = full ]; then
  packages+=(
    valgrind clang-14 libclang-rt-14-dev
    lua5.1 liblua5.1-0-dev lua5.3 liblua5.3-dev
    # OpenResty's luajit2, not Debian's luajit: libnginx-mod-http-lua needs it.
    luajit2 libluajit2-5.1-dev
    nginx-core libnginx-mod-http-lua openssl
    neovim  # spec/transport/luv_spec.lua #neovim: braze.transport.luv inside nvim --headless
    haproxy  # spec/transport/haproxy_spec.lua (2.6+, Lua 5.3 inside; the service stays as Debian ships it)
    lua-check cppcheck  # scripts/lint.sh
    luarocks curl  # spec/install/rock_spec.lua (README's rock install); curl: spec/example_nginx_spec.lua
    chromium  # spec/cli/report_browser_spec.lua #browser: the report page in a real browser
    redis-server lua-redis lua-nginx-redis  # spec/window/: braze.window.redis (redis-lua; lua-resty-redis in nginx)
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
