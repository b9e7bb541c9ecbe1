#!/usr/bin/env bash
# Automatic rollback and false rollbacks under load (issue 5's goals). Builds `slipway` from a
# clean export of HEAD, serves a python app (crates/slipway-targets/tests/it/local_app/app.py,
# 2 instances per version) on the `local` target behind slipway's proxy, with checks read from
# that proxy every second (`analysis_interval = "1s"`), while a steady client load runs through
# the proxy. Two parts, each with its own `slipway serve` and its own temporary data directory:
#
#   rollback  RUNS times: deploy a good version (its 60 s bake, then a confirmed scale-in), then a
#             bad one built with `ERROR_RATE = 0.2` (a fifth of its answers are 500s). The bake's
#             checks (error_rate <= 1%, latency_p99 <= 500ms; window 30s, step 1s, min_requests
#             20) must fail it; it must never reach scale-in. Per run: T0, the first answer the
#             clients got from the bad version; T1, the last; T1 - T0 (goal: at most 2 s); the
#             bad version's answers (and how many were 500s); and from the event log, relative
#             to T0, when the surge's traffic change was recorded, when the failing check was
#             recorded (with its numbers) and when the unwind's `traffic-back` effect was
#             requested and done.
#   steady    one good version, then GOOD_RUNS deploys of identical good versions (a new release
#             each, bake 15 s, no confirmation), with the same thresholds plus a comparison
#             against the old fleet (error_rate +1%, latency_p99 +20%; min_samples 10). Counts
#             deploys that did not succeed (goal: 0) with their failing check, every check run
#             and how many were inconclusive, and why.
#
# Usage: bench/verify.sh [rollback|steady|all]     (default all)
# Environment:
#   RUNS=10           bad deploys in the rollback part
#   GOOD_RUNS=50      good deploys in the steady part (after one that has no old fleet)
#   BAKE=60s          the rollback part's bake (only a failed check may end a bad deploy's)
#   GOOD_BAKE=15s     the steady part's bake
#   CLIENTS=16        client threads; each keeps one keep-alive HTTP/1.1 connection to the proxy
#   PAUSE_MS=10       pause of each client thread between its requests (a closed loop otherwise)
#   SETTLE=3          seconds between the end of a deploy and the start of the next
#   FROM_HEAD=1       build a clean export of HEAD (git archive); FROM_HEAD=0 builds the working
#                     tree (both in the `verify-bench` profile, the release profile renamed)
#   OVERLAY="PATH…"   files copied from the working tree over the export before it is built (for
#                     a HEAD that does not build without a file someone has not committed yet);
#                     the header names them and their hashes
#   KEEP=1            keep the temporary directory (configs, databases, event logs, client logs)
#   CARGO_TARGET_DIR  default $HOME/.cache/slipway-bench-verify
# Needs curl, jq, git, tar, python3 (stdlib only). Traffic goes to 127.0.0.1 only. Every process
# the script starts is stopped by its pid on any exit, and the script checks at the end that no
# process runs from its temporary directory. Every loop is bounded in count and in time.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway-bench-verify}"

PARTS=${1:-all}
case "$PARTS" in rollback | steady | all) ;; *) echo "usage: bench/verify.sh [rollback|steady|all]" >&2; exit 2 ;; esac
RUNS=${RUNS:-10}
GOOD_RUNS=${GOOD_RUNS:-50}
BAKE=${BAKE:-60s}
GOOD_BAKE=${GOOD_BAKE:-15s}
CLIENTS=${CLIENTS:-16}
PAUSE_MS=${PAUSE_MS:-10}
SETTLE=${SETTLE:-3}
FROM_HEAD=${FROM_HEAD:-1}
SERVICE=idp
seconds_of() { # "60s" -> 60, "2m" -> 120 (the forms used here)
  case "$1" in *m) echo $((${1%m} * 60)) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac
}

for tool in curl jq git tar python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
# The real interpreter, not a version manager's shim: an instance is `exec python3 app`, and a
# shim would add its own start-up to every launch.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

machine_line
echo "versions: $(rustc --version), $("$PYTHON" --version 2>&1) ($PYTHON)"
head=$(git rev-parse HEAD)
echo "commit: ${head:0:7}" \
  "($(git status --porcelain --untracked-files=no | wc -l) files with uncommitted changes;" \
  "building from $([ "$FROM_HEAD" = 1 ] && echo "a clean export of HEAD" || echo "the working tree"))"
echo "settings: parts $PARTS; RUNS=$RUNS BAKE=$BAKE; GOOD_RUNS=$GOOD_RUNS GOOD_BAKE=$GOOD_BAKE;" \
  "load: $CLIENTS client threads, keep-alive, $PAUSE_MS ms between requests of a thread"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/slipway-verify-bench.XXXXXX")
server_pid=
load_pid=

# Stops the load client: a stop file it polls (it then writes out its records), up to 15 s,
# then SIGTERM by pid.
stop_load() {
  [ -n "$load_pid" ] || return 0
  local pid=$load_pid
  load_pid=
  touch "$tmp/stop-load"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$pid"
  rm -f "$tmp/stop-load"
}
cleanup() {
  stop_load
  stop_server
  stop_leftovers
  if [ "${KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The export is built in a profile of its own (the release profile under another name): cargo
# keys workspace crates by their path inside the workspace and trusts file times, so another
# tree built into `release` could hand a later build stale artifacts. tar -m gives the exported
# files the current time, so they are always compiled afresh.
build_flags=(--locked -p slipway --config 'profile.verify-bench.inherits="release"' --profile verify-bench)
if [ "$FROM_HEAD" = 1 ]; then
  src=$tmp/src
  mkdir "$src"
  git archive "$head" | tar -x -m -C "$src"
  for path in ${OVERLAY:-}; do
    echo "overlay: $path from the working tree ($(git hash-object "$path" | cut -c1-12), HEAD has $(git rev-parse "$head:$path" 2>/dev/null | cut -c1-12))"
    cp "$path" "$src/$path"
  done
  (cd "$src" && cargo build "${build_flags[@]}")
else
  src=$PWD
  cargo build "${build_flags[@]}"
fi
# A copy of the binary serves and runs the CLI, so a build in the same target directory during
# the run changes nothing.
cp "$CARGO_TARGET_DIR/verify-bench/slipway" "$tmp/slipway"
BIN=$tmp/slipway
APP=$src/crates/slipway-targets/tests/it/local_app/app.py
[ -f "$APP" ] || { echo "error: $APP is missing" >&2; exit 1; }

# The load client: CLIENTS threads, each with one keep-alive connection to the proxy (a new one
# after an error or a `Connection: close`), GET /hello, then PAUSE_MS; every request is written
# as "start end status version" (times in seconds since the epoch, the wall clock the server
# stamps its events with; version is the first word of the body for the app's 200 and 500
# answers, "-" for another status, the exception's name for a failure without an answer, status 0).
# It ends when the stop file appears, on SIGTERM, or after MAX_SECONDS.
cat >"$tmp/load.py" <<'PY'
import http.client, os, signal, sys, threading, time

host, port = sys.argv[1].rsplit(":", 1)
clients, pause, out_dir, stop_file, max_seconds = (
    int(sys.argv[2]), int(sys.argv[3]) / 1000, sys.argv[4], sys.argv[5], float(sys.argv[6]))
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())


def client(n):
    conn = None
    with open(os.path.join(out_dir, "client-%d.log" % n), "w", buffering=1 << 16) as out:
        while not stop.is_set():
            start = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=10)
                conn.request("GET", "/hello")
                response = conn.getresponse()
                body = response.read()
                status = response.status
                words = body.split(None, 1)
                version = words[0].decode(errors="replace") if status in (200, 500) and words else "-"
                if response.will_close:
                    conn.close()
                    conn = None
            except Exception as error:  # no answer: recorded, then a new connection
                status, version = 0, type(error).__name__
                if conn is not None:
                    conn.close()
                    conn = None
            out.write("%.6f %.6f %d %s\n" % (start, time.time(), status, version))
            stop.wait(pause)


threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for thread in threads:
    thread.start()
deadline = time.monotonic() + max_seconds
while not stop.is_set() and time.monotonic() < deadline:
    if os.path.exists(stop_file):
        break
    stop.wait(0.2)
stop.set()
for thread in threads:
    thread.join()
PY

# The analysis of both parts, from the client records, the runs the script wrote down, each
# deploy's `status --output json` and its events (`audit export --format jsonl`).
cat >"$tmp/analyze.py" <<'PY'
import glob, json, os, statistics, sys

part, work = sys.argv[1], sys.argv[2]


def records():
    rows = []
    for path in glob.glob(os.path.join(work, "load", "client-*.log")):
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) == 4:
                    rows.append((float(fields[0]), float(fields[1]), int(fields[2]), fields[3]))
    rows.sort(key=lambda r: r[1])
    return rows


def events(deploy):
    out = []
    with open(os.path.join(work, "events-%s.jsonl" % deploy)) as f:
        for line in f:
            if line.strip():
                e = json.loads(line)
                p = e["payload"]
                e["p"] = json.loads(p) if isinstance(p, str) else p
                out.append(e)
    return out


def status(deploy):
    with open(os.path.join(work, "status-%s.json" % deploy)) as f:
        return json.load(f)


def runs():
    with open(os.path.join(work, "runs.tsv")) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def spread(values, fmt="%.3f"):
    if not values:
        return "-"
    return "min " + fmt % min(values) + ", median " + fmt % statistics.median(values) + ", max " + fmt % max(values)


def measurement_text(m):
    text = "%s %s" % (m["name"], m["outcome"])
    if m.get("value") is not None:
        unit = m.get("unit")
        value = m["value"]
        text += " " + ("%.1f%%" % (value * 100) if unit == "ratio" else "%.1f ms" % value if unit == "millis" else "%g" % value)
    if m.get("baseline") is not None:
        text += " vs baseline %g" % m["baseline"]
    for key, label in (("limit", "limit"), ("requests", "requests"), ("samples", "samples"), ("p_value", "p"), ("shift", "shift")):
        if m.get(key) is not None:
            text += ", %s %s" % (label, m[key])
    if m.get("note"):
        text += " (%s)" % m["note"]
    return text


def failing_check(evs):
    """The first failed check: (time in s, its detail, its failing measurements)."""
    for e in evs:
        if e["kind"] == "checked" and e["p"].get("verdict") == "fail":
            key = e["p"]["key"]
            bad = [measurement_text(m["p"]["measurement"]) for m in evs
                   if m["kind"] == "measured" and m["p"]["key"] == key
                   and m["p"]["measurement"]["outcome"] not in ("pass", "no_data")]
            return e["at"] / 1000, e["p"].get("detail", ""), bad
    return None, "", []


def first(evs, kind, predicate=lambda p: True):
    for e in evs:
        if e["kind"] == kind and predicate(e["p"]):
            return e["at"] / 1000
    return None


def rel(t, t0):
    return "-" if t is None or t0 is None else "%+.3f" % (t - t0)


def load_summary(rows, label):
    if not rows:
        print("load (%s): no requests recorded" % label)
        return
    span = rows[-1][1] - rows[0][0]
    latencies = sorted((r[1] - r[0]) * 1000 for r in rows)
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    not_ok = [r for r in rows if r[2] != 200]
    print("load (%s): %d requests in %.0f s (%.0f/s), latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; "
          "%d answers other than 200" % (label, len(rows), span, len(rows) / span, p(0.5), p(0.99), latencies[-1], len(not_ok)))
    kinds = {}
    for r in not_ok:
        kinds[(r[2], r[3])] = kinds.get((r[2], r[3]), 0) + 1
    for (code, version), n in sorted(kinds.items()):
        print("  status %d from %s: %d" % (code, version, n))


def rollback():
    rows = records()
    load_summary(rows, "rollback part")
    print()
    print("| run | bad answers (500s) | T1 - T0 | surge traffic recorded | failing check recorded | traffic-back requested | traffic-back done | finished | others after T1 | failures without a version |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    gaps, backs, bads, check_to_back, checks = [], [], [], [], []
    details = []
    for run, good, bad, good_id, bad_id, started, ended in runs():
        started, ended = float(started), float(ended)
        mine = [r for r in rows if r[3] == bad]
        t0 = min(r[1] for r in mine) if mine else None
        t1 = max(r[1] for r in mine) if mine else None
        errors = sum(1 for r in mine if r[2] == 500)
        window = [r for r in rows if started <= r[1] <= ended]
        after = [r for r in window if t1 is not None and r[1] > t1 and r[3] != good]
        lost = [r for r in window if r[3] not in (good, bad)]
        evs = events(bad_id)
        surge = first(evs, "effect_succeeded", lambda p: p["key"].endswith("/traffic") and "surge" in p["key"])
        if surge is None:
            surge = first(evs, "effect_succeeded", lambda p: "traffic" in p["key"] and "traffic-back" not in p["key"])
        failed_at, detail, bad_measurements = failing_check(evs)
        back_req = first(evs, "effect_requested", lambda p: "traffic-back" in p["key"])
        back_done = first(evs, "effect_succeeded", lambda p: "traffic-back" in p["key"])
        finished = first(evs, "deploy_finished")
        result = status(bad_id)["phase"].get("result")
        n_checks = sum(1 for e in evs if e["kind"] == "checked")
        checks.append(n_checks)
        if t0 is not None:
            gaps.append(t1 - t0)
            bads.append(len(mine))
        if surge is not None and back_done is not None:
            backs.append(back_done - surge)
        if failed_at is not None and back_done is not None:
            check_to_back.append(back_done - failed_at)
        print("| %s | %d (%d) | **%s s** | %s | %s | %s | %s | %s (%s) | %d | %d |" % (
            run, len(mine), errors, "-" if t0 is None else "%.3f" % (t1 - t0), rel(surge, t0), rel(failed_at, t0),
            rel(back_req, t0), rel(back_done, t0), rel(finished, t0), result, len(after), len(lost)))
        verdicts = [e["p"]["verdict"] for e in evs if e["kind"] == "checked"]
        reason = status(bad_id).get("end_reason") or ""
        details.append("run %s (deploy %s, %s after %s): checks %s; failing check: %s%s%s" % (
            run, bad_id, bad, good, " ".join(verdicts), detail,
            "".join("\n      " + m for m in bad_measurements),
            "" if reason.endswith(detail) else "\n      end reason: " + reason))
    print("(times in seconds relative to T0, the first answer from the bad version; event times are when slipway recorded them)")
    print()
    for line in details:
        print("  " + line)
    print()
    print("T1 - T0 (bad version taking traffic -> last answer from it), %d runs: %s s" % (len(gaps), spread(gaps)))
    print("event log, surge traffic recorded -> traffic-back done: %s s" % spread(backs))
    print("event log, failing check recorded -> traffic-back done: %s s" % spread(check_to_back))
    print("answers from the bad version per run: %s" % spread(bads, "%d"))
    print("checks per bad deploy: %s" % spread(checks, "%d"))
    ok = all(status(r[4])["phase"].get("result") == "rolled_back" for r in runs())
    print("every bad deploy rolled back: %s; goal (T1 - T0 <= 2 s in every run): %s" % (
        "yes" if ok else "NO", "met" if gaps and max(gaps) <= 2.0 and len(gaps) == len(runs()) else "NOT met"))


def steady():
    rows = records()
    load_summary(rows, "steady part")
    print()
    total = inconclusive = failed_checks = 0
    marginal = []
    compared = {}
    not_succeeded = []
    durations = []
    reasons = {}
    for run, version, deploy, started, ended in runs():
        evs = events(deploy)
        view = status(deploy)
        result = view["phase"].get("result")
        checked = [e for e in evs if e["kind"] == "checked"]
        counted = int(run) > 0  # run 0 has no old fleet to compare with and is not counted
        created, finished = first(evs, "deploy_created"), first(evs, "deploy_finished")
        if counted:
            total += len(checked)
            inconclusive += sum(1 for e in checked if e["p"]["verdict"] == "inconclusive")
            # Inconclusive with every measurement's data but a score under pass_score (95).
            marginal.extend((run, deploy, e["p"]["key"], e["p"].get("detail", "")) for e in checked
                            if e["p"]["verdict"] == "inconclusive" and (e["p"].get("score") or 100) < 95)
            failed_checks += sum(1 for e in checked if e["p"]["verdict"] == "fail")
            if created and finished:
                durations.append(finished - created)
            for e in evs:
                m = e["p"].get("measurement") or {}
                if e["kind"] == "measured" and m.get("kind") == "comparison" and m.get("p_value") is not None:
                    relative = m["shift"] / m["baseline"] if m["name"] != "error_rate" and m.get("baseline") else m["shift"]
                    compared.setdefault(m["name"], []).append((relative, m["p_value"], run))
                if e["kind"] == "measured" and e["p"]["measurement"]["outcome"] == "no_data":
                    m = e["p"]["measurement"]
                    note = m.get("note", "")
                    for digit in "0123456789":
                        note = note.replace(digit, "#")
                    key = "%s: %s" % (m["name"], note)
                    reasons[key] = reasons.get(key, 0) + 1
            if result != "succeeded":
                at, detail, bad = failing_check(evs)
                not_succeeded.append((run, deploy, version, result, view.get("end_reason"), detail, bad))
        print("run %s: deploy %s (%s) %s in %.1f s, %d checks: %s" % (
            run, deploy, version, result, (finished or 0) - (created or 0), len(checked),
            " ".join(e["p"]["verdict"][0] for e in checked)))
    counted_runs = sum(1 for r in runs() if int(r[0]) > 0)
    print()
    print("deploys of a good version counted: %d; not succeeded: %d (goal: 0)" % (counted_runs, len(not_succeeded)))
    for run, deploy, version, result, reason, detail, bad in not_succeeded:
        print("  run %s, deploy %s (%s): %s: %s" % (run, deploy, version, result, reason))
        print("    failing check: %s%s" % (detail, "".join("\n      " + m for m in bad)))
    counted = [r for r in runs() if int(r[0]) > 0]
    if counted:
        since, until = float(counted[0][3]), float(counted[-1][4])
        window = [r for r in rows if since <= r[1] <= until]
        print("answers to the clients from the start of run 1 to the end of run %s: %d, of which other than 200: %d" % (
            counted[-1][0], len(window), sum(1 for r in window if r[2] != 200)))
    print("checks run: %d; inconclusive: %d (%.0f%%), of which %d for a marginal score, the rest for "
          "measurements without data; failed: %d" % (
              total, inconclusive, 100 * inconclusive / max(total, 1), len(marginal), failed_checks))
    for run, deploy, key, detail in marginal:
        print("  marginal: run %s, deploy %s, %s: %s" % (run, deploy, key, detail))
    print("deploy duration (created -> finished): %s s" % spread(durations, "%.1f"))
    for name, values in sorted(compared.items()):
        significant = [v for v in values if v[1] < 0.05]
        worst = max(values)
        unit = "points" if name == "error_rate" else "of the baseline"
        print("comparisons of %s with data: %d; significant (p < 0.05): %d; largest shift %+.1f%% %s (p %.3f, run %s)%s" % (
            name, len(values), len(significant), worst[0] * 100, unit, worst[1], worst[2],
            "; largest significant shift %+.1f%% %s" % (max(significant)[0] * 100, unit) if significant else ""))
    if reasons:
        print("measurements without data (digits as #), by name and note:")
        for key, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print("  %5d  %s" % (n, key))


{"rollback": rollback, "steady": steady}[part]()
PY

# Writes the config of one part: the app on the local target, 2 instances per version, checks
# every second from slipway's proxy. $1: directory, $2: environment name, $3: its policy lines.
write_config() {
  cat >"$1/slipway.toml" <<EOF
[server]
listen = "127.0.0.1:0"

[[service]]
name = "$SERVICE"
start = "exec $PYTHON app"
health = { path = "/up", interval = "250ms", timeout = "2s", healthy_threshold = 2, unhealthy_threshold = 2 }
pools = { web = { count = 2, traffic = true } }

[environment.$2]
target = "local"
listen = { $SERVICE = "127.0.0.1:0" }
launch_timeout = "60s"
post_verify = false
analysis_interval = "1s"
checks = [{ metric = "error_rate", max = "1%" }, { metric = "latency_p99", max = "500ms" }]
$3
EOF
}

cli() { "$BIN" "$@"; }

# Starts the load client through the proxy for at most $2 seconds, recording into $1/load.
start_load() {
  mkdir -p "$1/load"
  rm -f "$tmp/stop-load"
  "$PYTHON" "$tmp/load.py" "${proxy#http://}" "$CLIENTS" "$PAUSE_MS" "$1/load" "$tmp/stop-load" "$2" &
  load_pid=$!
}

# Pushes VERSION of the app with BEHAVIOUR (python) prepended into $dir, releases it and prints
# the release's label.
release_app() {
  local version=$1 behaviour=$2 file=$dir/build/$SERVICE-$1.py
  mkdir -p "$dir/build"
  { [ -z "$behaviour" ] || echo "$behaviour"; cat "$APP"; echo "# build $version"; } >"$file"
  cli artifact push "$file" --service "$SERVICE" --version "$version" >/dev/null
  cli --output json release create "$SERVICE" --version "$version" | jq -r .label
}

# Starts a deploy of release $1 to $env_name; prints its id.
start_deploy() {
  cli --output json deploy "$SERVICE" --env "$env_name" --release "$1" --reason "bench: $2" | jq -r .id
}

# Waits for deploy $1 to finish, at most $2 seconds; confirms its scale-in when asked if $3 = 1.
# Keeps its last status in $dir/status-ID.json and its events in $dir/events-ID.jsonl; prints
# its result.
wait_deploy() {
  local id=$1 limit=$2 confirm=${3:-0} deadline state
  deadline=$(($(date +%s) + limit))
  while :; do
    cli --output json status "$id" >"$dir/status-$id.json"
    state=$(jq -r .phase.state "$dir/status-$id.json")
    [ "$state" = finished ] && break
    if [ "$confirm" = 1 ] && [ "$(jq -r .phase.waiting_for "$dir/status-$id.json")" = scale_in_confirmation ]; then
      cli confirm "$id" >/dev/null
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "error: deploy $id did not finish within $limit s: $(jq -c .phase "$dir/status-$id.json")" >&2
      return 1
    fi
    sleep 0.5
  done
  cli audit export --format jsonl --deploy "$id" >"$dir/events-$id.jsonl"
  jq -r .phase.result "$dir/status-$id.json"
}

# Waits until the proxy answers with version $1.
wait_answer() {
  for _ in $(seq 100); do
    curl -sS --max-time 2 "$proxy/hello" 2>/dev/null | grep -q "^$1 " && return 0
    sleep 0.1
  done
  echo "error: the proxy does not answer with $1" >&2
  return 1
}

run_rollback_part() {
  dir=$tmp/rollback
  env_name=rollback
  mkdir -p "$dir"
  local bake_s
  bake_s=$(seconds_of "$BAKE")
  write_config "$dir" "$env_name" "bake = \"$BAKE\"
confirm_scale_in = true
analysis = { window = \"30s\", step = \"1s\", min_requests = 20 }"
  echo
  echo "== rollback: $RUNS bad deploys, each after a good one (bake $BAKE, confirmed scale-in) =="
  start_server "$dir" "$SERVICE" "$env_name"
  : >"$dir/runs.tsv"
  local label id result good bad good_id bad_id started ended
  # The load runs from before the first deploy (whose checks need requests too: no data is
  # never a pass); until a version serves, the proxy answers 503.
  start_load "$dir" $(((RUNS + 1) * (bake_s + 200) + 120))
  label=$(release_app base "")
  id=$(start_deploy "$label" base)
  result=$(wait_deploy "$id" $((bake_s + 120)) 1)
  [ "$result" = succeeded ] || { echo "error: the first deploy ended $result" >&2; exit 1; }
  wait_answer base
  sleep "$SETTLE"
  for run in $(seq "$RUNS"); do
    good=good-$run bad=bad-$run
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg): run $run: $good, then $bad"
    label=$(release_app "$good" "")
    good_id=$(start_deploy "$label" "$good")
    result=$(wait_deploy "$good_id" $((bake_s + 120)) 1)
    [ "$result" = succeeded ] || { echo "error: deploy $good_id of $good ended $result: $(jq -r .end_reason "$dir/status-$good_id.json")" >&2; exit 1; }
    sleep "$SETTLE"
    label=$(release_app "$bad" "ERROR_RATE = 0.2")
    started=$(date +%s.%N)
    bad_id=$(start_deploy "$label" "$bad")
    result=$(wait_deploy "$bad_id" $((bake_s + 120)) 0)
    sleep "$SETTLE"
    ended=$(date +%s.%N)
    echo "  deploy $bad_id of $bad: $result: $(jq -r .end_reason "$dir/status-$bad_id.json")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$good" "$bad" "$good_id" "$bad_id" "$started" "$ended" >>"$dir/runs.tsv"
  done
  stop_load
  echo
  "$PYTHON" "$tmp/analyze.py" rollback "$dir"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
  report_log "$dir"
}

run_steady_part() {
  dir=$tmp/steady
  env_name=steady
  mkdir -p "$dir"
  local bake_s
  bake_s=$(seconds_of "$GOOD_BAKE")
  write_config "$dir" "$env_name" "bake = \"$GOOD_BAKE\"
confirm_scale_in = false
analysis = { window = \"30s\", step = \"1s\", min_requests = 20, min_samples = 10, compare = [{ metric = \"error_rate\", allowed_increase = \"1%\" }, { metric = \"latency_p99\", allowed_increase = \"20%\" }] }"
  echo
  echo "== steady: $GOOD_RUNS deploys of good versions under load (bake $GOOD_BAKE, no confirmation) =="
  start_server "$dir" "$SERVICE" "$env_name"
  : >"$dir/runs.tsv"
  local label id result version started ended
  start_load "$dir" $(((GOOD_RUNS + 1) * (bake_s + 150) + 120))
  # Run 0 has no old fleet (nothing to compare with); it only puts the first version in place.
  for run in $(seq 0 "$GOOD_RUNS"); do
    version=steady-$run
    label=$(release_app "$version" "")
    started=$(date +%s.%N)
    id=$(start_deploy "$label" "$version")
    result=$(wait_deploy "$id" $((bake_s + 120)) 0)
    ended=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\t%s\n' "$run" "$version" "$id" "$started" "$ended" >>"$dir/runs.tsv"
    if [ "$run" = 0 ]; then
      [ "$result" = succeeded ] || { echo "error: the first deploy ended $result" >&2; exit 1; }
      wait_answer "$version"
    fi
    [ "$result" = succeeded ] || echo "  run $run: deploy $id of $version: $result: $(jq -r .end_reason "$dir/status-$id.json")"
    [ $((run % 10)) != 0 ] || echo "load average $(cut -d' ' -f1-3 /proc/loadavg): run $run of $GOOD_RUNS done"
    sleep "$SETTLE"
  done
  stop_load
  echo
  "$PYTHON" "$tmp/analyze.py" steady "$dir"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
  report_log "$dir"
}

report_log() {
  local warnings
  warnings=$(grep -ciE 'warn|error' "$1/server.log" || true)
  echo "server log: $(wc -l <"$1/server.log") lines, $warnings with WARN or ERROR"
  grep -iE 'warn|error' "$1/server.log" | head -20 || true
}

case "$PARTS" in
  rollback) run_rollback_part ;;
  steady) run_steady_part ;;
  all)
    run_rollback_part
    run_steady_part
    ;;
esac
