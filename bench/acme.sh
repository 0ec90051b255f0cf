#!/usr/bin/env bash
# Benchmark: full ACME issuance. The same driver (`certctl-bench acme`: one P-256 account per
# client, real JWS, new-order → authorizations → finalize → download of the PEM chain) runs
# against certctl's ACME server (trust_authenticated profile, local CA, everything persisted) and
# against Debian's pebble (in memory, PEBBLE_VA_ALWAYS_VALID so its authorizations need one
# challenge POST and no network). Then wrk with 200 connections against the directory and
# new-nonce of each.
#
# How to run:
#   bench/acme.sh [sqlite|postgres|pebble|all]          (default all)
#
#   CERTCTL_BENCH_DURATION=30s     length of each timed run
#   CERTCTL_BENCH_CLIENTS=16       ACME clients issuing concurrently
#   CERTCTL_BENCH_QUIET_LOAD=0.7, CERTCTL_BENCH_QUIET_WAIT=900   as in bench/issuance.sh
#   CERTCTL_BENCH_NO_BUILD=1       use the release binaries already in target/release
#
# Needs pebble, wrk, openssl, curl, jq, and for PostgreSQL psql (see bench/issuance.sh).
set -euo pipefail
# shellcheck source=issuance.sh
source "$(dirname "${BASH_SOURCE[0]}")/issuance.sh"

CLIENTS=${CERTCTL_BENCH_CLIENTS:-16}
SECS=${DURATION%s}

# wrk_endpoint TAG URL CA: 200 connections for 10 s against one GET endpoint; prints rate and
# latency percentiles.
wrk_endpoint() {
    local tag=$1 url=$2
    bench_wait_quiet
    wrk -t2 -c200 -d10s --latency "$url" >"$DIR/wrk-endpoint.out" 2>&1
    local rate p50 p99 errors
    rate=$(awk '/^Requests\/sec/ { print $2 }' "$DIR/wrk-endpoint.out")
    p50=$(awk '$1 == "50%" { print $2 }' "$DIR/wrk-endpoint.out")
    p99=$(awk '$1 == "99%" { print $2 }' "$DIR/wrk-endpoint.out")
    errors=$(grep -E 'Non-2xx|Socket errors' "$DIR/wrk-endpoint.out" | tr '\n' ' ' || true)
    echo "$tag GET $url, 200 connections: $rate requests/s, p50 $p50, p99 $p99 (load $(bench_load)) $errors"
}

# drive TAG DIRECTORY CA: the issuance run.
drive() {
    local tag=$1 directory=$2 ca=$3
    bench_wait_quiet
    "$BENCH" acme --directory "$directory" --ca "$ca" --clients "$CLIENTS" --warmup 5 \
        --duration "$SECS" --label "$(tr -d "[]" <<<"$tag")"
}

run_certctl() {
    local backend=$1 tag="[certctl $1]"
    # The per-account order limit would stop a benchmark that is one long burst of orders.
    bench_start_server "$backend" CERTCTL_ACME_DEFAULT_PROFILE_ID=prof-acme-bench \
        CERTCTL_ACME_RATE_LIMIT_ORDERS_PER_HOUR=0 CERTCTL_ACME_RATE_LIMIT_ACCOUNTS_PER_HOUR=0
    api POST /api/v1/teams '{"id":"t-bench","name":"Bench"}' >/dev/null
    api POST /api/v1/owners '{"id":"o-bench","name":"Bench owner","email":"bench@example.com","team_id":"t-bench"}' >/dev/null
    api POST /api/v1/issuers '{"id":"iss-bench","name":"Bench local CA","type":"GenericCA","config":{"validity_days":90}}' >/dev/null
    api POST /api/v1/profiles '{"id":"prof-acme-bench","name":"ACME bench","acme_auth_mode":"trust_authenticated"}' >/dev/null
    api PUT /api/v1/acme/profiles/prof-acme-bench '{"issuer_id":"iss-bench","owner_id":"o-bench","team_id":"t-bench"}' >/dev/null
    echo "$tag server up; idle RSS $(bench_rss)"
    local before after
    before=$(sql "SELECT COUNT(*) FROM certificate_versions")
    drive "$tag" "https://127.0.0.1:$PORT/acme/directory" "$DIR/tls/ca.pem"
    after=$(sql "SELECT COUNT(*) FROM certificate_versions")
    echo "$tag certificate versions persisted during the whole run (first issuances and warm-up included): $((after - before))"
    echo "$tag RSS after load: $(bench_rss)"
    wrk_endpoint "$tag" "https://127.0.0.1:$PORT/acme/directory"
    wrk_endpoint "$tag" "https://127.0.0.1:$PORT/acme/new-nonce"
    bench_stop_server
}

run_pebble() {
    local tag="[pebble]" port mport
    bench_tempdir DIR
    port=$(bench_free_port)
    mport=$(bench_free_port)
    # A CA and a leaf for pebble's listener: rustls refuses a CA certificate as a server's own.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pebble bench CA" -days 30 \
        -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$DIR/key.pem" -out "$DIR/leaf.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$DIR/leaf.ext"
    openssl x509 -req -in "$DIR/leaf.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 30 \
        -extfile "$DIR/leaf.ext" -out "$DIR/cert.pem" 2>/dev/null
    jq -n --arg listen "127.0.0.1:$port" --arg mgmt "127.0.0.1:$mport" --arg cert "$DIR/cert.pem" \
        --arg key "$DIR/key.pem" '{pebble: {listenAddress: $listen, managementListenAddress: $mgmt,
        certificate: $cert, privateKey: $key, httpPort: 5002, tlsPort: 5001, ocspResponderURL: "",
        externalAccountBindingRequired: false}}' >"$DIR/pebble.json"
    # Pebble's defaults reject 5 % of nonces on purpose and sleep before validating; neither is
    # part of issuing, so both are off. The driver still retries a badNonce like any client.
    env PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
        pebble -config "$DIR/pebble.json" >"$DIR/pebble.log" 2>&1 &
    SERVER_PID=$!
    BENCH_PIDS+=("$SERVER_PID")
    local i
    for i in $(seq 1 100); do
        curl -sf --cacert "$DIR/ca.pem" "https://127.0.0.1:$port/dir" >/dev/null 2>&1 && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [ "$i" = 100 ]; then
            echo "pebble did not start; its log:" >&2
            cat "$DIR/pebble.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$tag Debian pebble $(dpkg-query -W -f='${Version}' pebble 2>/dev/null || echo unknown); idle RSS $(bench_rss)"
    drive "$tag" "https://127.0.0.1:$port/dir" "$DIR/ca.pem"
    echo "$tag RSS after load: $(bench_rss)"
    wrk_endpoint "$tag" "https://127.0.0.1:$port/dir"
    wrk_endpoint "$tag" "https://127.0.0.1:$port/nonce-plz"
    bench_stop_server
}

main() {
    bench_require wrk openssl curl jq pebble sqlite3
    case "${1:-all}" in
        sqlite | postgres | pebble | all) ;;
        *) echo "usage: $0 [sqlite|postgres|pebble|all]" >&2; exit 2 ;;
    esac
    if [ "${1:-all}" = postgres ] || [ "${1:-all}" = all ]; then bench_require psql; fi
    [ -n "${CERTCTL_BENCH_NO_BUILD:-}" ] || bench_build
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    case "${1:-all}" in
        sqlite | postgres) run_certctl "$1" ;;
        pebble) run_pebble ;;
        all) run_pebble; run_certctl sqlite; run_certctl postgres ;;
    esac
}

main "$@"
