#!/usr/bin/env bash
# Benchmark: issuance through the HTTP API. One ECDSA P-256 CSR in, a signed certificate out and
# persisted (new version row, certificate updated, audit record), on SQLite and on PostgreSQL;
# beside it, OpenSSL's command line signing the same CSR (no server, no database).
#
# How to run:
#   bench/issuance.sh [sqlite|postgres|openssl|all]          (default all)
#
#   CERTCTL_BENCH_DURATION=30s     length of each timed run
#   CERTCTL_BENCH_CONNECTIONS=16   wrk connections (wrk -t2)
#   CERTCTL_BENCH_CERTS=1000       managed certificates the requests rotate over
#   CERTCTL_BENCH_QUIET_LOAD=0.7   before each timed run, wait until the 1-minute load average is
#   CERTCTL_BENCH_QUIET_WAIT=900   below this, for at most this many seconds (0.7 on 2 cores)
#
# Needs wrk, openssl, curl, jq, sqlite3, hyperfine, and for PostgreSQL psql and a server reachable
# with `psql -h 127.0.0.1 -U postgres` and on /var/run/postgresql (certctl connects over the Unix
# socket: see BENCHMARKS.md on sqlx and TCP_NODELAY). Each run creates and drops its own database.
#
# bench/ocsp.sh sources this file for the helpers above `main`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${CERTCTL_BENCH_DURATION:-30s}
CONNECTIONS=${CERTCTL_BENCH_CONNECTIONS:-16}
CERTS=${CERTCTL_BENCH_CERTS:-1000}
PG_SOCKET_DIR=${CERTCTL_BENCH_PG_SOCKET:-/var/run/postgresql}
PG_ADMIN=(-h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
BIN=$PWD/target/release/certctl-server
BENCH=$PWD/target/release/certctl-bench
AGENT=ag-bench
# The CN and SAN of every bench certificate, so one CSR matches them all.
SUBJECT=bench.example.com

# --- helpers (also used by bench/ocsp.sh) -------------------------------------------------

bench_require() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "missing tools: ${missing[*]} (Debian: apt-get install -y ${missing[*]})" >&2
        exit 1
    fi
}

bench_build() {
    cargo build --release -p certctl-server -p certctl-bench >&2
}

bench_load() { cut -d' ' -f1-3 /proc/loadavg; }

# Waits for a quiet machine: other builds share the two cores, and load from the previous step
# (seeding, issuing) takes a minute to decay.
bench_wait_quiet() {
    local limit=${CERTCTL_BENCH_QUIET_LOAD:-0.7} max=${CERTCTL_BENCH_QUIET_WAIT:-900} waited=0
    while awk -v l="$limit" '{ exit !($1 >= l) }' /proc/loadavg; do
        if [ "$waited" -ge "$max" ]; then
            echo "[load] still $(bench_load) after ${max}s; measuring anyway" >&2
            return 0
        fi
        sleep 10
        waited=$((waited + 10))
    done
}

bench_free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

BENCH_PIDS=()
BENCH_DBS=()
BENCH_DIRS=()

bench_cleanup() {
    local p d
    for p in "${BENCH_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            # Children too: `openssl ocsp -multi` forks its responders.
            kill -TERM $(pgrep -P "$p") "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    for d in "${BENCH_DBS[@]}"; do
        psql "${PG_ADMIN[@]}" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
    done
    for d in "${BENCH_DIRS[@]}"; do rm -rf "$d"; done
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# bench_tempdir VAR: a new directory, removed on exit, in VAR (not via $(…): the list of
# directories to remove must be updated in this shell, not in a subshell).
bench_tempdir() {
    local d
    d=$(mktemp -d /tmp/certctl-bench.XXXXXX)
    BENCH_DIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

# Starts certctl-server on a fresh database. Sets DIR, URL, PORT, KEY, SERVER_PID, BACKEND and
# DB (PostgreSQL); extra NAME=value arguments go into the server's environment.
bench_start_server() {
    BACKEND=$1
    shift
    bench_tempdir DIR
    PORT=$(bench_free_port)
    # The server's key format: cck_ and 43 URL-safe base64 characters.
    KEY=cck_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | head -c 43)
    if [ "$BACKEND" = postgres ]; then
        DB=certctl_bench_$$_$RANDOM
        psql "${PG_ADMIN[@]}" -c "CREATE DATABASE $DB" >/dev/null
        BENCH_DBS+=("$DB")
        URL="postgres:///$DB?host=$PG_SOCKET_DIR&user=postgres"
    else
        DB=
        URL="sqlite://$DIR/certctl.db"
    fi
    env CERTCTL_DATA_DIR="$DIR" CERTCTL_DATABASE_URL="$URL" CERTCTL_BOOTSTRAP_API_KEY="$KEY" \
        CERTCTL_LISTEN="127.0.0.1:$PORT" CERTCTL_LOG=warn CERTCTL_RENEWAL_CHECK_INTERVAL=24h "$@" \
        "$BIN" >"$DIR/server.log" 2>&1 &
    SERVER_PID=$!
    BENCH_PIDS+=("$SERVER_PID")
    local i
    for i in $(seq 1 300); do
        if curl -sf --cacert "$DIR/tls/ca.pem" "https://127.0.0.1:$PORT/ready" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "certctl-server did not become ready; its log:" >&2
    cat "$DIR/server.log" >&2
    exit 1
}

bench_stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

bench_rss() { awk '/VmRSS/ { printf "%.1f MB", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

# CPU time (user + system, ms) a process and its live children have used so far; the server's
# by default.
bench_cpu_ms() {
    local pid=${1:-$SERVER_PID}
    # shellcheck disable=SC2046
    cat "/proc/$pid/stat" $(pgrep -P "$pid" | sed 's|.*|/proc/&/stat|') 2>/dev/null |
        awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%d", t * 1000 / hz }'
}

# Context switches of the server's threads so far (voluntary and not).
bench_switches() {
    cat "/proc/$SERVER_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n }'
}

# api METHOD PATH [JSON]: the response body; fails loudly on an HTTP error.
api() {
    local args=(-sS --fail-with-body --cacert "$DIR/tls/ca.pem" -H "Authorization: Bearer $KEY" -X "$1")
    if [ $# -ge 3 ]; then args+=(-H 'Content-Type: application/json' --data-binary "$3"); fi
    curl "${args[@]}" "https://127.0.0.1:$PORT$2"
}

# sql QUERY: one value (or rows, |-separated) from the server's database.
sql() {
    if [ "$BACKEND" = postgres ]; then
        psql -h 127.0.0.1 -U postgres -d "$DB" -v ON_ERROR_STOP=1 -qtA -c "$1"
    else
        sqlite3 -cmd '.timeout 10000' "$DIR/certctl.db" "$1"
    fi
}

# A team, an owner, a local-CA issuer (iss-bench, root CA ca-root-iss-bench), the agent, N
# certificates mc-bench-000000… all named $SUBJECT, and one P-256 CSR for them in $DIR/csr.pem.
bench_fixtures() {
    local n=$1 i
    api POST /api/v1/teams '{"id":"t-bench","name":"Bench"}' >/dev/null
    api POST /api/v1/owners '{"id":"o-bench","name":"Bench owner","email":"bench@example.com","team_id":"t-bench"}' >/dev/null
    api POST /api/v1/issuers '{"id":"iss-bench","name":"Bench local CA","type":"GenericCA","config":{"validity_days":90}}' >/dev/null
    # Agents register over their own protocol, which has no API route yet; the row is enough here.
    sql "INSERT INTO agents (id, name, registered_at) VALUES ('$AGENT', 'bench-agent', $(date +%s)000000)" >/dev/null
    # One curl process for all certificates, one TLS connection reused.
    {
        for i in $(seq 0 $((n - 1))); do
            printf -v id 'mc-bench-%06d' "$i"
            [ "$i" -gt 0 ] && echo 'next'
            echo "url = \"https://127.0.0.1:$PORT/api/v1/certificates\""
            echo "cacert = \"$DIR/tls/ca.pem\""
            echo "header = \"Authorization: Bearer $KEY\""
            echo 'header = "Content-Type: application/json"'
            echo "data = \"{\\\"id\\\":\\\"$id\\\",\\\"name\\\":\\\"$id\\\",\\\"common_name\\\":\\\"$SUBJECT\\\",\\\"sans\\\":[\\\"$SUBJECT\\\"],\\\"owner_id\\\":\\\"o-bench\\\",\\\"team_id\\\":\\\"t-bench\\\",\\\"issuer_id\\\":\\\"iss-bench\\\",\\\"renewal_policy_id\\\":\\\"rp-default\\\"}\""
            echo 'output = "/dev/null"'
            echo 'write-out = "%{http_code}\n"'
        done
    } >"$DIR/create.curl"
    local codes
    codes=$(curl -sS -K "$DIR/create.curl" | sort | uniq -c | tr -s ' ')
    if [ "$codes" != " $n 201" ]; then
        echo "creating $n certificates answered: $codes" >&2
        exit 1
    fi
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$SUBJECT" \
        -addext "subjectAltName=DNS:$SUBJECT" -keyout "$DIR/csr.key" -out "$DIR/csr.pem" 2>/dev/null
    # The first issuance creates the root; check one certificate end to end with openssl.
    local body
    body=$(jq -n --rawfile csr "$DIR/csr.pem" '{certificate_id: "mc-bench-000000", csr_pem: $csr}')
    api POST "/api/v1/agents/$AGENT/csr" "$body" >"$DIR/first.json"
    jq -r .cert_pem "$DIR/first.json" >"$DIR/first.pem"
    api GET /api/v1/issuers/iss-bench/ca >"$DIR/ca.pem"
    openssl verify -CAfile "$DIR/ca.pem" "$DIR/first.pem" >/dev/null
}

# Runs wrk with bench/issue.lua against the server; extra arguments go to wrk.
bench_issue_wrk() {
    env CERTCTL_BENCH_KEY="$KEY" CERTCTL_BENCH_AGENT="$AGENT" CERTCTL_BENCH_CERTS="$CERTS" \
        CERTCTL_BENCH_CSR="$DIR/csr.pem" CERTCTL_BENCH_THREADS=2 \
        wrk -t2 -c"$CONNECTIONS" --latency -s bench/issue.lua "$@" "https://127.0.0.1:$PORT"
}

# bench_until_done OUT COMMAND…: runs a wrk command whose script ends the run itself (a request
# limit, a walk over a file) and prints its output. wrk's main thread sleeps for all of -d even
# when its threads have stopped; the script's last thread sends wrk SIGINT, and in case that
# signal is lost this loop sends it too once both threads have written to the done file.
bench_until_done() {
    local out=$1 done_file pid
    shift
    done_file=$out.done
    : >"$done_file"
    CERTCTL_BENCH_DONE_FILE=$done_file "$@" >"$out" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(wc -l <"$done_file")" -ge 2 ]; then
            sleep 0.2
            # $pid is wrk, or the subshell running a function that runs it.
            kill -INT $(pgrep -P "$pid") "$pid" 2>/dev/null || true
        fi
        sleep 0.05
    done
    wait "$pid" || true
    cat "$out"
}

# --- the issuance benchmark -----------------------------------------------------------------

run_backend() {
    local backend=$1 before after created tag="[$1]"
    bench_start_server "$backend"
    bench_fixtures "$CERTS"
    echo "$tag server up, $CERTS certificates, CSR ready; idle RSS $(bench_rss)"
    # Warm-up: connections, prepared statements, the CA key cache.
    bench_issue_wrk -d5s >/dev/null
    bench_wait_quiet
    before=$(sql "SELECT COUNT(*) FROM certificate_versions")
    echo "$tag load average before: $(bench_load)"
    local cpu0 sw0
    cpu0=$(bench_cpu_ms)
    sw0=$(bench_switches)
    bench_issue_wrk -d"$DURATION" | tee "$DIR/wrk.out" | sed "s|^|$tag |"
    local cpu=$(($(bench_cpu_ms) - cpu0)) switches=$(($(bench_switches) - sw0))
    echo "$tag load average after: $(bench_load)"
    after=$(sql "SELECT COUNT(*) FROM certificate_versions")
    echo "$tag server CPU: $cpu ms over the run, $(echo "scale=2; $cpu / ($after - $before)" | bc) ms per certificate; $(((switches) / (after - before))) context switches per certificate"
    created=$(sed -n 's/^created_201=\([0-9]*\).*/\1/p' "$DIR/wrk.out")
    # Requests still in flight when wrk stops complete on the server without being counted.
    echo "$tag persisted versions during the run: $((after - before)) (201 responses counted by wrk: $created)"
    if [ $((after - before)) -lt "$created" ] || [ $((after - before - created)) -gt "$CONNECTIONS" ]; then
        echo "$tag MISMATCH between 201 responses and persisted versions" >&2
        exit 1
    fi
    local total
    total=$(api GET "/api/v1/certificates/mc-bench-000001/versions?page=1&per_page=1" | jq .total)
    echo "$tag API: mc-bench-000001 has $total versions (SQL: $(sql "SELECT COUNT(*) FROM certificate_versions WHERE certificate_id = 'mc-bench-000001'"))"
    echo "$tag RSS after load: $(bench_rss)"
    bench_stop_server
}

# OpenSSL's command line signing the same kind of CSR with a P-256 CA and the extensions certctl
# puts in a leaf: one process per certificate, nothing persisted (x509 -req), or the CA's
# text-file database and a copy of each certificate on disk (ca -batch).
run_openssl() {
    local dir secs workers=2 tag="[openssl]"
    bench_tempdir dir
    secs=${DURATION%s}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=OpenSSL Bench CA" -days 3650 \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$SUBJECT" \
        -addext "subjectAltName=DNS:$SUBJECT" -keyout "$dir/csr.key" -out "$dir/csr.pem" 2>/dev/null
    cat >"$dir/leaf.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$SUBJECT
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1:8080/.well-known/pki/crl/ca-root-iss-bench
authorityInfoAccess = OCSP;URI:http://127.0.0.1:8080/.well-known/pki/ocsp/ca-root-iss-bench,caIssuers;URI:http://127.0.0.1:8080/.well-known/pki/ca/ca-root-iss-bench
EOF
    local w
    for w in $(seq 1 $workers); do
        mkdir -p "$dir/ca$w/certs"
        : >"$dir/ca$w/index.txt"
        echo "unique_subject = no" >"$dir/ca$w/index.txt.attr"
        openssl rand -hex 16 >"$dir/ca$w/serial"
        cat >"$dir/ca$w/ca.cnf" <<EOF
[ca]
default_ca = bench
[bench]
dir = $dir/ca$w
database = \$dir/index.txt
new_certs_dir = \$dir/certs
serial = \$dir/serial
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 90
policy = anything
copy_extensions = none
x509_extensions = leaf
[anything]
commonName = supplied
[leaf]
$(cat "$dir/leaf.ext")
EOF
    done
    # One invocation's latency, without a shell in between.
    hyperfine -N --warmup 10 --runs 300 --export-json "$dir/x509.json" \
        "openssl x509 -req -in $dir/csr.pem -CA $dir/ca.pem -CAkey $dir/ca.key -CAserial $dir/hf.srl -CAcreateserial -days 90 -extfile $dir/leaf.ext -out $dir/hf.pem" \
        >/dev/null 2>&1
    echo "$tag x509 -req, one invocation: mean $(jq '.results[0].mean * 1000 | . * 100 | round / 100' "$dir/x509.json") ms, median $(jq '.results[0].median * 1000 | . * 100 | round / 100' "$dir/x509.json") ms"
    openssl verify -CAfile "$dir/ca.pem" "$dir/hf.pem" >/dev/null

    local mode
    for mode in x509 ca; do
        bench_wait_quiet
        echo "$tag load average before ($mode): $(bench_load)"
        local start end
        start=$(date +%s%N)
        for w in $(seq 1 $workers); do
            (
                n=0
                deadline=$(($(date +%s%N) + secs * 1000000000))
                while [ "$(date +%s%N)" -lt "$deadline" ]; do
                    if [ "$mode" = x509 ]; then
                        openssl x509 -req -in "$dir/csr.pem" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
                            -CAserial "$dir/w$w.srl" -CAcreateserial -days 90 -extfile "$dir/leaf.ext" \
                            -out "$dir/w$w.pem" 2>/dev/null
                    else
                        openssl ca -batch -notext -config "$dir/ca$w/ca.cnf" -in "$dir/csr.pem" \
                            -out "$dir/w$w.pem" 2>/dev/null
                    fi
                    n=$((n + 1))
                done
                echo "$n" >"$dir/count.$mode.$w"
            ) &
        done
        wait
        end=$(date +%s%N)
        local total=0
        for w in $(seq 1 $workers); do total=$((total + $(cat "$dir/count.$mode.$w"))); done
        echo "$tag load average after ($mode): $(bench_load)"
        echo "$tag $mode: $total certificates in $(((end - start) / 1000000)) ms with $workers parallel loops: $(echo "scale=0; $total * 1000000000 / ($end - $start)" | bc) certificates/s"
        openssl verify -CAfile "$dir/ca.pem" "$dir/w1.pem" >/dev/null
    done
    echo "$tag ca -batch kept $(cat "$dir"/ca*/index.txt | wc -l) index lines"
}

main() {
    bench_require wrk openssl curl jq sqlite3 hyperfine bc pgrep
    case "${1:-all}" in
        sqlite | postgres | all) ;;
        openssl) ;;
        *) echo "usage: $0 [sqlite|postgres|openssl|all]" >&2; exit 2 ;;
    esac
    if [ "${1:-all}" = postgres ] || [ "${1:-all}" = all ]; then bench_require psql; fi
    bench_build
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(openssl version)"
    case "${1:-all}" in
        sqlite) run_backend sqlite ;;
        postgres) run_backend postgres ;;
        openssl) run_openssl ;;
        all) run_backend sqlite; run_backend postgres; run_openssl ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
