#!/usr/bin/env bash
# Install dependencies, build, and run the whole test suite twice: an optimised build with
# warnings as errors, then an AddressSanitizer + UndefinedBehaviorSanitizer build. The tests of
# the server (ctest label "serve") then run once more in the ASan build while stress-ng keeps
# two CPUs busy: they must not depend on how fast the machine is.
#
#   scripts/test.sh            what CI runs (.ci/run)
#   scripts/test.sh --stress   the proof that nothing is timing-dependent: in both builds, the
#                              whole suite 5 times in a row with ctest -j4 beside stress-ng --cpu 2
#                              (about 5x the normal time); stops at the first failing round
set -euo pipefail
cd "$(dirname "$0")/.."

stress=0
case "${1:-}" in
"") ;;
--stress) stress=1 ;;
-h | --help)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "usage: scripts/test.sh [--stress]" >&2
    exit 2
    ;;
esac

# The word-embedding tests train on the English corpus built from these Debian text packages.
# The server tests drive a real `amuse serve` with curl, and with the openai npm client on node
# (npm comes with some nodejs builds, such as NodeSource's; Debian packages it apart). stress-ng
# is the load the server tests run beside.
scripts/deps.sh curl nodejs dict-gcide bible-kjv-text bible-kjv fortunes fortunes-zh r-cran-janeaustenr \
    stress-ng
command -v npm >/dev/null || scripts/deps.sh npm
[ -s data/corpus/english.txt ] || data/make_corpus.sh data/corpus
jobs=$(nproc)

# The voice data script's test synthesises a tiny set with espeak-ng and sox.
scripts/deps.sh espeak-ng sox wamerican

# The store tests run once more against a throwaway PostgreSQL cluster, and the replica test puts
# nginx in front of two servers (the quick start needs neither: only libpq to build).
scripts/deps.sh postgresql nginx

# The playground's browser test drives Debian's chromium with npm's playwright-core.
scripts/deps.sh chromium nodejs
command -v npm >/dev/null || scripts/deps.sh npm

# under_load CMD...: run CMD while stress-ng keeps 2 CPUs busy; its exit status is CMD's.
under_load() {
    stress-ng --cpu 2 --timeout 7200 --quiet &
    local load=$! rc=0
    "$@" || rc=$?
    kill -INT "$load" 2>/dev/null || true
    wait "$load" 2>/dev/null || true
    return $rc
}

asan_env=(env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

echo "== release build (-Werror) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMUSE_WERROR=ON -DAMUSE_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
echo "== ASan + UBSan build =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAMUSE_WERROR=ON -DAMUSE_SANITIZE=ON \
    -DAMUSE_BUILD_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"

if [ $stress -eq 1 ]; then
    for dir in build build-asan; do
        env=()
        [ $dir = build-asan ] && env=("${asan_env[@]}")
        for round in 1 2 3 4 5; do
            echo "== $dir: round $round of 5, ctest -j4 beside stress-ng --cpu 2 =="
            (cd $dir && under_load "${env[@]}" ctest --output-on-failure -j4) || {
                echo "scripts/test.sh --stress: $dir failed in round $round" >&2
                exit 1
            }
        done
    done
    echo "scripts/test.sh --stress: 5 rounds passed in both builds"
    exit 0
fi

echo "== release build: tests =="
(cd build && ctest --output-on-failure -j"$jobs")
echo "== ASan + UBSan build: tests =="
(cd build-asan && "${asan_env[@]}" ctest --output-on-failure -j"$jobs")
echo "== ASan + UBSan build: the server tests again, beside stress-ng --cpu 2 =="
(cd build-asan && under_load "${asan_env[@]}" ctest --output-on-failure -j"$jobs" -L serve)
