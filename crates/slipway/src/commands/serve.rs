//! `slipway serve`: the API server, the engine and slipway's proxy in one process, until SIGINT
//! or SIGTERM.
//!
//! On shutdown the listeners stop accepting, requests in flight finish, and the engine ends its
//! pass (every effect it started is recorded) and gives up its lease, so another server can take
//! over at once. Nothing is left half-written: every write is one transaction. Instances of
//! `local` environments keep running (the next start adopts them) unless `--stop-instances`
//! asks for them to be drained and stopped too.
//!
//! [`start`] brings the whole control plane up in-process and returns a [`Running`] handle, so
//! other commands (`slipway demo`) can embed it; [`run`] is `start`, the signal, and shutdown.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use slipway_core::config::{Config, ProxyListener, parse_config};
use slipway_engine::clock::{Clock, SystemClock};
use slipway_engine::plugin::Verifier;
use slipway_engine::preflight::checklist::ChecklistCheck;
use slipway_engine::preflight::compat::CompatCheck;
use slipway_engine::preflight::provenance::ProvenanceCheck;
use slipway_engine::preflight::schedule::ScheduleCheck;
use slipway_engine::{Engine, EngineConfig, Plugins};
use slipway_secrets::{ConfigCheck, MASTER_KEY_VARIABLE, Vault, load_keyring};
use slipway_server::auth::{new_token, token_hash};
use slipway_server::publish::{NotesPublisher, notes_destinations};
use slipway_server::{AppState, Blobs, ExtraMetrics, Metrics, Settings, Shared};
use slipway_store::Store;
use slipway_targets::proxy::{self, Proxy};
use slipway_targets::{Driver, LocalTarget, LocalTiming, TargetContext};
use slipway_verify::Source;
use slipway_verify::markers::Markers;
use slipway_verify::prometheus::Prometheus;
use slipway_verify::proxy_source::ProxySource;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ConfigPath, read_config_text};
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    config: ConfigPath,
    /// Address to listen on (overrides [server] listen); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory for the SQLite database, artifacts and the first admin token (overrides
    /// [server] data_dir, which is relative to the config file).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL, `sqlite://PATH` or `postgres://…` (overrides [server] database).
    #[arg(
        long,
        value_name = "URL",
        env = "SLIPWAY_DATABASE",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Largest artifact upload in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    max_artifact_size: u64,
    /// On shutdown, also drain and stop every instance of the `local` environments (by default
    /// they keep running and the next start adopts them).
    #[arg(long)]
    stop_instances: bool,
}

/// What [`start`] needs: the parsed config and where things go, already resolved.
pub(crate) struct StartOptions {
    pub(crate) config: Config,
    /// The config file's directory: `command` targets run there.
    pub(crate) config_dir: PathBuf,
    pub(crate) data_dir: PathBuf,
    /// The API's address; port 0 picks a free one.
    pub(crate) listen: String,
    /// A database URL; SQLite in `data_dir` when `None`.
    pub(crate) database: Option<String>,
    pub(crate) max_artifact_size: u64,
}

/// Where slipway's proxy serves a service of a `local` environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    pub(crate) service: String,
    pub(crate) environment: String,
    /// `None` when the environment lists no regions.
    pub(crate) region: Option<String>,
    /// `http://127.0.0.1:7800`.
    pub(crate) url: String,
}

/// A control plane started by [`start`]: API server, engine and proxy listeners. Stop it with
/// [`Running::shutdown`] (or [`Running::shutdown_stopping_instances`]).
pub(crate) struct Running {
    /// `http://127.0.0.1:PORT` of the API and dashboard.
    pub(crate) url: String,
    /// The first admin's token when this start created it (an empty database), else `None`.
    pub(crate) admin_token: Option<String>,
    /// Every proxy listener: where each service of a `local` environment answers.
    pub(crate) proxy_urls: Vec<ProxyUrl>,
    pub(crate) data_dir: PathBuf,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    engine: JoinHandle<Result<(), slipway_engine::EngineError>>,
    proxies: Vec<JoinHandle<Result<(), proxy::ProxyError>>>,
    local_targets: Vec<Arc<LocalTarget>>,
    store: Store,
    /// The train's schedules (`[[service.source.schedule]]`); done at once without any.
    schedules: JoinHandle<()>,
    /// Sends `[[notify]]` notifications; `None` when none is configured.
    deliverer: Option<JoinHandle<()>>,
}

pub(crate) async fn run(args: &Args) -> Result<ExitCode> {
    let config_path = &args.config.path;
    let text = read_config_text(config_path)?;
    let invalid = |errors: slipway_core::config::ConfigErrors| {
        Failure::new(
            "invalid_config",
            format!("{} is not valid:\n{errors}", config_path.display()),
        )
        .hint(format!(
            "fix it and check with `slipway check-config --config {}`",
            config_path.display()
        ))
    };
    let mut config = parse_config(&config_path.display().to_string(), &text).map_err(invalid)?;
    super::schedule::attach_calendars(&mut config, config_path).map_err(invalid)?;
    let base = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let listen = args.listen.clone().unwrap_or(config.server.listen.clone());
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| base.join(&config.server.data_dir));
    let database = args
        .database
        .clone()
        .or_else(|| config.server.database.clone());
    let running = start(StartOptions {
        config,
        config_dir: base,
        data_dir,
        listen,
        database,
        max_artifact_size: args.max_artifact_size,
    })
    .await?;
    // Tests and scripts read the first of these lines to find the port.
    eprintln!(
        "slipway: listening on {} (data in {})",
        running.url,
        running.data_dir.display()
    );
    if running.admin_token.is_some() {
        let file = running.data_dir.join("admin-token");
        eprintln!(
            "slipway: created user `admin`; its token is in {} (readable only by you).\n  \
             hint: export SLIPWAY_TOKEN=$(cat {})",
            file.display(),
            file.display()
        );
    }
    for proxy in &running.proxy_urls {
        let region = proxy
            .region
            .as_deref()
            .map(|r| format!(" region {r}"))
            .unwrap_or_default();
        eprintln!(
            "slipway: proxy for {} in {}{region} at {}",
            proxy.service, proxy.environment, proxy.url
        );
    }

    let signal = shutdown_signal().await;
    eprintln!("slipway: {signal} received; finishing requests and the engine's current pass");
    if args.stop_instances {
        running.shutdown_stopping_instances().await?;
    } else {
        let adopted_later = !running.local_targets.is_empty();
        running.shutdown().await?;
        if adopted_later {
            eprintln!(
                "slipway: local instances keep running; the next start adopts them \
                 (`slipway serve --stop-instances` stops them on shutdown)"
            );
        }
    }
    eprintln!("slipway: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The vault of config versions, when a master key is configured (`SLIPWAY_MASTER_KEY` or
/// `[secrets] key_file`).
async fn open_vault(
    config: &Config,
    config_dir: &Path,
    store: &Store,
) -> Result<Option<Arc<Vault>>> {
    let variable = std::env::var(MASTER_KEY_VARIABLE).ok();
    let keyring =
        load_keyring(&config.secrets, config_dir, variable.as_deref()).map_err(|error| {
            Failure::new("master_key_unusable", error.to_string()).hint(
                "write a key with `slipway config keygen --out master.key` and name it in \
             [secrets] key_file, or set SLIPWAY_MASTER_KEY",
            )
        })?;
    let Some(keyring) = keyring else {
        return Ok(None);
    };
    let vault = Vault::open(store.clone(), keyring).await.map_err(|error| {
        Failure::new("master_key_unusable", error.to_string()).hint(
            "start with the master key the stored config versions were sealed under (or list \
             it in [secrets] previous_key_files)",
        )
    })?;
    Ok(Some(Arc::new(vault)))
}

/// Starts the control plane in this process: binds the API's and the proxy's ports (a taken
/// one fails before anything is opened or created), opens the data directory, the store and
/// the proxy, builds every environment's target (a `local` one adopts the instances a previous
/// run left), and spawns the server, the engine and a proxy listener per service and region of
/// each `local` environment.
pub(crate) async fn start(options: StartOptions) -> Result<Running> {
    let StartOptions {
        config,
        config_dir,
        data_dir,
        listen,
        database,
        max_artifact_size,
    } = options;
    // The ports first: a taken one fails before anything is opened or created.
    let listener = TcpListener::bind(&listen).await.map_err(|error| {
        Failure::new(
            "cannot_listen",
            format!("cannot listen on {listen}: {error}"),
        )
        .hint("choose another address with --listen HOST:PORT (port 0 picks a free one)")
    })?;
    let address = listener.local_addr()?;
    let mut proxy_listeners = Vec::new();
    for spec in &config.proxy_listeners {
        let bound = bind_proxy(spec, &config.proxy_listeners).await?;
        proxy_listeners.push((spec.clone(), bound));
    }
    create_private_dir(&data_dir)?;
    let database = database.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("slipway.db").display()
        )
    });
    let store = Store::open(&database).await.map_err(|error| {
        Failure::new("database_unavailable", error.to_string())
            .hint("check the database URL and that the database is running")
    })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let admin_token_file = data_dir.join("admin-token");
    let admin_token = bootstrap_admin(&store, clock.now(), &admin_token_file).await?;
    let blobs = Blobs::open(&data_dir.join("artifacts"))?;
    let proxy =
        Proxy::open(data_dir.join("proxy.json"), proxy::Config::default()).map_err(|error| {
            Failure::new("proxy_unusable", error.to_string())
                .hint("the file keeps the proxy's routing; fix or remove it and start again")
        })?;

    let vault = open_vault(&config, &config_dir, &store).await?;
    let context = TargetContext {
        data_dir: data_dir.clone(),
        artifact_dir: blobs.root().to_owned(),
        workdir: config_dir.clone(),
        services: config.services.clone(),
        proxy: Some(proxy.clone()),
        local: LocalTiming::default(),
        config: vault
            .clone()
            .map(|vault| vault as Arc<dyn slipway_engine::plugin::ConfigSource>),
    };
    let (mut plugins, drivable, local_targets) = plugins(&config, &context).await?;
    plugins
        .preflight
        .push(Arc::new(ScheduleCheck::new(Arc::new(config.clone()))));
    if let Some(markers) = Markers::new(&config.markers, Some(format!("http://{address}"))) {
        plugins.notifiers.push(Arc::new(markers));
    }
    let deliverer = notifications(&config, &config_dir, &store, &clock, address, &mut plugins);
    let notes_wake = deliverer.as_ref().map(|d| d.wake_handle());
    if let Some(publisher) = NotesPublisher::new(
        store.clone(),
        Arc::new(config.clone()),
        config_dir.clone(),
        Arc::clone(&clock),
        notes_wake.clone(),
    ) {
        plugins.notifiers.push(Arc::new(publisher));
    }
    let chat_signing_secret = chat_signing_secret(&config, &config_dir)?;
    if !config.checklist.is_empty() {
        let check = ChecklistCheck::new(store.clone(), config.checklist.clone());
        plugins.preflight.push(Arc::new(check));
    }
    plugins
        .preflight
        .push(Arc::new(ProvenanceCheck::new(store.clone(), &config)));
    if let Some(vault) = &vault {
        let check = ConfigCheck::new(Arc::clone(vault), Arc::new(config.clone()));
        plugins.preflight.push(Arc::new(check));
    }
    if config
        .services
        .iter()
        .any(|service| service.source.is_some())
    {
        let check = CompatCheck::new(store.clone(), &config, &config_dir);
        plugins.preflight.push(Arc::new(check));
    }

    let metrics_proxy = proxy.clone();
    let state = AppState::new(Shared {
        store: store.clone(),
        config,
        blobs,
        clock: Arc::clone(&clock),
        metrics: Metrics::default(),
        settings: Settings {
            max_artifact_size,
            admin_token_file: Some(admin_token_file),
            drivable,
            logs_dir: Some(data_dir.join("logs")),
            extra_metrics: Some(ExtraMetrics(Arc::new(move || metrics_proxy.metrics_text()))),
            config_dir: Some(config_dir.clone()),
            chat_signing_secret,
            notes_wake,
            ..Settings::default()
        },
        vault,
    });
    // The engine and the scheduler each hold their own store lease under this name.
    let holder = format!("{}-{}", hostname(), std::process::id());
    let engine = Engine::new(
        store.clone(),
        plugins,
        clock,
        EngineConfig {
            holder: holder.clone(),
            ..EngineConfig::default()
        },
    );

    let (stop, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut proxy_urls = Vec::new();
    let mut proxies = Vec::new();
    for (spec, bound) in proxy_listeners {
        let url = format!("http://{}", bound.local_addr()?);
        let route =
            slipway_targets::route_for(&spec.environment, &spec.service, spec.region.as_deref());
        let proxy = proxy.clone();
        let shutdown = stopped(stop_rx.clone());
        proxies.push(tokio::spawn(async move {
            proxy.serve(route, bound, shutdown).await
        }));
        proxy_urls.push(ProxyUrl {
            service: spec.service,
            environment: spec.environment,
            region: spec.region,
            url,
        });
    }
    let engine = tokio::spawn(engine.run(stopped(stop_rx.clone())));
    let schedules = tokio::spawn(slipway_server::run_schedules(
        state.clone(),
        holder,
        stopped(stop_rx.clone()),
    ));
    let deliverer = deliverer.map(|d| tokio::spawn(d.run(stopped(stop_rx.clone()))));
    let server = tokio::spawn(slipway_server::serve(listener, state, stopped(stop_rx)));
    Ok(Running {
        url: format!("http://{address}"),
        admin_token,
        proxy_urls,
        data_dir,
        stop,
        server,
        engine,
        proxies,
        local_targets,
        store,
        schedules,
        deliverer,
    })
}

impl Running {
    /// Stops gracefully: the API and the proxy stop accepting and finish their requests, the
    /// engine finishes its pass and gives up its lease, the store closes. Local instances keep
    /// running for the next start to adopt.
    pub(crate) async fn shutdown(self) -> Result<()> {
        self.stop_all(false).await
    }

    /// [`Running::shutdown`], and every local instance drained and stopped before the proxy
    /// closes: nothing is left running (the demo, `serve --stop-instances`).
    pub(crate) async fn shutdown_stopping_instances(self) -> Result<()> {
        self.stop_all(true).await
    }

    async fn stop_all(self, stop_instances: bool) -> Result<()> {
        // The engine first, so it starts nothing more; the proxy last, so stopped instances
        // are drained through it.
        let _ = self.stop.send(true);
        let server = self.server.await;
        let engine = self.engine.await;
        let _ = self.schedules.await;
        if let Some(deliverer) = self.deliverer {
            let _ = deliverer.await;
        }
        let mut stopping = Vec::new();
        for target in &self.local_targets {
            if stop_instances {
                match target.stop_all().await {
                    Ok(detail) => tracing::info!("{detail}"),
                    Err(error) => stopping.push(error.message),
                }
            }
            target.close();
        }
        for proxy in self.proxies {
            proxy.await??;
        }
        self.store.close().await;
        server??;
        engine??;
        if !stopping.is_empty() {
            anyhow::bail!(
                "some local instances could not be stopped: {}",
                stopping.join("; ")
            );
        }
        Ok(())
    }
}

/// Binds a proxy listener. A configured address must be free; an assigned one (7800 upwards)
/// moves to the next free port when taken — by another program, or another slipway on this
/// machine — skipping the ports of the other listeners, and says so.
async fn bind_proxy(spec: &ProxyListener, all: &[ProxyListener]) -> Result<TcpListener> {
    let first = match TcpListener::bind(&spec.address).await {
        Ok(listener) => return Ok(listener),
        Err(error) if spec.configured => return Err(cannot_serve_proxy(spec, &error).into()),
        Err(error) => error,
    };
    let port = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
    };
    let reserved: std::collections::BTreeSet<u16> =
        all.iter().filter_map(|l| port(&l.address)).collect();
    let start = port(&spec.address).unwrap_or(ProxyListener::FIRST_DEFAULT_PORT);
    for candidate in (start.saturating_add(1)..=u16::MAX).take(200) {
        if reserved.contains(&candidate) {
            continue;
        }
        let address = format!("{}:{candidate}", ProxyListener::DEFAULT_HOST);
        if let Ok(listener) = TcpListener::bind(&address).await {
            eprintln!(
                "slipway: {} is taken ({first}); the proxy for {} in {} uses {address} instead \
                 (pin an address with `listen` in [environment.{}])",
                spec.address, spec.service, spec.environment, spec.environment
            );
            return Ok(listener);
        }
    }
    Err(cannot_serve_proxy(spec, &first).into())
}

/// Why a proxy listener could not be bound, and how to choose another address.
fn cannot_serve_proxy(spec: &ProxyListener, error: &std::io::Error) -> Failure {
    let region = spec
        .region
        .as_deref()
        .map(|r| format!(" region {r}"))
        .unwrap_or_default();
    let how = if spec.configured {
        "choose another address in"
    } else {
        "this port was assigned by default; set one with"
    };
    let example = match &spec.region {
        Some(region) => format!(
            "listen = {{ {} = {{ {region} = \"127.0.0.1:PORT\" }} }}",
            spec.service
        ),
        None => format!("listen = {{ {} = \"127.0.0.1:PORT\" }}", spec.service),
    };
    Failure::new(
        "cannot_listen",
        format!(
            "cannot serve {} of {}{region} on {}: {error}",
            spec.service, spec.environment, spec.address
        ),
    )
    .hint(format!(
        "{how} [environment.{}]: {example}",
        spec.environment
    ))
}

/// The first `serve` on an empty database creates user `admin` and a token for it, written to
/// `file` readable only by its owner, and returns the token. Later starts leave users alone.
///
/// The file is written (and renamed into place) before the user and token are committed in one
/// transaction: a crash in between leaves a file whose token does not work yet, and the next
/// start, still finding no users, writes a new one. Never an admin whose token nobody has.
async fn bootstrap_admin(
    store: &Store,
    now: slipway_core::time::Time,
    file: &Path,
) -> Result<Option<String>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let token = new_token();
    write_private_file(file, &format!("{token}\n"))?;
    if !store
        .bootstrap_admin("admin", &token_hash(&token), now)
        .await?
    {
        // Another server on the same database got there first.
        return Ok(None);
    }
    Ok(Some(token))
}

/// The target of every environment this server can drive, their names, and the local targets
/// (which shutdown closes, or stops).
async fn plugins(
    config: &Config,
    context: &TargetContext,
) -> Result<(
    Plugins,
    std::collections::BTreeSet<String>,
    Vec<Arc<LocalTarget>>,
)> {
    let mut targets = BTreeMap::new();
    let mut locals = Vec::new();
    for environment in &config.environments {
        let driver = slipway_targets::target_for(environment, context)
            .await
            .map_err(|error| {
                Failure::new("target_unavailable", error.to_string()).hint(
                    "slipway serve drives the instances of its data directory; check the \
                     directory and that no other slipway uses it",
                )
            })?;
        match driver {
            Some(driver) => {
                if let Driver::Local(local) = &driver {
                    locals.push(Arc::clone(local));
                }
                targets.insert(environment.name.clone(), driver.target());
            }
            None => tracing::warn!(
                environment = %environment.name,
                target = %environment.target,
                "no driver for this target yet; deploys to this environment are refused"
            ),
        }
    }
    let drivable = targets.keys().cloned().collect();
    Ok((
        Plugins {
            targets,
            verifier: Some(verifier(config, context, !locals.is_empty())),
            ..Plugins::default()
        },
        drivable,
        locals,
    ))
}

/// What runs a plan's checks: slipway's proxy as a metric source when a `local` environment
/// exists (sampled often enough for the shortest analysis step, kept for the longest window), and
/// Prometheus when `[prometheus]` is configured.
fn verifier(config: &Config, context: &TargetContext, local: bool) -> Arc<dyn Verifier> {
    let analyses = config.environments.iter().map(|e| &e.policy.analysis);
    let shortest_step = analyses.clone().map(|a| a.step).min().unwrap_or_default();
    let longest = analyses
        .map(|a| a.window.as_millis() + a.step.as_millis())
        .max()
        .unwrap_or_default();
    let resolution = Duration::from_millis(shortest_step.as_millis() / 2)
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let proxy = context.proxy.clone().filter(|_| local).map(|proxy| {
        let keep = Duration::from_millis(longest);
        Arc::new(ProxySource::start(proxy, resolution, keep)) as Arc<dyn Source>
    });
    let prometheus = config
        .prometheus
        .as_ref()
        .map(|p| Arc::new(Prometheus::new(p)));
    Arc::new(slipway_verify::Verifier::new(
        proxy,
        prometheus,
        Some(context.workdir.clone()),
    ))
}

/// Creates `dir` (and parents), readable only by its owner.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| {
                Failure::new(
                    "data_dir_unusable",
                    format!(
                        "cannot create the data directory {}: {error}",
                        dir.display()
                    ),
                )
                .hint("choose a writable directory with --data-dir DIR")
            })?;
    }
    let metadata = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the data directory {}", dir.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), "the data directory is readable by others");
    }
    Ok(())
}

/// Writes `text` to `path` with mode 0600: to a temporary file first, synced, then renamed, so
/// the file is either the old one or the whole new one.
fn write_private_file(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "slipway".to_owned())
}

/// Waits for SIGINT or SIGTERM and names it.
pub(crate) async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let term = async {
        match terminate.as_mut() {
            Some(stream) => {
                stream.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = term => "SIGTERM",
    }
}

/// The `[[notify]]` notifier, registered with the engine, and the deliverer that sends what it
/// and the release-notes publications enqueue; `None` when neither a `[[notify]]` destination
/// nor a `notes_webhook` is configured. Links point at `[server] public_url`, or at the API's
/// own address.
fn notifications(
    config: &slipway_core::config::Config,
    config_dir: &Path,
    store: &Store,
    clock: &Arc<dyn Clock>,
    address: std::net::SocketAddr,
    plugins: &mut slipway_engine::Plugins,
) -> Option<slipway_notify::Deliverer> {
    let notes = notes_destinations(config);
    if config.notify.is_empty() && notes.is_empty() {
        return None;
    }
    let deliverer = slipway_notify::Deliverer::new(
        store.clone(),
        config.notify.iter().cloned().chain(notes).collect(),
        config_dir.to_owned(),
        Arc::clone(clock),
        slipway_notify::DeliveryConfig::default(),
    );
    if !config.notify.is_empty() {
        let public_url = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        plugins
            .notifiers
            .push(Arc::new(slipway_notify::Notifications::new(
                store.clone(),
                config.notify.clone(),
                Some(public_url),
                Arc::clone(clock),
                deliverer.wake_handle(),
            )));
    }
    Some(deliverer)
}

/// The Slack signing secret of `[chat]`, read once at start; `None` without `[chat]`.
fn chat_signing_secret(
    config: &slipway_core::config::Config,
    config_dir: &Path,
) -> Result<Option<slipway_server::ChatSecret>> {
    use slipway_notify::SecretProblem;
    let Some(source) = &config.chat.signing_secret else {
        return Ok(None);
    };
    let secret = slipway_notify::read_secret(source, config_dir).map_err(|problem| match problem {
        SecretProblem::Unreadable(path, error) => Failure::new(
            "chat_secret_unreadable",
            format!("cannot read [chat] signing_secret_file {}: {error}", path.display()),
        )
        .hint("put the Slack app's Signing Secret in that file (Basic Information → App Credentials)"),
        SecretProblem::Unset(name) => Failure::new(
            "chat_secret_unset",
            format!("[chat] signing_secret_env names {name}, which is not set"),
        )
        .hint("export it with the Slack app's Signing Secret before starting slipway"),
        SecretProblem::Empty => {
            Failure::new("chat_secret_empty", "the [chat] signing secret is empty")
                .hint("put the Slack app's Signing Secret there")
        }
    })?;
    Ok(Some(slipway_server::ChatSecret::new(secret.as_bytes())))
}
