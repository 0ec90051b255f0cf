#!/usr/bin/env bash
# Benchmark: OCSP over RFC 5019 GET. certctl's responder (plain HTTP on CERTCTL_PKI_HTTP_LISTEN)
# beside `openssl ocsp` (one process, then -multi 2), both asked about the same 100,000 serials,
# a few hundred of them revoked, under the same wrk load.
#
# How to run:
#   bench/ocsp.sh [sqlite|postgres]          (default sqlite: the store certctl answers from)
#
#   CERTCTL_BENCH_SERIALS=100000   certificates issued through the API (bench/issue.lua), whose
#                                  serials both responders are asked about
#   CERTCTL_BENCH_REVOKE=300       of which this many are revoked (through the API, and as R lines
#                                  in OpenSSL's index)
#   CERTCTL_BENCH_DURATION=30s, CERTCTL_BENCH_CONNECTIONS=16, CERTCTL_BENCH_QUIET_LOAD=0.7,
#   CERTCTL_BENCH_QUIET_WAIT=900   as in bench/issuance.sh
#
# Issuing the serials doubles as a soak of the issuance path (its rate is printed). Requests are
# built by `certctl-bench ocsp-requests` (SHA-1 CertID, no nonce, so responses are cacheable); a
# sample from each responder is checked with `openssl ocsp -respin` before anything is timed.
# Needs everything bench/issuance.sh needs.
set -euo pipefail
# shellcheck source=issuance.sh
source "$(dirname "${BASH_SOURCE[0]}")/issuance.sh"

SERIALS=${CERTCTL_BENCH_SERIALS:-100000}
REVOKE=${CERTCTL_BENCH_REVOKE:-300}

# wrk_ocsp TAG PATHS_FILE BASE_URL PREFIX [MODE [CLOSE [DURATION]]]; with RESPONDER_PID set,
# also the CPU time the responder (and its children) spent per response.
wrk_ocsp() {
    local tag=$1 paths=$2 base=$3 prefix=$4 mode=${5:-random} close=${6:-0} duration=${7:-$DURATION} cpu0=0
    if [ -n "${RESPONDER_PID:-}" ]; then cpu0=$(bench_cpu_ms "$RESPONDER_PID"); fi
    bench_until_done "$DIR/ocsp-wrk.out" env CERTCTL_BENCH_PATHS="$paths" CERTCTL_BENCH_PREFIX="$prefix" \
        CERTCTL_BENCH_MODE="$mode" CERTCTL_BENCH_CLOSE="$close" CERTCTL_BENCH_THREADS=2 \
        wrk -t2 -c"$CONNECTIONS" -d"$duration" --latency -s bench/ocsp.lua "$base" |
        grep -E '^(ocsp_ok|requests_per_sec|p50_ms)' | sed "s|^|$tag |" | tee "$DIR/ocsp-run.txt"
    if [ -n "${RESPONDER_PID:-}" ]; then
        local cpu ok
        cpu=$(($(bench_cpu_ms "$RESPONDER_PID") - cpu0))
        ok=$(sed -n 's/.*ocsp_ok=\([0-9]*\).*/\1/p' "$DIR/ocsp-run.txt")
        echo "$tag responder CPU: $cpu ms, $(echo "scale=1; $cpu * 1000 / $ok" | bc) µs per response"
    fi
}

# verify_sample TAG URL_PREFIX PATHS_FILE CA_PEM LINE EXPECTED: one response checked by openssl.
verify_sample() {
    local tag=$1 base=$2 paths=$3 ca=$4 line=$5 expected=$6 serial out
    serial=$(sed -n "${line}p" "$SERIALS_FILE")
    curl -sSf -o "$DIR/sample.der" "$base$(sed -n "${line}p" "$paths")"
    out=$(openssl ocsp -respin "$DIR/sample.der" -issuer "$ca" -serial "0x$serial" -CAfile "$ca" -no_nonce 2>&1)
    if ! grep -q '^Response verify OK' <<<"$out" || ! grep -qi "^0x$serial: $expected" <<<"$out"; then
        echo "$tag response for serial $serial is not a verified '$expected':" >&2
        echo "$out" >&2
        exit 1
    fi
}

start_openssl_ocsp() {
    OPORT=$(bench_free_port)
    # -ignore_err: without it the responder exits on the first request it cannot read, such as
    # one wrk leaves half-sent when a run ends.
    openssl ocsp -index "$ODIR/index.txt" -port "$OPORT" -CA "$ODIR/ca.pem" -rsigner "$ODIR/rcert.pem" \
        -rkey "$ODIR/rkey.pem" -nmin 240 -ignore_err "$@" >"$ODIR/ocsp.log" 2>&1 &
    OPENSSL_PID=$!
    BENCH_PIDS+=("$OPENSSL_PID")
    local i
    for i in $(seq 1 100); do
        # Printed once the socket is bound (with -multi, before the children are forked).
        if grep -q '^ACCEPT' "$ODIR/ocsp.log"; then
            sleep 0.5
            return 0
        fi
        sleep 0.1
    done
    echo "openssl ocsp did not start:" >&2
    cat "$ODIR/ocsp.log" >&2
    exit 1
}

stop_openssl_ocsp() {
    # With -multi the responders are the parent's children, and the parent ignores SIGTERM
    # (it only replaces children that die), so it takes SIGKILL.
    local children
    children=$(pgrep -P "$OPENSSL_PID" || true)
    kill -KILL "$OPENSSL_PID" $children 2>/dev/null || true
    wait "$OPENSSL_PID" 2>/dev/null || true
}

main_ocsp() {
    local backend=${1:-sqlite} tag
    case "$backend" in
        sqlite) ;;
        postgres) bench_require psql ;;
        *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
    esac
    bench_require wrk openssl curl jq sqlite3 bc pgrep
    bench_build
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(openssl version)"
    tag="[certctl/$backend]"
    local pki_port
    pki_port=$(bench_free_port)
    bench_start_server "$backend" CERTCTL_PKI_HTTP_LISTEN="127.0.0.1:$pki_port"
    bench_fixtures "$CERTS"

    # Issue the serials through the API.
    local t0 t1 issued
    t0=$(date +%s%N)
    CERTCTL_BENCH_LIMIT=$SERIALS bench_until_done "$DIR/issue-wrk.out" bench_issue_wrk -d3600s | grep -E '^(created_201|first_error|certificates_per_sec|p50)' |
        sed "s|^|$tag issuing: |"
    t1=$(date +%s%N)
    issued=$(sql "SELECT COUNT(*) FROM certificate_versions")
    echo "$tag issued $issued certificates in $(((t1 - t0) / 1000000000)) s; RSS $(bench_rss); load $(bench_load)"
    [ "$issued" -ge "$SERIALS" ] || { echo "$tag only $issued certificates were issued" >&2; exit 1; }

    local ids
    ids=$(seq 0 $((REVOKE - 1)) | xargs printf '"mc-bench-%06d",')
    api POST /api/v1/certificates/bulk-revoke "{\"certificate_ids\":[${ids%,}],\"reason\":\"keyCompromise\"}" \
        >"$DIR/revoke.json"
    [ "$(jq .total_revoked "$DIR/revoke.json")" = "$REVOKE" ] || { cat "$DIR/revoke.json" >&2; exit 1; }

    # The revoked serials first, so they are in the set however many extra were issued.
    SERIALS_FILE=$DIR/serials.txt
    sql "SELECT serial_number FROM certificate_versions WHERE issuer_ca_id = 'ca-root-iss-bench' ORDER BY \
        (serial_number IN (SELECT serial_number FROM certificate_revocations)) DESC, created_at, id LIMIT $SERIALS" \
        >"$SERIALS_FILE"
    sql "SELECT serial_number FROM certificate_revocations" >"$DIR/revoked.txt"
    echo "$tag serial set: $(wc -l <"$SERIALS_FILE") serials, $(wc -l <"$DIR/revoked.txt") revoked"

    # OpenSSL's CA, delegated responder and index over the same serials.
    bench_tempdir ODIR
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=OpenSSL Bench CA" -days 3650 \
        -keyout "$ODIR/ca.key" -out "$ODIR/ca.pem" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=OpenSSL Bench OCSP" \
        -keyout "$ODIR/rkey.pem" -out "$ODIR/r.csr" 2>/dev/null
    printf 'extendedKeyUsage=OCSPSigning\nkeyUsage=critical,digitalSignature\n' >"$ODIR/r.ext"
    openssl x509 -req -in "$ODIR/r.csr" -CA "$ODIR/ca.pem" -CAkey "$ODIR/ca.key" -CAcreateserial \
        -CAserial "$ODIR/ca.srl" -days 30 -extfile "$ODIR/r.ext" -out "$ODIR/rcert.pem" 2>/dev/null
    echo "unique_subject = no" >"$ODIR/index.txt.attr"
    awk -v expiry="$(date -u -d '+90 days' +%y%m%d%H%M%SZ)" -v rev="$(date -u +%y%m%d%H%M%SZ)" '
        FNR == NR { revoked[$1] = 1; next }
        {
            s = toupper($1)
            if (revoked[$1]) printf "R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=ocsp-%s\n", expiry, rev, s, s
            else printf "V\t%s\t\t%s\tunknown\t/CN=ocsp-%s\n", expiry, s, s
        }' "$DIR/revoked.txt" "$SERIALS_FILE" >"$ODIR/index.txt"

    "$BENCH" ocsp-requests --issuer "$DIR/ca.pem" --serials "$SERIALS_FILE" --out "$DIR/ours.paths"
    "$BENCH" ocsp-requests --issuer "$ODIR/ca.pem" --serials "$SERIALS_FILE" --out "$ODIR/theirs.paths"

    local ours="http://127.0.0.1:$pki_port" ours_prefix=/.well-known/pki/ocsp/ca-root-iss-bench/
    start_openssl_ocsp
    local line
    for line in 1 2 3; do
        verify_sample "$tag" "$ours$ours_prefix" "$DIR/ours.paths" "$DIR/ca.pem" "$line" revoked
        verify_sample "[openssl]" "http://127.0.0.1:$OPORT/" "$ODIR/theirs.paths" "$ODIR/ca.pem" "$line" revoked
    done
    for line in $((REVOKE + 1)) $((SERIALS / 2)) "$SERIALS"; do
        verify_sample "$tag" "$ours$ours_prefix" "$DIR/ours.paths" "$DIR/ca.pem" "$line" good
        verify_sample "[openssl]" "http://127.0.0.1:$OPORT/" "$ODIR/theirs.paths" "$ODIR/ca.pem" "$line" good
    done
    echo "sample responses verified by openssl ocsp -respin on both sides (revoked and good)"

    RESPONDER_PID=$SERVER_PID
    # certctl: the first request for a serial reads the store and signs; later ones are served
    # from the signed-response cache (RFC 5019's pre-produced responses) until it is refreshed.
    bench_wait_quiet
    echo "$tag cold pass, every serial once (load $(bench_load)):"
    wrk_ocsp "$tag cold" "$DIR/ours.paths" "$ours" "$ours_prefix" walk 0 3600s
    bench_wait_quiet
    echo "$tag keep-alive, random serials (load $(bench_load)):"
    wrk_ocsp "$tag keep-alive" "$DIR/ours.paths" "$ours" "$ours_prefix"
    echo "$tag load after: $(bench_load); RSS $(bench_rss)"
    bench_wait_quiet
    echo "$tag a new connection per request, random serials (load $(bench_load)):"
    wrk_ocsp "$tag close" "$DIR/ours.paths" "$ours" "$ours_prefix" random 1
    echo "$tag load after: $(bench_load)"
    bench_stop_server

    # OpenSSL answers HTTP/1.0 and closes every connection, whatever the client asks. Its
    # responder is started afresh for each run: a connection wrk closes without a request when a
    # run ends would leave it spinning (see bench/ocsp.lua).
    local otag multi
    for otag in single multi2; do
        multi=()
        [ "$otag" = multi2 ] && multi=(-multi 2)
        stop_openssl_ocsp
        start_openssl_ocsp "${multi[@]}"
        RESPONDER_PID=
        wrk_ocsp "[openssl $otag] warm-up" "$ODIR/theirs.paths" "http://127.0.0.1:$OPORT" / random 0 5s >/dev/null
        stop_openssl_ocsp
        bench_wait_quiet
        start_openssl_ocsp "${multi[@]}"
        RESPONDER_PID=$OPENSSL_PID
        echo "[openssl $otag] random serials (load $(bench_load)):"
        wrk_ocsp "[openssl $otag]" "$ODIR/theirs.paths" "http://127.0.0.1:$OPORT" /
        echo "[openssl $otag] load after: $(bench_load)"
    done
    stop_openssl_ocsp
}

main_ocsp "$@"
