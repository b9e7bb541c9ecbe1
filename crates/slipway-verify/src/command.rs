//! Command checks: a team's own script judges the new fleet by its exit status.
//!
//! The contract follows the `command` target's (`slipway-targets`): `/bin/sh -c` in a process
//! group of its own, the check's facts in `SLIPWAY_*` variables and no inherited ones, stdin
//! closed, output kept bounded, and a time limit that kills the whole group — as does dropping
//! the future that runs it, so a cancelled check leaves nothing running. The exit status is the
//! verdict: 0 passes, 75 (`EX_TEMPFAIL`) says "cannot tell yet", anything else fails.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use slipway_core::analysis::{Classification, Measurement, MeasurementKind, Unit};
use slipway_core::time::Span;
use slipway_engine::plugin::CheckRequest;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

/// The shell command checks run with.
pub const SHELL: &str = "/bin/sh";

/// The exit status of a check that cannot tell yet (`EX_TEMPFAIL` of `sysexits.h`): no data.
pub const EXIT_NO_DATA: i32 = 75;

/// Most of a check's output kept while it runs: the last 2 KiB of stdout and stderr together.
/// Only its last line is reported, so more would only cost memory.
pub const OUTPUT_LIMIT: usize = 2 * 1024;

/// Most of the last output line quoted in a measurement's note, in characters.
const NOTE_LINE_LIMIT: usize = 200;

/// How long output is still read after the command exits: a background process it left behind
/// may hold the pipes open, and slipway does not wait for it.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// The `SLIPWAY_*` variables a command check gets: who and what it checks, where, and for how
/// long a window. Absent facts (no region, no baseline) are empty rather than unset, so scripts
/// under `set -u` can read every one.
pub fn check_env(request: &CheckRequest<'_>) -> Vec<(String, String)> {
    let variables = [
        ("SLIPWAY_SERVICE", request.scope.service.clone()),
        ("SLIPWAY_ENVIRONMENT", request.scope.environment.clone()),
        (
            "SLIPWAY_REGION",
            request.scope.region.clone().unwrap_or_default(),
        ),
        ("SLIPWAY_RELEASE", request.release.label.clone()),
        ("SLIPWAY_VERSION", request.release.version.clone()),
        (
            "SLIPWAY_BASELINE",
            request
                .baseline
                .map(|baseline| baseline.label.clone())
                .unwrap_or_default(),
        ),
        ("SLIPWAY_STEP", request.step.to_owned()),
        (
            "SLIPWAY_WINDOW_SECONDS",
            request.window.as_secs().to_string(),
        ),
        ("SLIPWAY_ENDPOINTS", request.endpoints.join(" ")),
        ("SLIPWAY_DEPLOY", request.key.deploy.to_string()),
    ];
    variables
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// Runs `command` with `/bin/sh -c` in `workdir` (slipway's own when `None`) with the variables
/// of `env`, and judges it by its exit status: 0 passes, [`EXIT_NO_DATA`] is no data, any other
/// status fails. A command that cannot start or does not finish within `timeout` is no data —
/// a check that cannot finish tells nothing — and on a timeout its whole process group is
/// killed. The note is the last line the command printed and its exit status.
pub async fn run_check(
    name: &str,
    command: &str,
    timeout: Duration,
    env: &[(String, String)],
    workdir: Option<&Path>,
) -> Measurement {
    let mut measurement = Measurement::new(
        name,
        MeasurementKind::Command,
        "command",
        Unit::Number,
        Classification::NoData,
    );
    let mut shell = Command::new(SHELL);
    shell
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout can stop everything the script started.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = workdir {
        shell.current_dir(dir);
    }
    // Checks see only the SLIPWAY_* facts of this check, never inherited ones (such as the
    // CLI's SLIPWAY_TOKEN). Only names are read here; values are never logged.
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("SLIPWAY_") {
            shell.env_remove(variable);
        }
    }
    shell.envs(env.iter().map(|(variable, value)| (variable, value)));

    tracing::info!(check = name, "running command check");
    tracing::debug!(check = name, command, "command check text");
    let mut child = match shell.spawn() {
        Ok(child) => child,
        Err(error) => {
            let place = workdir.map_or_else(String::new, |dir| format!(" in {}", dir.display()));
            measurement.note = format!("could not start {SHELL}{place}: {error}");
            tracing::warn!(check = name, %error, "command check could not start");
            return measurement;
        }
    };
    let mut group = ProcessGroup { id: child.id() };
    let (ended, output) = collect(&mut child, timeout).await;
    let last = output.last_line();
    match ended {
        Ended::Exited(status) => {
            // The shell is reaped, so its pid (the group's id) may be reused: never signal it
            // now. Anything the script left in the background is its own business.
            group.id = None;
            measurement.outcome = match status.code() {
                Some(0) => Classification::Pass,
                Some(EXIT_NO_DATA) => Classification::NoData,
                _ => Classification::Fail,
            };
            let status = status_text(status);
            measurement.note = match last {
                Some(line) => format!("{line} ({status})"),
                None => status,
            };
            tracing::info!(
                check = name,
                outcome = measurement.outcome.name(),
                note = %measurement.note,
                "command check finished"
            );
        }
        Ended::TimedOut => {
            group.kill();
            // The shell too, in case the group could not be killed; then this returns at once
            // and reaps it.
            let _ = child.start_kill();
            let _ = child.wait().await;
            let limit = span(timeout);
            measurement.note = match last {
                Some(line) => format!("timed out after {limit} (last output: {line})"),
                None => format!("timed out after {limit}"),
            };
            tracing::warn!(
                check = name,
                timeout = %limit,
                "command check timed out; its process group was killed"
            );
        }
        Ended::Failed(error) => {
            group.kill();
            let _ = child.start_kill();
            let _ = child.wait().await;
            measurement.note = format!("could not be waited for: {error}");
        }
    }
    measurement
}

/// `exit 1`, `killed by signal 9`.
fn status_text(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// A duration as slipway writes them: `30s`, `300ms`.
fn span(duration: Duration) -> Span {
    Span::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// How a command's run ended.
enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Failed(std::io::Error),
}

/// Reads the command's output while waiting for it to exit or for `limit` to pass.
async fn collect(child: &mut Child, limit: Duration) -> (Ended, Output) {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut output = Output::default();
    let mut out_buffer = vec![0u8; 4096];
    let mut err_buffer = vec![0u8; 4096];
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut ended: Option<Ended> = None;
    // Set once the command has exited: how long its pipes may still be read.
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        if ended.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buffer), if stdout.is_some() => match read {
                Some(n) => output.push(&out_buffer[..n]),
                None => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buffer), if stderr.is_some() => match read {
                Some(n) => output.push(&err_buffer[..n]),
                None => stderr = None,
            },
            status = child.wait(), if ended.is_none() => {
                ended = Some(match status {
                    Ok(status) => Ended::Exited(status),
                    Err(error) => Ended::Failed(error),
                });
                grace = Some(Box::pin(tokio::time::sleep(OUTPUT_GRACE)));
            },
            () = &mut deadline, if ended.is_none() => return (Ended::TimedOut, output),
            () = async { if let Some(grace) = grace.as_mut() { grace.await } }, if grace.is_some() => break,
        }
    }
    (ended.unwrap_or(Ended::TimedOut), output)
}

/// The next chunk of a pipe; `None` at its end or on an error (the output is only a report).
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buffer: &mut [u8]) -> Option<usize> {
    let pipe = pipe.as_mut()?;
    match pipe.read(buffer).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// The last [`OUTPUT_LIMIT`] bytes of stdout and stderr together, in the order they arrived —
/// what a person running the script in a terminal would have seen last.
#[derive(Debug, Default)]
struct Output {
    bytes: Vec<u8>,
}

impl Output {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trim in batches so a stream of small writes does not move the buffer each time.
        if self.bytes.len() > 2 * OUTPUT_LIMIT {
            let excess = self.bytes.len() - OUTPUT_LIMIT;
            self.bytes.drain(..excess);
        }
    }

    /// The last non-empty line, trimmed, at most [`NOTE_LINE_LIMIT`] characters (cut with `…`).
    fn last_line(&self) -> Option<String> {
        let start = self.bytes.len().saturating_sub(OUTPUT_LIMIT);
        let text = String::from_utf8_lossy(&self.bytes[start..]);
        let line = text.lines().map(str::trim).rfind(|line| !line.is_empty())?;
        if line.chars().count() <= NOTE_LINE_LIMIT {
            return Some(line.to_owned());
        }
        let mut cut: String = line.chars().take(NOTE_LINE_LIMIT - 1).collect();
        cut.push('…');
        Some(cut)
    }
}

/// The command's process group, killed when this is dropped while the command still runs —
/// when the future running it is cancelled — or when [`ProcessGroup::kill`] is called.
struct ProcessGroup {
    /// The group's id (the shell's pid); `None` once the command ended or the group was killed.
    id: Option<u32>,
}

impl ProcessGroup {
    fn kill(&mut self) {
        if let Some(id) = self.id.take() {
            kill_group(id);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGKILL to every process of group `id`. Runs the `kill` program (a negative id names
/// a group) because slipway has no unsafe code to call `killpg` with; it is quick and rare.
/// (The same as the `command` target's, which keeps its helper private.)
fn kill_group(id: u32) {
    let result = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{id}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // `kill` exiting non-zero means only that the group was already gone; not being able to
    // run it at all is worth a warning.
    if let Err(error) = result {
        tracing::warn!(group = id, %error, "cannot run `kill` to stop a check's process group");
    }
}
