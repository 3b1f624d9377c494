#!/usr/bin/env bash
# crudauth against axum-login with tower-sessions (benches/peer-axum-login): what a Rust
# developer would pick instead, doing the same work over the same SQLite file and the same
# argon2id hashes, in one run on one machine.
#
#   scripts/peer-compare.sh                    # 10 s per run, 3 rounds
#   DURATION=5s ROUNDS=3 scripts/peer-compare.sh
#
# Builds the demo and the peer in release mode (the peer is a workspace of its own, built
# only here), starts both on loopback over one SQLite file, signs in once on each, and drives
# the same wrk runs against both, interleaved for ROUNDS rounds so drift on the machine hits
# both alike:
#   - session GET /me, CONNS connections (the peer reads the row on every request, as
#     axum-login's session layer does; crudauth serves it from its user cache);
#   - POST /login, one client (each request an argon2id verify and a new session);
#   - POST /login, FLOOD_CONNS clients (throughput under a login flood), crudauth with its
#     default hashing workers (one less than the cores, leaving a core to other requests)
#     and, on a second demo process, with as many workers as cores (what the peer uses:
#     tokio's blocking pool has no such bound).
# Each round signs in afresh (the login runs make many sessions, and the per-user cap
# retires the oldest); any non-2xx answer fails the script.
# Prints each run's median and crudauth/peer ratios (above 1: crudauth ahead; for p50, below
# 1 is crudauth ahead).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
FLOOD_CONNS=${FLOOD_CONNS:-4}
ROUNDS=${ROUNDS:-3}
DEMO_PORT=${DEMO_PORT:-8110}
PEER_PORT=${PEER_PORT:-8112}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

need wrk wrk

cargo build --release -q -p crudauth-demo
cargo build --release -q --manifest-path benches/peer-axum-login/Cargo.toml --target-dir "$TARGET_DIR"

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

export CRUDAUTH_SECRET_KEY="peer-compare-secret-key-0123456789abcdef"
export RUST_LOG=warn
"$TARGET_DIR/release/crudauth-demo" --addr "127.0.0.1:$DEMO_PORT" --database "sqlite://$WORK/load.db?mode=rwc" >"$WORK/demo.log" 2>&1 &
PIDS+=($!)
wait_port "$DEMO_PORT"
D="http://127.0.0.1:$DEMO_PORT"
curl -sf -X POST "$D/register" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","username":"load","password":"correct horse 1"}' >/dev/null
"$TARGET_DIR/release/crudauth-demo" --addr "127.0.0.1:$((DEMO_PORT + 1))" --database "sqlite://$WORK/load.db" \
  --hash-workers "$(nproc)" >"$WORK/demo2.log" 2>&1 &
PIDS+=($!)
wait_port "$((DEMO_PORT + 1))"
D2="http://127.0.0.1:$((DEMO_PORT + 1))"
"$TARGET_DIR/release/peer-axum-login" --addr "127.0.0.1:$PEER_PORT" --database "sqlite://$WORK/load.db" >"$WORK/peer.log" 2>&1 &
PIDS+=($!)
wait_port "$PEER_PORT"
P="http://127.0.0.1:$PEER_PORT"

cookie() { # url, cookie name: signs in, prints the cookie
  curl -sf -D - -o /dev/null -X POST "$1/login" -d 'username=load&password=correct+horse+1' \
    | sed -n "s/^set-cookie: $2=\([^;]*\).*/\1/Ip" | tr -d '\r'
}
sign_in() { # both: fresh cookies, checked
  DCOOKIE="session_id=$(cookie "$D" session_id)"
  PCOOKIE="id=$(cookie "$P" id)"
  [ "$DCOOKIE" != "session_id=" ] && [ "$PCOOKIE" != "id=" ] || { echo "a sign-in set no cookie" >&2; exit 1; }
  # Both answer /me for the same user.
  curl -sf "$D/me" -H "Cookie: $DCOOKIE" | grep -q '"email":"load@example.com"'
  curl -sf "$P/me" -H "Cookie: $PCOOKIE" | grep -q '"email":"load@example.com"'
}
sign_in
[ "$(curl -s -o /dev/null -w '%{http_code}' "$P/me")" = 401 ] || { echo "the peer answers /me without a cookie" >&2; exit 1; }

cat >"$WORK/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "username=load&password=correct+horse+1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA

RESULTS="$WORK/results.tsv"
run() { # name, wrk args...
  local name=$1; shift
  wrk --latency -d "$DURATION" "$@" >"$WORK/out.txt" 2>&1
  wrk_row "$name" "$WORK/out.txt" 1 >>"$RESULTS"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  sign_in
  run "session /me|crudauth" -t1 -c"$CONNS" -H "Cookie: $DCOOKIE" "$D/me"
  run "session /me|axum-login" -t1 -c"$CONNS" -H "Cookie: $PCOOKIE" "$P/me"
  run "POST /login, 1 client|crudauth" -t1 -c1 -s "$WORK/login.lua" "$D/login"
  run "POST /login, 1 client|axum-login" -t1 -c1 -s "$WORK/login.lua" "$P/login"
  run "POST /login, $FLOOD_CONNS clients|crudauth" -t1 -c"$FLOOD_CONNS" -s "$WORK/login.lua" "$D/login"
  run "POST /login, $FLOOD_CONNS clients|axum-login" -t1 -c"$FLOOD_CONNS" -s "$WORK/login.lua" "$P/login"
  run "POST /login, $FLOOD_CONNS clients, crudauth with $(nproc) hash workers|crudauth" -t1 -c"$FLOOD_CONNS" -s "$WORK/login.lua" "$D2/login"
  run "POST /login, $FLOOD_CONNS clients, crudauth with $(nproc) hash workers|axum-login" -t1 -c"$FLOOD_CONNS" -s "$WORK/login.lua" "$P/login"
done

python3 - "$RESULTS" "$(nproc)" "$DURATION" "$ROUNDS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs = {}
for name, rps, p50, p99, bad in rows:
    run, who = name.split("|")
    runs.setdefault(run, {}).setdefault(who, []).append((float(rps), float(p50), float(p99), int(bad)))
print(f"\n{sys.argv[2]} cores, {sys.argv[3]} per run, median of {sys.argv[4]} rounds (wrk, loopback)\n")
print("| run | crudauth req/s | axum-login req/s | req/s ratio (each round) | crudauth p50 ms | axum-login p50 ms | non-2xx |")
print("|---|---|---|---|---|---|---|")
for run, by in runs.items():
    c, p = by["crudauth"], by["axum-login"]
    ratios = [a[0] / b[0] for a, b in zip(c, p)]
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    print(f"| {run} | {med(c,0):.0f} | {med(p,0):.0f} | {statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)}) "
          f"| {med(c,1):.2f} | {med(p,1):.2f} | {sum(x[3] for x in c)}/{sum(x[3] for x in p)} |")
bad = sum(x[3] for by in runs.values() for xs in by.values() for x in xs)
if bad:
    sys.exit(f"\n{bad} answers were not 2xx: the figures above are not comparable")
PY
