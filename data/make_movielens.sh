#!/bin/sh
# make_movielens.sh - export the MovieLens ratings that Debian's r-cran-dslabs ships (100,004
# ratings by 671 users of 9,066 movies) into amuse's events format, plus an items file.
#
#   data/make_movielens.sh [--events] [OUTDIR]   (default: data/movielens, git-ignored)
#
# Writes OUTDIR/ratings.tsv: user<TAB>item<TAB>rating<TAB>unix time, one rating per line
# (ratings 0.5..5), and OUTDIR/items.tsv: item<TAB>title (year)<TAB>genres ("|"-separated).
# --events also writes them in the format of `amuse events import` and `amuse events items`
# (CSV with a header, quoted where needed): OUTDIR/events.csv (user,item,type,value,timestamp;
# type rating) and OUTDIR/items.csv (id,title,tags), so a demo tenant loads with
#   amuse events items --tenant demo OUTDIR/items.csv
#   amuse events import --tenant demo OUTDIR/events.csv
# Needs: apt-get install r-cran-dslabs (R's base install there lacks write.csv, so the rows are
# pasted with writeLines). It does not split the data: `amuse recommend eval --split` does.
set -eu
events=0
if [ "${1:-}" = "--events" ]; then
    events=1
    shift
fi
out=${1:-$(dirname "$0")/movielens}
if ! Rscript -e 'library(dslabs)' >/dev/null 2>&1; then
    echo "make_movielens.sh: R's dslabs package is missing: apt-get install r-cran-dslabs" >&2
    exit 1
fi
mkdir -p "$out"
tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
Rscript -e '
args <- commandArgs(trailingOnly = TRUE)
library(dslabs); data(movielens)
m <- movielens
clean <- function(s) gsub("[\t\r\n]", " ", s)
writeLines(paste(m$userId, m$movieId, m$rating, m$timestamp, sep = "\t"),
           file.path(args[1], "ratings.tsv"))
items <- m[!duplicated(m$movieId), ]
items <- items[order(items$movieId), ]
title <- ifelse(is.na(items$year), clean(items$title), paste0(clean(items$title), " (", items$year, ")"))
writeLines(paste(items$movieId, title, clean(as.character(items$genres)), sep = "\t"),
           file.path(args[1], "items.tsv"))
' "$tmp"
mv "$tmp/ratings.tsv" "$out/ratings.tsv"
mv "$tmp/items.tsv" "$out/items.tsv"
echo "$out/ratings.tsv: $(wc -l < "$out/ratings.tsv") ratings; $out/items.tsv: $(wc -l < "$out/items.tsv") items"
if [ "$events" = 1 ]; then
    # The TSVs hold no tabs or line breaks inside fields; CSV quotes a field holding a comma or
    # a quote, and doubles its quotes.
    awk -F '\t' 'BEGIN { OFS = ","; print "user,item,type,value,timestamp" }
        { print $1, $2, "rating", $3, $4 }' "$out/ratings.tsv" >"$tmp/events.csv"
    awk -F '\t' 'function q(s) { if (s ~ /[",]/) { gsub(/"/, "\"\"", s); s = "\"" s "\"" } return s }
        BEGIN { print "id,title,tags" }
        { print q($1) "," q($2) "," q($3) }' "$out/items.tsv" >"$tmp/items.csv"
    mv "$tmp/events.csv" "$out/events.csv"
    mv "$tmp/items.csv" "$out/items.csv"
    echo "$out/events.csv: $(($(wc -l < "$out/events.csv") - 1)) events; $out/items.csv: $(($(wc -l < "$out/items.csv") - 1)) items"
fi
