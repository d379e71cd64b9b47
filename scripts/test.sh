#!/usr/bin/env bash
# Install dependencies, build, and run the whole test suite twice: an optimised build with
# warnings as errors, then an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."

# The word-embedding tests train on the English corpus built from these Debian text packages.
# The server tests drive a real `amuse serve` with curl, and with the openai npm client on node
# (npm comes with some nodejs builds, such as NodeSource's; Debian packages it apart).
scripts/deps.sh curl nodejs dict-gcide bible-kjv-text bible-kjv fortunes fortunes-zh r-cran-janeaustenr
command -v npm >/dev/null || scripts/deps.sh npm
[ -s data/corpus/english.txt ] || data/make_corpus.sh data/corpus
jobs=$(nproc)

# The voice data script's test synthesises a tiny set with espeak-ng and sox.
scripts/deps.sh espeak-ng sox wamerican

# The playground's browser test drives Debian's chromium with npm's playwright-core.
scripts/deps.sh chromium nodejs
command -v npm >/dev/null || scripts/deps.sh npm

echo "== release build (-Werror) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMUSE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== ASan + UBSan build =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAMUSE_WERROR=ON -DAMUSE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs")
