//! How a release's pinned config version (`ReleaseRef::config_version`) reaches what the targets
//! start: read from the [`ConfigSource`] when a start needs it, checked, and handed over as
//! environment variables or as the lines of an env file.
//!
//! The values exist in clear only in memory, for the length of one start: nothing here logs,
//! records or formats them into a message — errors name the service, environment, version and
//! key, never a value, and [`ConfigVariables`]'s `Debug` shows keys only.

use slipway_core::deploy::ReleaseRef;
use slipway_core::settings::{check_key, check_value, quote_env_value};
use slipway_engine::plugin::ConfigSource;

/// The variable holding the pinned config version's number.
pub(crate) const VERSION_VARIABLE: &str = "SLIPWAY_CONFIG_VERSION";
/// The variable naming the env file of a `command` target with `config = "file"`.
pub(crate) const FILE_VARIABLE: &str = "SLIPWAY_CONFIG_FILE";

/// The values of one config version, ready to be passed to a process.
pub(crate) struct ConfigVariables {
    version: u64,
    /// `(key, value)`, sorted by key; every key passed [`check_key`], every value
    /// [`check_value`].
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for ConfigVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.pairs.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("ConfigVariables")
            .field("version", &self.version)
            .field("keys", &keys)
            .finish()
    }
}

impl ConfigVariables {
    /// The config version's number.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// `(key, value)` pairs to set in a process's environment.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub(crate) fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }

    /// The values as an env file: a `KEY=value` line each, the value quoted as
    /// [`quote_env_value`] does, so a shell's `.` or slipway's own env file parser reads it back.
    pub(crate) fn env_file(&self) -> String {
        let mut text = String::new();
        for (key, value) in &self.pairs {
            text.push_str(key);
            text.push('=');
            text.push_str(&quote_env_value(value));
            text.push('\n');
        }
        text
    }
}

/// The values `release` of `service` runs with in `environment`: `None` when it pins no config
/// version; an error — naming service, environment and version — when it pins one that cannot
/// be read (no source, the source fails) or whose keys or values cannot be passed to a process.
pub(crate) async fn read(
    source: Option<&dyn ConfigSource>,
    service: &str,
    environment: &str,
    release: &ReleaseRef,
) -> Result<Option<ConfigVariables>, String> {
    let Some(version) = release.config_version else {
        return Ok(None);
    };
    let what = format!("config version {version} of `{service}` in `{environment}`");
    let Some(source) = source else {
        return Err(format!(
            "{what} cannot be read: this slipway has no config source\nhint: give slipway the \
             master key of config versions (`[secrets] key_file` in slipway.toml, or \
             SLIPWAY_MASTER_KEY) and restart it"
        ));
    };
    let values = source
        .values(service, environment, version)
        .await
        .map_err(|error| format!("{what} cannot be read: {error}"))?;
    let mut pairs = Vec::with_capacity(values.len());
    for (key, entry) in values {
        // The store refuses such versions; checked again because a process cannot take them
        // (a `=` or NUL byte) or must not (a key overriding PORT or SLIPWAY_*).
        if let Err(why) = check_key(&key).and_then(|()| check_value(&key, &entry.value)) {
            return Err(format!("{what} cannot be passed to a process: {why}"));
        }
        pairs.push((key, entry.value));
    }
    Ok(Some(ConfigVariables { version, pairs }))
}
