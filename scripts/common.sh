# Shared by the load scripts (sourced, not run): installing what they need, waiting for a
# server's port, and reading a wrk run.

need() { # command, Debian package: installs the package when the command is missing (as root)
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
  else
    echo "$1 is missing: install it (Debian: apt-get install $2)" >&2; exit 1
  fi
}

wait_port() { # port [tenths of a second to wait, default 100]
  for _ in $(seq 1 "${2:-100}"); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened" >&2; exit 1
}

wrk_row() { # name, file with `wrk --latency` output [, decimals of req/s, default 0]
  # Prints one tab-separated row: name, req/s, p50 ms, p99 ms, non-2xx answers.
  python3 - "$1" "$2" "${3:-0}" <<'PY'
import re, sys
name, path, decimals = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(path).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
print(f"{name}\t{rps:.{decimals}f}\t{p50:.3f}\t{p99:.3f}\t{bad.group(1) if bad else 0}")
PY
}
