#!/usr/bin/env bash
# run-long.sh - long libFuzzer runs of every harness, one after another, one core each: builds
# build-fuzz/ (clang, -DAMUSE_FUZZ=ON, ASan+UBSan) if needed, runs each fuzz_<name> for the given
# duration on fuzz/corpus/<name>, then merges what it found that adds coverage into that corpus
# (so it is committed and replayed by ctest as fuzz_replay_<name>). A crash, leak, timeout or
# out-of-memory input is written into the corpus too, as crash-*/leak-*/timeout-*/oom-* (the
# replay test then fails until the bug is fixed: that is the point), and listed at the end.
# A summary line per harness (seconds run, executions, new corpus entries, findings) goes to
# stdout and to fuzz/long-run.log.
#
# usage: fuzz/run-long.sh [--duration SECONDS] [--only name,name] [--help]
#   --duration  seconds per harness (default 3600: an hour each)
#   --only      run only these harnesses (default: every one in fuzz/CMakeLists.txt)
#   --quick     60 seconds each (a check that the setup works)
#   --summary   print what fuzz/long-run.log adds up to per harness (runs, seconds, executions)
#               and exit; docs/RELIABILITY.md records it
# Needs clang (Debian's clang-14 has libFuzzer). Does not stop other runs; run it on a quiet
# machine. The http, multipart and query harnesses start a server on 127.0.0.1 in process.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=${AMUSE_FUZZ_BUILD:-$SRC/build-fuzz}
duration=3600
only=""
summary=""
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration="$2"; shift ;;
    --only) only="$2"; shift ;;
    --quick) duration=60 ;;
    --summary) summary=1 ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-long.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$summary" ]; then
    # One line per run: "name: S s (cpu C s), E executions, ...". The most hours print first.
    awk -F'[:,] *' '/^[a-z0-9_]+: [0-9]+ s[ ,]/ {
            name = $1; split($2, s, " "); split($3, e, " ")
            runs[name]++; secs[name] += s[1]; if (e[1] != "?") execs[name] += e[1]
            # "S s (cpu C s)" since the CPU time is recorded; before that, count the wall time
            cpu[name] += (s[3] == "(cpu") ? s[4] + 0 : s[1]
        }
        END {
            for (n in runs)
                printf "%-15s %3d runs %6.2f hours %6.2f CPU hours %12d executions\n", n,
                       runs[n], secs[n] / 3600, cpu[n] / 3600, execs[n]
        }' "$HERE/long-run.log" | sort -k4,4nr
    exit 0
fi
case "$duration" in '' | *[!0-9]*) echo "run-long.sh: --duration takes seconds" >&2; exit 2 ;; esac

targets=$(sed -n '/^set(AMUSE_FUZZ_TARGETS/,/)/p' "$HERE/CMakeLists.txt" | tr -d '()' |
    sed 's/set//; s/AMUSE_FUZZ_TARGETS//' | tr -s ' \n' '\n' | grep -v '^$')
if [ -n "$only" ]; then
    targets=$(echo "$only" | tr ',' '\n')
fi

if ! command -v clang >/dev/null; then
    echo "run-long.sh: needs clang (apt-get install clang)" >&2
    exit 1
fi
mkdir -p "$BUILD"
CC=clang cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMUSE_FUZZ=ON \
    -DAMUSE_SANITIZE=ON >"$BUILD/configure.log" 2>&1 || {
    echo "run-long.sh: configure failed: see $BUILD/configure.log" >&2
    exit 1
}
for t in $targets; do
    cmake --build "$BUILD" -j2 --target "fuzz_$t" >"$BUILD/build.log" 2>&1 || {
        echo "run-long.sh: building fuzz_$t failed: see $BUILD/build.log" >&2
        exit 1
    }
done

LOG="$HERE/long-run.log"
# GNU time writes the fuzzer's user and system CPU seconds to $new.time (last line).
timed() { "$@"; }
if [ -x /usr/bin/time ]; then timed() { /usr/bin/time -f '%U %S' -o "$new.time" "$@"; }; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One core each, BLAS included: OpenBLAS's threads spin-yield for each other, and on a loaded
# machine a one-sample forward pass then passed the 60 s timeout (a false finding).
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) run-long.sh --duration $duration ($(getconf _NPROCESSORS_ONLN) cores)" >>"$LOG"
findings_all=""
for t in $targets; do
    corpus="$HERE/corpus/$t"
    new=$(mktemp -d "${TMPDIR:-/tmp}/amuse-fuzz-$t.XXXXXX")
    before=$(ls "$corpus" | wc -l)
    start=$(date +%s)
    # New inputs go to $new (first directory); the committed corpus is read only. Findings are
    # written straight into the corpus. -timeout: an input taking longer is a finding.
    # CPU seconds too: on a shared machine the wall time says little about the work done.
    timed "$BUILD/fuzz/fuzz_$t" -max_total_time="$duration" -timeout=60 -rss_limit_mb=4096 \
        -artifact_prefix="$corpus/" -print_final_stats=1 "$new" "$corpus" \
        >"$new.log" 2>&1
    status=$?
    secs=$(($(date +%s) - start))
    cpu=$(tail -n 1 "$new.time" 2>/dev/null | awk '{printf "%d", $1 + $2}')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$new.log" | tail -n 1)
    # Keep what adds coverage: merge the new inputs into the committed corpus.
    "$BUILD/fuzz/fuzz_$t" -merge=1 -timeout=60 "$corpus" "$new" >"$new.merge.log" 2>&1
    after=$(ls "$corpus" | wc -l)
    findings=$(cd "$corpus" && ls | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | tr '\n' ' ')
    line="$t: ${secs} s (cpu ${cpu:-?} s), ${execs:-?} executions, $((after - before)) new corpus entries, exit $status, findings: ${findings:-none}"
    echo "$line" | tee -a "$LOG"
    [ -n "$findings" ] && findings_all="$findings_all $t:[$findings]"
    if [ "$status" -ne 0 ] && [ -z "$findings" ]; then
        tail -n 20 "$new.log"
    fi
    rm -rf "$new" "$new.merge.log" "$new.time"
    mv "$new.log" "$BUILD/fuzz-$t.last.log"
done
echo "findings:${findings_all:- none}" | tee -a "$LOG"
[ -z "$findings_all" ]
