#!/usr/bin/env bash
# Failed requests during a deploy under load (goal: 0). Builds `slipway` in release mode, serves
# bench/deploy/slipway.toml from a temporary directory with `slipway serve --stop-instances`
# (SQLite; the demo service on the `local` target behind slipway's proxy, 3 instances per
# version, bake 10 s, unprotected), deploys v1, then:
#   1. a quiet baseline: wrk through the proxy for the duration, nothing deploying;
#   2. the same wrk run while v2 is deployed (surge → 50/50 → bake → scale-in) and then rolled
#      back to v1 (`slipway rollback`), each followed to its end with the CLI.
# wrk runs at full speed (closed loop, keep-alive) with bench/deploy/count.lua, which counts
# every answer by second and by the version that gave it and keeps the first failures with
# their time. The script prints the machine first, then per run: requests, requests/s, non-2xx,
# socket errors (connect/read/write/timeout), p50/p90/p99/p99.9/max; for the deploy run also the
# timeline (when each deploy step started, relative to the start of the load) and the answers
# per second by version. The proxy's metrics (`slipway_proxy_*` on /metrics) are sampled every
# second into the temporary directory. The figures go to docs/benchmarks.md.
#
# Environment:
#   SLIPWAY_BENCH_DURATION     length of each wrk run, as wrk's -d takes it (default 60s)
#   SLIPWAY_BENCH_CONNECTIONS  wrk connections (default 32)
#   SLIPWAY_BENCH_THREADS      wrk threads (default 2)
#   SLIPWAY_BENCH_INSTANCES    instances per version (default 3)
#   SLIPWAY_BENCH_LATENCY_MS   added to every answer of the demo service (its `latency_ms`;
#                              default 0), so that requests are in flight when a fleet drains
#   SLIPWAY_BENCH_LEAD         seconds of load before the deploy starts, and between the deploy's
#                              end and the rollback (default 5)
#   SLIPWAY_BENCH_BASELINE=0   skip the quiet baseline
#   SLIPWAY_BENCH_FROM_HEAD=1  build a clean export of HEAD (git archive) instead of the working
#                              tree: other work in a shared tree cannot change what is measured
#   SLIPWAY_BENCH_KEEP=1       keep the temporary directory (config, database, logs, metrics)
# wrk is installed with apt-get when missing. Load goes to 127.0.0.1 only. Every process the
# script starts is stopped by its pid on any exit, and the script checks at the end that no
# process runs from its temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway-target}"

DURATION=${SLIPWAY_BENCH_DURATION:-60s}
CONNECTIONS=${SLIPWAY_BENCH_CONNECTIONS:-32}
THREADS=${SLIPWAY_BENCH_THREADS:-2}
INSTANCES=${SLIPWAY_BENCH_INSTANCES:-3}
LEAD=${SLIPWAY_BENCH_LEAD:-5}
LATENCY_MS=${SLIPWAY_BENCH_LATENCY_MS:-0}
SERVICE=demo
ENV_NAME=bench

for tool in curl jq tar; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
if ! command -v wrk >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y wrk
fi

machine_line
echo "versions: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(rustc --version)"
head=
if git rev-parse --git-dir >/dev/null 2>&1; then
  head=$(git rev-parse HEAD)
  echo "commit: ${head:0:7}" \
    "($(git status --porcelain --untracked-files=no | wc -l) files with uncommitted changes;" \
    "building from $([ "${SLIPWAY_BENCH_FROM_HEAD:-}" = 1 ] && echo "a clean export of HEAD" || echo "the working tree"))"
fi
echo "settings: $INSTANCES instances per version, demo service latency_ms $LATENCY_MS," \
  "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, deploy after $LEAD s of load"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/slipway-deploy-bench.XXXXXX")
server_pid=
sampler_pid=
wrk_pid=

stop_sampler() {
  [ -n "$sampler_pid" ] || return 0
  touch "$tmp/stop-sampler"
  for _ in $(seq 50); do kill -0 "$sampler_pid" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$sampler_pid"
  sampler_pid=
}
cleanup() {
  stop_pid "$wrk_pid"
  wrk_pid=
  stop_sampler
  stop_server
  stop_leftovers
  if [ "${SLIPWAY_BENCH_KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SLIPWAY_BENCH_FROM_HEAD:-}" = 1 ]; then
  # The export is built in a profile of its own (the release profile under another name, in
  # $CARGO_TARGET_DIR/deploy-bench): cargo keys the artifacts of workspace crates by their path
  # inside the workspace and trusts file times, so building another tree into `release` could
  # hand a build of the working tree stale artifacts, and the other way round. tar -m gives the
  # exported files the current time, so they are always compiled afresh.
  mkdir "$tmp/src"
  git archive "$head" | tar -x -m -C "$tmp/src"
  (cd "$tmp/src" && cargo build --locked -p slipway \
    --config 'profile.deploy-bench.inherits="release"' --profile deploy-bench)
  built=$CARGO_TARGET_DIR/deploy-bench/slipway
else
  cargo build --release --locked -p slipway
  built=$CARGO_TARGET_DIR/release/slipway
fi
# A copy of the binary serves, runs the CLI and is the demo service, so a build in the same
# target directory during the run changes nothing.
cp "$built" "$tmp/slipway"
BIN=$tmp/slipway
sed "s/count = 3, traffic = true/count = $INSTANCES, traffic = true/" bench/deploy/slipway.toml \
  >"$tmp/slipway.toml"
grep -q "count = $INSTANCES, traffic = true" "$tmp/slipway.toml"
cp bench/deploy/count.lua "$tmp/"

# The artifacts: bin/start runs the copied binary as the demo service; demo.toml names the version.
for version in v1 v2; do
  mkdir -p "$tmp/build/$version/bin"
  printf '#!/bin/sh\nexec %s demo-service\n' "'$BIN'" >"$tmp/build/$version/bin/start"
  chmod 755 "$tmp/build/$version/bin/start"
  printf 'version = "%s"\nlatency_ms = %s\n' "$version" "$LATENCY_MS" >"$tmp/build/$version/demo.toml"
  tar -czf "$tmp/build/demo-$version.tar.gz" -C "$tmp/build/$version" bin demo.toml
done

start_server "$tmp" "$SERVICE" "$ENV_NAME"
cli() { "$BIN" "$@"; }

for version in v1 v2; do
  cli artifact push "$tmp/build/demo-$version.tar.gz" --service "$SERVICE" --version "$version" >/dev/null
  cli release create "$SERVICE" --version "$version" >/dev/null
done

# Deploys RELEASE and follows it to its end; fails unless it succeeded. The output of --follow
# goes to $tmp/follow-NAME.out.
deploy_follow() {
  local release=$1 name=$2 code=0
  cli deploy "$SERVICE" --env "$ENV_NAME" --release "$release" --reason "bench: $name" \
    --follow --timeout 120s >"$tmp/follow-$name.out" 2>&1 || code=$?
  if [ "$code" != 0 ]; then
    echo "error: deploy of $release ($name) ended with exit code $code:" >&2
    cat "$tmp/follow-$name.out" >&2
    return 1
  fi
}
start=$(date +%s)
deploy_follow "RC 1" v1
echo "v1 deployed in $(($(date +%s) - start)) s: $(cli status "$SERVICE" 2>&1 | tr -s ' \n' ' ')"
code=$(curl -sS -o "$tmp/hello.json" -w '%{http_code}' "$proxy/api/hello")
[ "$code" = 200 ] && grep -q '"version":"v1"' "$tmp/hello.json" ||
  { echo "error: the proxy answers $code: $(cat "$tmp/hello.json")" >&2; exit 1; }

# The proxy's metrics, every second, each line prefixed with the time it was read. It ends
# (with its curl and sleep) once $tmp/stop-sampler exists: see stop_sampler.
(
  while [ ! -e "$tmp/stop-sampler" ]; do
    t=$(date +%s.%N)
    curl -sS --max-time 2 "$url/metrics" 2>/dev/null | grep '^slipway_proxy' | sed "s/^/$t /" || true
    sleep 1
  done
) >"$tmp/metrics.log" &
sampler_pid=$!

# Prints a run's results (from wrk's output file) as "key value" lines of RESULT.
result() { sed -n "s/^RESULT $2 //p" "$1"; }

# Runs wrk in the background into $tmp/wrk-NAME.out; sets wrk_pid and wrk_start (epoch, ms).
start_wrk() {
  wrk_start=$(date +%s%3N)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$tmp/count.lua" "$proxy/api/hello" \
    >"$tmp/wrk-$1.out" 2>&1 &
  wrk_pid=$!
}
finish_wrk() {
  local status=0
  wait "$wrk_pid" || status=$?
  wrk_pid=
  [ "$status" = 0 ] || { echo "error: wrk failed:" >&2; cat "$tmp/wrk-$1.out" >&2; exit 1; }
}
since() { awk -v now="$(date +%s%3N)" -v t0="$wrk_start" 'BEGIN { printf "%.1f", (now - t0) / 1000 }'; }

wrk -t"$THREADS" -c"$CONNECTIONS" -d3s "$proxy/api/hello" >/dev/null # warm-up: pools, caches
runs=()
if [ "${SLIPWAY_BENCH_BASELINE:-1}" != 0 ]; then
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg): baseline, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, nothing deploying"
  start_wrk baseline
  finish_wrk baseline
  runs+=(baseline)
fi

echo "load average $(cut -d' ' -f1-3 /proc/loadavg): wrk -t$THREADS -c$CONNECTIONS -d$DURATION while v2 is deployed and rolled back"
start_wrk deploy
timeline=()
sleep "$LEAD"
timeline+=("$(since) s: deploy of v2 (RC 2) starts")
if deploy_follow "RC 2" v2; then
  timeline+=("$(since) s: deploy of v2 succeeded (--follow returned)")
else
  timeline+=("$(since) s: deploy of v2 did NOT succeed (see above)")
fi
sleep "$LEAD"
timeline+=("$(since) s: slipway rollback starts")
code=0
cli rollback "$SERVICE" --env "$ENV_NAME" --reason "bench: back to v1" --follow --timeout 120s \
  >"$tmp/follow-rollback.out" 2>&1 || code=$?
timeline+=("$(since) s: rollback ended, exit code $code (0 = rolled back to v1)")
[ "$code" = 0 ] || { echo "error: the rollback ended with exit code $code:" >&2; cat "$tmp/follow-rollback.out" >&2; }
kill -0 "$wrk_pid" 2>/dev/null ||
  echo "warning: the load ended before the rollback did; raise SLIPWAY_BENCH_DURATION" >&2
finish_wrk deploy
timeline+=("$(since) s: load ends")
runs+=(deploy)
stop_sampler

echo
echo "| run | requests | requests/s | non-2xx | socket errors (connect/read/write/timeout) | p50 | p90 | p99 | p99.9 | max |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for run in "${runs[@]}"; do
  f=$tmp/wrk-$run.out
  printf '| %s | %s | %s | %s | %s/%s/%s/%s | %s ms | %s ms | %s ms | %s ms | %s ms |\n' "$run" \
    "$(result "$f" requests)" "$(result "$f" rps)" "$(result "$f" non2xx)" \
    "$(result "$f" connect)" "$(result "$f" read)" "$(result "$f" write)" "$(result "$f" timeout)" \
    "$(result "$f" p50_ms)" "$(result "$f" p90_ms)" "$(result "$f" p99_ms)" \
    "$(result "$f" p99.9_ms)" "$(result "$f" max_ms)"
done

# The deploy run in detail: the steps of both deploys from the event log, relative to the start
# of the load.
echo
echo "timeline of the deploy run (seconds since the load started):"
for line in "${timeline[@]}"; do echo "  $line"; done
deploy_ids=$(cli --output json deploys --service "$SERVICE" --limit 2 | jq -r '.items[].id' | sort -n)
for id in $deploy_ids; do
  cli audit export --format jsonl --deploy "$id" >"$tmp/events-$id.jsonl"
  jq -r --argjson t0 "$wrk_start" --arg id "$id" '
    (.payload | fromjson) as $p
    | select(.kind == "step_started" or .kind == "deploy_finished"
        or ((.kind == "effect_requested" or .kind == "effect_succeeded")
            and ($p.key | test("/(launch|traffic|stop-old)$"))))
    | "  \((.at - $t0) / 1000 * 10 | round / 10) s: deploy \($id) "
      + (if .kind == "step_started" then "step \($p.name) starts"
         elif .kind == "deploy_finished" then "finished: \($p.result)"
         elif .kind == "effect_requested" then "\($p.action) requested"
         else "\($p.key | split("/") | last) done: \($p.detail | split("\n") | map(select(test("^ *$") | not))
                | if $p.key | endswith("stop-old") then join("\n        ") else first end)" end)
  ' "$tmp/events-$id.jsonl"
done

echo
echo "answers per second of the deploy run, by version (failures as fail-STATUS):"
awk -v t0="$wrk_start" '
  /^SECOND / { s = $2 - int(t0 / 1000); n[s, $3] += $4; labels[$3] = 1; if (s > max) max = s }
  END {
    line = "  second"; for (l in labels) { order[++k] = l }
    for (i = 2; i <= k; i++) for (j = i; j > 1 && order[j - 1] > order[j]; j--) { t = order[j]; order[j] = order[j - 1]; order[j - 1] = t }
    for (i = 1; i <= k; i++) line = line sprintf(" %10s", order[i]); print line
    for (s = 0; s <= max; s++) {
      line = sprintf("  %6d", s)
      for (i = 1; i <= k; i++) line = line sprintf(" %10d", n[s, order[i]])
      print line
    }
  }' "$tmp/wrk-deploy.out"
if grep -q '^FAIL ' "$tmp/wrk-deploy.out"; then
  echo
  echo "first failed responses (seconds since the load started, status, body):"
  awk -v t0="$wrk_start" '/^FAIL / { $1 = ""; printf "  %.3f s:", ($2 - t0) / 1000; $2 = ""; print }' \
    "$tmp/wrk-deploy.out" | sort -n | head -40
fi

echo
echo "proxy metrics at the last sample (slipway_proxy_responses_total, unrouted):"
last=$(tail -1 "$tmp/metrics.log" | cut -d' ' -f1)
grep -F "$last " "$tmp/metrics.log" | grep -E 'responses_total|unrouted' | cut -d' ' -f2- | grep -v ' 0$' | sed 's/^/  /' || true
echo "highest 5xx/unrouted counters seen during the runs (versions leave /metrics when they leave the route):"
awk '/class="5xx"|unrouted_total/ {
    key = substr($0, index($0, " ") + 1); sub(/ [^ ]*$/, "", key)
    if (!(key in max) || $NF + 0 > max[key]) max[key] = $NF + 0
  }
  END { for (k in max) printf "  %s %d\n", k, max[k] }' "$tmp/metrics.log" | sort

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_server
warnings=$(grep -ciE 'warn|error' "$tmp/server.log" || true)
echo "server log: $(wc -l <"$tmp/server.log") lines, $warnings with WARN or ERROR"
grep -iE 'warn|error' "$tmp/server.log" | head -20 || true
