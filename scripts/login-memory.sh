#!/usr/bin/env bash
# Memory under a login flood: the release demo's RSS idle, then after N `POST /token` logins
# from C concurrent clients, against the bound the hashing workers promise (idle RSS plus
# one argon2 memory block per hashing slot, plus 10%).
#
#   scripts/login-memory.sh                  # 1,000 logins from 4 clients
#   LOGINS=450 CLIENTS=4 scripts/login-memory.sh
#   DEMO_BIN=/path/to/crudauth-demo scripts/login-memory.sh   # another build of the demo
set -euo pipefail
cd "$(dirname "$0")/.."

LOGINS=${LOGINS:-1000}
CLIENTS=${CLIENTS:-4}
PORT=${PORT:-8120}
if [ -z "${DEMO_BIN:-}" ]; then
  cargo build --release -q -p crudauth-demo
  DEMO_BIN=${CARGO_TARGET_DIR:-target}/release/crudauth-demo
fi

WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

export CRUDAUTH_SECRET_KEY="login-memory-secret-key-0123456789abcdef" RUST_LOG=warn
"$DEMO_BIN" --addr "127.0.0.1:$PORT" --database "sqlite://$WORK/m.db?mode=rwc" >"$WORK/demo.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
curl -sf -X POST "http://127.0.0.1:$PORT/register" -H 'content-type: application/json' \
  -d '{"email":"mem@example.com","username":"mem","password":"correct horse 1"}' >/dev/null

python3 - "$PID" "$PORT" "$LOGINS" "$CLIENTS" <<'PY'
import http.client, os, sys, threading, time
pid, port, logins, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
idle = rss_kib()
ok = [0] * clients
def client(i):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(logins // clients):
        conn.request("POST", "/token", "username=mem&password=correct+horse+1",
                     {"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse(); r.read()
        ok[i] += r.status == 200
threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
start = time.time()
for t in threads: t.start()
for t in threads: t.join()
took = time.time() - start
time.sleep(1)
after = rss_kib()
permits = max(1, (os.cpu_count() or 2) - 1)  # the default hashing workers
bound = idle + permits * 19 * 1024 * 1.1
print(f"{sum(ok)}/{logins} logins from {clients} clients in {took:.1f} s")
print(f"RSS idle {idle/1024:.1f} MiB, after {after/1024:.1f} MiB "
      f"(bound: idle + {permits} x 19 MiB + 10% = {bound/1024:.1f} MiB): "
      f"{'within' if after <= bound else 'OVER'}")
PY
