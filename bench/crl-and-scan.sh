#!/usr/bin/env bash
# Benchmark: building a CRL with 100,000 revoked entries (certctl's pki crate beside
# `openssl ca -gencrl` over an index of the same 100,000 revocations), and the renewal scan over
# 100,000 certificates of which 1,000 are due (SQLite and PostgreSQL; no peer runs such a scan).
#
# How to run:
#   bench/crl-and-scan.sh [crl|scan-sqlite|scan-postgres|all]    (default all)
#
#   CERTCTL_BENCH_CRL_ENTRIES=100000, CERTCTL_BENCH_SCAN_CERTS=100000, CERTCTL_BENCH_SCAN_DUE=1000
#   CERTCTL_BENCH_RUNS=7           timed repetitions (the median is reported)
#   CERTCTL_BENCH_QUIET_LOAD=0.7, CERTCTL_BENCH_QUIET_WAIT=900: wait for a quiet machine first
#
# Needs openssl, hyperfine, jq, and for PostgreSQL psql with a server reachable with
# `psql -h 127.0.0.1 -U postgres` and on /var/run/postgresql; a database is created and dropped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ENTRIES=${CERTCTL_BENCH_CRL_ENTRIES:-100000}
SCAN_CERTS=${CERTCTL_BENCH_SCAN_CERTS:-100000}
SCAN_DUE=${CERTCTL_BENCH_SCAN_DUE:-1000}
RUNS=${CERTCTL_BENCH_RUNS:-7}
QUIET_LOAD=${CERTCTL_BENCH_QUIET_LOAD:-0.7}
QUIET_WAIT=${CERTCTL_BENCH_QUIET_WAIT:-900}
PG_SOCKET_DIR=${CERTCTL_BENCH_PG_SOCKET:-/var/run/postgresql}
PG_ADMIN=(-h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
BENCH=$PWD/target/release/certctl-bench

require() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "missing tools: ${missing[*]} (Debian: apt-get install -y ${missing[*]})" >&2
        exit 1
    fi
}

WORK=$(mktemp -d /tmp/certctl-bench.XXXXXX)
PG_DB=
cleanup() {
    if [ -n "$PG_DB" ]; then
        psql "${PG_ADMIN[@]}" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }

wait_quiet() {
    local waited=0
    while awk -v l="$QUIET_LOAD" '{ exit !($1 >= l) }' /proc/loadavg; do
        if [ "$waited" -ge "$QUIET_WAIT" ]; then
            echo "[load] still $(load) after ${QUIET_WAIT}s; measuring anyway" >&2
            return 0
        fi
        sleep 10
        waited=$((waited + 10))
    done
}

run_crl() {
    local d=$WORK/crl
    mkdir -p "$d/certs"
    # certctl, in process; the same revocations are written as an OpenSSL index for the peer.
    wait_quiet
    echo "[crl] load average before: $(load)"
    "$BENCH" crl --entries "$ENTRIES" --runs "$RUNS" --openssl-index "$d/index.txt" --out "$d/certctl.crl" \
        --ca-out "$d/certctl-ca.pem" | sed 's/^/[crl] certctl build_crl in-process: /'
    echo "[crl] load average after: $(load)"
    local n
    n=$(openssl crl -inform DER -in "$d/certctl.crl" -CAfile "$d/certctl-ca.pem" -noout -text 2>"$d/verify.txt" |
        grep -c 'Serial Number:' || true)
    grep -q 'verify OK' "$d/verify.txt" || { cat "$d/verify.txt" >&2; exit 1; }
    [ "$n" = "$ENTRIES" ] || { echo "certctl CRL lists $n entries, expected $ENTRIES" >&2; exit 1; }
    echo "[crl] certctl CRL verified by openssl: $n entries, $(stat -c %s "$d/certctl.crl") bytes DER"

    # OpenSSL: a P-256 CA like certctl's, its text database holding the same revocations.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=OpenSSL Bench CA" -days 3650 \
        -keyout "$d/ca.key" -out "$d/ca.pem" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    echo "unique_subject = no" >"$d/index.txt.attr"
    echo 01 >"$d/crlnumber"
    cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = bench
[bench]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/certs
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
crlnumber = \$dir/crlnumber
default_md = sha256
default_crl_hours = 24
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid
EOF
    openssl ca -gencrl -batch -config "$d/ca.cnf" -out "$d/openssl.crl" 2>/dev/null
    n=$(openssl crl -in "$d/openssl.crl" -CAfile "$d/ca.pem" -noout -text 2>"$d/verify.txt" |
        grep -c 'Serial Number:' || true)
    grep -q 'verify OK' "$d/verify.txt" || { cat "$d/verify.txt" >&2; exit 1; }
    [ "$n" = "$ENTRIES" ] || { echo "openssl CRL lists $n entries, expected $ENTRIES" >&2; exit 1; }
    echo "[crl] openssl CRL verified: $n entries"
    wait_quiet
    echo "[crl] load average before: $(load)"
    # One process: read the index, build, sign and write the CRL (PEM), as an operator runs it.
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$d/openssl.json" \
        "openssl ca -gencrl -batch -config $d/ca.cnf -out $d/openssl.crl" >/dev/null 2>&1
    echo "[crl] openssl ca -gencrl (process): median_ms=$(jq '.results[0].median * 1000 | round' "$d/openssl.json") min_ms=$(jq '.results[0].min * 1000 | round' "$d/openssl.json") max_ms=$(jq '.results[0].max * 1000 | round' "$d/openssl.json")"
    echo "[crl] load average after: $(load)"
}

run_scan() {
    local backend=$1 url
    if [ "$backend" = postgres ]; then
        PG_DB=certctl_bench_scan_$$
        psql "${PG_ADMIN[@]}" -c "CREATE DATABASE $PG_DB" >/dev/null
        url="postgres:///$PG_DB?host=$PG_SOCKET_DIR&user=postgres"
    else
        url="sqlite://$WORK/scan.db"
    fi
    # The binary seeds, waits for a quiet machine itself (seeding loads it), then times the runs.
    "$BENCH" renewal-scan --database-url "$url" --certificates "$SCAN_CERTS" --due "$SCAN_DUE" --runs "$RUNS" \
        --quiet-load "$QUIET_LOAD" --quiet-wait "$QUIET_WAIT" | sed "s/^/[scan $backend] /"
    echo "[scan $backend] load average after: $(load)"
    if [ "$backend" = postgres ]; then
        psql "${PG_ADMIN[@]}" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
        PG_DB=
    fi
}

require openssl hyperfine jq
case "${1:-all}" in
    crl | scan-sqlite | scan-postgres | all) ;;
    *) echo "usage: $0 [crl|scan-sqlite|scan-postgres|all]" >&2; exit 2 ;;
esac
case "${1:-all}" in scan-postgres | all) require psql ;; esac
cargo build --release -p certctl-bench >&2
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(openssl version)"
case "${1:-all}" in
    crl) run_crl ;;
    scan-sqlite) run_scan sqlite ;;
    scan-postgres) run_scan postgres ;;
    all) run_crl; run_scan sqlite; run_scan postgres ;;
esac
