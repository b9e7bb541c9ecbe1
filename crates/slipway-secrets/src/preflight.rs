//! The `config` preflight check: the config version a deploy pins is reviewed where the
//! environment is protected, meets the service's rules, and holds no value another service or
//! environment must not share — checked again right before the deploy acts, because another
//! service's config may have changed since the version was written.

use std::sync::Arc;

use async_trait::async_trait;
use slipway_core::config::Config;
use slipway_core::deploy::Deploy;
use slipway_core::plan::Purpose;
use slipway_core::settings::Values;
use slipway_core::time::Time;
use slipway_engine::plugin::{PreflightCheck, Refusal};

use crate::vault::Vault;

/// The `config` preflight check.
pub struct ConfigCheck {
    vault: Arc<Vault>,
    config: Arc<Config>,
}

impl ConfigCheck {
    pub fn new(vault: Arc<Vault>, config: Arc<Config>) -> Self {
        Self { vault, config }
    }
}

fn broken(message: String, hint: &str) -> Refusal {
    Refusal {
        message,
        hint: hint.to_owned(),
        until: None,
        overridable: false,
    }
}

#[async_trait]
impl PreflightCheck for ConfigCheck {
    fn name(&self) -> &'static str {
        "config"
    }

    async fn check(&self, deploy: &Deploy, _now: Time) -> Result<String, Refusal> {
        let spec = &deploy.spec;
        let place = format!("{} in {}", spec.service, spec.environment);
        if spec.purpose == Purpose::Rollback {
            // Going back must never wait: it brings back what ran, as it ran.
            return Ok(match spec.release.config_version {
                Some(version) => {
                    format!("rollback: brings back config version {version} of {place} as it ran")
                }
                None => format!("rollback: {place} ran without a config version"),
            });
        }
        let Some(service) = self.config.service(&spec.service) else {
            return Err(broken(
                format!("{} is not in slipway.toml any more", spec.service),
                "restore the service in slipway.toml and restart slipway",
            ));
        };
        let Some(version) = spec.release.config_version else {
            let findings = self
                .vault
                .findings(&self.config, service, &spec.environment, &Values::new())
                .await
                .map_err(|e| broken(format!("cannot check the config of {place}: {e}"), RETRY))?;
            return match findings.first() {
                None => Ok(format!(
                    "{place} has no config version; its rules need none"
                )),
                Some(finding) => Err(broken(
                    format!("{place} has no config version: {}", finding.message),
                    &format!(
                        "set it: slipway config set {} --env {} KEY=VALUE, then deploy again",
                        spec.service, spec.environment
                    ),
                )),
            };
        };
        let record = self
            .vault
            .store()
            .config_version(&spec.service, &spec.environment, version)
            .await
            .map_err(|e| {
                broken(
                    format!("cannot read config version {version} of {place}: {e}"),
                    RETRY,
                )
            })?
            .ok_or_else(|| {
                broken(
                    format!("config version {version} of {place} does not exist"),
                    RETRY,
                )
            })?;
        let protected = self
            .config
            .environment(&spec.environment)
            .is_some_and(|env| env.policy.protected);
        if protected && !record.reviewed() {
            return Err(Refusal {
                message: format!(
                    "config version {version} of {place} (by {}) has not been reviewed; {} is protected",
                    record.created_by, spec.environment
                ),
                hint: format!(
                    "another engineer reviews it: slipway config diff {} --env {}, then slipway config approve {} --env {} --version {version}",
                    spec.service, spec.environment, spec.service, spec.environment
                ),
                until: None,
                overridable: true,
            });
        }
        let values = self.vault.open_values(&record).map_err(|e| {
            broken(
                format!("cannot open config version {version} of {place}: {e}"),
                KEYS,
            )
        })?;
        let findings = self
            .vault
            .findings(&self.config, service, &spec.environment, &values)
            .await
            .map_err(|e| {
                broken(
                    format!("cannot check config version {version} of {place}: {e}"),
                    RETRY,
                )
            })?;
        if let Some(first) = findings.first() {
            let all: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
            return Err(broken(
                format!(
                    "config version {version} of {place} breaks its rules: {}",
                    all.join("; ")
                ),
                &first.hint,
            ));
        }
        let review = match &record.approved_by {
            Some(by) if *by != record.created_by => format!(", reviewed by {by}"),
            _ => String::new(),
        };
        Ok(format!(
            "config version {version} of {place} ({} keys{review}) meets its rules",
            values.len()
        ))
    }
}

const RETRY: &str = "check the database, then deploy again";
const KEYS: &str = "configure the master key it was sealed with ([secrets] key_file or previous_key_files) and restart slipway";
