//! The 50/50 compatibility check (`docs/compat.md`): the candidate's commit must be safe to run
//! beside the commit live in the environment, for services that name their repository with
//! `[service.source]`.
//!
//! BASE is the commit of the artifact running in the environment (the deploy's `previous`
//! release), HEAD the candidate's commit. An unsafe finding refuses the deploy; it is
//! acknowledged by suppressing it with a reason (a `slipway:compat-ignore` comment in the code
//! or `[service.compat] ignore`), and a passing check lists every suppression it relied on, so
//! they land in the audit trail with the `preflight_checked` event. A confirmed break-glass may
//! override a refusal too (the analysis cannot see everything, and an incident must not wait on
//! it); the override is recorded as such. The check passes with a note when there is nothing to
//! compare: no source configured, no commit on either side, a first deploy, or a rollback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use slipway_compat::{Ignore, Options, Report};
use slipway_core::config::{CompatConfig, Config};
use slipway_core::deploy::Deploy;
use slipway_core::plan::Purpose;
use slipway_core::time::Time;
use slipway_store::Store;

use crate::plugin::{PreflightCheck, Refusal};

/// At most this many findings are named in a refusal (the rest are counted).
const SHOWN: usize = 5;

/// The `compat` preflight check, built from the configuration the server runs with.
pub struct CompatCheck {
    store: Store,
    /// Per service with `[service.source]`: the repository (resolved against the config file's
    /// directory) and its suppressions.
    sources: BTreeMap<String, (PathBuf, Options)>,
}

impl CompatCheck {
    /// `config_dir` is the directory of `slipway.toml`, against which relative `repo` paths
    /// are resolved.
    pub fn new(store: Store, config: &Config, config_dir: &Path) -> CompatCheck {
        let sources = config
            .services
            .iter()
            .filter_map(|service| {
                let source = service.source.as_ref()?;
                let options = Options {
                    ignores: ignores(&source.compat),
                };
                Some((
                    service.name.clone(),
                    (config_dir.join(&source.repo), options),
                ))
            })
            .collect();
        CompatCheck { store, sources }
    }

    /// The source commit of `version` of `service`, as its pusher gave it.
    async fn commit_of(&self, service: &str, version: &str) -> Result<Option<String>, Refusal> {
        let artifact = self
            .store
            .artifact(service, version)
            .await
            .map_err(|error| Refusal {
                message: format!("cannot read artifact {service} {version}: {error}"),
                hint: "check the database, then deploy again".to_owned(),
                until: None,
                overridable: true,
            })?;
        Ok(artifact.and_then(|artifact| artifact.commit))
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// `rails-rename-column at db/migrate/…rb:3 (reason: …, in code)`.
fn suppressions(report: &Report) -> Vec<String> {
    report
        .suppressed()
        .map(|finding| {
            let place = finding
                .head
                .as_ref()
                .or(finding.base.as_ref())
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            let suppression = finding.suppressed.as_ref().expect("suppressed");
            format!(
                "{}{place} acknowledged in {}: {}",
                finding.rule, suppression.source, suppression.reason
            )
        })
        .collect()
}

#[async_trait]
impl PreflightCheck for CompatCheck {
    fn name(&self) -> &'static str {
        "compat"
    }

    async fn check(&self, deploy: &Deploy, _now: Time) -> Result<String, Refusal> {
        let spec = &deploy.spec;
        let service = spec.service.as_str();
        if spec.purpose == Purpose::Rollback {
            return Ok(
                "rollback: the compatibility check is skipped (the release ran here \
                       before)"
                    .to_owned(),
            );
        }
        let Some((repo, options)) = self.sources.get(service) else {
            return Ok(format!(
                "{service} names no [service.source]: nothing to compare"
            ));
        };
        let Some(previous) = &spec.previous else {
            return Ok(format!(
                "nothing of {service} runs in {} yet: nothing to compare",
                spec.environment
            ));
        };
        let base = self.commit_of(service, &previous.version).await?;
        let head = match &spec.commit {
            Some(commit) => Some(commit.clone()),
            None => self.commit_of(service, &spec.release.version).await?,
        };
        let (Some(base), Some(head)) = (base, head) else {
            return Ok(format!(
                "no source commit recorded for {} or {}: nothing to compare (push artifacts with \
                 their commit to check them)",
                previous.label, spec.release.label
            ));
        };
        let (repo, options) = (repo.clone(), options.clone());
        let (base_for_task, head_for_task) = (base.clone(), head.clone());
        let result = tokio::task::spawn_blocking(move || {
            slipway_compat::check(&repo, &base_for_task, &head_for_task, &options)
        })
        .await
        .map_err(|error| Refusal {
            message: format!("the compatibility check stopped: {error}"),
            hint: "deploy again; report it if it keeps happening".to_owned(),
            until: None,
            overridable: true,
        })?;
        let report = result.map_err(|error| Refusal {
            message: format!(
                "cannot compare {} ({}) with {} ({}) of {service}: {error}",
                previous.label,
                short(&base),
                spec.release.label,
                short(&head)
            ),
            hint: format!(
                "{}; the server reads the clone named by [service.source]",
                error.hint()
            ),
            until: None,
            overridable: true,
        })?;
        let range = format!(
            "{} ({}) → {} ({})",
            previous.label,
            short(&base),
            spec.release.label,
            short(&head)
        );
        if report.passed() {
            let warnings = report
                .findings
                .iter()
                .filter(|f| f.suppressed.is_none())
                .count();
            let acknowledged = suppressions(&report);
            let mut detail = format!(
                "{service} {range}: safe to run side by side ({} changed file(s), {warnings} \
                 warning(s))",
                report.changed_files
            );
            if !acknowledged.is_empty() {
                detail.push_str(&format!("; {}", acknowledged.join("; ")));
            }
            return Ok(detail);
        }
        let blocking: Vec<String> = report
            .blocking()
            .take(SHOWN)
            .map(|finding| {
                let head = finding
                    .head
                    .as_ref()
                    .map(|l| format!(" (head {l})"))
                    .unwrap_or_default();
                format!("[{}] {}{head}", finding.rule, finding.message)
            })
            .collect();
        let total = report.blocking().count();
        let more = total.saturating_sub(SHOWN);
        Err(Refusal {
            message: format!(
                "{total} change(s) of {service} {range} break while old and new run side by \
                 side: {}{}",
                blocking.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            ),
            hint: format!(
                "see `slipway compat {} {}` for each recipe; split the change, or acknowledge a \
                 finding with a reason (`# slipway:compat-ignore RULE reason` or [service.compat] \
                 ignore), then deploy again",
                short(&base),
                short(&head)
            ),
            until: None,
            overridable: true,
        })
    }
}

/// The analysis's suppressions from `[service.compat] ignore` (the command line's too).
pub fn ignores(config: &CompatConfig) -> Vec<Ignore> {
    config
        .ignore
        .iter()
        .map(|ignore| Ignore {
            rule: ignore.rule.clone(),
            path: ignore.path.clone(),
            reason: ignore.reason.clone(),
        })
        .collect()
}
