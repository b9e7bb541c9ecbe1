//! One task per instance: starts its process (or watches an adopted one), runs its health
//! checks, tells the proxy when its health changes, and restarts it with exponential backoff
//! when it exits — until the target stops it or stops supervising.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ConfigVariables, Shared, health, process, remove_slipway_variables};

/// How a supervisor begins.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Start {
    /// Start the process.
    Spawn,
    /// The process already runs (found after slipway's restart): watch it.
    Adopt { pid: u32, start_time: u64 },
}

/// A started process.
#[derive(Clone, Copy, Debug)]
struct Process {
    pid: u32,
    start_time: u64,
    port: u16,
}

/// How watching a process ended.
enum Ended {
    /// The target asked to stop supervising; the process is left to the caller.
    Stopped,
    /// The process exited, for this reason.
    Exited(String),
}

/// Until the first healthy check, probes come this often (or the service's interval, if
/// shorter), so a launch is not held up by a long interval.
const STARTUP_PROBE: Duration = Duration::from_millis(200);

/// Supervises instance `id` until `stop` turns true. Returns its process handle when it has one,
/// so the caller can reap the process it then terminates. `config`, the values of the release's
/// config version a launch read for this instance's first start, is used for that start only:
/// every later start reads them again.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    id: String,
    start: Start,
    mut config: Option<Arc<ConfigVariables>>,
    mut stop: watch::Receiver<bool>,
) -> Option<Child> {
    let timing = shared.timing().clone();
    let mut backoff = timing.restart_backoff;
    let mut adopted = match start {
        Start::Adopt { pid, start_time } => Some((pid, start_time)),
        Start::Spawn => None,
    };
    loop {
        if *stop.borrow() {
            return None;
        }
        // A record removed meanwhile: the instance was stopped.
        let record = shared.record(&id).await?;
        // A stop is under way: what it is stopping is not started again.
        if record.stopping && adopted.is_none() {
            return None;
        }
        let (process, mut child) = match adopted.take() {
            Some((pid, start_time)) => (
                Process {
                    pid,
                    start_time,
                    port: record.port,
                },
                None,
            ),
            None => match spawn(&shared, &id, config.take()).await {
                Ok(Some((process, child))) => (process, Some(child)),
                // The record is gone: the instance was stopped meanwhile.
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(instance = %id, %error, "cannot start an instance");
                    shared.set_status(&id, |s| {
                        s.running = false;
                        s.healthy = false;
                        s.problem = Some(error.clone());
                        s.failed_starts = s.failed_starts.saturating_add(1);
                    });
                    shared.note_in_log(
                        &record.service,
                        &id,
                        &format!(
                            "cannot start: {error}; trying again in {}",
                            seconds(backoff)
                        ),
                    );
                    if sleep_or_stop(backoff, &mut stop).await {
                        return None;
                    }
                    backoff = (backoff * 2).min(timing.restart_backoff_max);
                    continue;
                }
            },
        };
        let began = Instant::now();
        match watch(&shared, &id, process, &mut child, &mut stop).await {
            Ended::Stopped => return child,
            Ended::Exited(reason) => {
                shared.set_status(&id, |s| {
                    // Exiting while not healthy is a failed start; a passed check resets the count.
                    if !s.healthy {
                        s.failed_starts = s.failed_starts.saturating_add(1);
                    }
                    s.running = false;
                    s.healthy = false;
                    s.problem = Some(reason.clone());
                    s.restarts += 1;
                });
                shared
                    .sync_backends(&record.service, record.region.as_deref())
                    .await;
                // Whatever the shell started and left behind must not keep the port.
                process::end_instance(process.pid, Some(process.start_time), timing.stop_grace)
                    .await;
                if began.elapsed() >= timing.restart_backoff_max {
                    backoff = timing.restart_backoff;
                }
                tracing::warn!(instance = %id, %reason, restart_in = ?backoff, "instance exited; restarting it");
                shared.note_in_log(
                    &record.service,
                    &id,
                    &format!("{reason}; restarting in {}", seconds(backoff)),
                );
                if sleep_or_stop(backoff, &mut stop).await {
                    return None;
                }
                backoff = (backoff * 2).min(timing.restart_backoff_max);
            }
        }
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Sleeps for `duration`; true when told to stop meanwhile.
async fn sleep_or_stop(duration: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(duration) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}

/// Starts the instance's process: a free port recorded first, then the process, then its pid.
/// `None` when its record is gone (it was stopped meanwhile): nothing of it then runs. The
/// process gets the values of its release's config version: `config` when the caller read them
/// for this start, else read here.
async fn spawn(
    shared: &Arc<Shared>,
    id: &str,
    config: Option<Arc<ConfigVariables>>,
) -> Result<Option<(Process, Child)>, String> {
    let Some(record) = shared.record(id).await else {
        return Ok(None);
    };
    let service = shared
        .service(&record.service)
        .ok_or_else(|| format!("service `{}` is not configured", record.service))?
        .clone();
    let dir = shared.unpacked(&record.release).await?;
    let config = match config {
        Some(config) => Some(config),
        None => shared
            .read_config(&record.service, &record.release)
            .await?
            .map(Arc::new),
    };
    let port = shared.free_port().await?;
    // Recorded before the process exists: after a crash right here, the next start finds the
    // process by its SLIPWAY_INSTANCE rather than losing it.
    let recorded = shared
        .update_record(id, |r| {
            r.port = port;
            r.pid = None;
            r.start_time = None;
        })
        .await?;
    if !recorded {
        return Ok(None);
    }
    let log = shared.open_log(&record.service, id)?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let with_config = match &config {
        Some(config) => format!(" with config version {}", config.version()),
        None => String::new(),
    };
    shared.note_in_log(
        &record.service,
        id,
        &format!(
            "starting {id} of {} ({}){with_config} on port {port}: {}",
            record.release.label, record.release.version, service.start
        ),
    );
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&service.start)
        .current_dir(&dir)
        .stdin(Stdio::null())
        // Files, not pipes: output keeps flowing while slipway restarts.
        .stdout(log)
        .stderr(err)
        // Its own group: slipway's terminal signals do not reach it, and a stop ends
        // everything it started.
        .process_group(0)
        .kill_on_drop(false);
    remove_slipway_variables(&mut command);
    // The config version's keys cannot be PORT or SLIPWAY_* (`delivery::read` checks), so
    // slipway's own variables, set after them, are never overridden.
    for (name, value) in config.iter().flat_map(|c| c.pairs()) {
        command.env(name, value);
    }
    for (name, value) in shared.instance_variables(&record, port) {
        command.env(name, value);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh in {}: {e}", dir.display()))?;
    // The values now live in the process's environment only.
    drop(command);
    drop(config);
    // Until its pid is saved, nothing else knows of the new process group: whatever goes wrong
    // before then kills it, so a failed start never leaves a process running (nor its port
    // bound) beside the next attempt.
    let mut group = process::GroupGuard::new(child.id());
    let pid = child
        .id()
        .ok_or("the process ended before it could be recorded")?;
    let start_time = process::stat(pid)
        .map(|s| s.start_time)
        .ok_or("the process ended before it could be recorded")?;
    let recorded = shared
        .update_record(id, |r| {
            r.pid = Some(pid);
            r.start_time = Some(start_time);
        })
        .await?;
    if !recorded {
        // Stopped while it was being started: the guard ends it.
        return Ok(None);
    }
    group.release();
    tracing::info!(instance = %id, pid, port, release = %record.release.label, "instance started");
    Ok(Some((
        Process {
            pid,
            start_time,
            port,
        },
        child,
    )))
}

/// Waits for the child to exit; forever for an adopted process, which is not slipway's child.
async fn exited(child: &mut Option<Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => format!("exited ({status})"),
        },
        Err(error) => format!("could not be waited for: {error}"),
    }
}

/// Health-checks a running process until it exits or the target stops supervising it.
async fn watch(
    shared: &Arc<Shared>,
    id: &str,
    process: Process,
    child: &mut Option<Child>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let Some(record) = shared.record(id).await else {
        return Ended::Stopped;
    };
    let Some(service) = shared.service(&record.service).cloned() else {
        return Ended::Stopped;
    };
    let traffic = shared.pool(&record).is_some_and(|p| p.traffic);
    let health = service.health;
    let interval = Duration::from_millis(health.interval.as_millis());
    let timeout = Duration::from_millis(health.timeout.as_millis());
    let adopted = child.is_none();
    shared.set_status(id, |s| {
        s.running = true;
        s.healthy = false;
        s.probed = false;
    });
    let mut healthy = false;
    let mut successes = 0u32;
    let mut failures = 0u32;
    let mut first = true;
    loop {
        // An adopted instance is checked at once: it keeps its traffic only if it still answers.
        let wait = if first && adopted {
            Duration::ZERO
        } else if healthy {
            interval
        } else {
            interval.min(STARTUP_PROBE)
        };
        tokio::select! {
            status = exited(child) => return Ended::Exited(describe(status)),
            _ = stop.wait_for(|stop| *stop) => return Ended::Stopped,
            () = tokio::time::sleep(wait) => {}
        }
        // An adopted process is not slipway's child: its exit is seen here.
        if !process::is_alive(process.pid, process.start_time) {
            let status = match child.as_mut() {
                Some(child) => describe(child.wait().await),
                None => "exited".to_owned(),
            };
            return Ended::Exited(status);
        }
        let result = if traffic {
            tokio::select! {
                result = health::probe(process.port, &health.path, timeout) => result,
                _ = stop.wait_for(|stop| *stop) => return Ended::Stopped,
            }
        } else {
            // A pool without traffic need not serve HTTP: running is healthy.
            Ok(())
        };
        let was = healthy;
        let problem = match result {
            Ok(()) => {
                successes = successes.saturating_add(1);
                failures = 0;
                // An adopted instance passed its threshold before slipway restarted.
                if successes >= health.healthy_threshold || (first && adopted) {
                    healthy = true;
                }
                None
            }
            Err(reason) => {
                failures = failures.saturating_add(1);
                successes = 0;
                if failures >= health.unhealthy_threshold {
                    healthy = false;
                }
                Some(reason)
            }
        };
        if healthy != was {
            tracing::info!(instance = %id, healthy, problem = problem.as_deref().unwrap_or(""), "instance health changed");
        }
        let change = |s: &mut super::Status| {
            s.healthy = healthy;
            s.probed = true;
            if healthy {
                s.failed_starts = 0;
            }
            if problem.is_some() || healthy {
                s.problem = problem;
            }
        };
        if healthy != was || first {
            // The proxy learns of the change before anyone else does: a launch waiting for
            // this instance sees it healthy only once the proxy can send it traffic.
            shared
                .sync_backends_then(&record.service, record.region.as_deref(), id, change)
                .await;
        } else {
            shared.set_status(id, change);
        }
        first = false;
    }
}
