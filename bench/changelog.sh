#!/usr/bin/env bash
# slipway's changelog against git-cliff on the same range of a generated repository (issue 7's
# goal: faster than git-cliff). Generates a repository with `git fast-import`
# (bench/changelog/generate.py: a root commit tagged `bench-start`, then COMMITS commits with a
# realistic mix of messages), then on the range `bench-start..main`:
#
#   slipway   the `changelog` benchmark of slipway-release (`cargo bench`): `commits` (git log),
#             `build` and `to_markdown` end to end, in process, RUNS times; its median.
#   git-cliff `git-cliff --config cliff.toml --repository REPO --output /dev/null bench-start..main`,
#             RUNS times, wall clock of the whole process; its median. cliff.toml (written by
#             this script) parses Conventional Commits and groups them: features, fixes,
#             reverts, dependencies, the other types, skip markers dropped, `(#123)` turned
#             into a link, unconventional commits kept under "Other". Then the same with
#             cliff-minimal.toml (Conventional Commits parsed, one line per commit, nothing
#             else): the floor of git-cliff's work on the range.
#
# git-cliff is installed with `cargo install --locked` into $HOME/.cache/cargo-tools (built in
# $HOME/.cache/cliff-build) when $HOME/.cache/cargo-tools/bin/git-cliff is missing; it takes
# several minutes. GIT_CLIFF_VERSION pins a version (default: the newest that builds).
#
# Environment:
#   COMMITS=10000     commits in the range
#   RUNS=7            runs of each tool
#   KEEP=1            keep the temporary directory (repository, cliff.toml, both outputs)
#   CARGO_TARGET_DIR  default $HOME/.cache/slipway-target
# Needs git, python3 and cargo. Prints the machine first and both medians last.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/slipway-target}"
COMMITS=${COMMITS:-10000}
RUNS=${RUNS:-7}
TOOLS=$HOME/.cache/cargo-tools
CLIFF=$TOOLS/bin/git-cliff

if [ ! -x "$CLIFF" ]; then
  echo "installing git-cliff${GIT_CLIFF_VERSION:+ $GIT_CLIFF_VERSION} into $TOOLS (several minutes)" >&2
  CARGO_TARGET_DIR=$HOME/.cache/cliff-build cargo install --locked --root "$TOOLS" \
    ${GIT_CLIFF_VERSION:+--version "$GIT_CLIFF_VERSION"} git-cliff
fi

tmp=$(mktemp -d)
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

machine_line
echo "$(rustc --version), $(git --version), $("$CLIFF" --version)"

repo=$tmp/repo
range=bench-start..main
git init -q -b main "$repo"
started=$(date +%s%N)
python3 bench/changelog/generate.py "$COMMITS" | git -C "$repo" fast-import --quiet
echo "repository: $(git -C "$repo" rev-list --count "$range") commits in $range" \
  "($(git -C "$repo" rev-list --count --merges "$range") merges)," \
  "generated in $(( ($(date +%s%N) - started) / 1000000 )) ms"

cat >"$tmp/cliff.toml" <<'TOML'
# git-cliff's side of bench/changelog.sh: Conventional Commits grouped, like git-cliff's
# own examples; unconventional commits kept under "Other" so that every commit is read.
[changelog]
header = "# Changelog\n"
body = """
{% for group, commits in commits | group_by(attribute="group") %}
## {{ group | striptags | trim | upper_first }}
{% for commit in commits %}
- {% if commit.scope %}*({{ commit.scope }})* {% endif %}{% if commit.breaking %}[**breaking**] {% endif %}{{ commit.message | split(pat="\n") | first | upper_first }} ({{ commit.id | truncate(length=7, end="") }})
{%- endfor %}
{% endfor %}
"""
trim = true

[git]
conventional_commits = true
filter_unconventional = false
split_commits = false
commit_preprocessors = [
  { pattern = '\(#([0-9]+)\)', replace = "([#${1}](https://example.com/pull/${1}))" },
]
commit_parsers = [
  { message = "(?i)\\[skip changelog\\]", skip = true },
  { message = "^[Rr]evert", group = "Reverts" },
  { message = "^Bump |^Update dependency |^[a-z]+\\(deps", group = "Dependencies" },
  { message = "^feat", group = "Features" },
  { message = "^fix", group = "Bug Fixes" },
  { message = "^perf", group = "Performance" },
  { message = "^refactor", group = "Refactor" },
  { message = "^docs", group = "Documentation" },
  { message = "^(chore|build|ci|style|test)", group = "Internal" },
  { message = ".*", group = "Other" },
]
protect_breaking_commits = false
filter_commits = false
tag_pattern = "v[0-9].*"
topo_order = false
sort_commits = "oldest"
TOML

# The floor of git-cliff's work: the same commits read and parsed as Conventional Commits, one
# line each, no preprocessors, no parsers, no groups.
cat >"$tmp/cliff-minimal.toml" <<'TOML'
[changelog]
body = """
{% for commit in commits %}
- {{ commit.message | split(pat="\n") | first }} ({{ commit.id | truncate(length=7, end="") }})
{%- endfor %}
"""
trim = true

[git]
conventional_commits = true
filter_unconventional = false
TOML

cliff() { # CONFIG, then git-cliff's other arguments
  local config=$1
  shift
  "$CLIFF" --config "$config" --repository "$repo" "$@" "$range"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
time_cliff() { # NAME CONFIG: RUNS wall-clock times in seconds, one a line; prints the median last
  local name=$1 config=$2 started elapsed
  : >"$tmp/$name.times"
  for _ in $(seq "$RUNS"); do
    started=$(date +%s%N)
    cliff "$config" --output /dev/null 2>>"$tmp/cliff.log"
    elapsed=$(($(date +%s%N) - started))
    awk -v ns="$elapsed" 'BEGIN { printf "%.4f\n", ns / 1e9 }' >>"$tmp/$name.times"
  done
  echo "$name: $(xargs <"$tmp/$name.times")"
}

# Every tool once, to check that it reads the range (and to warm the page cache).
for config in cliff cliff-minimal; do
  cliff "$tmp/$config.toml" --output "$tmp/$config.md" 2>"$tmp/cliff.log" || { cat "$tmp/cliff.log" >&2; exit 1; }
  echo "git-cliff with $config.toml: $(grep -c '^- ' "$tmp/$config.md") entries in $(grep -c '^## ' "$tmp/$config.md") groups"
done
cargo bench --locked -p slipway-release --bench changelog --no-run 2>&1 | grep -v '^ *Compiling' >&2

echo "--- slipway (in process, $RUNS runs)"
SLIPWAY_BENCH_RUNS=$RUNS cargo bench --locked -q -p slipway-release --bench changelog -- "$repo" "$range" |
  tee "$tmp/slipway.out"
slipway=$(sed -n 's/^slipway_median_seconds //p' "$tmp/slipway.out")

echo "--- git-cliff (whole process, wall clock, $RUNS runs each)"
time_cliff cliff "$tmp/cliff.toml"
time_cliff cliff-minimal "$tmp/cliff-minimal.toml"
grouped=$(median <"$tmp/cliff.times")
minimal=$(median <"$tmp/cliff-minimal.times")

echo "--- medians over $COMMITS commits ($range), $RUNS runs each; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8.3f s\n' "slipway" "$slipway" \
  "git-cliff, cliff.toml (grouped)" "$grouped" \
  "git-cliff, cliff-minimal.toml" "$minimal"
awk -v s="$slipway" -v g="$grouped" -v m="$minimal" \
  'BEGIN { printf "git-cliff / slipway: %.1fx (grouped), %.1fx (minimal)\n", g / s, m / s }'
