#!/usr/bin/env bash
# pg_run.sh - run a test program against a throwaway PostgreSQL cluster: start one (pg_lib.sh),
# run the program with AMUSE_TEST_DB_URL set to it, stop the cluster and remove it. The ctest
# entries test_db_postgres and test_serve_postgres run test_db and test_serve this way, so the
# store tests run against both backends. Exits 77 (ctest: skipped) with a message when the
# PostgreSQL server binaries are not installed, and only then.
#
# usage: bash pg_run.sh PROGRAM [ARGS...]
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=pg_lib.sh
. "$SRC/tests/pg_lib.sh"

if ! pg_find_bin; then
    echo "SKIP PostgreSQL is not installed (no initdb/pg_ctl; scripts/deps.sh installs postgresql)"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/amuse-pg.XXXXXX")
chmod 711 "$dir" # the cluster runs as postgres when this runs as root
cleanup() {
    pg_stop_cluster "$dir/cluster"
    rm -rf "$dir"
}
trap cleanup EXIT
if ! pg_start_cluster "$dir/cluster" fast; then
    echo "FAIL could not start a PostgreSQL cluster"
    exit 1
fi
AMUSE_TEST_DB_URL=$PG_URL "$@"
