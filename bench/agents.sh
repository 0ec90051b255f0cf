#!/usr/bin/env bash
# Benchmark: the agent protocol under a fleet. 10,000 enrolled agent identities (credentials
# stored hashed, as enrolment leaves them) send heartbeats and work polls, alternating, through
# wrk with keep-alive; every request is authenticated as its own agent, recorded (heartbeat) or
# answered from the job tables (work poll), and audited. Target: 2,000 requests/s with p99 < 20 ms
# on 2 cores (the Go certctl's own target: 5,000 agents, 167 requests/s, p99 < 1 s).
#
# How to run:
#   bench/agents.sh [sqlite|postgres|agent|all]    (default all)
#
#   CERTCTL_BENCH_AGENTS=10000        fleet size
#   CERTCTL_BENCH_DURATION=30s        wrk -d
#   CERTCTL_BENCH_CONNECTIONS=16      wrk -c (requests in flight)
#   CERTCTL_BENCH_QUIET_LOAD / _QUIET_WAIT as in bench/issuance.sh
#
# It also enrols one real certctl-agent (release build) and reports its resident memory once it
# has enrolled and settled into its heartbeat and poll loop (target: idle RSS < 10 MB).
#
# Needs wrk, sqlite3, psql, python3 and everything bench/issuance.sh needs.
set -euo pipefail
# shellcheck source=issuance.sh
source "$(dirname "${BASH_SOURCE[0]}")/issuance.sh"

AGENTS=${CERTCTL_BENCH_AGENTS:-10000}

# Writes $DIR/fleet.txt ("agent_id credential" per line) and $DIR/fleet.sql (the agents rows
# with each credential's SHA-256, in one transaction).
write_fleet() {
    python3 - "$AGENTS" "$DIR" "$(($(date +%s%N) / 1000))" <<'PY'
import hashlib, os, sys
n, out, now = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with open(f"{out}/fleet.txt", "w") as fleet, open(f"{out}/fleet.sql", "w") as sql:
    sql.write("BEGIN;\n")
    for i in range(n):
        agent = f"ag-fleet-{i:06d}"
        credential = "cca_" + os.urandom(32).hex()[:43]
        digest = hashlib.sha256(credential.encode()).hexdigest()
        fleet.write(f"{agent} {credential}\n")
        sql.write(
            "INSERT INTO agents (id, name, hostname, status, last_heartbeat_at, registered_at, credential_hash) "
            f"VALUES ('{agent}', '{agent}', 'host-{i}', 'Online', {now}, {now}, '{digest}');\n")
    sql.write("COMMIT;\n")
PY
}

load_fleet() {
    if [ "$BACKEND" = postgres ]; then
        psql -h 127.0.0.1 -U postgres -d "$DB" -v ON_ERROR_STOP=1 -qtA -f "$DIR/fleet.sql" >/dev/null
    else
        sqlite3 -cmd '.timeout 10000' "$DIR/certctl.db" <"$DIR/fleet.sql"
    fi
}

run_backend() {
    local backend=$1 tag="[$1]"
    bench_start_server "$backend"
    write_fleet
    load_fleet
    echo "$tag $(sql "SELECT COUNT(*) FROM agents WHERE id LIKE 'ag-fleet-%'") agents enrolled"
    bench_wait_quiet
    echo "$tag load average before: $(bench_load)"
    local cpu0 out
    cpu0=$(bench_cpu_ms)
    out=$(CERTCTL_BENCH_FLEET="$DIR/fleet.txt" CERTCTL_BENCH_THREADS=2 \
        wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/agents.lua "https://127.0.0.1:$PORT")
    echo "$out" | sed "s/^/$tag /"
    echo "$tag server CPU during the run: $(($(bench_cpu_ms) - cpu0)) ms; RSS $(bench_rss)"
    echo "$tag load average after: $(bench_load)"
    echo "$tag agents seen online: $(sql "SELECT COUNT(*) FROM agents WHERE status = 'Online'")"
    bench_stop_server
}

# One real agent, enrolled with a token, polling every second: its RSS after it settles.
run_agent_rss() {
    local tag="[agent]" token state pid i
    bench_start_server sqlite
    token=$(api POST /api/v1/agent-tokens '{"name":"bench-host"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    bench_tempdir state
    CERTCTL_SERVER_URL="https://127.0.0.1:$PORT" CERTCTL_SERVER_CA_BUNDLE="$DIR/tls/ca.pem" \
        CERTCTL_AGENT_TOKEN="$token" CERTCTL_AGENT_STATE_DIR="$state/agent" CERTCTL_AGENT_NAME=bench-host \
        CERTCTL_POLL_INTERVAL=1s CERTCTL_HEARTBEAT_INTERVAL=2s "$PWD/target/release/certctl-agent" \
        >"$state/agent.log" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    for i in $(seq 1 100); do
        [ -f "$state/agent/agent.json" ] && break
        sleep 0.1
    done
    [ -f "$state/agent/agent.json" ] || { echo "$tag the agent did not enrol:" >&2; cat "$state/agent.log" >&2; exit 1; }
    sleep 10
    echo "$tag idle RSS after enrolment and 10 s of 1 s polls and 2 s heartbeats:" \
        "$(awk '/VmRSS/ { printf "%.1f MB", $2 / 1024 }' "/proc/$pid/status")" \
        "(peak $(awk '/VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$pid/status"))"
    echo "$tag requests it made: $(sql "SELECT COUNT(*) FROM audit_events WHERE actor = 'bench-host'" 2>/dev/null || echo '?')"
    kill -TERM "$pid"
    wait "$pid" || true
    bench_stop_server
}

main() {
    bench_require wrk curl sqlite3 psql python3
    if [ -z "${CERTCTL_BENCH_NO_BUILD:-}" ]; then
        cargo build --release -p certctl-server -p certctl-bench -p certctl-agent >&2
    fi
    local which=${1:-all}
    case $which in
        sqlite | postgres) run_backend "$which" ;;
        agent) run_agent_rss ;;
        all) run_backend sqlite; run_backend postgres; run_agent_rss ;;
        *) echo "usage: $0 [sqlite|postgres|agent|all]" >&2; exit 2 ;;
    esac
}

main "$@"
