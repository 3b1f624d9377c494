#!/usr/bin/env bash
# Load comparison of two builds of the demo server in one run, on one machine: the demo at
# an earlier commit (OLD, default HEAD~1) against the working tree, with the hand-written
# baseline as the yardstick of both.
#
#   scripts/load-compare.sh [OLD_REV]          # 10 s per run
#   DURATION=5s ROUNDS=3 scripts/load-compare.sh ae20873
#   OLD_BIN=/tmp/crudauth-demo-old scripts/load-compare.sh ae20873   # OLD already built
#
# Builds OLD's demo in release mode in a temporary git worktree (sharing the target
# directory, so only the workspace's own crates compile twice), then this tree's demo and
# the baseline; starts all three on loopback against SQLite files of their own, and drives
# the same wrk runs against each, interleaved for ROUNDS rounds so drift on the machine hits
# both builds alike. Prints the median req/s of each run and new/old ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

OLD_REV=${1:-HEAD~1}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-3}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

need wrk wrk

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  git worktree remove --force "$WORK/old" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${OLD_BIN:-}" ]; then
  cp "$OLD_BIN" "$WORK/demo-old"        # a demo binary already built at OLD_REV
else
  echo "building $OLD_REV and the working tree (release)..." >&2
  git worktree add --detach "$WORK/old" "$OLD_REV" >/dev/null
  (cd "$WORK/old" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p crudauth-demo)
  cp "$TARGET_DIR/release/crudauth-demo" "$WORK/demo-old"
fi
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p crudauth-demo -p crudauth-baseline
cp "$TARGET_DIR/release/crudauth-demo" "$WORK/demo-new"
cp "$TARGET_DIR/release/crudauth-baseline" "$WORK/baseline"

export CRUDAUTH_SECRET_KEY="load-harness-secret-key-0123456789abcdef"
export BASELINE_KEY="load-harness-baseline-key-0123456789abcdef"
export RUST_LOG=warn

start_demo() { # name, port -> writes "session token" to $WORK/$name.creds
  local name=$1 port=$2
  "$WORK/demo-$name" --addr "127.0.0.1:$port" --database "sqlite://$WORK/$name.db?mode=rwc" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port"
  local d="http://127.0.0.1:$port"
  curl -sf -X POST "$d/register" -H 'content-type: application/json' \
    -d '{"email":"load@example.com","username":"load","password":"correct horse 1"}' >/dev/null
  local session token
  session=$(curl -sf -D - -o /dev/null -X POST "$d/login" -d 'username=load&password=correct+horse+1' \
    | sed -n 's/^set-cookie: \(__Host-\)\{0,1\}session_id=\([^;]*\).*/\2/Ip' | tr -d '\r')
  token=$(curl -sf -X POST "$d/token" -d 'username=load&password=correct+horse+1' \
    | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -sf "$d/me" -H "Authorization: Bearer $token" >/dev/null
  echo "$session $token" >"$WORK/$name.creds"
}

# Not in a subshell: the demos' pids must reach `cleanup`.
start_demo old 8110
start_demo new 8111
read -r OLD_SESSION OLD_TOKEN <"$WORK/old.creds"
read -r NEW_SESSION NEW_TOKEN <"$WORK/new.creds"
"$WORK/baseline" serve --addr 127.0.0.1:8112 --database "sqlite://$WORK/new.db" >"$WORK/base.log" 2>&1 &
PIDS+=($!)
wait_port 8112
BTOKEN=$("$WORK/baseline" mint 1)
curl -sf "http://127.0.0.1:8112/me" -H "Authorization: Bearer $BTOKEN" >/dev/null

RESULTS="$WORK/results.tsv"
run() { # name, wrk args...
  local name=$1; shift
  wrk --latency -d "$DURATION" "$@" >"$WORK/out.txt" 2>&1
  wrk_row "$name" "$WORK/out.txt" | cut -f1,2,5 >>"$RESULTS"
}

C="-t1 -c$CONNS"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  run "baseline bearer /me" $C -H "Authorization: Bearer $BTOKEN" "http://127.0.0.1:8112/me"
  for build in old new; do
    port=$([ $build = old ] && echo 8110 || echo 8111)
    token=$([ $build = old ] && echo "$OLD_TOKEN" || echo "$NEW_TOKEN")
    session=$([ $build = old ] && echo "$OLD_SESSION" || echo "$NEW_SESSION")
    run "$build bearer /me" $C -H "Authorization: Bearer $token" "http://127.0.0.1:$port/me"
    run "$build session /me" $C -H "Cookie: session_id=$session; __Host-session_id=$session" "http://127.0.0.1:$port/me"
    run "$build /me without credential (401)" $C "http://127.0.0.1:$port/me"
  done
done

python3 - "$RESULTS" "$(nproc)" "$DURATION" "$CONNS" "$ROUNDS" "$OLD_REV" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs = {}
for name, rps, bad in rows:
    runs.setdefault(name, []).append((float(rps), int(bad)))
med = {n: statistics.median(r for r, _ in v) for n, v in runs.items()}
base = med["baseline bearer /me"]
print(f"\n{sys.argv[2]} cores, {sys.argv[3]} per run, {sys.argv[4]} connections, median of {sys.argv[5]} interleaved rounds; old = {sys.argv[6]}\n")
print("| run | old req/s | new req/s | new / old | old vs baseline | new vs baseline |")
print("|---|---|---|---|---|---|")
for run in ["bearer /me", "session /me", "/me without credential (401)"]:
    o, n = med[f"old {run}"], med[f"new {run}"]
    print(f"| {run} | {o:.0f} | {n:.0f} | {n/o:.2f}x | {o/base:.2f}x | {n/base:.2f}x |")
print(f"\nbaseline bearer /me: {base:.0f} req/s")
bad = {n: sum(b for _, b in v) for n, v in runs.items() if "401" not in n}
if any(bad.values()):
    print("non-2xx answers on a run that should succeed:", bad)
PY
