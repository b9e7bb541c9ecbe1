//! `slipway serve`: the API server and the engine in one process, until SIGINT or SIGTERM.
//!
//! On shutdown the listener stops accepting, requests in flight finish, and the engine ends its
//! pass (every effect it started is recorded) and gives up its lease, so another server can take
//! over at once. Nothing is left half-written: every write is one transaction.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use slipway_core::config::{Config, parse_config};
use slipway_engine::clock::{Clock, SystemClock};
use slipway_engine::{Engine, EngineConfig, Plugins};
use slipway_server::auth::{new_token, token_hash};
use slipway_server::{AppState, Blobs, Metrics, Settings, Shared};
use slipway_store::Store;
use slipway_targets::CommandSettings;
use tokio::sync::watch;

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
}

pub(crate) async fn run(args: &Args) -> Result<ExitCode> {
    let config_path = &args.config.path;
    let text = read_config_text(config_path)?;
    let config = parse_config(&config_path.display().to_string(), &text).map_err(|errors| {
        Failure::new(
            "invalid_config",
            format!("{} is not valid:\n{errors}", config_path.display()),
        )
        .hint(format!(
            "fix it and check with `slipway check-config --config {}`",
            config_path.display()
        ))
    })?;
    let base = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    // The port first: a taken one fails before anything is opened or created.
    let listen = args.listen.clone().unwrap_or(config.server.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|error| {
            Failure::new(
                "cannot_listen",
                format!("cannot listen on {listen}: {error}"),
            )
            .hint("choose another address with --listen HOST:PORT (port 0 picks a free one)")
        })?;
    let address = listener.local_addr()?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| base.join(&config.server.data_dir));
    create_private_dir(&data_dir)?;
    let database = args
        .database
        .clone()
        .or_else(|| config.server.database.clone())
        .unwrap_or_else(|| {
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
    bootstrap_admin(&store, clock.now(), &admin_token_file).await?;
    let blobs = Blobs::open(&data_dir.join("artifacts"))?;

    let (plugins, drivable) = plugins(&config, &blobs, &base)?;

    let state = AppState::new(Shared {
        store: store.clone(),
        config,
        blobs,
        clock: Arc::clone(&clock),
        metrics: Metrics::default(),
        settings: Settings {
            max_artifact_size: args.max_artifact_size,
            admin_token_file: Some(admin_token_file),
            drivable,
            ..Settings::default()
        },
    });
    let engine = Engine::new(
        store.clone(),
        plugins,
        clock,
        EngineConfig {
            holder: format!("{}-{}", hostname(), std::process::id()),
            ..EngineConfig::default()
        },
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let engine_task = tokio::spawn(engine.run(stopped(stop_rx.clone())));
    let server_task = tokio::spawn(slipway_server::serve(listener, state, stopped(stop_rx)));
    // Tests and scripts read this line to find the port.
    eprintln!(
        "slipway: listening on http://{address} (data in {})",
        data_dir.display()
    );

    let signal = shutdown_signal().await;
    eprintln!("slipway: {signal} received; finishing requests and the engine's current pass");
    let _ = stop_tx.send(true);
    server_task.await??;
    engine_task.await??;
    store.close().await;
    eprintln!("slipway: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The first `serve` on an empty database creates user `admin` and a token for it, written to
/// `file` readable only by its owner. Later starts leave users alone.
///
/// The file is written (and renamed into place) before the user and token are committed in one
/// transaction: a crash in between leaves a file whose token does not work yet, and the next
/// start, still finding no users, writes a new one. Never an admin whose token nobody has.
async fn bootstrap_admin(store: &Store, now: slipway_core::time::Time, file: &Path) -> Result<()> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let token = new_token();
    write_private_file(file, &format!("{token}\n"))?;
    if !store
        .bootstrap_admin("admin", &token_hash(&token), now)
        .await?
    {
        // Another server on the same database got there first.
        return Ok(());
    }
    eprintln!(
        "slipway: created user `admin`; its token is in {} (readable only by you).\n  \
         hint: export SLIPWAY_TOKEN=$(cat {})",
        file.display(),
        file.display()
    );
    Ok(())
}

/// The target of every environment this server can drive, and their names.
fn plugins(
    config: &Config,
    blobs: &Blobs,
    base: &Path,
) -> Result<(Plugins, std::collections::BTreeSet<String>)> {
    let settings = CommandSettings {
        artifact_dir: blobs.root().to_owned(),
        workdir: base.to_owned(),
    };
    let mut targets = BTreeMap::new();
    for environment in &config.environments {
        match slipway_targets::target_for(environment, &settings)? {
            Some(target) => {
                targets.insert(environment.name.clone(), target);
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
            ..Plugins::default()
        },
        drivable,
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
async fn shutdown_signal() -> &'static str {
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
