#!/usr/bin/env bash
# Load harness: the demo server against a hand-written baseline (benches/baseline, package
# crudauth-baseline), same SQLite file, same run.
#
#   scripts/load.sh                     # 10 s per run
#   DURATION=5s CONNS=16 scripts/load.sh
#   DEMO_ARGS="--store redis" scripts/load.sh        # state in Redis (default redis://127.0.0.1:6379)
#   DEMO_ARGS="--store database --store-database postgres://..." scripts/load.sh   # state in PostgreSQL
#
# Builds both in release mode, starts them on 127.0.0.1 only, creates a user, drives fixed-
# duration runs with wrk (installed from Debian's packages if missing), and prints req/s and
# p50/p99 for each run with every library figure as a ratio to the baseline of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
FLOOD_CONNS=${FLOOD_CONNS:-4}
DEMO_PORT=${DEMO_PORT:-8100}
BASE_PORT=${BASE_PORT:-8101}

need wrk wrk

cargo build --release -q -p crudauth-demo -p crudauth-baseline
TARGET=${CARGO_TARGET_DIR:-target}/release

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

export CRUDAUTH_SECRET_KEY="load-harness-secret-key-0123456789abcdef"
export BASELINE_KEY="load-harness-baseline-key-0123456789abcdef"
export RUST_LOG=warn
DB="sqlite://$WORK/load.db?mode=rwc"
# shellcheck disable=SC2086 # DEMO_ARGS is a list of arguments
"$TARGET/crudauth-demo" --addr "127.0.0.1:$DEMO_PORT" --database "$DB" ${DEMO_ARGS:-} >"$WORK/demo.log" 2>&1 &
PIDS+=($!)
wait_port "$DEMO_PORT"
D="http://127.0.0.1:$DEMO_PORT"
curl -sf -X POST "$D/register" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","username":"load","password":"correct horse 1"}' >/dev/null
SESSION=$(curl -sf -D - -o /dev/null -X POST "$D/login" -d 'username=load&password=correct+horse+1' \
  | sed -n 's/^set-cookie: session_id=\([^;]*\).*/\1/Ip' | tr -d '\r')
TOKEN=$(curl -sf -X POST "$D/token" -d 'username=load&password=correct+horse+1' \
  | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
"$TARGET/crudauth-baseline" serve --addr "127.0.0.1:$BASE_PORT" --database "sqlite://$WORK/load.db" >"$WORK/base.log" 2>&1 &
PIDS+=($!)
wait_port "$BASE_PORT"
B="http://127.0.0.1:$BASE_PORT"
BTOKEN=$("$TARGET/crudauth-baseline" mint 1)

# Sanity: both answer the same /me.
curl -sf "$D/me" -H "Authorization: Bearer $TOKEN" >/dev/null
curl -sf "$B/me" -H "Authorization: Bearer $BTOKEN" >/dev/null

cat >"$WORK/token.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "username=load&password=correct+horse+1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA

RESULTS="$WORK/results.tsv"
run() { # name, wrk args...
  local name=$1; shift
  wrk --latency -d "$DURATION" "$@" >"$WORK/out.txt" 2>&1
  wrk_row "$name" "$WORK/out.txt" >>"$RESULTS"
}

C="-t1 -c$CONNS"
run "baseline: plain handler (no auth)"    $C "$B/plain"
run "baseline: bearer /me"                 $C -H "Authorization: Bearer $BTOKEN" "$B/me"
run "crudauth: bearer /me"                 $C -H "Authorization: Bearer $TOKEN" "$D/me"
STORE=$(printf '%s\n' ${DEMO_ARGS:-} | sed -n '/^--store$/{n;p;q}')
run "crudauth: session /me (${STORE:-memory} store)" $C -H "Cookie: session_id=$SESSION" "$D/me"
run "crudauth: /me without credential (401)" $C "$D/me"
# One argon2id verify with the same parameters, measured by criterion right before and right
# after the /token run (the machine's speed drifts over minutes; the mean of the two is the
# yardstick of that run).
verify_ms() {
  cargo bench -q -p crudauth --bench primitives -- --warm-up-time 1 --measurement-time 4 \
    'password.*/verify' 2>/dev/null | python3 -c '
import re, sys
m = re.search(r"time:\s+\[\S+ \S+ ([\d.]+) (ns|µs|us|ms|s)", sys.stdin.read())
scale = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1, "s": 1000}[m.group(2)] if m else 0
print(f"{float(m.group(1)) * scale:.3f}" if m else "nan")'
}
VERIFY_BEFORE=$(verify_ms)
run "crudauth: POST /token (1 client)"     -t1 -c1 -s "$WORK/token.lua" "$D/token"
VERIFY_AFTER=$(verify_ms)
VERIFY_MS=$(python3 -c "import sys; print(f'{(float(sys.argv[1]) + float(sys.argv[2])) / 2:.3f}')" "$VERIFY_BEFORE" "$VERIFY_AFTER")
# /me while a second client floods /token.
wrk -d "$(( ${DURATION%s} + 2 ))s" -t1 -c"$FLOOD_CONNS" -s "$WORK/token.lua" "$D/token" >"$WORK/flood.txt" 2>&1 &
FLOOD=$!
sleep 1
run "crudauth: bearer /me during /token flood" $C -H "Authorization: Bearer $TOKEN" "$D/me"
wait $FLOOD || true

python3 - "$RESULTS" "$(nproc)" "$DURATION" "$CONNS" "$VERIFY_MS" "$VERIFY_BEFORE" "$VERIFY_AFTER" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = {r[0]: r for r in rows}
base = float(by["baseline: bearer /me"][1])
me_p99 = float(by["crudauth: bearer /me"][3])
print(f"\n{sys.argv[2]} cores, {sys.argv[3]} per run, {sys.argv[4]} connections (wrk, loopback)\n")
print("| run | req/s | p50 ms | p99 ms | non-2xx | req/s vs baseline bearer /me |")
print("|---|---|---|---|---|---|")
for name, rps, p50, p99, bad in rows:
    print(f"| {name} | {rps} | {p50} | {p99} | {bad} | {float(rps)/base:.2f}x |")
flood = float(by["crudauth: bearer /me during /token flood"][3])
print(f"\n/me p99 during the flood: {flood/me_p99:.2f}x its p99 without the flood")
verify = float(sys.argv[5])
token_p50 = float(by["crudauth: POST /token (1 client)"][2])
print(f"POST /token p50 {token_p50:.1f} ms = {token_p50/verify:.2f}x one argon2id verify "
      f"({verify:.1f} ms: criterion, mean of {float(sys.argv[6]):.1f} before and {float(sys.argv[7]):.1f} after the /token run)")
PY
