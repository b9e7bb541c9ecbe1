//! The vault: config versions sealed and opened with the keyring, the keyed fingerprints people
//! compare secrets by, master key rotation over the store, and the [`ConfigSource`] targets read
//! pinned versions from.

use std::path::Path;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use slipway_core::config::{Config, SecretsConfig, ServiceConfig};
use slipway_core::settings::{Finding, Holder, Sealed, Values, check_unique, validate};
use slipway_core::time::Time;
use slipway_engine::plugin::{ConfigSource, PluginError};
use slipway_store::{ConfigVersionRecord, Store, StoreError};
use zeroize::Zeroizing;

use crate::keyring::{KEY_BYTES, KeyError, Keyring, MasterKey};

/// The environment variable that holds the master key, instead of `[secrets] key_file`.
pub const MASTER_KEY_VARIABLE: &str = "SLIPWAY_MASTER_KEY";
/// The name of the fingerprint key in the store.
const FINGERPRINT_KEY: &str = "fingerprint";
const FINGERPRINT_CONTEXT: &[u8] = b"slipway fingerprint key v1";

/// Why the vault could not do something.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("config version {version} of {service} in {environment} does not exist")]
    NoVersion {
        service: String,
        environment: String,
        version: u64,
    },
    #[error("config version {version} of {service} in {environment} is not valid: {error}")]
    Malformed {
        service: String,
        environment: String,
        version: u64,
        error: String,
    },
}

/// The keyring `[secrets]` and the environment describe: the current key from `env_key` (the
/// value of `SLIPWAY_MASTER_KEY`) or `key_file`, the previous ones from `previous_key_files`;
/// files relative to `base`. `None` when no master key is configured.
pub fn load_keyring(
    config: &SecretsConfig,
    base: &Path,
    env_key: Option<&str>,
) -> Result<Option<Keyring>, KeyError> {
    let current = match (env_key, &config.key_file) {
        (Some(text), _) => MasterKey::parse(text)
            .map_err(|e| KeyError::Invalid(format!("{MASTER_KEY_VARIABLE}: {e}")))?,
        (None, Some(file)) => MasterKey::read(&base.join(file))?,
        (None, None) => return Ok(None),
    };
    let previous = config
        .previous_key_files
        .iter()
        .map(|file| MasterKey::read(&base.join(file)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Keyring::new(current, previous)))
}

/// Seals and opens config versions; fingerprints secrets.
pub struct Vault {
    keyring: Keyring,
    fingerprint_key: Zeroizing<[u8; KEY_BYTES]>,
    store: Store,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.keyring.current_id())
    }
}

/// What a version's ciphertext is bound to: a sealed version moved to another service,
/// environment or number does not open.
fn context(service: &str, environment: &str, number: u64) -> Vec<u8> {
    format!("slipway config v1\0{service}\0{environment}\0{number}").into_bytes()
}

/// `sha256:HEX` of a sealed version's ciphertext: what a release pins, unchanged by rotation.
pub fn digest(sealed: &Sealed) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(&sealed.ciphertext)))
}

impl Vault {
    /// The vault of `store`, with the fingerprint key it keeps sealed there (made on first
    /// use, so fingerprints stay the same across restarts and key rotations).
    pub async fn open(store: Store, keyring: Keyring) -> Result<Vault, VaultError> {
        let sealed = match store.secret_key(FINGERPRINT_KEY).await? {
            Some(sealed) => sealed,
            None => {
                let (_, fresh) = MasterKey::generate();
                let sealed = keyring.seal(FINGERPRINT_CONTEXT, fresh.as_bytes());
                store.put_secret_key(FINGERPRINT_KEY, &sealed).await?
            }
        };
        let opened = keyring.open(FINGERPRINT_CONTEXT, &sealed)?;
        let fingerprint_key = derive(&opened);
        Ok(Vault {
            keyring,
            fingerprint_key,
            store,
        })
    }

    /// The store the vault keeps its versions in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The id of the master key new versions are sealed under.
    pub fn key_id(&self) -> &str {
        self.keyring.current_id()
    }

    /// A short keyed fingerprint of `value` (16 hex digits of HMAC-SHA256 under a key kept
    /// sealed in the store): equal values give equal fingerprints, and without the key a
    /// fingerprint says nothing about the value.
    pub fn fingerprint(&self, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.fingerprint_key.as_ref())
            .expect("HMAC takes a key of any length");
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// `values` sealed as version `number` of `service` in `environment`, and their digest.
    pub fn seal(
        &self,
        service: &str,
        environment: &str,
        number: u64,
        values: &Values,
    ) -> (Sealed, String) {
        let plaintext = Zeroizing::new(serde_json::to_vec(values).expect("values serialize"));
        let sealed = self
            .keyring
            .seal(&context(service, environment, number), &plaintext);
        let digest = digest(&sealed);
        (sealed, digest)
    }

    /// Opens a stored version (what [`Vault::seal`] sealed for its place and number).
    pub fn open_values(&self, record: &ConfigVersionRecord) -> Result<Values, KeyError> {
        let context = context(&record.service, &record.environment, record.number);
        let plaintext = self.keyring.open(&context, &record.sealed)?;
        // serde's message could quote the plaintext: a fixed one instead.
        serde_json::from_slice(&plaintext)
            .map_err(|_| KeyError::Invalid("the opened values are not a config version".to_owned()))
    }

    /// The values of version `version` of `service` in `environment`.
    pub async fn values_of(
        &self,
        service: &str,
        environment: &str,
        version: u64,
    ) -> Result<Values, VaultError> {
        let record = self
            .store
            .config_version(service, environment, version)
            .await?
            .ok_or_else(|| VaultError::NoVersion {
                service: service.to_owned(),
                environment: environment.to_owned(),
                version,
            })?;
        Ok(self.open_values(&record)?)
    }

    /// What is wrong with `values` as `service`'s config in `environment`: the service's rules
    /// (`[service.config]`), and values that must be unique but are held by the newest config
    /// version of another service or environment. Findings never show a secret's value.
    pub async fn findings(
        &self,
        config: &Config,
        service: &ServiceConfig,
        environment: &str,
        values: &Values,
    ) -> Result<Vec<Finding>, VaultError> {
        let mut findings = validate(&service.config, values);
        if service
            .config
            .keys
            .values()
            .all(|rule| rule.unique.is_none())
        {
            return Ok(findings);
        }
        let mut opened = Vec::new();
        for record in self.compared_versions(config, service, environment).await? {
            let Some(other) = config.service(&record.service) else {
                continue;
            };
            let same = record.service == service.name && record.environment == environment;
            if same || other.config.keys.values().all(|rule| rule.unique.is_none()) {
                continue;
            }
            let values = self.open_values(&record)?;
            opened.push((record, other, values));
        }
        let others: Vec<Holder<'_>> = opened
            .iter()
            .map(|(record, other, values)| Holder {
                service: &record.service,
                environment: &record.environment,
                rules: &other.config,
                values,
            })
            .collect();
        let candidate = Holder {
            service: &service.name,
            environment,
            rules: &service.config,
            values,
        };
        for finding in check_unique(&candidate, &others) {
            if !findings.contains(&finding) {
                findings.push(finding);
            }
        }
        Ok(findings)
    }

    /// The versions a value that must be unique is compared with: the newest of every other
    /// service and environment, and the one its running release pins where that is older (it
    /// is what consumes the queue now).
    async fn compared_versions(
        &self,
        config: &Config,
        service: &ServiceConfig,
        environment: &str,
    ) -> Result<Vec<ConfigVersionRecord>, VaultError> {
        let mut records = self.store.latest_config_versions().await?;
        for other in &config.services {
            if other.config.keys.values().all(|rule| rule.unique.is_none()) {
                continue;
            }
            for env in &config.environments {
                if other.name == service.name && env.name == environment {
                    continue;
                }
                let running = self
                    .store
                    .current_release(&other.name, &env.name)
                    .await?
                    .and_then(|stored| stored.deploy.spec.release.config_version);
                let Some(number) = running else {
                    continue;
                };
                let known = records.iter().any(|r| {
                    r.service == other.name && r.environment == env.name && r.number == number
                });
                if !known
                    && let Some(record) = self
                        .store
                        .config_version(&other.name, &env.name, number)
                        .await?
                {
                    records.push(record);
                }
            }
        }
        Ok(records)
    }

    /// Re-wraps every stored data key under the current master key (values untouched);
    /// returns how many were re-wrapped.
    pub async fn rotate(&self, by: &str, now: Time) -> Result<u64, VaultError> {
        let rewrap = |sealed: &Sealed| self.keyring.rewrap(sealed).map_err(|e| e.to_string());
        Ok(self
            .store
            .rewrap_sealed(self.keyring.current_id(), by, now, &rewrap)
            .await?)
    }
}

/// The HMAC key of fingerprints: SHA-256 of a label and the stored key, so the key the store
/// keeps is never used directly.
fn derive(opened: &[u8]) -> Zeroizing<[u8; KEY_BYTES]> {
    let mut hasher = Sha256::new();
    hasher.update(FINGERPRINT_CONTEXT);
    hasher.update(opened);
    Zeroizing::new(hasher.finalize().into())
}

#[async_trait]
impl ConfigSource for Vault {
    async fn values(
        &self,
        service: &str,
        environment: &str,
        version: u64,
    ) -> Result<Values, PluginError> {
        self.values_of(service, environment, version)
            .await
            .map_err(|e| PluginError::new(e.to_string()))
    }
}
