//! A throwaway PostgreSQL cluster for tests, started from the machine's own binaries.
//!
//! [`Postgres::start`] runs `initdb` into a fresh temporary directory, starts the server with
//! `pg_ctl start -w` on a free loopback port (and a unix socket inside that directory) and hands
//! out one empty database per test with [`Postgres::create_database`]. Durability is switched off
//! (`fsync`, `synchronous_commit`, `full_page_writes`) and local connections are trusted: the
//! cluster lives only as long as the tests that use it.
//!
//! The binaries come from Debian's `postgresql-15` package in [`DEFAULT_BIN_DIR`]; the
//! `SLIPWAY_POSTGRES_BIN_DIR` environment variable points the harness elsewhere. When they are
//! missing, [`Postgres::start`] returns `Ok(None)` so a developer without PostgreSQL can skip those
//! tests, except under `CI=true`, where a missing PostgreSQL is an error: CI must never skip
//! silently. `scripts/test-deps` installs what the test suite needs.
//!
//! PostgreSQL refuses to run as root. When the tests run as root, every PostgreSQL binary is
//! started as the `postgres` user through `runuser`, in a temporary directory `chown`ed to that
//! user; otherwise the binaries run as the current user.
//!
//! # Cleaning up
//!
//! Dropping a [`Postgres`] stops the server (`pg_ctl stop -m immediate -w`) and removes its
//! directory. That is not enough on its own: [`shared`] keeps its cluster in a `static`, which is
//! never dropped, and a test process killed by a signal drops nothing. So every cluster also gets
//! a watchdog, a detached `sh` loop started next to it:
//!
//! ```text
//! while kill -0 TEST_PID; do [ -d DIR ] || exit 0; sleep 1; done
//! pg_ctl stop -m immediate -w -D DIR/data; rm -rf DIR
//! ```
//!
//! It exits on its own once the directory is gone (the cluster was dropped), and otherwise stops
//! the cluster and removes the directory within about a second of the test process exiting. It
//! runs in its own process group, so a Ctrl-C aimed at `cargo test` does not kill it before it has
//! cleaned up. The harness only ever stops what it started: through `pg_ctl` on its own data
//! directory, never by process name.

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use tempfile::TempDir;

/// Where Debian's `postgresql-15` package installs `initdb`, `pg_ctl`, `postgres` and `psql`.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// Overrides [`DEFAULT_BIN_DIR`], for machines with another PostgreSQL version or layout.
pub const BIN_DIR_VAR: &str = "SLIPWAY_POSTGRES_BIN_DIR";

/// The superuser `initdb` creates and every URL connects as.
const SUPERUSER: &str = "postgres";

/// How long `pg_ctl` may wait for the server to start or stop, in seconds.
const PG_CTL_TIMEOUT_SECONDS: &str = "30";

/// How many ports to try when another process takes the free port we picked before the server
/// binds it.
const PORT_ATTEMPTS: usize = 5;

/// The longest database name PostgreSQL keeps without truncating it (`NAMEDATALEN - 1`).
const MAX_DATABASE_NAME_BYTES: usize = 63;

/// What can go wrong while starting or using a throwaway cluster.
///
/// `Debug` prints the same text as `Display`: tests `.expect()` these errors, and the panic
/// message should say what to do rather than show the variant's fields.
#[derive(thiserror::Error)]
pub enum PostgresError {
    /// `initdb` is not in the binary directory and `CI=true`, so the tests must not be skipped.
    #[error(
        "PostgreSQL binaries not found in {}; install postgresql-15 or run scripts/test-deps \
         (or set {BIN_DIR_VAR} to the directory holding initdb, pg_ctl and psql)",
        bin_dir.display()
    )]
    BinariesMissing { bin_dir: PathBuf },

    /// The tests run as root, which PostgreSQL refuses, and there is no `postgres` user to run
    /// it as instead.
    #[error(
        "running as root, but /etc/passwd has no `postgres` user to run PostgreSQL as (it refuses \
         to run as root); install postgresql-15, which creates that user, or run the tests as \
         another user"
    )]
    NoPostgresUser,

    /// A file system operation or spawning a program failed.
    #[error("could not {action}: {source}")]
    Io {
        /// What the harness was doing, e.g. "create a temporary directory".
        action: String,
        source: io::Error,
    },

    /// A PostgreSQL program (`initdb`, `pg_ctl`, `psql`) ran but exited with an error.
    #[error("`{command}` failed ({status}); its output:\n{output}")]
    CommandFailed {
        command: String,
        /// The exit status as the OS reports it.
        status: String,
        /// Its standard output and standard error together.
        output: String,
    },

    /// `pg_ctl start` failed or did not see the server accept connections in time.
    #[error(
        "PostgreSQL did not start on 127.0.0.1:{port} within {PG_CTL_TIMEOUT_SECONDS} s; \
         pg_ctl said:\n{pg_ctl_output}\nthe server log ends with:\n{log}"
    )]
    StartFailed {
        port: u16,
        pg_ctl_output: String,
        /// The last lines of the server's log, which usually say why.
        log: String,
    },

    /// A name passed to [`Postgres::create_database`] that is not a plain identifier.
    #[error(
        "invalid database name {name:?}: use 1 to {MAX_DATABASE_NAME_BYTES} characters from \
         a-z, 0-9 and _"
    )]
    InvalidDatabaseName { name: String },

    /// The cluster behind [`shared`] could not be started; every caller gets the same error.
    #[error("the shared PostgreSQL cluster could not be started: {0}")]
    Shared(#[source] Arc<PostgresError>),
}

impl fmt::Debug for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A running PostgreSQL cluster in a temporary directory, stopped and removed on drop.
///
/// Several tests can share one cluster, each in its own database from
/// [`create_database`](Self::create_database); see [`shared`] for one cluster per test binary.
#[derive(Debug)]
pub struct Postgres {
    /// Holds the data directory, the server log and the unix socket; removed on drop.
    dir: TempDir,
    bin_dir: PathBuf,
    port: u16,
    /// Whether every PostgreSQL binary has to run through `runuser -u postgres` (we are root).
    run_as_postgres: bool,
}

impl Postgres {
    /// Starts a cluster, or returns `Ok(None)` when the PostgreSQL binaries are not installed
    /// and the environment variable `CI` is not `true`. Under `CI=true` a missing PostgreSQL is
    /// [`PostgresError::BinariesMissing`], so the tests fail instead of skipping.
    pub fn start() -> Result<Option<Postgres>, PostgresError> {
        let bin_dir = std::env::var_os(BIN_DIR_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR));
        if !bin_dir.join("initdb").is_file() {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                return Err(PostgresError::BinariesMissing { bin_dir });
            }
            return Ok(None);
        }

        let run_as_postgres = effective_uid()? == 0;
        let dir = tempfile::Builder::new()
            .prefix("slipway-pg-")
            .tempdir()
            .map_err(io_error("create a temporary directory"))?;
        if run_as_postgres {
            let (uid, gid) = postgres_user_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(io_error("chown the temporary directory to postgres"))?;
        }

        let mut postgres = Postgres {
            dir,
            bin_dir,
            port: 0,
            run_as_postgres,
        };
        // The watchdog first, so a test process killed during `initdb` or `pg_ctl start` leaves
        // nothing behind either.
        postgres.spawn_watchdog()?;
        postgres.init_cluster()?;
        postgres.start_server()?;
        Ok(Some(postgres))
    }

    /// Creates a fresh, empty database `name` and returns its URL,
    /// `postgres://postgres@127.0.0.1:PORT/name`.
    ///
    /// Callers pass a name unique within the cluster (the test's name is a good one); an existing
    /// name is an error rather than a shared database. Names are limited to `[a-z0-9_]+` so they
    /// need no quoting anywhere.
    pub fn create_database(&self, name: &str) -> Result<String, PostgresError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_DATABASE_NAME_BYTES
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(PostgresError::InvalidDatabaseName {
                name: name.to_owned(),
            });
        }
        let mut psql = self.command("psql");
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .arg("-c")
            .arg(format!("CREATE DATABASE \"{name}\""));
        run(&mut psql)?;
        Ok(self.url(name))
    }

    /// The URL of database `db` in this cluster, connecting over TCP as `postgres` (trusted).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The loopback TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of PostgreSQL binaries this cluster was started from, for tests that want
    /// to run `psql` or `pg_dump` against it.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The cluster's data directory; it no longer exists once the cluster is dropped.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Runs `initdb` and appends the settings every start needs to `postgresql.conf`.
    fn init_cluster(&self) -> Result<(), PostgresError> {
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"])
            // The C locale exists on every machine, whatever LANG says.
            .args(["--locale=C", "--no-sync", "--no-instructions"]);
        run(&mut initdb)?;

        // Appending keeps the file's owner (postgres) even when we write it as root.
        let settings = format!(
            "\n# slipway-testkit: a throwaway cluster, durability off for speed\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            self.dir.path().display().to_string().replace('\'', "''"),
        );
        let config = self.data_dir().join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .and_then(|mut file| io::Write::write_all(&mut file, settings.as_bytes()))
            .map_err(io_error("append test settings to postgresql.conf"))
    }

    /// Starts the server on a free port, retrying with another port when something else took
    /// ours between picking it and the server binding it.
    fn start_server(&mut self) -> Result<(), PostgresError> {
        let mut attempt = 1;
        loop {
            self.port = free_port()?;
            let mut pg_ctl = self.command("pg_ctl");
            pg_ctl
                .args(["start", "-w", "-t", PG_CTL_TIMEOUT_SECONDS, "-D"])
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file())
                .args(["-o", &format!("-p {}", self.port)]);
            let output = pg_ctl
                .output()
                .map_err(io_error(&format!("run {}", describe(&pg_ctl))))?;
            if output.status.success() {
                return Ok(());
            }
            let log = fs::read_to_string(self.log_file()).unwrap_or_default();
            let port_taken = log.contains("Address already in use");
            if port_taken && attempt < PORT_ATTEMPTS {
                attempt += 1;
                continue;
            }
            // A server that started but missed the deadline must not outlive this error.
            self.stop();
            return Err(PostgresError::StartFailed {
                port: self.port,
                pg_ctl_output: combined_output(&output),
                log: last_lines(&log, 20),
            });
        }
    }

    /// Starts the detached loop that stops the cluster once this process is gone; see the
    /// module documentation.
    fn spawn_watchdog(&self) -> Result<(), PostgresError> {
        const SCRIPT: &str = r#"
            test_pid=$1; dir=$2; shift 2
            (
                while kill -0 "$test_pid" 2>/dev/null; do
                    [ -d "$dir" ] || exit 0
                    sleep 1
                done
                "$@" >/dev/null 2>&1
                rm -rf "$dir"
            ) </dev/null >/dev/null 2>&1 &
        "#;
        let stop = self.stop_command();
        let mut watchdog = Command::new("sh");
        remove_pg_variables(&mut watchdog);
        watchdog
            .args(["-c", SCRIPT, "slipway-pg-watchdog"])
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .arg(stop.get_program())
            .args(stop.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not the test's directory: the loop outlives it and `postgres` may not enter it.
            .current_dir("/")
            // Out of the terminal's process group: Ctrl-C on the tests must not kill it.
            .process_group(0);
        // The outer shell exits at once; the loop it leaves behind belongs to init, so no
        // zombie waits on this process.
        let status = watchdog
            .status()
            .map_err(io_error("start the cleanup watchdog"))?;
        if status.success() {
            Ok(())
        } else {
            Err(PostgresError::CommandFailed {
                command: "sh -c <watchdog>".to_owned(),
                status: status.to_string(),
                output: String::new(),
            })
        }
    }

    fn stop_command(&self) -> Command {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .args([
                "stop",
                "-m",
                "immediate",
                "-w",
                "-t",
                PG_CTL_TIMEOUT_SECONDS,
                "-D",
            ])
            .arg(self.data_dir());
        pg_ctl
    }

    /// Stops the server if it runs; a cluster that never started is fine.
    fn stop(&self) {
        let mut pg_ctl = self.stop_command();
        // Nothing useful to do with a failure here: the watchdog tries again after we exit.
        let _ = pg_ctl.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }

    /// A command for one of the PostgreSQL binaries, run as `postgres` when we are root, in the
    /// cluster's directory (the user may not be allowed into ours) and without `PG*` variables
    /// that would point it at another server.
    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = if self.run_as_postgres {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", SUPERUSER, "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        remove_pg_variables(&mut command);
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        // `TempDir` removes the directory after this.
    }
}

/// One cluster per test process, started on first use and shared by every test in it; each test
/// takes its own database with [`Postgres::create_database`].
///
/// Returns `Ok(None)` where [`Postgres::start`] does (no PostgreSQL, not on CI). The cluster is
/// never dropped; its watchdog stops it and removes its directory after the process exits (see
/// the module documentation).
pub fn shared() -> Result<Option<&'static Postgres>, PostgresError> {
    static SHARED: OnceLock<Result<Option<Postgres>, Arc<PostgresError>>> = OnceLock::new();
    match SHARED.get_or_init(|| Postgres::start().map_err(Arc::new)) {
        Ok(postgres) => Ok(postgres.as_ref()),
        Err(error) => Err(PostgresError::Shared(Arc::clone(error))),
    }
}

/// Asks the OS for a free loopback port. The listener is dropped before the server binds the
/// port, so another process may take it first; [`Postgres::start_server`] retries then.
fn free_port() -> Result<u16, PostgresError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(io_error("bind 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("read the port of a listener"))?
        .port();
    Ok(port)
}

/// The effective user id of this process, from `/proc/self/status` (reading it needs no
/// `unsafe` call to `geteuid`).
fn effective_uid() -> Result<u32, PostgresError> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(io_error("read /proc/self/status to find the current user"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| PostgresError::Io {
            action: "find the effective user id in /proc/self/status".to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, "no `Uid:` line"),
        })
}

/// The uid and gid of the `postgres` user from `/etc/passwd`.
fn postgres_user_ids() -> Result<(u32, u32), PostgresError> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(io_error("read /etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next() != Some(SUPERUSER) {
                return None;
            }
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or(PostgresError::NoPostgresUser)
}

/// Keeps `PGHOST`, `PGPORT`, `PGDATA` and friends from the caller's environment away from the
/// PostgreSQL programs, so they only ever act on this cluster.
fn remove_pg_variables(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            command.env_remove(name);
        }
    }
}

/// Runs a command to completion, turning a non-zero exit into [`PostgresError::CommandFailed`].
fn run(command: &mut Command) -> Result<Output, PostgresError> {
    let output = command
        .output()
        .map_err(io_error(&format!("run {}", describe(command))))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(PostgresError::CommandFailed {
            command: describe(command),
            status: output.status.to_string(),
            output: combined_output(&output),
        })
    }
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        let _ = write!(text, " {}", arg.to_string_lossy());
    }
    text
}

fn combined_output(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text.trim_end().to_owned()
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

fn io_error(action: &str) -> impl FnOnce(io::Error) -> PostgresError + '_ {
    move |source| PostgresError::Io {
        action: action.to_owned(),
        source,
    }
}
