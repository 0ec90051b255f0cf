#!/usr/bin/env bash
# Benchmark: the Prometheus scrape (GET /metrics) at 100 and at 100,000 certificates with
# 100,000 notification rows, on SQLite, beside two peers on the same server and TLS stack:
#   - GET /health, a handler that touches nothing (the floor of one HTTPS request here);
#   - the database counts a scrape would cost without the snapshot cache, run directly with
#     the sqlite3 shell (hyperfine), i.e. what an uncached scrape pays on every request.
#
#   bench/metrics.sh [sqlite|postgres|all]      (default sqlite)
#
# Needs wrk, hyperfine and sqlite3 (Debian), and psql with a PostgreSQL server on
# /var/run/postgresql for the PostgreSQL run (its database is created and dropped here). Seeds
# certificates with `certctl-server seed-demo` and notifications with one INSERT … SELECT.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk hyperfine sqlite3; do
    which "$tool" >/dev/null || { echo "$tool is required: apt-get install -y wrk hyperfine sqlite3" >&2; exit 1; }
done
# CERTCTL_BENCH_PROFILE=debug measures the debug build (no optimisation of certctl's own
# crates), for when a release build is out of reach; the release build is faster still.
PROFILE=${CERTCTL_BENCH_PROFILE:-release}
if [ -n "${CERTCTL_BENCH_NO_BUILD:-}" ]; then
    :
elif [ "$PROFILE" = release ]; then
    cargo build --release --bin certctl-server >/dev/null
else
    cargo build --bin certctl-server >/dev/null
fi
BIN=$PWD/target/$PROFILE/certctl-server
DURATION=${CERTCTL_BENCH_DURATION:-5s}
NOTIFICATIONS=${CERTCTL_BENCH_NOTIFICATIONS:-100000}
KEY=cck_bench_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
PORT=18944

# The counts behind one snapshot, as the server runs them (crates/store/src/stats.rs).
counts_sql() {
    local now=$1
    cat <<SQL
SELECT (SELECT COUNT(*) FROM managed_certificates) - (SELECT COUNT(*) FROM managed_certificates WHERE status = 'Archived'),
  (SELECT COUNT(*) FROM managed_certificates WHERE status = 'Revoked'),
  (SELECT COUNT(*) FROM managed_certificates WHERE status = 'Expired')
    + (SELECT COUNT(*) FROM managed_certificates WHERE expires_at <= $now AND status NOT IN ('Expired', 'Revoked', 'Archived')),
  (SELECT COUNT(*) FROM managed_certificates WHERE expires_at > $now AND expires_at < $now + 2592000000000
    AND status NOT IN ('Expired', 'Revoked', 'Archived')),
  (SELECT COUNT(*) FROM agents WHERE retired_at IS NULL),
  (SELECT COUNT(*) FROM agents WHERE retired_at IS NULL AND last_heartbeat_at >= $now - 300000000);
SELECT status, COUNT(*) FROM jobs GROUP BY status;
SELECT status, COUNT(*) FROM notifications GROUP BY status;
SQL
}

# sql BACKEND TARGET: runs standard input with the backend's own shell.
sql() {
    if [ "$1" = postgres ]; then
        psql -h /var/run/postgresql -U postgres -d "$2" -v ON_ERROR_STOP=1 -qtA
    else
        sqlite3 "$2"
    fi
}

run() {
    local backend=$1 certs=$2 dir db pgdb=
    dir=$(mktemp -d)
    if [ "$backend" = postgres ]; then
        pgdb=certctl_metrics_$$_$RANDOM
        psql -h /var/run/postgresql -U postgres -d postgres -qc "CREATE DATABASE $pgdb"
        db=$pgdb
        export CERTCTL_DATABASE_URL="postgres:///$pgdb?host=/var/run/postgresql&user=postgres"
    else
        db=$dir/certctl.db
        export CERTCTL_DATABASE_URL="sqlite://$db"
    fi
    export CERTCTL_DATA_DIR=$dir CERTCTL_BOOTSTRAP_API_KEY=$KEY CERTCTL_LISTEN=127.0.0.1:$PORT CERTCTL_LOG=warn
    "$BIN" seed-demo --certificates "$certs" >/dev/null
    local now_us series
    now_us=$(($(date +%s) * 1000000))
    if [ "$backend" = postgres ]; then
        series="generate_series(1, $NOTIFICATIONS) AS n(i)"
    else
        series="(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $NOTIFICATIONS) SELECT i FROM n) AS n"
    fi
    sql "$backend" "$db" <<SQL
INSERT INTO notifications (id, type, channel, recipient, subject, status, created_at, updated_at)
SELECT 'bench-' || i, 'ExpirationWarning', 'Email', 'ops@example.com', 'expiring',
       CASE i % 10 WHEN 0 THEN 'dead' WHEN 1 THEN 'failed' WHEN 2 THEN 'pending' WHEN 3 THEN 'read' ELSE 'sent' END,
       $now_us - i, $now_us - i FROM $series;
ANALYZE;
SQL
    local tag="[$backend, $certs certs]"
    echo "$tag seeded $(echo 'SELECT COUNT(*) FROM managed_certificates' | sql "$backend" "$db") certificates," \
        "$(echo 'SELECT COUNT(*) FROM notifications' | sql "$backend" "$db") notifications"

    "$BIN" >"$dir/server.log" 2>&1 &
    local pid=$!
    until curl -sf --cacert "$dir/tls/ca.pem" "https://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.05; done
    local scrape
    scrape=$(curl -sf --cacert "$dir/tls/ca.pem" -H "Authorization: Bearer $KEY" "https://127.0.0.1:$PORT/metrics")
    echo "$tag certctl_certificate_total $(echo "$scrape" | awk '$1 == "certctl_certificate_total" {print $2}')," \
        "exposition $(echo -n "$scrape" | wc -c) bytes, $(echo "$scrape" | grep -vc '^#') samples"
    echo "$tag snapshot computed by the server in" \
        "$(echo "$scrape" | awk '$1 == "certctl_metrics_snapshot_duration_seconds" {printf "%.2f ms", $2 * 1000}')"
    if which promtool >/dev/null; then
        echo "$tag promtool check metrics: $(echo "$scrape" | promtool check metrics 2>&1 && echo ok)"
    fi
    for path in /metrics /health; do
        wrk -t1 -c1 -d"$DURATION" --latency -H "Authorization: Bearer $KEY" "https://127.0.0.1:$PORT$path" |
            awk -v p="$path" -v c="$tag" '
                /Latency/ && !l {avg=$2; max=$4; l=1}
                $1 == "50%" {p50=$2} $1 == "99%" {p99=$2}
                /Requests\/sec/ {rps=$2}
                END {printf "%s GET %s sequential (wrk -t1 -c1): avg %s, p50 %s, p99 %s, max %s, %s req/s\n", c, p, avg, p50, p99, max, rps}'
    done
    wrk -t2 -c8 -d"$DURATION" --latency -H "Authorization: Bearer $KEY" "https://127.0.0.1:$PORT/metrics" |
        awk -v c="$tag" '$1 == "50%" {p50=$2} $1 == "99%" {p99=$2} /Requests\/sec/ {rps=$2}
            END {printf "%s GET /metrics 8 connections (wrk -t2 -c8): p50 %s, p99 %s, %s req/s\n", c, p50, p99, rps}'
    kill -TERM $pid; wait $pid || true
    counts_sql "$now_us" >"$dir/counts.sql"
    local peer shell
    if [ "$backend" = postgres ]; then
        peer="psql -h /var/run/postgresql -U postgres -d $db -qtA -f $dir/counts.sql -o /dev/null"
        shell=psql
    else
        peer="sqlite3 -readonly $db -init $dir/counts.sql .quit"
        shell=sqlite3
    fi
    hyperfine -N --warmup 2 --runs 10 --export-json "$dir/h.json" "$peer" >/dev/null 2>&1
    echo "$tag uncached snapshot counts, $shell shell (hyperfine, incl. process start):" \
        "$(python3 -c "import json;r=json.load(open('$dir/h.json'))['results'][0];print('mean %.2f ms, min %.2f ms' % (r['mean']*1e3, r['min']*1e3))")"
    rm -rf "$dir"
    if [ -n "$pgdb" ]; then
        psql -h /var/run/postgresql -U postgres -d postgres -qc "DROP DATABASE $pgdb WITH (FORCE)"
    fi
}

echo "$PROFILE build; load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
mode=${1:-sqlite}
case "$mode" in
    sqlite | postgres) backends=("$mode") ;;
    all) backends=(sqlite postgres) ;;
    *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
esac
for b in "${backends[@]}"; do
    run "$b" 100
    run "$b" 100000
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
