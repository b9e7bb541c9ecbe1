#!/bin/sh
# The scripted fleet of bench/api.sh's `command` target (like the one in
# crates/slipway/tests/it/e2e.rs): one file per running release holding its instance count, one
# directory per environment and service, a marker per effect key so a repeated launch does nothing.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/fleet/$SLIPWAY_ENVIRONMENT/$SLIPWAY_SERVICE
mkdir -p "$dir/keys"
release_file() { printf '%s/release-%s' "$dir" "$(printf %s "$1" | tr ' ' _)"; }
case "$1" in
launch)
  marker="$dir/keys/$(printf %s "$SLIPWAY_EFFECT_KEY" | tr '/' _)"
  if [ -e "$marker" ]; then echo "launch $SLIPWAY_EFFECT_KEY already done"; exit 0; fi
  echo "$SLIPWAY_COUNT" > "$(release_file "$SLIPWAY_RELEASE")"
  touch "$marker"
  echo "launched $SLIPWAY_COUNT instance(s) of $SLIPWAY_RELEASE"
  ;;
traffic)
  echo "$SLIPWAY_WEIGHTS" > "$dir/traffic"
  echo "traffic now $SLIPWAY_WEIGHTS"
  ;;
stop)
  rm -f "$(release_file "$SLIPWAY_RELEASE")"
  echo "stopped $SLIPWAY_RELEASE"
  ;;
observe)
  printf '{"fleets":['
  sep=''
  for file in "$dir"/release-*; do
    [ -e "$file" ] || continue
    label=$(basename "$file" | sed 's/^release-//; s/_/ /g')
    count=$(cat "$file")
    printf '%s{"release":"%s","desired":%s,"running":%s,"healthy":%s}' "$sep" "$label" "$count" "$count" "$count"
    sep=','
  done
  printf ']}\n'
  ;;
*)
  echo "fleet.sh: unknown operation $1" >&2
  exit 2
  ;;
esac
