# nginx_lib.sh - nginx as the load balancer in front of `amuse serve` replicas, for the replica test
# and bench/scale_serve.sh: a generated config in a directory of its own (-p prefix; pid, logs
# and temp files there), listening on a free 127.0.0.1 port, round-robin over the replicas, with
# keep-alive connections to them and a retry on the next replica for a request that could not be
# sent (connection refused, or 502/503 before the request went out; a POST already sent is not
# sent twice). docs/SCALING.md shows the same upstream block for a real deployment. As root,
# nginx's workers run as nobody and get the temp directory. It does not do TLS or caching.
#
#   nginx_find              sets NGINX to the nginx binary, or returns 1
#   nginx_start DIR PORT... start nginx (in the foreground of a background job) proxying to the
#                           replicas on 127.0.0.1:PORT...; sets NGINX_PORT and NGINX_PID; the
#                           access log DIR/logs/access.log has one line a request:
#                           METHOD URI STATUS [UPSTREAM_ADDRS] [UPSTREAM_STATUSES]
#                           returns 1 (log tail on stderr) when it does not answer
#   nginx_stop              stop it (SIGTERM: finish requests, then exit)

nginx_find() {
    NGINX=$(command -v nginx 2>/dev/null)
    [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
    [ -n "$NGINX" ]
}

_nginx_free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_nginx_config() { # DIR PORT UPSTREAMS...
    local dir=$1 port=$2 user_line="" servers="" p
    shift 2
    [ "$(id -u)" -eq 0 ] && user_line="user nobody $(id -gn nobody);"
    for p in "$@"; do
        servers="$servers        server 127.0.0.1:$p max_fails=1 fail_timeout=60s;"$'\n'
    done
    cat <<CONF
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    log_format replicas '\$request_method \$uri \$status [\$upstream_addr] [\$upstream_status]';
    access_log $dir/logs/access.log replicas;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    upstream amuse {
$servers        keepalive 32;
    }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 16m;
        location / {
            proxy_pass http://amuse;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
            proxy_buffering off;
        }
    }
}
CONF
}

nginx_start() {
    local dir=$1 try
    shift
    nginx_find || { echo "nginx_lib: nginx is not installed" >&2; return 1; }
    mkdir -p "$dir/logs" "$dir/tmp"
    [ "$(id -u)" -eq 0 ] && chown -R nobody "$dir/tmp"
    # A free port can be taken between the check and nginx's bind: try another.
    for try in 1 2 3; do
        NGINX_PORT=$(_nginx_free_port)
        _nginx_config "$dir" "$NGINX_PORT" "$@" >"$dir/nginx.conf"
        "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
        NGINX_PID=$!
        # Ours answers through to a replica, and says it is nginx; another program may have
        # taken the port (then this nginx has exited).
        for _ in $(seq 1 100); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            curl -s -o /dev/null -D - "http://127.0.0.1:$NGINX_PORT/v2/health/live" 2>/dev/null |
                grep -qi '^server: nginx' && kill -0 "$NGINX_PID" 2>/dev/null && return 0
            sleep 0.1
        done
        kill -TERM "$NGINX_PID" 2>/dev/null
        wait "$NGINX_PID" 2>/dev/null
        NGINX_PID=""
    done
    echo "nginx_lib: nginx did not start:" >&2
    tail -n 5 "$dir/logs/error.log" >&2
    return 1
}

nginx_stop() {
    [ -n "${NGINX_PID:-}" ] || return 0
    kill -TERM "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=""
}
