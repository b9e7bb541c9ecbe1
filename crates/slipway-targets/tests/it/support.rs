//! Building a command target from a real `slipway.toml` text, the facts tests pass to it, and
//! an in-memory source of config versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use slipway_core::config::{ConfigDelivery, EnvironmentConfig, parse_config};
use slipway_core::deploy::{DeployId, EffectKey, ReleaseRef};
use slipway_core::settings::{Entry, Values};
use slipway_core::time::Span;
use slipway_engine::plugin::{ConfigSource, LaunchRequest, PluginError, Scope};
use slipway_targets::{CommandSettings, CommandTarget};
use tempfile::TempDir;

/// A command target in a fresh directory, which is also where its commands run.
pub(crate) struct Harness {
    pub(crate) dir: TempDir,
    pub(crate) target: CommandTarget,
}

impl Harness {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file the script wrote, which must exist.
    pub(crate) fn read(&self, name: &str) -> String {
        let path = self.path(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("the script did not write {}: {error}", path.display()))
    }

    pub(crate) fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(str::to_owned).collect()
    }
}

/// The `staging` environment of a config whose `[environment.staging.command]` table holds
/// `commands` (TOML: literal strings `'''…'''` keep shell quoting readable).
pub(crate) fn environment(commands: &str) -> EnvironmentConfig {
    let text = format!(
        "[[service]]\nname = \"idp\"\nstart = \"bin/server\"\n\n\
         [environment.staging]\ntarget = \"command\"\n\n\
         [environment.staging.command]\n{commands}\n"
    );
    let config = parse_config("slipway.toml", &text).unwrap_or_else(|errors| panic!("{errors}"));
    config.environment("staging").unwrap().clone()
}

/// Commands that do nothing, to be overridden by a test's own keys.
pub(crate) const QUIET: [(&str, &str); 3] = [
    ("launch", "true"),
    ("stop", "true"),
    ("observe", "echo '{\"fleets\":[]}'"),
];

/// A harness whose command table is `commands` plus any of launch, stop and observe it leaves
/// out (as commands that do nothing).
pub(crate) fn harness(commands: &str) -> Harness {
    harness_with(commands, ConfigDelivery::Env, None)
}

/// [`harness`], handing config versions read from `source` to launch and task as `delivery`
/// says.
pub(crate) fn harness_with(
    commands: &str,
    delivery: ConfigDelivery,
    source: Option<Arc<dyn ConfigSource>>,
) -> Harness {
    let mut table = commands.to_owned();
    for (key, command) in QUIET {
        let set = commands.lines().any(|line| {
            line.trim_start().starts_with(&format!("{key} "))
                || line.trim_start().starts_with(&format!("{key}="))
        });
        if !set {
            table.push_str(&format!("\n{key} = '''{command}'''"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let settings = CommandSettings {
        artifact_dir: dir.path().join("artifacts"),
        workdir: dir.path().to_owned(),
        data_dir: dir.path().join("data"),
        config: source,
    };
    if delivery == ConfigDelivery::File {
        table.push_str("\nconfig = \"file\"");
    }
    let environment = environment(&table);
    assert_eq!(environment.command.as_ref().unwrap().config, delivery);
    let target = CommandTarget::new(&environment, settings).unwrap();
    Harness { dir, target }
}

/// The key of operation `op` of deploy 7, step 3, attempt 1: `7/3/1/op`.
pub(crate) fn key(op: &str) -> EffectKey {
    EffectKey {
        deploy: DeployId(7),
        step: "3".to_owned(),
        attempt: 1,
        op: op.to_owned(),
    }
}

pub(crate) fn scope(region: Option<&str>) -> Scope {
    Scope {
        service: "idp".to_owned(),
        environment: "staging".to_owned(),
        region: region.map(str::to_owned),
    }
}

/// Release `RC n`: version `1.n.0`, digest `sha256:` and `n` in 64 hex digits.
pub(crate) fn release(n: u32) -> ReleaseRef {
    ReleaseRef {
        label: format!("RC {n}"),
        version: format!("1.{n}.0"),
        artifact: format!("sha256:{n:064x}"),
        config: format!("config-{n}"),
        config_version: None,
    }
}

/// Two `web` and one `worker` instance of `release`, within ten minutes.
pub(crate) fn launch_request(release: ReleaseRef) -> LaunchRequest {
    LaunchRequest {
        release,
        pools: BTreeMap::from([("web".to_owned(), 2), ("worker".to_owned(), 1)]),
        timeout: Span::from_secs(600),
    }
}

/// Waits until `condition` holds, failing the test with `what` after `limit`.
pub(crate) async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` still runs (a zombie has already died).
pub(crate) fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pid a script wrote to `path`, once it has written it.
pub(crate) async fn pid_in(path: &Path) -> u32 {
    wait_until(
        "the script wrote its child's pid",
        Duration::from_secs(10),
        || std::fs::read_to_string(path).is_ok_and(|text| text.ends_with('\n')),
    )
    .await;
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Config versions held in memory: what the vault gives the targets in slipway, without its
/// keyring and store (those are tested end to end elsewhere). Counts its reads; can be told to
/// fail.
#[derive(Default)]
pub(crate) struct MemoryConfig {
    versions: std::sync::Mutex<BTreeMap<(String, String, u64), Values>>,
    reads: AtomicUsize,
    failing: AtomicBool,
}

impl MemoryConfig {
    /// A source holding version `version` of `service` in `environment` with `values`
    /// (`(key, value, secret)`).
    pub(crate) fn with(
        service: &str,
        environment: &str,
        version: u64,
        values: &[(&str, &str, bool)],
    ) -> Arc<MemoryConfig> {
        let values = values
            .iter()
            .map(|&(key, value, secret)| {
                let entry = Entry {
                    value: value.to_owned(),
                    secret,
                };
                (key.to_owned(), entry)
            })
            .collect();
        let source = MemoryConfig::default();
        source.versions.lock().unwrap().insert(
            (service.to_owned(), environment.to_owned(), version),
            values,
        );
        Arc::new(source)
    }

    /// How many times a target asked for values.
    pub(crate) fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// From now on, every read fails.
    pub(crate) fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl ConfigSource for MemoryConfig {
    async fn values(
        &self,
        service: &str,
        environment: &str,
        version: u64,
    ) -> Result<Values, PluginError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(PluginError::new("the vault is sealed (a test said so)"));
        }
        let key = (service.to_owned(), environment.to_owned(), version);
        self.versions
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .ok_or_else(|| {
                PluginError::new(format!(
                    "config version {version} of {service} in {environment} does not exist"
                ))
            })
    }
}

/// Every file under `dir` whose bytes contain `needle`.
pub(crate) fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && std::fs::read(&path).is_ok_and(|bytes| {
                    bytes
                        .windows(needle.len())
                        .any(|window| window == needle.as_bytes())
                })
            {
                found.push(path);
            }
        }
    }
    found
}
