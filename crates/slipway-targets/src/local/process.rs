//! What the local target knows about processes, read from `/proc` and changed with `kill`:
//! whether an instance's process is still the one slipway started (same pid *and* start time,
//! so a recycled pid is never mistaken for it), which processes are left in its group, and
//! signals to a whole group. slipway forbids `unsafe`, so signals go through the `kill` program.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// What `/proc/PID/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// `R`, `S`, `Z` (zombie: exited, not yet reaped)…
    pub(crate) state: char,
    pub(crate) group: u32,
    /// Clock ticks since boot when it started: with the pid, names one process for good.
    pub(crate) start_time: u64,
}

impl ProcStat {
    /// Whether it still runs: a zombie has exited and holds no port.
    pub(crate) fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/PID/stat`; `None` when there is no such process.
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The fields after the command name, which is in parentheses and may itself hold `)` or spaces.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 of proc(5) is the first after the name: state; 5 is pgrp; 22 is starttime.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        group: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is still the process that started at `start_time` and has not exited.
pub(crate) fn is_alive(pid: u32, start_time: u64) -> bool {
    stat(pid).is_some_and(|stat| stat.start_time == start_time && stat.is_running())
}

/// The running processes of group `group`.
pub(crate) fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.group == group && s.is_running()))
        .collect()
}

/// A group leader whose initial environment holds `NAME=VALUE`: finds an instance started just
/// before slipway stopped, before it could record the pid.
pub(crate) fn find_leader_with(variable: &str, value: &str) -> Option<u32> {
    let wanted = format!("{variable}={value}");
    let entries = std::fs::read_dir("/proc").ok()?;
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| {
            let leader = stat(pid).is_some_and(|s| s.group == pid && s.is_running());
            leader
                && std::fs::read(Path::new("/proc").join(pid.to_string()).join("environ"))
                    .is_ok_and(|environ| {
                        environ
                            .split(|&b| b == 0)
                            .any(|entry| entry == wanted.as_bytes())
                    })
        })
}

/// Sends `signal` (`TERM`, `KILL`) to every process of group `group`. A group that is already
/// gone is not an error.
pub(crate) fn signal_group(group: u32, signal: &str) {
    let result = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{group}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(error) = result {
        tracing::warn!(group, signal, %error, "cannot run `kill` to signal an instance's process group");
    }
}

/// Waits until group `group` has no running process, for at most `limit`; whether it ended.
pub(crate) async fn wait_group_gone(group: u32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if group_members(group).is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What [`terminate_group`] reports when SIGKILL did not end the group.
pub(crate) const NOT_KILLED: &str = "could not be killed";

/// Ends the process group of an instance whose process was `pid`, started at `start_time`:
/// unless `pid` now names another process (recycled), whose group is not slipway's to end.
pub(crate) async fn end_instance(
    pid: u32,
    start_time: Option<u64>,
    grace: Duration,
) -> &'static str {
    let recycled = match (stat(pid), start_time) {
        (Some(now), Some(then)) => now.start_time != then,
        _ => false,
    };
    if recycled {
        return "had already exited";
    }
    terminate_group(pid, grace).await
}

/// Ends group `group`: SIGTERM, up to `grace` for it to exit, then SIGKILL. Returns how it
/// ended, for the event log.
pub(crate) async fn terminate_group(group: u32, grace: Duration) -> &'static str {
    if group_members(group).is_empty() {
        return "had already exited";
    }
    signal_group(group, "TERM");
    if wait_group_gone(group, grace).await {
        return "stopped";
    }
    signal_group(group, "KILL");
    if wait_group_gone(group, Duration::from_secs(5)).await {
        "killed after the grace period"
    } else {
        NOT_KILLED
    }
}

/// A process group killed with SIGKILL when this is dropped, unless released: a task whose
/// future is cancelled leaves nothing running.
pub(crate) struct GroupGuard {
    group: Option<u32>,
}

impl GroupGuard {
    pub(crate) fn new(group: Option<u32>) -> Self {
        Self { group }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            signal_group(group, "KILL");
        }
    }

    /// The command ended by itself: leave its group alone.
    pub(crate) fn release(&mut self) {
        self.group = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_a_name_with_spaces_and_parentheses() {
        let text = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                state: 'S',
                group: 4242,
                start_time: 987654,
            })
        );
    }

    #[test]
    fn this_process_is_alive_with_its_start_time_only() {
        let me = std::process::id();
        let stat = stat(me).unwrap();
        assert!(is_alive(me, stat.start_time));
        assert!(!is_alive(me, stat.start_time + 1));
    }
}
