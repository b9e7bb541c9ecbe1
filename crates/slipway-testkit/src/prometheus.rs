//! A throwaway Prometheus server for tests, started from the machine's own binary.
//!
//! [`Prometheus::start`] writes a configuration that scrapes `/metrics` of the given targets
//! every scrape interval (sub-second intervals are fine), starts `prometheus` as a child process
//! on a free loopback port with its TSDB in a fresh temporary directory, and waits until
//! `/-/ready` answers. [`Prometheus::wait_for_scrape`] waits until every target has been scraped
//! successfully once.
//!
//! Prometheus sends its first targets to the scrape manager only after its discovery manager's
//! five-second update tick, so the first scrape comes about five seconds after the start however
//! short the interval. Tests that need no scrape (PromQL over `vector()` and `time()`) pass no
//! targets and skip that wait.
//!
//! The binary comes from Debian's `prometheus` package in [`DEFAULT_BIN`]; the
//! `SLIPWAY_PROMETHEUS_BIN` environment variable points the harness elsewhere. A missing binary
//! is an error whose message says to run `scripts/test-deps`.
//!
//! # Cleaning up
//!
//! Dropping a [`Prometheus`] kills its process by pid, reaps it and removes its directory. A test
//! process killed by a signal drops nothing, so every server also gets a watchdog like the
//! PostgreSQL harness's: a detached `sh` loop that exits once the directory is gone and otherwise,
//! once the test process has exited, kills the server's pid — only if that process's command line
//! still names the server's directory, so a recycled pid is never hit — and removes the directory.
//! Nothing here ever looks for a process by name, and no other Prometheus on the machine is
//! touched.

use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where Debian's `prometheus` package installs the server.
pub const DEFAULT_BIN: &str = "/usr/bin/prometheus";

/// Overrides [`DEFAULT_BIN`].
pub const BIN_VAR: &str = "SLIPWAY_PROMETHEUS_BIN";

/// How long the server may take to answer `/-/ready`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many ports to try when another process takes the free port we picked before the server
/// binds it.
const PORT_ATTEMPTS: usize = 5;

/// Between two polls of the server while waiting for it.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest one HTTP request of the harness may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Prometheus' own default, and the ceiling of the generated `scrape_timeout`.
const MAX_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong while starting or waiting for a throwaway Prometheus.
///
/// `Debug` prints the same text as `Display`: tests `.expect()` these errors, and the panic
/// message should say what to do rather than show the variant's fields.
#[derive(thiserror::Error)]
pub enum PrometheusError {
    /// There is no executable at the binary path.
    #[error(
        "Prometheus not found at {}; run scripts/test-deps (it installs Debian's `prometheus` \
         package) or set {BIN_VAR} to a prometheus binary",
        bin.display()
    )]
    BinaryMissing { bin: PathBuf },

    /// A file system operation, spawning the server or talking to it failed.
    #[error("could not {action}: {source}")]
    Io {
        /// What the harness was doing, e.g. "create a temporary directory".
        action: String,
        source: io::Error,
    },

    /// The server exited, or did not answer `/-/ready` within [`START_TIMEOUT`].
    #[error("Prometheus did not become ready on {address}: {reason}; its log ends with:\n{log}")]
    StartFailed {
        address: SocketAddr,
        reason: String,
        /// The last lines of the server's log, which usually say why.
        log: String,
    },

    /// Not every target was scraped successfully before the deadline.
    #[error(
        "Prometheus did not scrape every target healthily within {waited:?}; targets: {targets}"
    )]
    ScrapeTimeout {
        waited: Duration,
        /// Each target with its health and last error, as `/api/v1/targets` last reported them.
        targets: String,
    },
}

impl fmt::Debug for PrometheusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A running Prometheus in a temporary directory, killed and removed on drop.
pub struct Prometheus {
    /// Holds the configuration, the TSDB and the log; removed on drop.
    dir: TempDir,
    child: Child,
    address: SocketAddr,
    url: String,
    targets: Vec<SocketAddr>,
}

impl Prometheus {
    /// Starts a server that scrapes `http://TARGET/metrics` of every target every
    /// `scrape_interval` (a scrape may take the whole interval, up to Prometheus' default of
    /// 10 s) and waits until it is ready. It has not scraped anything yet: see
    /// [`wait_for_scrape`](Self::wait_for_scrape).
    pub async fn start(
        targets: &[SocketAddr],
        scrape_interval: Duration,
    ) -> Result<Prometheus, PrometheusError> {
        let bin = std::env::var_os(BIN_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
        if !bin.is_file() {
            return Err(PrometheusError::BinaryMissing { bin });
        }
        let mut attempt = 1;
        loop {
            match Prometheus::start_once(&bin, targets, scrape_interval).await {
                Err(Attempt::PortTaken(_)) if attempt < PORT_ATTEMPTS => attempt += 1,
                Err(Attempt::PortTaken(error) | Attempt::Failed(error)) => return Err(error),
                Ok(prometheus) => return Ok(prometheus),
            }
        }
    }

    /// `http://127.0.0.1:PORT`, the base URL of the server's API.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Everything the server has logged so far, for a test's failure message.
    pub fn log(&self) -> String {
        fs::read_to_string(log_file(self.dir.path())).unwrap_or_default()
    }

    /// Waits until `/api/v1/targets` reports every target up: scraped successfully at least
    /// once. Returns at once without targets.
    pub async fn wait_for_scrape(&self, timeout: Duration) -> Result<(), PrometheusError> {
        let deadline = Instant::now() + timeout;
        loop {
            let report = match get(self.address, "/api/v1/targets?state=active").await {
                Ok((200, body)) => {
                    let health = target_health(&body, &self.targets);
                    if health.iter().all(|target| target.up) {
                        return Ok(());
                    }
                    describe_targets(&health)
                }
                Ok((status, body)) => format!("/api/v1/targets answered HTTP {status}: {body}"),
                Err(error) => format!("/api/v1/targets failed: {error}"),
            };
            if Instant::now() >= deadline {
                return Err(PrometheusError::ScrapeTimeout {
                    waited: timeout,
                    targets: report,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// One try on one free port, in a directory of its own.
    async fn start_once(
        bin: &Path,
        targets: &[SocketAddr],
        scrape_interval: Duration,
    ) -> Result<Prometheus, Attempt> {
        let failed = Attempt::Failed;
        let dir = tempfile::Builder::new()
            .prefix("slipway-prometheus-")
            .tempdir()
            .map_err(io_error("create a temporary directory"))
            .map_err(failed)?;
        let config = dir.path().join("prometheus.yml");
        fs::write(&config, config_text(targets, scrape_interval))
            .map_err(io_error("write prometheus.yml"))
            .map_err(failed)?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().map_err(failed)?));
        let log = File::create(log_file(dir.path()))
            .map_err(io_error("create the Prometheus log file"))
            .map_err(failed)?;
        let stderr = log
            .try_clone()
            .map_err(io_error("open the Prometheus log file twice"))
            .map_err(failed)?;
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // Relative paths (console templates and the like) resolve inside our directory.
            .current_dir(dir.path())
            // Out of the terminal's process group, like the watchdog: the harness alone stops it.
            .process_group(0)
            .spawn()
            .map_err(io_error(&format!("start {}", bin.display())))
            .map_err(failed)?;
        let mut prometheus = Prometheus {
            dir,
            child,
            address,
            url: format!("http://{address}"),
            targets: targets.to_vec(),
        };
        // From here on, dropping `prometheus` on an error kills the server.
        prometheus.spawn_watchdog().map_err(failed)?;
        prometheus.wait_until_ready().await?;
        Ok(prometheus)
    }

    async fn wait_until_ready(&mut self) -> Result<(), Attempt> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                let error = self.start_failed(&format!("it exited ({status})"));
                return Err(if log.contains("address already in use") {
                    Attempt::PortTaken(error)
                } else {
                    Attempt::Failed(error)
                });
            }
            if let Ok((200, _)) = get(self.address, "/-/ready").await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Attempt::Failed(self.start_failed(&format!(
                    "/-/ready did not answer 200 within {START_TIMEOUT:?}"
                ))));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn start_failed(&self, reason: &str) -> PrometheusError {
        PrometheusError::StartFailed {
            address: self.address,
            reason: reason.to_owned(),
            log: last_lines(&self.log(), 20),
        }
    }

    /// Starts the detached loop that kills the server once this process is gone; see the
    /// module documentation.
    fn spawn_watchdog(&self) -> Result<(), PrometheusError> {
        const SCRIPT: &str = r#"
            test_pid=$1; dir=$2; server_pid=$3
            (
                while kill -0 "$test_pid" 2>/dev/null; do
                    [ -d "$dir" ] || exit 0
                    sleep 1
                done
                if grep -qF -- "$dir" "/proc/$server_pid/cmdline" 2>/dev/null; then
                    kill -9 "$server_pid"
                fi
                rm -rf "$dir"
            ) </dev/null >/dev/null 2>&1 &
        "#;
        let status = Command::new("sh")
            .args(["-c", SCRIPT, "slipway-prometheus-watchdog"])
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .arg(self.child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            // Out of the terminal's process group: Ctrl-C on the tests must not kill it.
            .process_group(0)
            // The outer shell exits at once; the loop it leaves behind belongs to init.
            .status()
            .map_err(io_error("start the cleanup watchdog"))?;
        if status.success() {
            Ok(())
        } else {
            Err(PrometheusError::Io {
                action: "start the cleanup watchdog".to_owned(),
                source: io::Error::other(format!("sh exited with {status}")),
            })
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SIGKILL: the TSDB is thrown away with the directory, so there is nothing to shut down
        // cleanly. A server that already exited makes `kill` fail, which is fine; `wait` reaps it
        // either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `TempDir` removes the directory after this, which also ends the watchdog.
    }
}

impl fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prometheus")
            .field("url", &self.url)
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .field("targets", &self.targets)
            .finish()
    }
}

/// Why one start attempt failed: a port someone else took (worth another try) or anything else.
enum Attempt {
    PortTaken(PrometheusError),
    Failed(PrometheusError),
}

/// The configuration: one job scraping every target's `/metrics`.
fn config_text(targets: &[SocketAddr], scrape_interval: Duration) -> String {
    let interval = scrape_interval.max(Duration::from_millis(1));
    let timeout = interval.min(MAX_SCRAPE_TIMEOUT);
    let mut text = format!(
        "# slipway-testkit: a throwaway Prometheus\n\
         global:\n  \
           scrape_interval: {}ms\n  \
           scrape_timeout: {}ms\n\
         scrape_configs:\n  \
           - job_name: slipway\n    \
             metrics_path: /metrics\n    \
             static_configs:\n      \
               - targets: [",
        interval.as_millis(),
        timeout.as_millis(),
    );
    for (i, target) in targets.iter().enumerate() {
        let _ = write!(text, "{}'{target}'", if i == 0 { "" } else { ", " });
    }
    text.push_str("]\n");
    text
}

/// One target as `/api/v1/targets` reports it.
#[derive(Debug)]
struct TargetHealth {
    address: SocketAddr,
    /// Scraped successfully on its last scrape.
    up: bool,
    /// `unknown` before the first scrape; missing when Prometheus does not list it yet.
    health: Option<String>,
    last_error: Option<String>,
}

/// The health of each of `targets` in an `/api/v1/targets` answer.
///
/// The testkit has no JSON parser, and needs none for this: Prometheus writes each active target
/// as one flat object whose `scrapeUrl` comes before its `lastError` and `health`, so the text
/// from one target's `scrapeUrl` to the next is that target's.
fn target_health(body: &str, targets: &[SocketAddr]) -> Vec<TargetHealth> {
    targets
        .iter()
        .map(|&address| {
            let marker = format!("\"scrapeUrl\":\"http://{address}/metrics\"");
            let own = body.split_once(&marker).map(|(_, rest)| {
                rest.split_once("\"scrapeUrl\"")
                    .map_or(rest, |(own, _)| own)
            });
            let health = own.and_then(|text| string_field(text, "health"));
            TargetHealth {
                address,
                up: health.as_deref() == Some("up"),
                health,
                last_error: own.and_then(|text| string_field(text, "lastError")),
            }
        })
        .collect()
}

/// The value of `"name":"VALUE"` in `text` (escaped quotes inside are kept escaped).
fn string_field(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let rest = &text[start..];
    let mut end = 0;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                end = i;
                break;
            }
            _ => escaped = false,
        }
    }
    Some(rest[..end].to_owned())
}

fn describe_targets(health: &[TargetHealth]) -> String {
    let mut text = String::new();
    for target in health {
        let _ = write!(
            text,
            "\n  {}: {}",
            target.address,
            target.health.as_deref().unwrap_or("not listed yet")
        );
        if let Some(error) = target.last_error.as_deref().filter(|e| !e.is_empty()) {
            let _ = write!(text, " ({error})");
        }
    }
    text
}

/// A plain HTTP/1.0 GET: status and body. HTTP/1.0 keeps the answer unchunked and the
/// connection closed after it, so reading to the end is reading the answer.
async fn get(address: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer);
        let invalid = || io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer");
        let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(invalid)?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(invalid)?;
        Ok((status, body.to_owned()))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

fn log_file(dir: &Path) -> PathBuf {
    dir.join("prometheus.log")
}

/// Asks the OS for a free loopback port. The listener is dropped before the server binds the
/// port, so another process may take it first; [`Prometheus::start`] retries then.
fn free_port() -> Result<u16, PrometheusError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(io_error("bind 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("read the port of a listener"))?
        .port();
    Ok(port)
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

fn io_error(action: &str) -> impl FnOnce(io::Error) -> PrometheusError + '_ {
    move |source| PrometheusError::Io {
        action: action.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_scrapes_every_target_within_the_interval() {
        let targets: [SocketAddr; 2] = [
            "127.0.0.1:1234".parse().unwrap(),
            "[::1]:80".parse().unwrap(),
        ];
        let text = config_text(&targets, Duration::from_millis(250));
        assert!(text.contains("scrape_interval: 250ms\n"), "{text}");
        assert!(text.contains("scrape_timeout: 250ms\n"), "{text}");
        assert!(
            text.contains("- targets: ['127.0.0.1:1234', '[::1]:80']\n"),
            "{text}"
        );
        let slow = config_text(&[], Duration::from_secs(30));
        assert!(slow.contains("scrape_timeout: 10000ms\n"), "{slow}");
        assert!(slow.contains("- targets: []\n"), "{slow}");
    }

    #[test]
    fn target_health_reads_each_target_of_the_api_answer() {
        let body = r#"{"status":"success","data":{"activeTargets":[{"discoveredLabels":{},"labels":{},"scrapePool":"slipway","scrapeUrl":"http://127.0.0.1:1/metrics","globalUrl":"x","lastError":"","lastScrape":"t","lastScrapeDuration":0.001,"health":"up","scrapeInterval":"250ms","scrapeTimeout":"250ms"},{"discoveredLabels":{},"labels":{},"scrapePool":"slipway","scrapeUrl":"http://127.0.0.1:2/metrics","globalUrl":"y","lastError":"Get \"http://127.0.0.1:2/metrics\": refused","lastScrape":"t","lastScrapeDuration":0.001,"health":"down","scrapeInterval":"250ms","scrapeTimeout":"250ms"}],"droppedTargets":[]}}"#;
        let targets: [SocketAddr; 3] = [
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            "127.0.0.1:3".parse().unwrap(),
        ];
        let health = target_health(body, &targets);
        assert!(health[0].up);
        assert_eq!(health[0].last_error.as_deref(), Some(""));
        assert!(!health[1].up);
        assert_eq!(health[1].health.as_deref(), Some("down"));
        assert_eq!(
            health[1].last_error.as_deref(),
            Some(r#"Get \"http://127.0.0.1:2/metrics\": refused"#)
        );
        assert!(!health[2].up);
        assert_eq!(health[2].health, None);
    }
}
