# pg_lib.sh - a throwaway PostgreSQL cluster for the tests and the benchmark: initdb and pg_ctl
# in a temporary directory, listening only on a unix socket in that directory (no TCP port, so
# it cannot collide with another cluster on the machine), trust authentication for the one
# superuser "amuse". PostgreSQL refuses to run as root: as root, the server runs as the
# `postgres` user (Debian's package creates it), or as nobody, with the directory chowned to it.
# It does not tune the server beyond what a test needs; pg_start_cluster's second argument
# chooses between a durable cluster (the benchmark) and one with fsync off (tests).
#
#   pg_find_bin              sets PG_BIN to the directory of initdb/pg_ctl, or returns 1
#   pg_start_cluster DIR [durable|fast]
#                            make and start a cluster in DIR (created; must not exist) and set
#                            PG_URL (postgresql://amuse@/amuse?host=DIR/socket&port=5432);
#                            returns 1 with the log's tail on stderr when it does not start;
#                            DIR's parent must be searchable by the owner (chmod 711)
#   pg_stop_cluster DIR      stop it (fast shutdown, bounded wait) and leave DIR for the caller
#   pg_restart_cluster DIR   start a stopped cluster again, same settings (an outage in a test)
#   pg_sql DIR SQL           run SQL with psql against the cluster, unaligned output, no header

pg_find_bin() {
    PG_BIN=""
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then PG_BIN=$d; return 0; fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        PG_BIN=$(dirname "$(command -v initdb)")
        return 0
    fi
    return 1
}

# The command prefix that runs a program as the cluster's owner.
_pg_as_owner() {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    elif command -v runuser >/dev/null; then
        runuser -u "$_PG_USER" -- "$@"
    else
        setpriv --reuid="$_PG_USER" --regid="$(id -g "$_PG_USER")" --clear-groups -- "$@"
    fi
}

pg_start_cluster() {
    local dir=$1 mode=${2:-fast}
    pg_find_bin || { echo "pg_lib: no initdb/pg_ctl (install postgresql)" >&2; return 1; }
    _PG_USER=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        if id postgres >/dev/null 2>&1; then _PG_USER=postgres; else _PG_USER=nobody; fi
    fi
    mkdir -p "$dir/socket" || return 1
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown -R "$_PG_USER" "$dir"
    if ! _pg_as_owner "$PG_BIN/initdb" -D "$dir/data" -U amuse --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
        echo "pg_lib: initdb failed:" >&2
        tail -n 5 "$dir/initdb.log" >&2
        return 1
    fi
    local opts="-c listen_addresses='' -c unix_socket_directories='$dir/socket' -c port=5432"
    opts="$opts -c max_connections=100 -c shared_buffers=32MB"
    [ "$mode" = fast ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    echo "$opts" >"$dir/options"
    pg_restart_cluster "$dir" || return 1
    # The database amuse uses; "postgres" is the maintenance database.
    if ! _pg_as_owner "$PG_BIN/psql" -X -q -h "$dir/socket" -p 5432 -U amuse -d postgres \
        -c "CREATE DATABASE amuse" >>"$dir/pg_ctl.log" 2>&1; then
        echo "pg_lib: CREATE DATABASE failed:" >&2
        tail -n 3 "$dir/pg_ctl.log" >&2
        return 1
    fi
    PG_URL="postgresql://amuse@/amuse?host=$dir/socket&port=5432"
    export PG_URL
}

pg_restart_cluster() {
    local dir=$1
    if ! _pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(cat "$dir/options")" start >>"$dir/pg_ctl.log" 2>&1; then
        echo "pg_lib: the server did not start:" >&2
        tail -n 5 "$dir/server.log" "$dir/pg_ctl.log" >&2
        return 1
    fi
}

pg_stop_cluster() {
    local dir=$1
    [ -d "$dir/data" ] || return 0
    _pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >>"$dir/pg_ctl.log" 2>&1
}

pg_sql() {
    "$PG_BIN/psql" -X -q -A -t -h "$1/socket" -p 5432 -U amuse -d amuse -v ON_ERROR_STOP=1 -c "$2"
}
