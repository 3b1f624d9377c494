#!/usr/bin/env bash
# Scale-out on one machine: three demo processes behind nginx on loopback, sharing
# PostgreSQL for users and Redis for state, checked under load.
#
#   scripts/scale-out.sh
#   PG=postgres://postgres@127.0.0.1:5432/test REDIS=redis://127.0.0.1:6379 scripts/scale-out.sh
#
# Checks, each across processes: a session made on one works on all; a logout, a password
# change, a sign-out-everywhere and a deactivation (the app's own write to its table,
# announced with auth.invalidate_user) made on one are refused by every process on the next
# request (the staleness, counted as old credentials still served, must be zero); 40
# concurrent wrong passwords spread over the three perform exactly 5 password checks before
# the 429s; a refresh token's reuse on another process is detected. Then throughput of one
# process against three behind nginx (on two cores this shows the cost of the shared store
# and the proxy, not scaling).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

PG=${PG:-${CRUDAUTH_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
REDIS=${REDIS:-${CRUDAUTH_TEST_REDIS_URL:-redis://127.0.0.1:6379}}
DURATION=${DURATION:-5s}
LB=8140
PORTS=(8141 8142 8143)

need nginx nginx
need wrk wrk
need psql postgresql-client

cargo build --release -q -p crudauth-demo
DEMO=${CARGO_TARGET_DIR:-target}/release/crudauth-demo

WORK=$(mktemp -d)
SCHEMA="ca_scale_$(date +%s)_$$"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  psql -q "$PG" -c "DROP SCHEMA IF EXISTS \"$SCHEMA\" CASCADE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql -q "$PG" -c "CREATE SCHEMA \"$SCHEMA\"" >/dev/null
SEP='?'; case "$PG" in *\?*) SEP='&';; esac
DB="$PG${SEP}options[search_path]=$SCHEMA"
export CRUDAUTH_SECRET_KEY="scale-out-secret-key-$(date +%s)-0123456789abcdef"
export RUST_LOG=warn
ADMIN_PASSWORD="scale-out admin $(date +%s)"
for port in "${PORTS[@]}"; do
  # The first process makes the admin before it listens; the others find it.
  CRUDAUTH_DEFAULT_ADMIN_EMAIL=admin@example.com CRUDAUTH_DEFAULT_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  "$DEMO" --addr "127.0.0.1:$port" --database "$DB" --store redis --redis-url "$REDIS" \
    --redis-prefix "crudauth-scale:$SCHEMA:" >"$WORK/demo-$port.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" 150
done
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream demos { $(for p in "${PORTS[@]}"; do printf 'server 127.0.0.1:%s; ' "$p"; done) keepalive 32; }
  server {
    listen 127.0.0.1:$LB;
    location / {
      proxy_pass http://demos;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
    }
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon on;'
wait_port "$LB" 150

python3 - "$LB" "$ADMIN_PASSWORD" "${PORTS[@]}" <<'PY'
import http.client, json, sys, threading, urllib.parse

lb, admin_password, ports = int(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3:]]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}

def call(port, method, path, body="", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body, headers or {})
    r = c.getresponse()
    data = r.read()
    return r.status, r.getheader("Set-Cookie") or "", r.getheaders(), data

def cookies(headers):
    out = {}
    for k, v in headers:
        if k.lower() == "set-cookie":
            name, rest = v.split("=", 1)
            out[name] = rest.split(";", 1)[0]
    return out

def login(port, user, password):
    s, _, h, b = call(port, "POST", "/login", f"username={user}&password={password}", FORM)
    assert s == 200, (s, b)
    c = cookies(h)
    sid = c.get("session_id") or c.get("__Host-session_id")
    return sid, c.get("csrf_token") or c.get("__Host-csrf_token"), json.loads(b)["csrf_token"]

def token(port, user, password):
    s, _, _, b = call(port, "POST", "/token", f"username={user}&password={password}", FORM)
    assert s == 200, (s, b)
    return json.loads(b)

def me(port, sid=None, access=None):
    h = {}
    if sid: h["Cookie"] = f"session_id={sid}"
    if access: h["Authorization"] = f"Bearer {access}"
    return call(port, "GET", "/me", "", h)[0]

checks = []
def check(name, ok):
    checks.append((name, ok))
    print(("ok   " if ok else "FAIL ") + name)

for i, user in enumerate(["ann", "bob", "cyd", "dee", "eve"]):
    s, *_ = call(lb, "POST", "/register", json.dumps({"email": f"{user}@example.com", "username": user, "password": "correct horse 1"}), JSON)
    assert s == 202, s
pw = "correct+horse+1"

# A session made through the balancer works on every process.
sid, _, csrf = login(lb, "ann", pw)
check("a session made on one process works on all three", all(me(p, sid=sid) == 200 for p in ports))

# Logout on one: refused everywhere on the next request (staleness = old credentials served).
s, *_ = call(ports[0], "POST", "/logout", "", {"Cookie": f"session_id={sid}", "X-CSRF-Token": csrf})
stale = sum(me(p, sid=sid) == 200 for p in ports)
check(f"logout on one process: served on {stale} of 3 afterwards (staleness 0)", s == 200 and stale == 0)

# A password change on one: the other sessions and tokens die on every process.
sid, _, csrf = login(ports[1], "bob", pw)
other, _, _ = login(ports[2], "bob", pw)
access = token(ports[0], "bob", pw)["access_token"]
warm = all(me(p, sid=other) == 200 and me(p, access=access) == 200 for p in ports)
s, *_ = call(ports[1], "POST", "/change-password", json.dumps({"current_password": "correct horse 1", "new_password": "another horse 2"}), {**JSON, "Cookie": f"session_id={sid}", "X-CSRF-Token": csrf})
stale = sum((me(p, sid=other) == 200) + (me(p, access=access) == 200) for p in ports)
check(f"password change on one process: old credentials served {stale} times on 3 processes (staleness 0)", warm and s == 200 and stale == 0)

# Sign out everywhere on one.
sid, _, csrf = login(ports[2], "cyd", pw)
access = token(ports[1], "cyd", pw)["access_token"]
warm = all(me(p, access=access) == 200 for p in ports)
s, *_ = call(ports[2], "POST", "/logout-all", "", {"Cookie": f"session_id={sid}", "X-CSRF-Token": csrf})
stale = sum(me(p, access=access) == 200 for p in ports)
check(f"sign out everywhere on one process: token served {stale} times afterwards (staleness 0)", warm and s == 200 and stale == 0)

# A deactivation on one (the app writes its table, then calls auth.invalidate_user): the
# account's session and token are refused by every process on the next request.
sid, _, _ = login(ports[1], "eve", pw)
access = token(ports[2], "eve", pw)["access_token"]
warm = all(me(p, sid=sid) == 200 and me(p, access=access) == 200 for p in ports)
s, _, _, b = call(ports[0], "GET", "/me", "", {"Authorization": f"Bearer {access}"})
eve_id = json.loads(b)["user_id"]
asid, _, acsrf = login(ports[0], "admin@example.com", urllib.parse.quote_plus(admin_password))
s, *_ = call(ports[0], "POST", f"/admin/users/{eve_id}/deactivate", "", {"Cookie": f"session_id={asid}", "X-CSRF-Token": acsrf})
stale = sum((me(p, sid=sid) == 200) + (me(p, access=access) == 200) for p in ports)
check(f"deactivation on one process: session and token served {stale} times afterwards (staleness 0)", warm and s == 204 and stale == 0)

# 40 concurrent wrong passwords over the three processes: exactly 5 checked (401), the rest 429.
statuses = []
lock = threading.Lock()
def wrong(i):
    s, *_ = call(ports[i % 3], "POST", "/login", "username=dee&password=wrong", FORM)
    with lock: statuses.append(s)
threads = [threading.Thread(target=wrong, args=(i,)) for i in range(40)]
for t in threads: t.start()
for t in threads: t.join()
n401, n429 = statuses.count(401), statuses.count(429)
check(f"40 concurrent wrong passwords over 3 processes: {n401} checked (401), {n429} refused (429)", n401 == 5 and n429 == 35)

# Refresh-token reuse across processes.
pair = token(ports[0], "ann", pw)
s1, *_ , b1 = call(ports[1], "POST", "/refresh", json.dumps({"refresh_token": pair["refresh_token"]}), JSON)
s2, *_ = call(ports[2], "POST", "/refresh", json.dumps({"refresh_token": pair["refresh_token"]}), JSON)
rotated = json.loads(b1).get("refresh_token") if s1 == 200 else None
s3, *_ = call(ports[0], "POST", "/refresh", json.dumps({"refresh_token": rotated}), JSON) if rotated else (0,)
check(f"refresh reuse on another process detected (reuse {s2}, the family's newest then {s3})", s1 == 200 and s2 == 401 and s3 == 401)

sys.exit(0 if all(ok for _, ok in checks) else 1)
PY

# Throughput: bearer /me on one process directly, then through nginx over three.
ACCESS=$(curl -sf -X POST "http://127.0.0.1:$LB/token" -d 'username=ann&password=correct+horse+1' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
rps() { wrk -t1 -c32 -d "$DURATION" -H "Authorization: Bearer $ACCESS" "$1" | sed -n 's/Requests\/sec: *//p'; }
ONE=$(rps "http://127.0.0.1:${PORTS[0]}/me")
THREE=$(rps "http://127.0.0.1:$LB/me")
python3 -c "
one, three = float('$ONE'), float('$THREE')
print(f'bearer /me: one process {one:.0f} req/s, three behind nginx {three:.0f} req/s ({three/one:.2f}x); '
      f'on $(nproc) cores this measures the proxy and the shared store, not scaling')"
