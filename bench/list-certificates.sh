#!/usr/bin/env bash
# Benchmark: the certificate list with filters and keyset paging over 100,000 certificates, on
# SQLite and on PostgreSQL. Reports throughput and latency (wrk), idle RSS and start-up time.
#
#   bench/list-certificates.sh [sqlite|postgres|both]   (default both)
#
# Needs wrk (Debian) and, for PostgreSQL, a server at $CERTCTL_BENCH_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432/postgres); it creates and drops certctl_bench.
# CERTCTL_BENCH_NO_BUILD=1 uses the release binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
which wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
# The same package set as the other bench scripts, so one release build serves them all (a
# different set unifies features differently and rebuilds the dependencies).
[ "${CERTCTL_BENCH_NO_BUILD:-0}" = 1 ] || cargo build --release -p certctl-server -p certctl-bench >/dev/null
BIN=$PWD/target/release/certctl-server
CERTS=${CERTCTL_BENCH_CERTS:-100000}
DURATION=${CERTCTL_BENCH_DURATION:-20s}
CONNECTIONS=${CERTCTL_BENCH_CONNECTIONS:-32}
PG_ADMIN=${CERTCTL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
KEY=cck_bench_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
PORT=18943

run_backend() {
    local backend=$1 dir url
    dir=$(mktemp -d)
    if [ "$backend" = postgres ]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS certctl_bench WITH (FORCE)" -c "CREATE DATABASE certctl_bench" >/dev/null
        url=${PG_ADMIN%/*}/certctl_bench
    else
        url="sqlite://$dir/certctl.db"
    fi
    export CERTCTL_DATA_DIR=$dir CERTCTL_DATABASE_URL=$url CERTCTL_BOOTSTRAP_API_KEY=$KEY \
        CERTCTL_LISTEN=127.0.0.1:$PORT CERTCTL_LOG=warn
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN" seed-demo --certificates "$CERTS" >/dev/null
    t1=$(date +%s.%N)
    echo "[$backend] seeded $CERTS certificates in $(echo "$t1 - $t0" | bc) s"
    if [ "$backend" = postgres ]; then
        # Measure the steady state, not autovacuum catching up with the bulk load mid-run.
        psql "$url" -qc "VACUUM ANALYZE" >/dev/null
    fi

    t0=$(date +%s.%N)
    "$BIN" >"$dir/server.log" 2>&1 &
    local pid=$!
    until curl -sf --cacert "$dir/tls/ca.pem" "https://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.01; done
    t1=$(date +%s.%N)
    echo "[$backend] start-up to ready with $CERTS certificates: $(echo "($t1 - $t0) * 1000" | bc | cut -d. -f1) ms"
    sleep 2
    echo "[$backend] idle RSS: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"

    CERTCTL_BENCH_KEY=$KEY wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/cursor_walk.lua \
        "https://127.0.0.1:$PORT" | sed "s/^/[$backend] /"
    echo "[$backend] RSS after load: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
    # The Go certctl's published figure is ~300 ms for one 100-row page at 1,000 certificates;
    # one client, sequential requests, the same page shape here (at $CERTS certificates).
    wrk -t1 -c1 -d5s -H "Authorization: Bearer $KEY" \
        "https://127.0.0.1:$PORT/api/v1/certificates?page=1&per_page=100" |
        awk -v b="$backend" '/Latency/ && !seen {print "[" b "] sequential 100-row page with total: avg " $2 ", max " $4; seen=1}'
    kill -TERM $pid; wait $pid || true
    "$BIN" audit verify | sed "s/^/[$backend] /"
    if [ "$backend" = postgres ]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS certctl_bench WITH (FORCE)" >/dev/null
    fi
    rm -rf "$dir"
}

case "${1:-both}" in
    sqlite) run_backend sqlite ;;
    postgres) run_backend postgres ;;
    both) run_backend sqlite; run_backend postgres ;;
    *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
