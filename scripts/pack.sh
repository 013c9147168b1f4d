#!/usr/bin/env bash
# Pack a source rock from this checkout, offline:
#   bash scripts/pack.sh [ROCKSPEC [OUTDIR]]
# (default: the versioned lua-braze rockspec, into the current directory;
# cli/ and mock/ rockspecs work too). Prints the rock's path.
#
# `luarocks pack ROCKSPEC` fetches the rockspec's source (a git URL and tag)
# to pack it. This clones the checkout's committed HEAD as that source
# (tagged as the rockspec says, so uncommitted changes are not in the rock),
# packs against the clone, then puts the rockspec as written back into the
# rock, so that the rock names the real source.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^return "\(.*\)"$/\1/p' lua/braze/version.lua)
rockspec=${1:-lua-braze-$version-1.rockspec}
mkdir -p "${2:-.}"
out=$(cd "${2:-.}" && pwd)
[ -f "$rockspec" ] || { echo "pack.sh: no $rockspec" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

url=$(sed -n 's/^source = { url = "\([^"]*\)".*/\1/p' "$rockspec")
tag=$(sed -n 's/^source = {.*tag = "\([^"]*\)".*/\1/p' "$rockspec")
name=$(basename "${url#git+}" .git)      # the directory LuaRocks unpacks the source into
file=$(basename "$rockspec")
git clone -q --no-local . "$tmp/$name"
if [ -n "$tag" ]; then git -C "$tmp/$name" tag -f "$tag" HEAD >/dev/null; fi
sed "s|$url|git+file://$tmp/$name|" "$rockspec" >"$tmp/$file"
(cd "$tmp" && luarocks pack "$file" >/dev/null 2>&1) || { echo "pack.sh: luarocks pack failed" >&2; exit 1; }
rock=${file%.rockspec}.src.rock
mkdir "$tmp/original" && cp "$rockspec" "$tmp/original/$file"
(cd "$tmp/original" && zip -q "$tmp/$rock" "$file")
mv "$tmp/$rock" "$out/$rock"
echo "$out/$rock"
