#!/usr/bin/env bash
# Runs the foundation benchmarks: `decide` steps per second and in-memory chain verification
# (slipway-core), event append rates and `Store::verify_chain` over a million stored events on
# SQLite and PostgreSQL (slipway-store). Figures are medians; copy them to docs/benchmarks.md with
# the machine they ran on (printed first).
# Arguments are passed to the store benchmark: `append` or `verify` runs only that one.
# Environment: SLIPWAY_BENCH_EVENTS (default 1000000) events for the verification benchmarks.
# Benchmarks want a quiet machine: other builds on the same cores change the figures a lot.
# PostgreSQL figures need the binaries scripts/test-deps installs; without them they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway-target}"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
cargo bench --locked -p slipway-core --bench core
cargo bench --locked -p slipway-store --bench store -- "$@"
