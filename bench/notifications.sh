#!/usr/bin/env bash
# Benchmark: notification delivery. N pending notifications for the environment-declared
# webhook channel (CERTCTL_WEBHOOK_URL, HMAC-signed) are written in one transaction while the
# server runs; the worker claims, signs, POSTs and records them. The receiver is nginx on
# loopback (an independent HTTP server answering 204 and logging every request, so the log
# proves each row arrived exactly once). Beside it, wrk POSTs a body of the same size straight to
# the same nginx location: the receiver's ceiling on this machine.
#
# How to run:
#   bench/notifications.sh [sqlite|postgres|all]          (default all)
#
#   CERTCTL_BENCH_NOTIFICATIONS=20000   rows delivered per backend
#   CERTCTL_BENCH_QUIET_LOAD / _QUIET_WAIT as in bench/issuance.sh
#
# Needs nginx and everything bench/issuance.sh needs.
set -euo pipefail
# shellcheck source=issuance.sh
source "$(dirname "${BASH_SOURCE[0]}")/issuance.sh"

N=${CERTCTL_BENCH_NOTIFICATIONS:-20000}

# Starts nginx answering 204 on /hook; sets NGINX_PORT and NGINX_DIR.
start_nginx() {
    bench_tempdir NGINX_DIR
    NGINX_PORT=$(bench_free_port)
    cat >"$NGINX_DIR/nginx.conf" <<CONF
worker_processes 1;
daemon off;
user root;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 1024; }
http {
    access_log $NGINX_DIR/access.log;
    client_body_temp_path $NGINX_DIR/body;
    proxy_temp_path $NGINX_DIR/proxy;
    fastcgi_temp_path $NGINX_DIR/fastcgi;
    uwsgi_temp_path $NGINX_DIR/uwsgi;
    scgi_temp_path $NGINX_DIR/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /hook { return 204; }
    }
}
CONF
    nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" &
    BENCH_PIDS+=("$!")
    local i
    for i in $(seq 1 100); do
        curl -sf -o /dev/null -X POST "http://127.0.0.1:$NGINX_PORT/hook" && return 0
        sleep 0.05
    done
    echo "nginx did not start:" >&2
    cat "$NGINX_DIR/error.log" >&2
    exit 1
}

# Requests nginx has logged for /hook.
hook_requests() { grep -c 'POST /hook' "$NGINX_DIR/access.log" || true; }

# The rows, inserted as one statement (one transaction) by the database's own shell.
seed_sql() {
    local now_us=$1 payload='{"certificate_name":"api-prod","common_name":"api.example.com","expires_at":"2027-01-01T00:00:00Z","threshold_days":7,"days_left":6}'
    local cols="id, type, channel, recipient, subject, message, payload, severity, status, created_at, updated_at"
    local vals="'Webhook', 'ops@example.com', 'Certificate api-prod expires in 6 days', 'Certificate api-prod (api.example.com) expires in 6 days (not after 2027-01-01T00:00:00Z). Alert threshold: 7 days, severity warning.', '$payload', 'warning', 'pending'"
    if [ "$BACKEND" = postgres ]; then
        echo "INSERT INTO notifications ($cols) SELECT 'bench-' || i, 'ExpirationWarning', $vals, $now_us + i, $now_us + i FROM generate_series(1, $N) AS i"
    else
        echo "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
              INSERT INTO notifications ($cols) SELECT 'bench-' || i, 'ExpirationWarning', $vals, $now_us + i, $now_us + i FROM n"
    fi
}

run_backend() {
    local backend=$1 tag="[$1]"
    start_nginx
    bench_start_server "$backend" CERTCTL_WEBHOOK_URL="http://127.0.0.1:$NGINX_PORT/hook" \
        CERTCTL_WEBHOOK_SECRET=bench-secret CERTCTL_ALLOW_LOOPBACK_TARGETS=true
    bench_wait_quiet
    echo "$tag load average before: $(bench_load)"
    local cpu0 t0 t1 sent=0 waited=0
    cpu0=$(bench_cpu_ms)
    t0=$(date +%s%N)
    sql "$(seed_sql $((t0 / 1000)))" >/dev/null
    while [ "$sent" -lt "$N" ]; do
        sleep 0.2
        waited=$((waited + 1))
        sent=$(sql "SELECT COUNT(*) FROM notifications WHERE status = 'sent'")
        if [ "$waited" -ge 3000 ]; then
            echo "$tag only $sent of $N sent after 600 s" >&2
            exit 1
        fi
    done
    t1=$(date +%s%N)
    local cpu span first last
    cpu=$(($(bench_cpu_ms) - cpu0))
    read -r first last < <(sql "SELECT MIN(sent_at), MAX(sent_at) FROM notifications" | tr '|' ' ')
    span=$((last - first))
    echo "$tag load average after: $(bench_load)"
    echo "$tag $N notifications delivered; first to last delivery $((span / 1000)) ms:" \
        "$(echo "scale=0; $N * 1000000 / $span" | bc) notifications/s"
    echo "$tag from the insert to the last recorded 'sent' (includes the first tick and polling):" \
        "$(((t1 - t0) / 1000000)) ms, $(echo "scale=0; $N * 1000000000 / ($t1 - $t0)" | bc) notifications/s"
    echo "$tag server CPU: $cpu ms, $(echo "scale=1; $cpu * 1000 / $N" | bc) µs per notification"
    echo "$tag statuses: $(sql "SELECT status || '=' || COUNT(*) FROM notifications GROUP BY status" | tr '\n' ' ')"
    bench_stop_server
    kill -QUIT "$(cat "$NGINX_DIR/nginx.pid")"
    sleep 0.5
    local got
    got=$(hook_requests)
    echo "$tag nginx logged $got POSTs to /hook (expected $((N + 1)): the rows and the start-up probe)"
    [ "$got" -eq $((N + 1)) ] || { echo "$tag delivery count mismatch" >&2; exit 1; }
}

# The receiver's ceiling: wrk POSTing a body the size of a signed webhook notification.
run_peer() {
    start_nginx
    local body
    body=$(printf '{"id":"notif-0000000000000000","type":"ExpirationWarning","severity":"warning","subject":"Certificate api-prod expires in 6 days","message":"%0300d","recipient":"ops@example.com","certificate_id":null,"created_at":"2026-11-30T00:00:00Z","details":{}}' 0)
    cat >"$NGINX_DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$body]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Certctl-Signature"] = "sha256=0000000000000000000000000000000000000000000000000000000000000000"
LUA
    bench_wait_quiet
    echo "[nginx] load average before: $(bench_load)"
    for c in 1 16; do
        echo "[nginx] wrk -t1 -c$c -d5s POST /hook ($(echo -n "$body" | wc -c)-byte body): $(
            wrk -t1 -c"$c" -d5s -s "$NGINX_DIR/post.lua" "http://127.0.0.1:$NGINX_PORT/hook" |
                awk '/Requests\/sec/ { print $2 " requests/s" }')"
    done
}

main() {
    bench_require nginx wrk curl sqlite3 bc pgrep
    case "${1:-all}" in
        sqlite | postgres | all) ;;
        *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
    esac
    if [ "${1:-all}" != sqlite ]; then bench_require psql; fi
    bench_build
    echo "machine: $(nproc) CPUs; $(nginx -v 2>&1)"
    case "${1:-all}" in
        sqlite) run_backend sqlite ;;
        postgres) run_backend postgres ;;
        all) run_backend sqlite; run_backend postgres ;;
    esac
    run_peer
}

main "$@"
