#!/usr/bin/env bash
# Build the MovieLens demo recommender into a model repository: the ratings that Debian's
# r-cran-dslabs ships (data/make_movielens.sh: 100,004 ratings by 671 users of 9,066 movies, with
# titles and genres) trained by `amuse recommend train` as implicit ALS with the settings
# bench/recsys.sh's validation tuning picked (64 factors, reg 50, alpha 1, 15 iterations), plus
# its held-out evaluation (eval.json: P@10, nDCG@10, coverage, Gini, ARP, APLT, novelty).
# The trained directory is about 11 MB, too big to ship in models/default/, so the quick start
# runs this once, at its first start (about 20 seconds on 2 cores).
# The same ratings and movies are loaded into the demo tenant of the server's database
# (AMUSE_DEMO_TENANT, default "default": the tenant of the first admin key; the database is
# AMUSE_DB or amuse's default), so GET /v1/users/{id}/events, DELETE /v1/users/{id} and new
# events posted to /v1/events work on real data and reach the recommender at once. Run again
# after deleting the model directory, it retrains; the import sees the same file and stores
# nothing twice.
#
#   scripts/make-movielens-model.sh [REPOSITORY] [AMUSE]
#      REPOSITORY  default: repository (writes REPOSITORY/movielens/1, replacing nothing there)
#      AMUSE       the amuse program (default: build/amuse)
# It does not install R: scripts/deps.sh r-cran-dslabs does (the quick start calls it).
set -euo pipefail
cd "$(dirname "$0")/.."
repository=${1:-repository}
amuse=${2:-build/amuse}
dest="$repository/movielens/1"
if [ -e "$dest" ]; then
  echo "amuse: $dest is already there" >&2
  exit 0
fi
[ -s data/movielens/events.csv ] || data/make_movielens.sh --events data/movielens
mkdir -p "$repository/movielens"
tmp=$(mktemp -d "$repository/movielens/.train.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$amuse" recommend train --data data/movielens/ratings.tsv --items data/movielens/items.tsv \
  --algo als --factors 64 --reg 50 --alpha 1 --iters 15 --seed 1 --output "$tmp/1" >&2
mv "$tmp/1" "$dest"
echo "amuse: MovieLens recommender ready in $dest" >&2
tenant=${AMUSE_DEMO_TENANT:-default}
"$amuse" events items --tenant "$tenant" data/movielens/items.csv >&2
"$amuse" events import --tenant "$tenant" data/movielens/events.csv >&2
echo "amuse: MovieLens ratings loaded into tenant '$tenant' of the server's database" >&2
