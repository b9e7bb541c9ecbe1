# Helpers shared by the benchmark scripts that run `slipway serve` (deploy.sh, verify.sh):
# sourced, not run. They use the caller's `tmp` (its temporary directory) and `server_pid`.

# The machine a figure was measured on, in one line.
machine_line() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
    "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs) model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | xargs))," \
    "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
    "Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
}

stop_pid() { # stops a helper started by the script, by its pid
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Stops the server (this pid only): SIGTERM, which with --stop-instances drains and stops every
# instance, up to 60 s, then SIGKILL. Prints the exit status.
stop_server() {
  [ -n "$server_pid" ] || return 0
  local pid=$server_pid status=0
  server_pid=
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "server $pid did not stop within 60 s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" || status=$?
  echo "server stopped (pid $pid, exit status $status)"
}

# Starts `$BIN serve --stop-instances` with the config and data of DIR, waits until it says where
# its API and SERVICE's proxy in ENV listen, and sets server_pid, url and proxy (both must be on
# loopback). Exports SLIPWAY_SERVER and the admin's SLIPWAY_TOKEN for the CLI.
start_server() {
  local dir=$1 service=$2 env_name=$3
  "$BIN" serve --stop-instances --config "$dir/slipway.toml" --data-dir "$dir/data" \
    --listen 127.0.0.1:0 >"$dir/server.out" 2>"$dir/server.log" &
  server_pid=$!
  url= proxy=
  for _ in $(seq 300); do
    url=$(sed -n 's/.*slipway: listening on \(http:[^ ]*\).*/\1/p' "$dir/server.log" | head -1)
    proxy=$(sed -n "s/.*slipway: proxy for $service in $env_name at \(http:[^ ]*\).*/\1/p" "$dir/server.log" | head -1)
    [ -n "$url" ] && [ -n "$proxy" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] && [ -n "$proxy" ] || { echo "error: serve did not say where it listens" >&2; cat "$dir/server.log" >&2; exit 1; }
  for address in "$url" "$proxy"; do
    case "$address" in http://127.0.0.1:*) ;; *) echo "error: not on loopback: $address" >&2; exit 1 ;; esac
  done
  echo "server: pid $server_pid, API on $url, proxy for $service in $env_name at $proxy"
  export SLIPWAY_SERVER=$url
  unset SLIPWAY_CONFIG SLIPWAY_DATABASE
  SLIPWAY_TOKEN=$(cat "$dir/data/admin-token")
  export SLIPWAY_TOKEN
}

# Processes whose executable or working directory is in $tmp: the server (a copy of the
# binary), the instances (they run from the unpacked release) and anything they left behind.
leftovers() {
  local pid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = $$ ] && continue
    if readlink "/proc/$pid/exe" 2>/dev/null | grep -qF "$tmp/" ||
      readlink "/proc/$pid/cwd" 2>/dev/null | grep -qF "$tmp/"; then
      echo "$pid"
    fi
  done
}

# Says whether anything still runs from $tmp, and stops it if so (an error of the script).
stop_leftovers() {
  local left pid
  left=$(leftovers | xargs)
  if [ -n "$left" ]; then
    echo "error: processes still running from $tmp (stopping them now): $left" >&2
    for pid in $left; do ps -o pid=,args= -p "$pid" >&2 || true; done
    for pid in $left; do kill -TERM "$pid" 2>/dev/null || true; done
  else
    echo "no process runs from $tmp"
  fi
}
