//! Command checks: a team's own script judges the new fleet by its exit status.
//!
//! The contract follows the `command` target's, and so does the code (`slipway_targets::process`):
//! `/bin/sh -c` in a process group of its own, the check's facts in `SLIPWAY_*` variables and no inherited ones, stdin
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
use slipway_targets::process::{Ended, ProcessGroup, Tail, collect};
use tokio::process::Command;

/// The shell command checks run with.
pub const SHELL: &str = "/bin/sh";

/// The exit status of a check that cannot tell yet (`EX_TEMPFAIL` of `sysexits.h`): no data.
pub const EXIT_NO_DATA: i32 = 75;

/// Most of a check's output kept while it runs: the last 2 KiB of stdout and stderr together.
/// Only its last line is reported, so more would only cost memory.
pub const OUTPUT_LIMIT: usize = 2 * 1024;

/// Most of the last output line quoted in a measurement's note, in characters.
const NOTE_LINE_LIMIT: usize = 200;

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
    let mut group = ProcessGroup::new(child.id());
    // stdout and stderr together, in the order they arrived: what a person running the script
    // in a terminal would have seen last.
    let mut output = Tail::new(OUTPUT_LIMIT);
    let ended = collect(&mut child, timeout, |_, chunk| output.push(chunk)).await;
    let last = last_line(&output);
    match ended {
        Ended::Exited(status) => {
            // The shell is reaped, so its pid (the group's id) may be reused: never signal it
            // now. Anything the script left in the background is its own business.
            group.disarm();
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
            let limit = Span::from_duration(timeout);
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

/// The last non-empty line of `output`, trimmed, at most [`NOTE_LINE_LIMIT`] characters (cut
/// with `…`).
fn last_line(output: &Tail) -> Option<String> {
    let text = output.text();
    let line = text.lines().map(str::trim).rfind(|line| !line.is_empty())?;
    if line.chars().count() <= NOTE_LINE_LIMIT {
        return Some(line.to_owned());
    }
    let mut cut: String = line.chars().take(NOTE_LINE_LIMIT - 1).collect();
    cut.push('…');
    Some(cut)
}
