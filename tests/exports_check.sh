#!/usr/bin/env bash
# exports_check.sh - libamuse exports exactly its documented API: every function declared with
# AMUSE_API in include/amuse/*.h, nothing named am__ (internal) and nothing else at all, and
# version.h's macros agree with the version the library reports.
#
# usage: bash exports_check.sh <libamuse.so> <include dir> <amuse command>
set -u
lib=$1 inc=$2 amuse=$3
fail=0
# The linker's own markers (__bss_start, _edata, _end) are not the library's symbols.
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ && $3 !~ /^(__bss_start|_edata|_end|_init|_fini)$/ {print $3}' \
    | sort -u >"${TMPDIR:-/tmp}/exports.$$"
exports="${TMPDIR:-/tmp}/exports.$$"
trap 'rm -f "$exports"' EXIT
n=$(wc -l <"$exports")
internal=$(grep -c '^am__' "$exports")
other=$(grep -v '^amuse_' "$exports" | tr '\n' ' ')
if [ "$internal" -ne 0 ] || [ -n "$other" ]; then
    echo "FAIL libamuse exports $internal am__ symbols and others: $other $(grep '^am__' "$exports" | head -5 | tr '\n' ' ')"
    fail=1
else
    echo "ok   $n symbols exported, all amuse_, no am__"
fi
missing=""
for f in $(grep -ho 'AMUSE_API[^;]*[^a-z0-9_]amuse_[a-z0-9_]*(' "$inc"/amuse/*.h | grep -o 'amuse_[a-z0-9_]*($' | tr -d '('); do
    grep -qx "$f" "$exports" || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "FAIL declared with AMUSE_API but not exported:$missing"
    fail=1
else
    echo "ok   every AMUSE_API function in the headers is exported"
fi
unmarked=$(grep -hE '^[a-z][a-z0-9_ ]*[ *]amuse_[a-z0-9_]+\(' "$inc"/amuse/*.h | grep -v '^AMUSE_API' | head -3)
if [ -n "$unmarked" ]; then
    echo "FAIL public declarations without AMUSE_API: $unmarked"
    fail=1
else
    echo "ok   every function declared in the headers is marked AMUSE_API"
fi
want=$(sed -n 's/^#define AMUSE_VERSION_STRING "\(.*\)"$/\1/p' "$inc/amuse/version.h")
got=$("$amuse" --version | sed -n 's/^amuse \([0-9.]*\) .*/\1/p')
if [ -n "$want" ] && [ "$want" = "$got" ]; then
    echo "ok   amuse --version says $got, as version.h"
else
    echo "FAIL amuse --version says '$got', version.h '$want'"
    fail=1
fi
exit $fail
