#!/usr/bin/env bash
# `slipway compat` on a generated Rails-like repository (issue 10's goal: a range of 500 commits
# over 3,000 Ruby files checked in under 5 s). Generates the repository with `git fast-import`
# (bench/compat/generate.py: FILES Ruby files tagged `bench-base`, then COMMITS commits on
# `main` with migrations, job, route, session and flag changes), then runs the release binary's
# `slipway compat bench-base main --repo REPO --output json` RUNS times and prints the wall clock
# of each run and their median, with the number of findings.
#
# Environment:
#   FILES=3000 COMMITS=500 RUNS=5
#   BIN               the slipway binary (default: $CARGO_TARGET_DIR/release/slipway, built
#                     with `cargo build --release -p slipway` when missing)
#   KEEP=1            keep the temporary directory
#   CARGO_TARGET_DIR  default $HOME/.cache/slipway-target
# Needs git and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway-target}"
FILES=${FILES:-3000}
COMMITS=${COMMITS:-500}
RUNS=${RUNS:-5}
BIN=${BIN:-$CARGO_TARGET_DIR/release/slipway}
if [ ! -x "$BIN" ]; then
  cargo build --release -p slipway
fi

tmp=$(mktemp -d)
cleanup() { if [ -z "${KEEP:-}" ]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi; }
trap cleanup EXIT

machine_line
repo=$tmp/repo
git init -q -b main "$repo"
python3 bench/compat/generate.py "$FILES" "$COMMITS" | git -C "$repo" fast-import --quiet
echo "repository: $(git -C "$repo" ls-tree -r --name-only bench-base | grep -c '\.rb$') Ruby files at bench-base," \
  "$(git -C "$repo" rev-list --count bench-base..main) commits in bench-base..main," \
  "$(git -C "$repo" diff --name-only bench-base main | wc -l) files changed"

times=()
for run in $(seq "$RUNS"); do
  start=$(date +%s%N)
  status=0
  "$BIN" --output json compat bench-base main --repo "$repo" >"$tmp/report.json" || status=$?
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "run $run: ${ms} ms (exit status $status)"
done
python3 - "$tmp/report.json" <<'PY'
import collections, json, sys
report = json.load(open(sys.argv[1]))["report"]
rules = collections.Counter(f["rule"] for f in report["findings"])
print(f"findings: {len(report['findings'])} ({', '.join(f'{r} {n}' for r, n in sorted(rules.items()))})")
PY
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median: ${median} ms over $RUNS runs"
