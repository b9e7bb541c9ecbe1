#!/usr/bin/env bash
# Benchmarks slipway-proxy against nginx, in one run, on loopback: the same backend (the
# `bench-backend` example: a hyper server answering 13 bytes) behind
#   - slipway-proxy (the `bench-proxy` example, 100 routes configured, each with its own
#     listener; load goes to the first), with one runtime thread per core (the default);
#   - slipway-proxy limited to one runtime thread, like nginx's single worker;
#   - nginx with `worker_processes 1`, upstream keepalive, access log off.
# Each gets the same wrk runs: a throughput run (-t2 -c64) and a latency run (-t1 -c4), after a
# short warm-up. Prints the machine first, then requests/s, p50 and p99 side by side, then the
# proxy's memory (VmRSS after configuring 100 routes, VmHWM after the load).
# Environment: SLIPWAY_BENCH_DURATION (default 20s) per throughput run, SLIPWAY_BENCH_PORT
# (default 18480; the script uses it and the next three ports).
# nginx and wrk are installed with apt-get when missing. Every process the script starts is
# stopped by its pid when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway-target}"
duration="${SLIPWAY_BENCH_DURATION:-20s}"
base="${SLIPWAY_BENCH_PORT:-18480}"
backend_port=$base proxy_port=$((base + 1)) single_port=$((base + 2)) nginx_port=$((base + 3))

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y nginx-light wrk
fi
nginx_bin="$(command -v nginx)"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "versions: $("$nginx_bin" -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(rustc --version)," \
  "commit $(git rev-parse --short HEAD)"

cargo build --release --locked -p slipway-proxy --example bench-backend --example bench-proxy
examples="$CARGO_TARGET_DIR/release/examples"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (at most 10 s) until something accepts connections on the port.
wait_for_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nothing listens on port $1 after 10 s" >&2
  return 1
}

"$examples/bench-backend" "127.0.0.1:$backend_port" >"$work/backend.log" 2>&1 &
pids+=($!)
wait_for_port "$backend_port"

mkdir "$work/proxy" "$work/single"
"$examples/bench-proxy" "127.0.0.1:$proxy_port" "127.0.0.1:$backend_port" "$work/proxy" 100 \
  >"$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
SLIPWAY_BENCH_PROXY_THREADS=1 "$examples/bench-proxy" "127.0.0.1:$single_port" \
  "127.0.0.1:$backend_port" "$work/single" 1 >"$work/single.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q ready "$work/proxy.log" && grep -q ready "$work/single.log" && break
  sleep 0.1
done
grep -q ready "$work/proxy.log" || { echo "bench-proxy did not start:" >&2; cat "$work/proxy.log" >&2; exit 1; }
rss_configured="$(awk '/VmRSS/ { print $2 }' "/proc/$proxy_pid/status")"

cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend {
    server 127.0.0.1:$backend_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
"$nginx_bin" -p "$work" -c "$work/nginx.conf" &
pids+=($!)
wait_for_port "$nginx_port"

names=("slipway-proxy" "slipway-proxy, 1 thread" "nginx, 1 worker")
ports=("$proxy_port" "$single_port" "$nginx_port")

# Prints "requests/s p50 p99" of one wrk run.
run_wrk() {
  wrk --latency "$@" | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    /Non-2xx|Socket errors/ { errors = errors " [" $0 "]" }
    END { printf "%s %s %s%s\n", rps, p50, p99, errors }'
}

for port in "${ports[@]}"; do
  wrk -t2 -c64 -d3s "http://127.0.0.1:$port/" >/dev/null # warm-up: pools, caches
done

echo
echo "throughput: wrk -t2 -c64 -d$duration --latency"
printf "%-26s %12s %10s %10s\n" "through" "requests/s" "p50" "p99"
for i in "${!ports[@]}"; do
  read -r rps p50 p99 errors <<<"$(run_wrk -t2 -c64 -d"$duration" "http://127.0.0.1:${ports[$i]}/")"
  printf "%-26s %12s %10s %10s %s\n" "${names[$i]}" "$rps" "$p50" "$p99" "${errors:-}"
done

echo
echo "latency: wrk -t1 -c4 -d10s --latency"
printf "%-26s %12s %10s %10s\n" "through" "requests/s" "p50" "p99"
for i in "${!ports[@]}"; do
  read -r rps p50 p99 errors <<<"$(run_wrk -t1 -c4 -d10s "http://127.0.0.1:${ports[$i]}/")"
  printf "%-26s %12s %10s %10s %s\n" "${names[$i]}" "$rps" "$p50" "$p99" "${errors:-}"
done

echo
echo "backend alone (for reference): wrk -t2 -c64 -d10s --latency"
read -r rps p50 p99 errors <<<"$(run_wrk -t2 -c64 -d10s "http://127.0.0.1:$backend_port/")"
printf "%-26s %12s %10s %10s %s\n" "backend" "$rps" "$p50" "$p99" "${errors:-}"

hwm="$(awk '/VmHWM/ { print $2 }' "/proc/$proxy_pid/status")"
echo
echo "slipway-proxy memory with 100 routes (100 listeners): VmRSS ${rss_configured} kB once" \
  "configured, VmHWM ${hwm} kB after the runs above"
