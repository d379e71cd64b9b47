#!/usr/bin/env bash
# make_text.sh - build the text-generation corpora from Debian text packages.
#
#   data/make_text.sh [output-dir]          (default: data/text, git-ignored)
#
# Writes, all UTF-8 with LF line ends:
#   poems-zh.txt      the Tang (tang300) and Song (song100) poems of fortunes-zh: poem bodies only
#                     (titles, authors, colour escapes and section headers dropped), one poem per
#                     paragraph, a blank line between poems;
#   couplets-zh.tsv   every pair of consecutive lines within a poem: "line<TAB>next line";
#   songs-en.txt      the songs and poems of the fortunes package (songs-poems), one piece per
#                     paragraph, attribution lines ("-- Ogden Nash") dropped;
#   lines-en.tsv      consecutive line pairs of songs-en.txt, for the English seq2seq task;
#   austen.txt        Jane Austen's six novels (r-cran-janeaustenr), as the package has them.
# Installs the packages it reads if they are missing; downloads nothing else.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/text}
mkdir -p "$out"

packages=(fortunes fortunes-zh r-cran-janeaustenr r-base-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "make_text: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fortunes=/usr/share/games/fortunes

# Poems: a '%' line ends an entry. Lines with colour escapes (tang300's titles and authors), the
# "题目:"/"作者:" lines (song100's), indented section headers and blank lines are not poem text.
cat "$fortunes/tang300" "$fortunes/song100" | tr -d '\r' | awk '
  /^%$/            { if (n) { printf "%s\n", body; n = 0; body = "" } ; next }
  /\x1b/           { next }
  /^(题目|作者)/    { next }
  /^[ \t]/         { next }
  /^[ \t]*$/       { next }
                   { body = body $0 "\n"; n++ }
  END              { if (n) printf "%s\n", body }' > "$tmp/poems-zh.txt"

# Consecutive lines within a paragraph, as "source<TAB>target".
pairs() {
  awk 'NF == 0 { prev = ""; next }
       { gsub(/\t/, " "); if (prev != "") print prev "\t" $0; prev = $0 }' "$1"
}
pairs "$tmp/poems-zh.txt" > "$tmp/couplets-zh.tsv"

# Songs and poems: drop attribution lines and trailing white space; entries become paragraphs.
tr -d '\r' < "$fortunes/songs-poems" | sed -e 's/[ \t]*$//' | awk '
  /^%$/              { if (n) { printf "%s\n", body; n = 0; body = "" } ; next }
  /^[ \t]*--/        { next }
  /^$/               { if (n) body = body "\n"; next }
                     { body = body $0 "\n"; n++ }
  END                { if (n) printf "%s\n", body }' | cat -s > "$tmp/songs-en.txt"
pairs "$tmp/songs-en.txt" > "$tmp/lines-en.tsv"

Rscript -e 'library(janeaustenr); writeLines(austen_books()$text)' > "$tmp/austen.txt"

for f in poems-zh.txt couplets-zh.tsv songs-en.txt lines-en.tsv austen.txt; do
  mv "$tmp/$f" "$out/$f"
done
wc -lm "$out"/poems-zh.txt "$out"/couplets-zh.tsv "$out"/songs-en.txt "$out"/lines-en.tsv \
  "$out"/austen.txt >&2
