//! Helpers shared by the end-to-end tests: free ports, plain HTTP requests, a bounded load
//! through a proxy, waiting with a deadline, and cleaning up a local target's instances.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slipway_testkit::server::SpawnedServer;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_slipway");
/// The python app the local target's own tests run; a build may make it fail or slow.
pub(crate) const APP: &str = include_str!("../../../slipway-targets/tests/it/local_app/app.py");

/// A loopback port free right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One GET with `Connection: close`: the status and body, or why it failed.
pub(crate) fn get(addr: SocketAddr) -> Result<(u16, String), String> {
    get_path(addr, "/")
}

pub(crate) fn get_path(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    get_with(addr, path, "")
}

/// A GET of the server's API with `token`: the answer as JSON (it must be a 200).
pub(crate) fn api_get(server: &SpawnedServer, token: &str, path: &str) -> serde_json::Value {
    let addr: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the server's URL is http://ADDRESS");
    let headers = format!("Authorization: Bearer {token}\r\n");
    match get_with(addr, path, &headers) {
        Ok((200, body)) => json(&body),
        other => panic!("GET {path}: {other:?}"),
    }
}

/// A POST of JSON to the server's API with `token`: the status and the answer as JSON.
pub(crate) fn api_post(
    server: &SpawnedServer,
    token: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let addr: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the server's URL is http://ADDRESS");
    let body = body.to_string();
    let headers = format!(
        "Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    match request_with(addr, "POST", path, &headers, &body) {
        Ok((status, answer)) => (status, json(&answer)),
        Err(error) => panic!("POST {path}: {error}"),
    }
}

/// One GET with `Connection: close` and extra header lines (each ending in CRLF).
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Result<(u16, String), String> {
    request_with(addr, "GET", path, headers, "")
}

/// Signs in to the dashboard with `token` as a browser would (a form POST) and returns the
/// session's `name=value` cookie.
pub(crate) fn dashboard_cookie(server: &SpawnedServer, token: &str) -> String {
    let addr: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the server's URL is http://ADDRESS");
    let body = format!("token={token}&next=%2F");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    stream
        .write_all(
            format!(
                "POST /sign-in HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .and_then(|cookie| cookie.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie in {response}"))
        .to_owned()
}

/// A dashboard page as the session of `cookie` sees it.
pub(crate) fn dashboard_page(server: &SpawnedServer, cookie: &str, path: &str) -> String {
    let addr: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the server's URL is http://ADDRESS");
    match get_with(addr, path, &format!("Cookie: {cookie}\r\n")) {
        Ok((200, body)) => body,
        other => panic!("GET {path}: {other:?}"),
    }
}

/// One request with `Connection: close`, extra header lines (each ending in CRLF) and a body.
pub(crate) fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    stream
        .write_all(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n{body}"
            )
            .as_bytes(),
        )
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A few client threads sending requests through the proxy, bounded in count and time. Failures
/// before the first good answer (nothing deployed yet) are not counted.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Answers by version, and every failure.
    seen: Arc<Mutex<BTreeMap<String, u64>>>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Load {
    const CLIENTS: usize = 3;
    /// Between two requests of one client.
    const PAUSE: Duration = Duration::from_millis(2);
    const MAX_REQUESTS: u64 = 40_000;
    const MAX_TIME: Duration = Duration::from_secs(180);

    pub(crate) fn start(addr: SocketAddr) -> Load {
        Self::paced(addr, Self::PAUSE)
    }

    /// A lighter load: each client waits `pause` between requests.
    pub(crate) fn paced(addr: SocketAddr, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..Self::CLIENTS)
            .map(|_| {
                let (stop, seen, failures) =
                    (Arc::clone(&stop), Arc::clone(&seen), Arc::clone(&failures));
                std::thread::spawn(move || {
                    let started = Instant::now();
                    for _ in 0..Self::MAX_REQUESTS / Self::CLIENTS as u64 {
                        if stop.load(Ordering::SeqCst) || started.elapsed() > Self::MAX_TIME {
                            break;
                        }
                        match get(addr) {
                            Ok((200, body)) => {
                                let version =
                                    body.split_whitespace().next().unwrap_or("").to_owned();
                                *seen.lock().unwrap().entry(version).or_insert(0) += 1;
                            }
                            Ok(_) | Err(_) if seen.lock().unwrap().is_empty() => {}
                            Ok((status, body)) => {
                                failures.lock().unwrap().push(format!("{status}: {body}"))
                            }
                            Err(error) => failures.lock().unwrap().push(error),
                        }
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load {
            stop,
            threads,
            seen,
            failures,
        }
    }

    pub(crate) fn versions(&self) -> BTreeMap<String, u64> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn finish(self) -> (BTreeMap<String, u64>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().unwrap();
        }
        let seen = self.seen.lock().unwrap().clone();
        let failures = self.failures.lock().unwrap().clone();
        (seen, failures)
    }
}

/// Kills every instance the local target's state file names when the test ends, however it
/// ends: `serve` leaves its instances running on purpose.
pub(crate) struct Instances {
    pub(crate) state_file: PathBuf,
}

impl Instances {
    pub(crate) fn pids(&self) -> BTreeSet<u32> {
        let Ok(text) = std::fs::read_to_string(&self.state_file) else {
            return BTreeSet::new();
        };
        json(&text)["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["pid"].as_u64().map(|p| p as u32))
            .collect()
    }
}

impl Drop for Instances {
    /// Kills what the state file names and, to be sure, every process still running in the
    /// data directory's unpacked releases (one spawned just before slipway was killed may not be
    /// recorded yet).
    fn drop(&mut self) {
        let releases = self
            .state_file
            .parent()
            .and_then(Path::parent)
            .map(|data| data.join("releases"));
        let strays = releases.as_deref().map(processes_in).unwrap_or_default();
        for pid in self.pids().into_iter().chain(strays) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}"), &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Every running process whose working directory is one of the unpacked releases: the app's
/// instances, wherever they came from.
pub(crate) fn processes_in(releases: &Path) -> BTreeSet<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let running = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !matches!(
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z')),
                    Some(true)
                )
            });
            running
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(releases))
        })
        .collect()
}

pub(crate) fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The deploy's phase as `status --output json` shows it.
pub(crate) fn phase(server: &SpawnedServer, token: &str, id: &str) -> serde_json::Value {
    let status = server
        .cli(token, &["--output", "json", "status", id])
        .success();
    json(&status.stdout)["phase"].clone()
}

/// Writes `DIR/idp-VERSION.tar.gz` and pushes it as VERSION of idp (with its source `commit`,
/// if given); returns the file.
pub(crate) fn push_build(
    server: &SpawnedServer,
    token: &str,
    dir: &Path,
    version: &str,
    commit: Option<&str>,
) -> PathBuf {
    let file = dir.join(format!("idp-{version}.tar.gz"));
    std::fs::write(&file, format!("build {version}")).unwrap();
    let mut args = vec![
        "artifact",
        "push",
        file.to_str().unwrap(),
        "--service",
        "idp",
        "--version",
        version,
    ];
    if let Some(commit) = commit {
        args.extend(["--commit", commit]);
    }
    server.cli(token, &args).success();
    file
}

/// [`push_build`], then the next release of it.
pub(crate) fn push_and_release(
    server: &SpawnedServer,
    token: &str,
    dir: &Path,
    version: &str,
) -> PathBuf {
    let file = push_build(server, token, dir, version, None);
    server
        .cli(token, &["release", "create", "idp", "--version", version])
        .success();
    file
}

/// A fleet run by a shell script, the way teams drive theirs: one file per release with its
/// instance count, one directory per environment. `launch` is idempotent by effect key even when two runs overlap (a run
/// orphaned by a killed server and its retry): `mkdir` is atomic, the loser waits for the
/// winner's marker. With a `slow` file present, a launch takes two seconds.
pub(crate) const FLEET_SCRIPT: &str = r#"#!/bin/sh
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/fleet/$SLIPWAY_ENVIRONMENT
mkdir -p "$dir/keys"
release_file() { printf '%s/release-%s' "$dir" "$(printf %s "$1" | tr ' ' _)"; }
case "$1" in
launch)
  marker="$dir/keys/$(printf %s "$SLIPWAY_EFFECT_KEY" | tr '/' _)"
  if ! mkdir "$marker.lock" 2>/dev/null; then
    i=0
    while [ ! -e "$marker" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$marker" ] || { echo "launch $SLIPWAY_EFFECT_KEY is stuck" >&2; exit 1; }
    echo "launch $SLIPWAY_EFFECT_KEY already done"
    exit 0
  fi
  [ -e "$dir/slow" ] && sleep 2
  env | cut -d= -f1 | grep '^SLIPWAY_' | sort > "$dir/launch-environment"
  echo "$SLIPWAY_RELEASE $SLIPWAY_COUNT" >> "$dir/launches.log"
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
  echo "$SLIPWAY_RELEASE" >> "$dir/stops.log"
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
esac
"#;
