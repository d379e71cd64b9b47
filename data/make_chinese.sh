#!/usr/bin/env bash
# make_chinese.sh - build the Chinese corpus from Debian's fortunes-zh (300 Tang poems, 100 Song
# ci and the "chinese" quotes collection).
#
#   data/make_chinese.sh [output-dir]          (default: data/corpus, git-ignored)
#
# Writes <dir>/chinese.txt: the three collections with their ANSI colour escapes, '%' separator
# lines and blank lines removed, UTF-8 as is, one line of verse or prose per line. Chinese has no
# spaces between words, so train on it with `-chars 1` (every character is a token). Installs
# fortunes-zh if it is missing; downloads nothing else; does not segment words or convert between
# traditional and simplified characters.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/corpus}
mkdir -p "$out"
src=/usr/share/games/fortunes
if ! dpkg-query -W -f='${Status}' fortunes-zh 2>/dev/null | grep -q "install ok installed"; then
  echo "make_chinese: installing fortunes-zh" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends fortunes-zh
fi
tmp=$(mktemp "$out/.chinese.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# Strip ANSI escapes (ESC [ ... letter), then the broken ones the quotes also hold ("ESC [ ;"
# straight before another escape), and fortune separators; keep UTF-8 as is.
for f in tang300 song100 chinese; do
  cat "$src/$f"
done | sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\x1b\[[0-9;]*//g' -e 's/\x1b//g' | grep -v '^%$' | grep -v '^[[:space:]]*$' > "$tmp"
mv "$tmp" "$out/chinese.txt"
trap - EXIT
