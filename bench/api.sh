#!/usr/bin/env bash
# Latency of `GET /api/v1/deploys` (and of `GET /healthz`, the floor) at a fixed request rate on
# loopback while a deploy runs. Builds `slipway` in release mode, serves bench/api/slipway.toml
# from a temporary directory (SQLite, the `command` target driving bench/api/fleet.sh), seeds a
# history through the real CLI (users and tokens, an artifact and a release per version, finished
# deploys to `dev`), starts one deploy to `staging` whose 10-minute bake checks the fleet every
# second, then runs `oha` open-loop at the rate for the duration against each path and prints
# p50/p90/p99/max, errors, the server's CPU time and its peak RSS. The figures and the machine
# they ran on go to docs/benchmarks.md.
#
# Environment:
#   SLIPWAY_BENCH_RATE      requests per second (default 500)
#   SLIPWAY_BENCH_DURATION  length of each run, as oha's -z takes it (default 30s)
#   SLIPWAY_BENCH_DEPLOYS   finished deploys seeded before the runs (default 60)
#   SLIPWAY_BENCH_PATHS     paths measured, in order (default "/healthz /api/v1/deploys");
#                           /api/v1 paths get the bearer token of a viewer
#   SLIPWAY_BENCH_KEEP=1    keep the temporary directory (config, database, server log)
# The load tool is oha (crates.io), installed into ~/.cache/slipway-bench on the first run.
# Load is sent to 127.0.0.1 only. The server is stopped by its pid on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway-target}"

RATE=${SLIPWAY_BENCH_RATE:-500}
DURATION=${SLIPWAY_BENCH_DURATION:-30s}
DEPLOYS=${SLIPWAY_BENCH_DEPLOYS:-60}
PATHS=${SLIPWAY_BENCH_PATHS:-/healthz /api/v1/deploys}
CONNECTIONS=50
OHA_VERSION=1.16.0
OHA_ROOT=$HOME/.cache/slipway-bench
OHA=$OHA_ROOT/bin/oha
BIN=$CARGO_TARGET_DIR/release/slipway

for tool in jq curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "toolchain: $(rustc --version)"
if git rev-parse --git-dir >/dev/null 2>&1; then
  echo "commit: $(git rev-parse --short HEAD)" \
    "($(git status --porcelain --untracked-files=no | wc -l) files with uncommitted changes)"
fi

if [ ! -x "$OHA" ] || ! "$OHA" --version | grep -qF "$OHA_VERSION"; then
  echo "installing oha $OHA_VERSION into $OHA_ROOT (once)"
  cargo install oha --version "$OHA_VERSION" --locked --root "$OHA_ROOT"
fi
echo "load tool: $("$OHA" --version)"
cargo build --release --locked -p slipway

tmp=$(mktemp -d "${TMPDIR:-/tmp}/slipway-api-bench.XXXXXX")
server_pid=

# Stops the server started below (this pid only): SIGTERM, up to 20 s for a graceful stop,
# then SIGKILL. Prints the exit status.
stop_server() {
  [ -n "$server_pid" ] || return 0
  local pid=$server_pid status=0
  server_pid=
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "server $pid did not stop within 20 s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" || status=$?
  echo "server stopped (pid $pid, exit status $status)"
}
cleanup() {
  stop_server
  if [ "${SLIPWAY_BENCH_KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A copy of the binary serves and runs the CLI, so a build in the same target directory during
# the run changes nothing.
cp "$BIN" "$tmp/slipway"
BIN=$tmp/slipway
cp bench/api/slipway.toml bench/api/fleet.sh "$tmp/"
"$BIN" serve --config "$tmp/slipway.toml" --data-dir "$tmp/data" --listen 127.0.0.1:0 \
  >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
url=
for _ in $(seq 300); do
  url=$(sed -n 's/.*slipway: listening on \(http:[^ ]*\).*/\1/p' "$tmp/server.log" | head -1)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "error: the server did not say where it listens" >&2; cat "$tmp/server.log" >&2; exit 1; }
case "$url" in http://127.0.0.1:*) ;; *) echo "error: not on loopback: $url" >&2; exit 1 ;; esac
echo "server: pid $server_pid on $url"

export SLIPWAY_SERVER=$url
unset SLIPWAY_CONFIG SLIPWAY_DATABASE
admin=$(cat "$tmp/data/admin-token")
cli() { local token=$1; shift; SLIPWAY_TOKEN=$token "$BIN" "$@"; }

# History: people, then DEPLOYS versions alternating between the two services, each pushed,
# released and deployed to dev (followed to its end).
seed_start=$(date +%s)
cli "$admin" user add alice --role deployer >/dev/null
cli "$admin" user add bob --role approver >/dev/null
cli "$admin" user add dashboard --role viewer >/dev/null
alice=$(cli "$admin" token create --user alice 2>/dev/null)
viewer=$(cli "$admin" token create --user dashboard --label "status page" 2>/dev/null)
mkdir -p "$tmp/builds"
release() { # SERVICE N: pushes build N of SERVICE and releases it
  local version file
  version=$(printf '2026.11.23-%07x' $((0x3f2a9c1 + $2)))
  file=$tmp/builds/$1-$version.tar.gz
  head -c 65536 /dev/urandom >"$file"
  cli "$alice" artifact push "$file" --service "$1" --version "$version" \
    --commit "$(printf '%07x' $((0x3f2a9c1 + $2)))" >/dev/null
  cli "$alice" release create "$1" --version "$version" >/dev/null
}
for i in $(seq "$DEPLOYS"); do
  if [ $((i % 2)) = 1 ]; then service=idp; else service=pivcac; fi
  release "$service" "$i"
  if ! cli "$alice" deploy "$service" --env dev --follow --timeout 60s >"$tmp/follow.out" 2>&1; then
    echo "error: seeding deploy $i of $service to dev did not succeed:" >&2
    cat "$tmp/follow.out" >&2
    exit 1
  fi
done
echo "seeded $DEPLOYS finished deploys in $(($(date +%s) - seed_start)) s"

# The deploy that runs during the measurement: idp to staging, held in its bake.
release idp $((DEPLOYS + 1))
running=$(cli "$alice" --output json deploy idp --env staging --reason "benchmark: bake under load" | jq .id)
step=
for _ in $(seq 300); do
  step=$(cli "$viewer" --output json status "$running" | jq -r '.phase.state + " " + (.phase.step // "-")')
  [ "$step" = "running bake" ] && break
  case "$step" in finished*) echo "error: deploy $running ended: $step" >&2; exit 1 ;; esac
  sleep 0.1
done
[ "$step" = "running bake" ] || { echo "error: deploy $running is not baking: $step" >&2; exit 1; }
events_before=$(cli "$viewer" audit export --format jsonl --deploy "$running" | wc -l)
echo "deploy $running (idp to staging) is baking: the engine checks its fleet every second"

# The page measured: the default page of 50, full (with the default number of deploys).
code=$(curl -sS -o "$tmp/page.json" -w '%{http_code}' -H "Authorization: Bearer $viewer" "$url/api/v1/deploys")
items=$(jq '.items | length' "$tmp/page.json")
want=$((DEPLOYS + 1 < 50 ? DEPLOYS + 1 : 50))
[ "$code" = 200 ] && [ "$items" = "$want" ] || { echo "error: GET /api/v1/deploys: HTTP $code, $items items" >&2; exit 1; }
echo "GET /api/v1/deploys: $items deploys, $(wc -c <"$tmp/page.json") bytes"

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
results=()
n=0
for path in $PATHS; do
  n=$((n + 1))
  auth=()
  case "$path" in /api/*) auth=(-H "Authorization: Bearer $viewer") ;; esac
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg): $RATE requests/s for $DURATION, GET $path"
  before=$(cpu_ticks)
  "$OHA" -q "$RATE" -z "$DURATION" -c "$CONNECTIONS" --latency-correction -w -t 10s \
    --no-tui --output-format json "${auth[@]}" "$url$path" >"$tmp/oha-$n.json"
  after=$(cpu_ticks)
  results+=("$(jq -r --arg path "$path" --argjson cpu "$(((after - before) * 1000 / ticks))" '
    def ms: . * 1000 * 100 | round / 100 | tostring + " ms";
    ([.errorDistribution[]] | add // 0) as $failed
    | ([.statusCodeDistribution | to_entries[] | select(.key != "200") | .value] | add // 0) as $non200
    | ([.statusCodeDistribution[]] | add // 0) as $answered
    | "| GET \($path) | \(.summary.requestsPerSec | round)/s (\($answered + $failed) requests)"
      + " | \(.latencyPercentiles.p50 | ms) | \(.latencyPercentiles.p90 | ms)"
      + " | \(.latencyPercentiles.p99 | ms) | \(.summary.slowest | ms)"
      + " | \($failed + $non200) | \($cpu / 10 / .summary.total | round)% of one core |"
  ' "$tmp/oha-$n.json")")
done

events_after=$(cli "$viewer" audit export --format jsonl --deploy "$running" | wc -l)
state=$(cli "$viewer" --output json status "$running" | jq -r '.phase.state + " " + (.phase.step // "-")')
rss=$(awk '/VmHWM|VmRSS/ { printf "%s %.1f MiB  ", $1, $2 / 1024 }' "/proc/$server_pid/status")

echo
echo "| Request | Rate achieved | p50 | p90 | p99 | max | errors | server CPU |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
echo
echo "server memory after the runs: $rss"
echo "deploy $running during the runs: $((events_after - events_before)) events appended; now $state"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_server
warnings=$(grep -ciE 'warn|error' "$tmp/server.log" || true)
echo "server log: $(wc -l <"$tmp/server.log") lines, $warnings with WARN or ERROR"
grep -iE 'warn|error' "$tmp/server.log" | head -20 || true
