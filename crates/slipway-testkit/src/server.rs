//! A real `slipway serve` process for end-to-end tests: started on port 0 with its own data
//! directory, found through the address it prints, driven with the real CLI, and stopped (or
//! killed, to test crash recovery) by the test that started it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `slipway serve`. Dropping it kills the process.
pub struct SpawnedServer {
    bin: PathBuf,
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub data_dir: PathBuf,
    /// The token `serve` wrote to `data_dir/admin-token` on its first start.
    pub admin_token: String,
    log: Arc<Mutex<String>>,
}

/// What a CLI command printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// The exit code (`-1` when killed by a signal).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Panics with everything printed unless the command exited 0.
    #[track_caller]
    pub fn success(self) -> CliOutput {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

impl SpawnedServer {
    /// Starts `bin serve --config CONFIG --data-dir DATA_DIR --listen 127.0.0.1:0` and waits
    /// until it listens.
    pub fn start(bin: &Path, config: &Path, data_dir: &Path) -> SpawnedServer {
        Self::start_with_env(bin, config, data_dir, &[])
    }

    /// [`SpawnedServer::start`] with extra environment variables for the server only.
    pub fn start_with_env(
        bin: &Path,
        config: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> SpawnedServer {
        Self::start_listening(bin, config, data_dir, "127.0.0.1:0", env)
    }

    /// [`SpawnedServer::start_with_env`] on a given address, for a test that must know it before
    /// the server starts (a Prometheus scraping it, say).
    pub fn start_listening(
        bin: &Path,
        config: &Path,
        data_dir: &Path,
        listen: &str,
        env: &[(&str, &str)],
    ) -> SpawnedServer {
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", listen])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", bin.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let sink = Arc::clone(&log);
        // Drains stderr for the server's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let _ = found.send(url.to_owned());
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = match address.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log.lock().expect("log lock").clone();
                panic!("slipway serve did not start listening within {START_TIMEOUT:?}:\n{log}");
            }
        };
        let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
            .expect("the first serve writes data_dir/admin-token")
            .trim()
            .to_owned();
        SpawnedServer {
            bin: bin.to_owned(),
            child: Some(child),
            url,
            data_dir: data_dir.to_owned(),
            admin_token,
            log,
        }
    }

    /// Runs `slipway ARGS` against this server with `token`.
    pub fn cli(&self, token: &str, args: &[&str]) -> CliOutput {
        self.cli_with_stdin(token, args, None)
    }

    /// [`SpawnedServer::cli`] with `input` written to its stdin (then closed).
    pub fn cli_with_stdin(&self, token: &str, args: &[&str], input: Option<&str>) -> CliOutput {
        use std::io::Write;
        let mut child = Command::new(&self.bin)
            .args(args)
            .env("SLIPWAY_SERVER", &self.url)
            .env("SLIPWAY_TOKEN", token)
            .env("NO_COLOR", "1")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run slipway {args:?}: {error}"));
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input.as_bytes())
                .unwrap_or_else(|error| panic!("cannot write to slipway {args:?}: {error}"));
        }
        let output = child
            .wait_with_output()
            .unwrap_or_else(|error| panic!("cannot run slipway {args:?}: {error}"));
        CliOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The process id of the server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the server printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM without waiting: the server begins its graceful shutdown.
    pub fn signal_terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    /// Waits (at most `timeout`) for the server to exit; SIGKILL after that, and `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits (at most `timeout`) for a clean exit; SIGKILL after that.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal_terminate();
        self.wait_exit(timeout)
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        self.kill();
    }
}
