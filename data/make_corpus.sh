#!/usr/bin/env bash
# make_corpus.sh - build the word2vec corpora from Debian text packages.
#
#   data/make_corpus.sh [output-dir]          (default: data/corpus, git-ignored)
#
# Writes <dir>/english.txt: GCIDE dictionary + King James Bible + fortunes + Jane Austen, lower-cased,
# letters only (every other byte becomes a space), one source line per line. Writes <dir>/chinese.txt:
# the fortunes-zh collections with ANSI colour escapes and '%' separator lines removed, for
# `amuse word2vec -chars 1`. Installs the packages it reads if they are missing. It does not
# download anything else and does not tokenise beyond the letters-only rule.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/corpus}
mkdir -p "$out"

packages=(dict-gcide bible-kjv-text bible-kjv fortunes fortunes-zh r-cran-janeaustenr r-base-core gzip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "make_corpus: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# English: each source as plain text lines, then letters only and lower case.
{
  zcat /usr/share/dictd/gcide.dict.dz | sed -e 's/<[^>]*>/ /g'
  # bible.data is compressed; the bible command (package bible-kjv) prints it. Drop "Ge1:1 ".
  bible -f 'gen1:1-rev22:21' | sed -e 's/^[^ ]* //'
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' \
       ! -name tang300 ! -name song100 ! -name chinese -print0 | sort -z | xargs -0 cat | grep -v '^%$'
  Rscript -e 'library(janeaustenr); writeLines(austen_books()$text)'
} | LC_ALL=C tr -c 'A-Za-z\n' ' ' | LC_ALL=C tr 'A-Z' 'a-z' | LC_ALL=C tr -s ' ' \
  | sed -e 's/^ //' -e 's/ $//' | grep -v '^$' > "$tmp/english.txt"
mv "$tmp/english.txt" "$out/english.txt"

# Chinese: data/make_chinese.sh (fortunes-zh without colour escapes and separators).
"$here/make_chinese.sh" "$out"

wc -lw "$out/english.txt" "$out/chinese.txt" >&2
