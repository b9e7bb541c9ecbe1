//! The `local` target: a service's instances as child processes on this machine, behind
//! slipway's own proxy.
//!
//! Each instance is the service's `start` command run by `/bin/sh -c` in the release's unpacked
//! artifact (`unpack.rs`), in a process group of its own, with its output appended to
//! `<data_dir>/logs/<env>/<service>/<instance>.log`. A supervisor task per instance
//! (`supervisor.rs`) runs its HTTP health checks (`health.rs`), tells the proxy whether it may
//! take traffic, and restarts it with backoff when it exits. Every instance is recorded in a
//! state file (`state.rs`) before it is spawned, so a restarted slipway adopts the instances that
//! still run (same pid and start time, `process.rs`) and restarts the ones that died: never an
//! orphan, never a port left bound. Shutting slipway down leaves instances running for that
//! reason; [`LocalTarget::stop_all`] stops them.
//!
//! `docs/targets.md` describes it for users.

mod health;
mod process;
mod state;
mod supervisor;
pub mod unpack;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use slipway_core::config::{EnvironmentConfig, Pool, ServiceConfig};
use slipway_core::deploy::{EffectKey, ReleaseRef, Split};
use slipway_engine::plugin::{
    ConfigSource, FleetState, LaunchRequest, Observation, PluginError, Scope, Target,
};
use slipway_proxy::{Backend, Proxy, ProxyError, Route};
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::TargetError;
use crate::delivery::{self, ConfigVariables};
use state::{Desired, InstanceRecord, State};
use supervisor::Start;

pub use state::StateError;

/// A launch gives up once an instance it started has failed to start this many times in a row.
const LAUNCH_START_ATTEMPTS: u32 = 3;

/// Most of an instance's or a task's output quoted in a message (the event log keeps it).
const QUOTE_LIMIT: usize = 2 * 1024;

/// The timings of the local target. The defaults suit people; tests shorten them.
#[derive(Clone, Debug)]
pub struct LocalTiming {
    /// Longest a stop waits for an instance's requests in flight before stopping it anyway.
    pub drain_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when an instance is stopped.
    pub stop_grace: Duration,
    /// The first wait before restarting an instance that exited; it doubles each time the
    /// instance exits again soon after, up to `restart_backoff_max`.
    pub restart_backoff: Duration,
    pub restart_backoff_max: Duration,
    /// Longest a task (`migrate`) may run before its process group is killed.
    pub task_timeout: Duration,
}

impl Default for LocalTiming {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
            restart_backoff: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(30),
            task_timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// What a local target needs from the process that hosts it.
#[derive(Clone)]
pub struct LocalSettings {
    /// slipway's data directory: unpacked releases, instance logs and the state file go here.
    pub data_dir: PathBuf,
    /// The artifact cache: artifact `sha256:HEX` is the file `<artifact_dir>/sha256/HEX`.
    pub artifact_dir: PathBuf,
    /// The services of the config file; their `start`, `migrate`, `health` and `pools` apply.
    pub services: Vec<ServiceConfig>,
    /// The proxy whose routes (see [`route_for`]) the target keeps up to date.
    pub proxy: Proxy,
    pub timing: LocalTiming,
    /// Where instances and tasks of a release that pins a config version read its values
    /// (`crate::TargetContext::config`).
    pub config: Option<Arc<dyn ConfigSource>>,
}

/// The proxy route of a service in a local environment: the region label is the environment,
/// or `ENV/REGION` when the environment lists regions, so environments on one machine never
/// share a route.
pub fn route_for(environment: &str, service: &str, region: Option<&str>) -> Route {
    let label = match region {
        Some(region) => format!("{environment}/{region}"),
        None => environment.to_owned(),
    };
    Route::new(service, Some(&label))
}

/// The state file of `environment`'s local target under `data_dir`.
pub fn state_file(data_dir: &Path, environment: &str) -> PathBuf {
    data_dir.join("local").join(format!("{environment}.json"))
}

/// One instance, as [`LocalTarget::instances`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    pub service: String,
    pub region: Option<String>,
    pub pool: String,
    /// The release label, `RC 3`.
    pub release: String,
    pub version: String,
    pub port: u16,
    /// Its process, which is also its process group.
    pub pid: Option<u32>,
    pub running: bool,
    pub healthy: bool,
    /// How many times it exited and was started again.
    pub restarts: u32,
    pub log_file: PathBuf,
}

/// The `local` target of one environment. Dropping it (or [`LocalTarget::close`]) stops the
/// supervision, never the instances.
pub struct LocalTarget {
    shared: Arc<Shared>,
}

/// What the supervisors and the target share.
pub(crate) struct Shared {
    environment: String,
    regions: Vec<String>,
    services: BTreeMap<String, ServiceConfig>,
    proxy: Proxy,
    timing: LocalTiming,
    /// Read at each start of a release that pins a config version; its values are never kept.
    config: Option<Arc<dyn ConfigSource>>,
    artifact_dir: PathBuf,
    releases_dir: PathBuf,
    /// `<data_dir>/logs/<env>`.
    logs_dir: PathBuf,
    state_path: PathBuf,
    /// The persisted state; every change is saved before the action it announces.
    state: tokio::sync::Mutex<State>,
    /// What each instance is doing now, by id.
    live: Mutex<BTreeMap<String, Arc<Live>>>,
    /// Bumped whenever an instance's status changes, for launches waiting on health.
    changes: watch::Sender<u64>,
    /// Orders updates of the proxy's backends, so an older list never replaces a newer one.
    backends: tokio::sync::Mutex<()>,
    unpacking: tokio::sync::Mutex<()>,
    /// Held while the target runs: one slipway per data directory drives its instances.
    lock: Mutex<Option<File>>,
    closed: AtomicBool,
}

/// The live side of one instance.
pub(crate) struct Live {
    status: Mutex<Status>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<Option<Child>>>>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Status {
    pub(crate) running: bool,
    pub(crate) healthy: bool,
    /// Whether a health check ran since it was started or adopted.
    pub(crate) probed: bool,
    /// Why it is not healthy, or how it last exited.
    pub(crate) problem: Option<String>,
    pub(crate) restarts: u32,
    /// Starts in a row that failed, or whose process exited before it was healthy again.
    pub(crate) failed_starts: u32,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LocalTarget {
    /// The local target of `environment`: reads its state file, adopts the instances that still
    /// run (after one health check each), restarts the ones that died, stops those of services
    /// no longer configured, and brings the proxy's routes up to date.
    pub async fn open(
        environment: &EnvironmentConfig,
        settings: LocalSettings,
    ) -> Result<LocalTarget, TargetError> {
        if environment.target != "local" {
            return Err(TargetError::WrongTarget {
                environment: environment.name.clone(),
                target: environment.target.clone(),
                expected: "local",
            });
        }
        let name = environment.name.clone();
        let data_dir = std::path::absolute(&settings.data_dir).unwrap_or(settings.data_dir);
        let state_path = state_file(&data_dir, &name);
        let lock_file = take_lock(&state_path.with_extension("lock"), &name)?;
        let mut state = state::load(&state_path).map_err(|e| local_error(&name, e))?;

        let services: BTreeMap<String, ServiceConfig> = settings
            .services
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        let mut starts = Vec::new();
        let mut gone = Vec::new();
        for record in &mut state.instances {
            let known = services.contains_key(&record.service);
            let wanted = !record.stopping
                && state.desired.iter().any(|d| {
                    d.service == record.service
                        && d.region == record.region
                        && d.release == record.release.label
                        && d.pool == record.pool
                });
            let alive = find_process(record);
            match (alive, known) {
                (Some((pid, start_time)), true) => {
                    record.pid = Some(pid);
                    record.start_time = Some(start_time);
                    starts.push((record.id.clone(), Start::Adopt { pid, start_time }));
                }
                (Some((pid, _)), false) => {
                    tracing::info!(env = %name, instance = %record.id, service = %record.service,
                        "stopping an instance of a service no longer configured");
                    process::terminate_group(pid, Duration::from_secs(10)).await;
                    gone.push(record.id.clone());
                }
                (None, _) => {
                    end_leftovers(record).await;
                    if known && wanted {
                        record.pid = None;
                        record.start_time = None;
                        starts.push((record.id.clone(), Start::Spawn));
                    } else {
                        gone.push(record.id.clone());
                    }
                }
            }
        }
        state.instances.retain(|r| !gone.contains(&r.id));
        state.desired.retain(|d| services.contains_key(&d.service));
        state::save(&state_path, &state).map_err(|e| local_error(&name, e))?;

        let shared = Arc::new(Shared {
            environment: name,
            regions: environment.regions.clone(),
            services,
            proxy: settings.proxy,
            timing: settings.timing,
            config: settings.config,
            artifact_dir: std::path::absolute(&settings.artifact_dir)
                .unwrap_or(settings.artifact_dir),
            releases_dir: data_dir.join("releases"),
            logs_dir: data_dir.join("logs").join(&environment.name),
            state_path,
            state: tokio::sync::Mutex::new(state),
            live: Mutex::default(),
            changes: watch::Sender::new(0),
            backends: tokio::sync::Mutex::new(()),
            unpacking: tokio::sync::Mutex::new(()),
            lock: Mutex::new(Some(lock_file)),
            closed: AtomicBool::new(false),
        });
        let adopted: Vec<String> = starts
            .iter()
            .filter(|(_, start)| matches!(start, Start::Adopt { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        for (id, start) in starts {
            // A dead instance started again reads its release's config version when it starts.
            shared.supervise(&id, start, None);
        }
        // Adopted instances keep their traffic only once a health check says they still answer.
        let longest = shared
            .services
            .values()
            .map(|s| Duration::from_millis(s.health.timeout.as_millis()))
            .max()
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + longest + Duration::from_secs(2);
        let mut changes = shared.changes.subscribe();
        loop {
            changes.borrow_and_update();
            let waiting = adopted
                .iter()
                .any(|id| shared.status(id).is_some_and(|s| s.running && !s.probed));
            if !waiting {
                break;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                break;
            }
        }
        for service in shared.services.keys() {
            for region in shared.region_list() {
                shared.sync_backends(service, region.as_deref()).await;
            }
        }
        tracing::info!(env = %shared.environment, adopted = adopted.len(), "local target open");
        Ok(LocalTarget { shared })
    }

    /// Every instance of the environment, sorted by service, region, release and id.
    pub async fn instances(&self) -> Vec<InstanceInfo> {
        let state = self.shared.state.lock().await;
        let mut instances: Vec<InstanceInfo> = state
            .instances
            .iter()
            .map(|record| {
                let status = self.shared.status(&record.id).unwrap_or_default();
                InstanceInfo {
                    id: record.id.clone(),
                    service: record.service.clone(),
                    region: record.region.clone(),
                    pool: record.pool.clone(),
                    release: record.release.label.clone(),
                    version: record.release.version.clone(),
                    port: record.port,
                    pid: record.pid,
                    running: status.running,
                    healthy: status.healthy,
                    restarts: status.restarts,
                    log_file: self.shared.log_file(&record.service, &record.id),
                }
            })
            .collect();
        instances.sort_by(|a, b| {
            (&a.service, &a.region, &a.release, &a.id)
                .cmp(&(&b.service, &b.region, &b.release, &b.id))
        });
        instances
    }

    /// Where the instances are recorded.
    pub fn state_file(&self) -> &Path {
        &self.shared.state_path
    }

    /// Drains and stops every instance of the environment, of every release, and forgets the
    /// counts they were launched with. For `slipway serve --stop-instances` and the demo.
    pub async fn stop_all(&self) -> Result<String, PluginError> {
        let ids: Vec<String> = {
            let mut state = self.shared.state.lock().await;
            self.shared
                .commit(&mut state, |state| state.desired.clear())?;
            state.instances.iter().map(|r| r.id.clone()).collect()
        };
        let stops = ids.iter().map(|id| self.shared.stop_instance(id));
        let reports = stop_reports(join_all(stops).await)?;
        Ok(format!(
            "stopped {} instance(s) in {}{}",
            reports.len(),
            self.shared.environment,
            list_section(&reports)
        ))
    }

    /// Stops supervising: no more health checks, restarts or proxy updates; the instances keep
    /// running for the next [`LocalTarget::open`] to adopt. Releases the data directory's lock.
    pub fn close(&self) {
        self.shared.close();
    }
}

impl Drop for LocalTarget {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// The lines of instances stopped, or an error naming each one that could not be: those keep
/// their record, so a retried stop ends them.
fn stop_reports(results: Vec<Result<String, String>>) -> Result<Vec<String>, PluginError> {
    let (stopped, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if failed.is_empty() {
        return Ok(stopped.into_iter().flatten().collect());
    }
    let failed: Vec<String> = failed.into_iter().filter_map(Result::err).collect();
    let stopped: Vec<String> = stopped.into_iter().flatten().collect();
    let mut message = format!(
        "{} instance(s) could not be stopped and are still recorded; the stop can be retried{}",
        failed.len(),
        list_section(&failed)
    );
    if !stopped.is_empty() {
        message.push_str(&format!("\nstopped{}", list_section(&stopped)));
    }
    Err(PluginError::new(message))
}

/// `:\n  a\n  b`, or nothing for an empty list.
fn list_section(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!(":\n  {}", lines.join("\n  "))
}

fn local_error(environment: &str, error: impl std::fmt::Display) -> TargetError {
    TargetError::Local {
        environment: environment.to_owned(),
        message: error.to_string(),
    }
}

/// Takes the lock file of an environment's local target, waiting a little for a previous owner
/// in this process (a target being closed) to let go.
fn take_lock(path: &Path, environment: &str) -> Result<File, TargetError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| local_error(environment, e))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| local_error(environment, format!("cannot open {}: {e}", path.display())))?;
    for _ in 0..40 {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(local_error(environment, e)),
        }
    }
    Err(TargetError::Local {
        environment: environment.to_owned(),
        message: format!(
            "another slipway already runs the local instances of this data directory ({} is \
             locked); stop it, or give this one its own --data-dir",
            path.display()
        ),
    })
}

/// The live process of a record: its recorded pid if that is still the process started then,
/// or — for an instance recorded but not yet given a pid when slipway stopped — the group
/// leader carrying its `SLIPWAY_INSTANCE`.
fn find_process(record: &InstanceRecord) -> Option<(u32, u64)> {
    match (record.pid, record.start_time) {
        (Some(pid), Some(start_time)) => {
            process::is_alive(pid, start_time).then_some((pid, start_time))
        }
        _ => {
            let pid = process::find_leader_with("SLIPWAY_INSTANCE", &record.id)?;
            let stat = process::stat(pid)?;
            Some((pid, stat.start_time))
        }
    }
}

/// When an instance's leader is gone, ends what is left of its group (a child the shell
/// started that outlived it), so it cannot hold the port. A pid now used by another process
/// means its group is someone else's: left alone.
async fn end_leftovers(record: &InstanceRecord) {
    let Some(pid) = record.pid else { return };
    if process::stat(pid).is_some_and(|s| s.is_running()) {
        return;
    }
    if !process::group_members(pid).is_empty() {
        tracing::info!(instance = %record.id, group = pid, "ending what is left of a dead instance's process group");
        process::terminate_group(pid, Duration::from_secs(5)).await;
    }
}

impl Shared {
    /// Refuses to stop `release` when the traffic would go to other releases none of whose
    /// instances is healthy: the last line of defence of "one complete fleet always serves"
    /// (a scale-in confirmed long after the bake, a new fleet that crashed meanwhile). Stopping
    /// the only release the split names (undoing a first deploy) is allowed.
    async fn check_others_serve(
        &self,
        scope: &Scope,
        release: &ReleaseRef,
    ) -> Result<(), PluginError> {
        let route = route_for(&self.environment, &scope.service, scope.region.as_deref());
        let (Some(split), backends) = self.proxy.route(&route).await else {
            return Ok(());
        };
        let others: Vec<&String> = split
            .weights
            .iter()
            .filter(|(version, weight)| **weight > 0 && **version != release.label)
            .map(|(version, _)| version)
            .collect();
        let serving = backends
            .iter()
            .any(|b| b.healthy && others.contains(&&b.version));
        if others.is_empty() || serving {
            return Ok(());
        }
        let names: Vec<&str> = others.iter().map(|v| v.as_str()).collect();
        Err(PluginError::new(format!(
            "refusing to stop {} of {}: its traffic goes to {}, and no instance of it is healthy \
             (hint: the deploy fails safely and keeps {} running; see `slipway logs {} --env {}`)",
            release.label,
            scope.service,
            names.join(", "),
            release.label,
            scope.service,
            self.environment
        )))
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        for live in lock(&self.live).values() {
            if let Some(task) = lock(&live.task).take() {
                task.abort();
            }
        }
        if let Some(file) = lock(&self.lock).take() {
            let _ = file.unlock();
        }
    }

    fn region_list(&self) -> Vec<Option<String>> {
        if self.regions.is_empty() {
            vec![None]
        } else {
            self.regions.iter().cloned().map(Some).collect()
        }
    }

    fn log_file(&self, service: &str, id: &str) -> PathBuf {
        self.logs_dir.join(service).join(format!("{id}.log"))
    }

    /// Changes a copy of `state`, saves it, and only then makes it the state: memory never
    /// holds what the file does not.
    fn commit<R>(
        &self,
        state: &mut State,
        change: impl FnOnce(&mut State) -> R,
    ) -> Result<R, PluginError> {
        let mut next = state.clone();
        let result = change(&mut next);
        state::save(&self.state_path, &next).map_err(|e| PluginError::new(e.to_string()))?;
        *state = next;
        Ok(result)
    }

    pub(crate) fn status(&self, id: &str) -> Option<Status> {
        let live = lock(&self.live).get(id).cloned()?;
        let status = lock(&live.status).clone();
        Some(status)
    }

    pub(crate) fn set_status(&self, id: &str, change: impl FnOnce(&mut Status)) {
        let Some(live) = lock(&self.live).get(id).cloned() else {
            return;
        };
        change(&mut lock(&live.status));
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Starts the supervisor of instance `id`; `config` holds the values of its release's
    /// config version when the caller already read them for this start.
    fn supervise(self: &Arc<Self>, id: &str, start: Start, config: Option<Arc<ConfigVariables>>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let (stop, stopped) = watch::channel(false);
        let live = Arc::new(Live {
            status: Mutex::new(Status {
                running: matches!(start, Start::Adopt { .. }),
                ..Status::default()
            }),
            stop,
            task: Mutex::new(None),
        });
        lock(&self.live).insert(id.to_owned(), Arc::clone(&live));
        let task = tokio::spawn(supervisor::supervise(
            Arc::clone(self),
            id.to_owned(),
            start,
            config,
            stopped,
        ));
        *lock(&live.task) = Some(task);
    }

    pub(crate) async fn record(&self, id: &str) -> Option<InstanceRecord> {
        self.state.lock().await.instance(id).cloned()
    }

    pub(crate) fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.get(name)
    }

    pub(crate) fn pool(&self, record: &InstanceRecord) -> Option<&Pool> {
        self.services.get(&record.service)?.pools.get(&record.pool)
    }

    pub(crate) fn timing(&self) -> &LocalTiming {
        &self.timing
    }

    /// Changes a record and saves the state; false when the record is gone.
    pub(crate) async fn update_record(
        &self,
        id: &str,
        change: impl FnOnce(&mut InstanceRecord),
    ) -> Result<bool, String> {
        let mut state = self.state.lock().await;
        let mut next = state.clone();
        let Some(record) = next.instance_mut(id) else {
            return Ok(false);
        };
        change(record);
        state::save(&self.state_path, &next).map_err(|e| e.to_string())?;
        *state = next;
        Ok(true)
    }

    /// The release's unpacked directory, unpacking it the first time.
    pub(crate) async fn unpacked(&self, release: &ReleaseRef) -> Result<PathBuf, String> {
        let hex = release
            .artifact
            .strip_prefix("sha256:")
            .filter(|hex| {
                hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
            .ok_or_else(|| {
                format!(
                    "artifact digest `{}` is not `sha256:` followed by 64 lowercase hex digits",
                    release.artifact
                )
            })?
            .to_owned();
        let _one_at_a_time = self.unpacking.lock().await;
        let artifact = self.artifact_dir.join("sha256").join(&hex);
        let releases = self.releases_dir.clone();
        tokio::task::spawn_blocking(move || unpack::unpack(&artifact, &releases, &hex))
            .await
            .map_err(|e| format!("unpacking panicked: {e}"))?
            .map_err(|e| format!("cannot unpack {} ({}): {e}", release.label, release.version))
    }

    /// A free loopback port no other instance of this target was given.
    pub(crate) async fn free_port(&self) -> Result<u16, String> {
        let taken: BTreeSet<u16> = self
            .state
            .lock()
            .await
            .instances
            .iter()
            .map(|r| r.port)
            .collect();
        for _ in 0..20 {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| format!("cannot find a free port: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            if !taken.contains(&port) {
                return Ok(port);
            }
        }
        Err("cannot find a free port".to_owned())
    }

    /// The variables an instance's process gets, besides the inherited environment minus any
    /// `SLIPWAY_*`.
    pub(crate) fn instance_variables(
        &self,
        record: &InstanceRecord,
        port: u16,
    ) -> Vec<(&'static str, String)> {
        let mut variables = vec![("PORT", port.to_string())];
        variables.extend(self.release_variables(
            record.service.as_str(),
            record.region.as_deref(),
            &record.release,
        ));
        variables.push(("SLIPWAY_POOL", record.pool.clone()));
        variables.push(("SLIPWAY_INSTANCE", record.id.clone()));
        variables
    }

    /// slipway's own variables of everything run for a release: instances and tasks. The
    /// values of its config version come separately ([`Shared::read_config`]), read at each
    /// start and never kept.
    fn release_variables(
        &self,
        service: &str,
        region: Option<&str>,
        release: &ReleaseRef,
    ) -> Vec<(&'static str, String)> {
        let mut variables = vec![
            ("SLIPWAY_SERVICE", service.to_owned()),
            ("SLIPWAY_ENVIRONMENT", self.environment.clone()),
            ("SLIPWAY_REGION", region.unwrap_or_default().to_owned()),
            ("SLIPWAY_RELEASE", release.label.clone()),
            ("SLIPWAY_VERSION", release.version.clone()),
        ];
        if let Some(version) = release.config_version {
            variables.push((delivery::VERSION_VARIABLE, version.to_string()));
        }
        variables
    }

    /// The values of the config version `release` pins, read now for one start; `None` when it
    /// pins none. The error names the service, environment and version, never a value.
    pub(crate) async fn read_config(
        &self,
        service: &str,
        release: &ReleaseRef,
    ) -> Result<Option<ConfigVariables>, String> {
        delivery::read(self.config.as_deref(), service, &self.environment, release).await
    }

    /// Opens `id`'s log file for appending, creating its directory.
    pub(crate) fn open_log(&self, service: &str, id: &str) -> Result<File, String> {
        let path = self.log_file(service, id);
        open_append(&path)
    }

    /// Appends a line of slipway's own to an instance's log, so the log tells its whole story.
    pub(crate) fn note_in_log(&self, service: &str, id: &str, note: &str) {
        use std::io::Write;
        if let Ok(mut file) = self.open_log(service, id) {
            let _ = writeln!(file, "--- slipway {}: {note}", now());
        }
    }

    /// The last lines of an instance's log, at most `limit` bytes.
    fn log_tail(&self, service: &str, id: &str, limit: usize) -> String {
        tail_of_file(&self.log_file(service, id), limit)
    }

    /// Tells the proxy which instances of a route may take traffic: those of pools with
    /// `traffic = true` that run, healthy or not (an unhealthy one gets none).
    pub(crate) async fn sync_backends(&self, service: &str, region: Option<&str>) {
        self.sync_backends_with(service, region, None::<(&str, fn(&mut Status))>)
            .await;
    }

    /// Changes instance `id`'s status, telling the proxy first: nobody sees the new status
    /// before the proxy routes by it.
    pub(crate) async fn sync_backends_then(
        &self,
        service: &str,
        region: Option<&str>,
        id: &str,
        change: impl FnOnce(&mut Status) + Send,
    ) {
        self.sync_backends_with(service, region, Some((id, change)))
            .await;
    }

    /// [`Shared::sync_backends`], with `changed`'s status change applied, under the same lock,
    /// once the proxy has it.
    async fn sync_backends_with(
        &self,
        service: &str,
        region: Option<&str>,
        changed: Option<(&str, impl FnOnce(&mut Status) + Send)>,
    ) {
        let _in_order = self.backends.lock().await;
        // The changed instance and its status as it is about to be.
        let next = changed.and_then(|(id, change)| {
            let mut status = self.status(id)?;
            change(&mut status);
            Some((id, status))
        });
        if self.closed.load(Ordering::SeqCst) {
            if let Some((id, next)) = next {
                self.set_status(id, |status| *status = next);
            }
            return;
        }
        let backends: Vec<Backend> = {
            let state = self.state.lock().await;
            state
                .instances
                .iter()
                .filter(|r| r.service == service && r.region.as_deref() == region)
                .filter(|r| self.pool(r).is_some_and(|p| p.traffic))
                .filter(|r| r.pid.is_some() && r.port != 0)
                .map(|r| {
                    let status = match &next {
                        Some((id, next)) if *id == r.id => next.clone(),
                        _ => self.status(&r.id).unwrap_or_default(),
                    };
                    Backend {
                        id: r.id.clone(),
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, r.port)),
                        version: r.release.label.clone(),
                        healthy: status.running && status.healthy,
                    }
                })
                .collect()
        };
        let route = route_for(&self.environment, service, region);
        if let Err(error) = self.proxy.set_backends(&route, backends).await {
            tracing::error!(%route, %error, "cannot update the proxy's backends");
        }
        if let Some((id, next)) = next {
            self.set_status(id, |status| *status = next);
        }
    }

    /// Drains instance `id` through the proxy, ends its supervision and its process group, and
    /// forgets it. Returns a line for the event log, or why it could not be stopped: then its
    /// record stays, marked stopping (never restarted), and a retried stop tries again. An
    /// instance whose drain failed is not killed.
    async fn stop_instance(&self, id: &str) -> Result<String, String> {
        let Some(record) = self.record(id).await else {
            return Ok(format!("{id}: already gone"));
        };
        let port = record.port;
        let failed = move |why: String| format!("{id} (port {port}): {why}");
        if !record.stopping {
            match self.update_record(id, |r| r.stopping = true).await {
                Ok(true) => {}
                Ok(false) => return Ok(format!("{id}: already gone")),
                Err(error) => return Err(failed(format!("not stopped: {error}"))),
            }
        }
        let mut parts = Vec::new();
        if self.pool(&record).is_some_and(|p| p.traffic) {
            let route = route_for(&self.environment, &record.service, record.region.as_deref());
            match self
                .proxy
                .drain(&route, id, self.timing.drain_timeout)
                .await
            {
                Ok(report) if report.cut_off > 0 => parts.push(format!(
                    "drained ({} request(s) finished, {} cut off after {}s)",
                    report.finished,
                    report.cut_off,
                    self.timing.drain_timeout.as_secs()
                )),
                Ok(report) => {
                    parts.push(format!("drained ({} request(s) finished)", report.finished))
                }
                Err(ProxyError::UnknownBackend { .. }) => {}
                Err(error) => {
                    let why = format!("not drained, so left running: {error}");
                    self.note_in_log(&record.service, id, &format!("stop failed: {why}"));
                    return Err(failed(why));
                }
            }
        }
        let live = lock(&self.live).get(id).cloned();
        let mut child = None;
        if let Some(live) = &live {
            let _ = live.stop.send(true);
            let task = lock(&live.task).take();
            if let Some(task) = task {
                child = task.await.ok().flatten();
            }
        }
        // The supervisor may have restarted it meanwhile: read the pid again.
        let record = self.record(id).await.unwrap_or(record);
        let ended = match record.pid {
            Some(pid) => {
                process::end_instance(pid, record.start_time, self.timing.stop_grace).await
            }
            None => "was not running",
        };
        if let Some(child) = child.as_mut() {
            if ended == process::NOT_KILLED {
                // Reaped if it ever exits; waiting here could take forever.
                let _ = child.try_wait();
            } else {
                let _ = child.wait().await;
            }
        }
        parts.push(ended.to_owned());
        if ended == process::NOT_KILLED {
            let why = format!(
                "{}; its process group {} is still recorded",
                parts.join(", "),
                record.pid.unwrap_or_default()
            );
            self.note_in_log(&record.service, id, &format!("stop failed: {why}"));
            return Err(failed(why));
        }
        self.set_status(id, |s| {
            s.running = false;
            s.healthy = false;
            s.problem = Some("stopped".to_owned());
        });
        self.note_in_log(
            &record.service,
            id,
            &format!("stopped: {}", parts.join(", ")),
        );
        {
            let mut state = self.state.lock().await;
            if let Err(error) =
                self.commit(&mut state, |state| state.instances.retain(|r| r.id != id))
            {
                return Err(failed(format!(
                    "{}, but cannot be forgotten: {}",
                    parts.join(", "),
                    error.message
                )));
            }
        }
        lock(&self.live).remove(id);
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        self.sync_backends(&record.service, record.region.as_deref())
            .await;
        Ok(format!("{id} (port {}): {}", record.port, parts.join(", ")))
    }

    /// The service a scope names, or why there is none.
    fn scoped_service(&self, scope: &Scope) -> Result<&ServiceConfig, PluginError> {
        if scope.environment != self.environment {
            return Err(PluginError::new(format!(
                "the local target of `{}` was asked about environment `{}`",
                self.environment, scope.environment
            )));
        }
        self.services.get(&scope.service).ok_or_else(|| {
            PluginError::new(format!(
                "service `{}` is not in the config this server was started with; restart \
                 slipway serve after adding it",
                scope.service
            ))
        })
    }
}

fn open_append(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// The end of a file, at most `limit` bytes, from a line start when one is near.
fn tail_of_file(path: &Path, limit: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = length.saturating_sub(limit as u64);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::with_capacity(limit);
    let _ = file.take(limit as u64).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end();
    if start > 0 {
        match text.find('\n') {
            Some(newline) if newline < limit / 2 => format!("…{}", &text[newline + 1..]),
            _ => format!("…{text}"),
        }
    } else {
        text.to_owned()
    }
}

/// Now, for log notes.
fn now() -> slipway_core::time::Time {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    slipway_core::time::Time(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// `RC 3` as a file-name part: `rc3`.
fn file_part(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            '/' => Some('_'),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl Target for LocalTarget {
    async fn launch(
        &self,
        key: &EffectKey,
        scope: &Scope,
        request: &LaunchRequest,
    ) -> Result<String, PluginError> {
        let shared = &self.shared;
        let service = shared.scoped_service(scope)?;
        if let Some(pool) = request
            .pools
            .keys()
            .find(|p| !service.pools.contains_key(*p))
        {
            return Err(PluginError::new(format!(
                "service `{}` has no pool `{pool}` (its pools: {})",
                service.name,
                service.pools.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let label = &request.release.label;
        let key_text = key.to_string();
        if shared.state.lock().await.has_key(&key_text) {
            let counts = self.fleet(scope, label).await;
            return Ok(format!(
                "launch {key_text} was already done; {label}: {}/{} instance(s) healthy",
                counts.healthy, counts.desired
            ));
        }
        // A damaged artifact fails here, before anything starts.
        shared
            .unpacked(&request.release)
            .await
            .map_err(PluginError::new)?;
        // So does a config version that cannot be read; the instances this launch starts get
        // these values, read once for all of them.
        let config = shared
            .read_config(&scope.service, &request.release)
            .await
            .map_err(|why| PluginError::new(format!("launch of {label} failed: {why}")))?
            .map(Arc::new);

        let mut started = Vec::new();
        let mut kept = 0usize;
        {
            // Records are added to a copy, which becomes the state once it is saved.
            let mut guard = shared.state.lock().await;
            let mut state = guard.clone();
            for (pool, &count) in &request.pools {
                let entry = Desired {
                    service: scope.service.clone(),
                    region: scope.region.clone(),
                    release: label.clone(),
                    pool: pool.clone(),
                    count,
                };
                state.desired.retain(|d| {
                    !(d.service == entry.service
                        && d.region == entry.region
                        && d.release == entry.release
                        && d.pool == entry.pool)
                });
                state.desired.push(entry);
                let existing = state
                    .instances
                    .iter()
                    .filter(|r| {
                        r.service == scope.service
                            && r.region == scope.region
                            && &r.release.label == label
                            && &r.pool == pool
                    })
                    .count();
                kept += existing;
                for _ in existing..count as usize {
                    let id = loop {
                        let id = format!(
                            "{}-{:06x}",
                            file_part(pool),
                            rand::random::<u32>() & 0xff_ffff
                        );
                        if state.instance(&id).is_none() {
                            break id;
                        }
                    };
                    state.instances.push(InstanceRecord {
                        id: id.clone(),
                        service: scope.service.clone(),
                        region: scope.region.clone(),
                        pool: pool.clone(),
                        release: request.release.clone(),
                        port: 0,
                        pid: None,
                        start_time: None,
                        stopping: false,
                    });
                    started.push(id);
                }
            }
            shared.commit(&mut guard, move |next| *next = state)?;
        }
        tracing::info!(env = %shared.environment, service = %scope.service, release = %label,
            started = started.len(), kept, "launching");
        for id in &started {
            shared.supervise(id, Start::Spawn, config.clone());
        }
        // The supervisors hold the values until their first start; the launch keeps none while
        // it waits for health.
        drop(config);

        let limit = Duration::from_millis(request.timeout.as_millis());
        let deadline = tokio::time::Instant::now() + limit;
        let mut changes = shared.changes.subscribe();
        loop {
            changes.borrow_and_update();
            let short = self.unhealthy_instances(scope, label, &request.pools).await;
            if short.is_empty() {
                break;
            }
            // An instance that keeps failing to start will not be healthy by the deadline either.
            let crashing = started.iter().find_map(|id| {
                shared
                    .status(id)
                    .filter(|s| s.failed_starts >= LAUNCH_START_ATTEMPTS)
                    .map(|s| (id, s.failed_starts))
            });
            if let Some((id, attempts)) = crashing {
                let headline = format!(
                    "launch of {label} failed: instance {id} failed to start {attempts} times in a row"
                );
                let hint = "hint: it exits (or cannot be started) before its health check ever \
                            passes; its log above says why. Fix the release or the service's \
                            `start` command and deploy again; slipway keeps restarting it with \
                            backoff until the launch is stopped";
                let error = self
                    .launch_failure(scope, label, &request.pools, &headline)
                    .await;
                return Err(PluginError::new(format!("{}\n{hint}", error.message)));
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                let headline = format!("launch of {label} timed out after {}", request.timeout);
                return Err(self
                    .launch_failure(scope, label, &request.pools, &headline)
                    .await);
            }
        }
        {
            let mut state = shared.state.lock().await;
            shared.commit(&mut state, |state| state.add_key(key_text))?;
        }
        let ready = self.ready_list(scope, label).await;
        Ok(format!(
            "{label}: {} instance(s) healthy ({} started, {kept} already running){}",
            ready.len(),
            started.len(),
            list_section(&ready)
        ))
    }

    async fn set_traffic(
        &self,
        key: &EffectKey,
        scope: &Scope,
        split: &Split,
    ) -> Result<String, PluginError> {
        let shared = &self.shared;
        shared.scoped_service(scope)?;
        let route = route_for(&shared.environment, &scope.service, scope.region.as_deref());
        shared
            .proxy
            .set_split(&route, split)
            .await
            .map_err(|e| PluginError::new(format!("cannot set the traffic of {route}: {e}")))?;
        let weights: Vec<String> = split
            .weights
            .iter()
            .map(|(label, weight)| format!("{label}={weight}"))
            .collect();
        tracing::info!(env = %shared.environment, %route, key = %key, weights = %weights.join(","), "traffic set");
        let mut detail = format!("traffic of {route} now {}", weights.join(", "));
        if split.sticky {
            detail.push_str(" (sticky by cookie)");
        }
        if let (Some(header), Some(version)) = (&split.header, &split.header_version) {
            detail.push_str(&format!("; requests with `{header}` go to {version}"));
        }
        Ok(detail)
    }

    async fn stop(
        &self,
        key: &EffectKey,
        scope: &Scope,
        release: &ReleaseRef,
    ) -> Result<String, PluginError> {
        let shared = &self.shared;
        shared.scoped_service(scope)?;
        let key_text = key.to_string();
        shared.check_others_serve(scope, release).await?;
        let ids: Vec<String> = {
            let mut state = shared.state.lock().await;
            if state.has_key(&key_text) {
                return Ok(format!("stop {key_text} was already done"));
            }
            let belongs = |service: &str, region: &Option<String>, label: &str| {
                service == scope.service && *region == scope.region && label == release.label
            };
            shared.commit(&mut state, |state| {
                state
                    .desired
                    .retain(|d| !belongs(&d.service, &d.region, &d.release));
            })?;
            state
                .instances
                .iter()
                .filter(|r| belongs(&r.service, &r.region, &r.release.label))
                .map(|r| r.id.clone())
                .collect()
        };
        let reports = stop_reports(join_all(ids.iter().map(|id| shared.stop_instance(id))).await)?;
        {
            let mut state = shared.state.lock().await;
            shared.commit(&mut state, |state| state.add_key(key_text))?;
        }
        if reports.is_empty() {
            return Ok(format!("{} has no instance running", release.label));
        }
        Ok(format!(
            "stopped {} instance(s) of {}{}",
            reports.len(),
            release.label,
            list_section(&reports)
        ))
    }

    async fn run_task(
        &self,
        key: &EffectKey,
        scope: &Scope,
        task: &str,
        release: &ReleaseRef,
    ) -> Result<String, PluginError> {
        let shared = &self.shared;
        let service = shared.scoped_service(scope)?;
        if task != "migrate" {
            return Err(PluginError::new(format!(
                "the local target runs one task, `migrate`, not `{task}`"
            )));
        }
        let Some(command) = service.migrate.clone() else {
            return Ok(format!(
                "service `{}` has no `migrate` command; nothing to run",
                service.name
            ));
        };
        let key_text = key.to_string();
        if shared.state.lock().await.has_key(&key_text) {
            return Ok(format!(
                "{task} already ran with key {key_text}; not run again"
            ));
        }
        let dir = shared.unpacked(release).await.map_err(PluginError::new)?;
        let log = shared
            .logs_dir
            .join(&service.name)
            .join("tasks")
            .join(format!(
                "{}-{task}-{}.log",
                file_part(&release.label),
                file_part(&key_text)
            ));
        let config = shared
            .read_config(&service.name, release)
            .await
            .map_err(|why| {
                PluginError::new(format!("{task} of {} failed: {why}", release.label))
            })?;
        let mut variables =
            shared.release_variables(&service.name, scope.region.as_deref(), release);
        variables.push(("SLIPWAY_TASK", task.to_owned()));
        let started = tokio::time::Instant::now();
        let outcome = run_logged(
            &command,
            &dir,
            config.as_ref().map_or(&[], |c| c.pairs()),
            &variables,
            &log,
            shared.timing.task_timeout,
        )
        .await;
        drop(config);
        let elapsed = slipway_core::time::Span::from_millis(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        let output = match tail_of_file(&log, QUOTE_LIMIT) {
            tail if tail.trim().is_empty() => String::new(),
            tail => format!("\n{tail}"),
        };
        match outcome {
            Ok(()) => {
                let mut state = shared.state.lock().await;
                shared.commit(&mut state, |state| state.add_key(key_text))?;
                Ok(format!(
                    "{task} of {} finished in {elapsed}{output}",
                    release.label
                ))
            }
            Err(why) => Err(PluginError::new(format!(
                "{task} of {} {why}: `{command}` (output in {}){output}",
                release.label,
                log.display()
            ))),
        }
    }

    async fn observe(&self, scope: &Scope) -> Result<Observation, PluginError> {
        self.shared.scoped_service(scope)?;
        let labels: BTreeSet<String> = {
            let state = self.shared.state.lock().await;
            state
                .desired
                .iter()
                .filter(|d| d.service == scope.service && d.region == scope.region)
                .map(|d| d.release.clone())
                .chain(
                    state
                        .instances
                        .iter()
                        .filter(|r| r.service == scope.service && r.region == scope.region)
                        .map(|r| r.release.label.clone()),
                )
                .collect()
        };
        let mut fleets = Vec::new();
        for label in labels {
            fleets.push(self.fleet(scope, &label).await);
        }
        Ok(Observation { fleets })
    }
}

impl LocalTarget {
    /// What runs of one release in a scope.
    async fn fleet(&self, scope: &Scope, label: &str) -> FleetState {
        let state = self.shared.state.lock().await;
        let desired = state
            .desired
            .iter()
            .filter(|d| {
                d.service == scope.service && d.region == scope.region && d.release == label
            })
            .map(|d| d.count)
            .sum();
        let mut running = 0;
        let mut healthy = 0;
        let mut endpoints = Vec::new();
        for record in state.instances.iter().filter(|r| {
            r.service == scope.service && r.region == scope.region && r.release.label == label
        }) {
            let status = self.shared.status(&record.id).unwrap_or_default();
            running += u32::from(status.running);
            healthy += u32::from(status.running && status.healthy);
            let serves = self.shared.pool(record).is_some_and(|p| p.traffic);
            if status.running && status.healthy && serves && record.port != 0 {
                endpoints.push(format!("http://127.0.0.1:{}", record.port));
            }
        }
        FleetState {
            release: label.to_owned(),
            desired,
            running,
            healthy,
            endpoints,
        }
    }

    /// The pools of a launch that still lack healthy instances, with what they have.
    async fn unhealthy_instances(
        &self,
        scope: &Scope,
        label: &str,
        pools: &BTreeMap<String, u32>,
    ) -> Vec<(String, u32, u32)> {
        let state = self.shared.state.lock().await;
        pools
            .iter()
            .filter_map(|(pool, &wanted)| {
                let healthy = state
                    .instances
                    .iter()
                    .filter(|r| {
                        r.service == scope.service
                            && r.region == scope.region
                            && r.release.label == label
                            && &r.pool == pool
                    })
                    .filter(|r| {
                        self.shared
                            .status(&r.id)
                            .is_some_and(|s| s.running && s.healthy)
                    })
                    .count();
                let healthy = u32::try_from(healthy).unwrap_or(u32::MAX);
                (healthy < wanted).then(|| (pool.clone(), healthy, wanted))
            })
            .collect()
    }

    /// `web-3f9a1c on port 41234` for each instance of a release.
    async fn ready_list(&self, scope: &Scope, label: &str) -> Vec<String> {
        let state = self.shared.state.lock().await;
        state
            .instances
            .iter()
            .filter(|r| {
                r.service == scope.service && r.region == scope.region && r.release.label == label
            })
            .map(|r| format!("{} ({}) on port {}", r.id, r.pool, r.port))
            .collect()
    }

    /// Why a launch failed: each instance that is not healthy, its last problem and the end
    /// of its log.
    async fn launch_failure(
        &self,
        scope: &Scope,
        label: &str,
        pools: &BTreeMap<String, u32>,
        headline: &str,
    ) -> PluginError {
        let short = self.unhealthy_instances(scope, label, pools).await;
        let counts: Vec<String> = short
            .iter()
            .map(|(pool, healthy, wanted)| {
                format!("{healthy} of {wanted} `{pool}` instance(s) healthy")
            })
            .collect();
        let records: Vec<InstanceRecord> = {
            let state = self.shared.state.lock().await;
            state
                .instances
                .iter()
                .filter(|r| {
                    r.service == scope.service
                        && r.region == scope.region
                        && r.release.label == label
                })
                .cloned()
                .collect()
        };
        let mut details = Vec::new();
        let mut budget = QUOTE_LIMIT * 2;
        for record in records {
            let status = self.shared.status(&record.id).unwrap_or_default();
            if status.running && status.healthy {
                continue;
            }
            let problem = status
                .problem
                .unwrap_or_else(|| "not healthy yet".to_owned());
            let tail =
                self.shared
                    .log_tail(&record.service, &record.id, budget.min(QUOTE_LIMIT / 2));
            budget = budget.saturating_sub(tail.len());
            let tail = if tail.is_empty() {
                "  (its log is empty)".to_owned()
            } else {
                tail.lines()
                    .map(|l| format!("  | {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            details.push(format!(
                "{} on port {}: {problem}; last lines of {}:\n{tail}",
                record.id,
                record.port,
                self.shared.log_file(&record.service, &record.id).display()
            ));
        }
        PluginError::new(format!(
            "{headline}: {}\n{}",
            counts.join(", "),
            details.join("\n")
        ))
    }
}

/// Runs `command` with `/bin/sh -c` in `dir` with the `config` values and slipway's
/// `variables` in its environment, output appended to `log`, in a process group killed when it
/// outlives `limit` or when this future is dropped.
async fn run_logged(
    command: &str,
    dir: &Path,
    config: &[(String, String)],
    variables: &[(&'static str, String)],
    log: &Path,
    limit: Duration,
) -> Result<(), String> {
    use std::os::unix::process::ExitStatusExt;
    let file = open_append(log)?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut process = tokio::process::Command::new("/bin/sh");
    process
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    remove_slipway_variables(&mut process);
    for (name, value) in config {
        process.env(name, value);
    }
    for (name, value) in variables {
        process.env(name, value);
    }
    let mut child = process
        .spawn()
        .map_err(|e| format!("could not start /bin/sh in {}: {e}", dir.display()))?;
    let mut group = process::GroupGuard::new(child.id());
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(error)) => return Err(format!("could not be waited for: {error}")),
        Err(_) => {
            group.kill();
            let _ = child.wait().await;
            return Err(format!(
                "timed out after {}s; its process group was killed",
                limit.as_secs()
            ));
        }
    };
    group.release();
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(format!("failed with exit code {code}")),
        (None, Some(signal)) => Err(format!("was killed by signal {signal}")),
        (None, None) => Err(format!("failed ({status})")),
    }
}

/// Processes slipway starts see only the `SLIPWAY_*` variables it sets, never inherited ones
/// (such as a CLI's `SLIPWAY_TOKEN`). Only names are read here; values are never logged.
pub(crate) fn remove_slipway_variables(command: &mut tokio::process::Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SLIPWAY_") {
            command.env_remove(name);
        }
    }
}
