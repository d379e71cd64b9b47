#!/usr/bin/env bash
# The main job on embedded defaults: install what amuse needs, build it, prepare the default
# model repository and start the server.
#
# The default models ship in models/default/ (the seed CNN and DNN trained on Fashion-MNIST, and
# English word vectors; scripts/train-defaults.sh retrains them from the recipes). On the first
# run they are copied to ./repository, the server's model repository, where you can add your own
# (<repository>/<model>/<version>/). The MovieLens demo recommender is too big to ship (about
# 11 MB): the first run trains it into ./repository/movielens/1 from Debian's r-cran-dslabs
# ratings (scripts/make-movielens-model.sh, about 20 seconds, once). The server listens on http://127.0.0.1:8000/ (the
# playground is at /); on its first start it creates an admin API key and prints it once.
# Environment: AMUSE_PORT, AMUSE_HOST, AMUSE_DB and the other AMUSE_* options of `amuse serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh r-cran-dslabs
# Only what the server needs: the library and the command (no test or fuzz programs).
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMUSE_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"

repository=${AMUSE_REPOSITORY:-repository}
if [ ! -d "$repository" ]; then
  echo "amuse: preparing the model repository $repository/ from models/default/" >&2
  cp -r models/default "$repository.tmp" && mv "$repository.tmp" "$repository"
fi
if [ ! -d "$repository/movielens" ]; then
  echo "amuse: training the MovieLens demo recommender into $repository/movielens/ (once)" >&2
  scripts/make-movielens-model.sh "$repository" build/amuse
fi
echo "amuse: starting the server; open http://${AMUSE_HOST:-127.0.0.1}:${AMUSE_PORT:-8000}/ for the playground" >&2
exec build/amuse serve --repository "$repository"
