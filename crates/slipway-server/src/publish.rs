//! Publishing a train release once its production deploy succeeded (`docs/releases.md`): the
//! release branch is trued up if production moved since the cut (a patch shipped meanwhile),
//! the branch's head is tagged `RC-N` (SSH-signed when `[service.source] signing_key` is set),
//! the production branch fast-forwards to it, and the publication is stored with the delivery
//! of the notes to `notes_webhook` in one transaction. The deliverer of slipway-notify sends
//! that delivery and retries it with backoff, every attempt recorded.
//!
//! Two callers: [`NotesPublisher`], the engine's notifier for the successful finish of a
//! production deploy, and `POST /api/v1/releases/{service}/{number}/publish` (`slipway release
//! publish`), for when the notifier could not (the repository was unreachable, say) or a failed
//! delivery should be tried again. Every step is idempotent: once the store holds the
//! publication, git is left alone and only the delivery is (re-)enqueued.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use slipway_core::config::{Config, NotifyDestination, NotifyKind, ServiceConfig};
use slipway_core::deploy::{Deploy, DeployId, DeployResult, EffectKey, Notice};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_engine::clock::Clock;
use slipway_engine::plugin::{Notifier, PluginError};
use slipway_release::{SigningKey, promote, tag, true_up};
use slipway_store::{NewPublication, NotesDelivery, NotesRecord, PublishedNotes, Store};
use tokio::sync::Notify;

use crate::error::ApiError;
use crate::trains::{release_error, repo_path, tag_name};
use crate::views::timestamp;

/// The outbox destinations of the services' `notes_webhook`s, for the deliverer (never for
/// the deploy notifications: they are not routed by environment).
pub fn notes_destinations(config: &Config) -> Vec<NotifyDestination> {
    config
        .services
        .iter()
        .filter_map(|service| {
            let train = &service.source.as_ref()?.train;
            Some(NotifyDestination {
                name: slipway_notify::notes_destination(&service.name),
                kind: NotifyKind::Webhook,
                url: train.notes_webhook.clone()?,
                environments: Vec::new(),
                kinds: Vec::new(),
                secret: train.notes_secret.clone(),
            })
        })
        .collect()
}

/// What a publication needs, borrowed from the server's state or the notifier.
pub struct Publishing<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    /// Where relative `repo` and `signing_key` paths start.
    pub config_dir: Option<&'a Path>,
    pub clock: &'a dyn Clock,
    /// Wakes the deliverer; `None` when nothing delivers (no webhook anywhere).
    pub wake: Option<&'a Notify>,
}

impl Publishing<'_> {
    /// Publishes release `label` of `service` after its production deploy `deploy` succeeded.
    /// `None` when the release was not made by the train (nothing to publish).
    pub async fn publish(
        &self,
        service: &ServiceConfig,
        label: &str,
        deploy: DeployId,
    ) -> Result<Option<NotesRecord>, ApiError> {
        let Some(source) = &service.source else {
            return Ok(None);
        };
        let Some(train) = self.store.train(&service.name, label).await? else {
            return Ok(None);
        };
        let already = self
            .store
            .release_notes(&service.name, label)
            .await?
            .and_then(|notes| notes.published);
        let publication = match already {
            Some(published) => NewPublication {
                deploy: published.deploy,
                tag: published.tag,
                signed: published.signed,
                branch_head: train.train.branch_head.clone(),
                true_up: train.train.true_up.clone(),
            },
            None => {
                let repo = repo_path(self.config_dir, &source.repo);
                let key = source.train.signing_key.as_deref().map(|key| {
                    SigningKey::Ssh(match self.config_dir {
                        Some(dir) => dir.join(key),
                        None => PathBuf::from(key),
                    })
                });
                let (branch, commit) = (train.train.branch.clone(), train.train.head.clone());
                let prod_branch = source.train.prod_branch.clone();
                let name = tag_name(label);
                let message = format!("{} {label}", service.name);
                let done = tokio::task::spawn_blocking(move || {
                    // Production may have moved since the cut (a patch shipped): a new true-up
                    // keeps the promotion a fast-forward.
                    let line = true_up(&repo, &branch, &commit, &prod_branch)?;
                    let head = line
                        .true_up
                        .as_ref()
                        .map_or(line.commit.clone(), |t| t.merge.clone());
                    let tagged = tag(&repo, &name, &head, &message, key.as_ref())?;
                    promote(&repo, &prod_branch, &head)?;
                    Ok((tagged, head, line.true_up.map(|t| t.merge)))
                })
                .await
                .map_err(|error| ApiError::internal(&error))?
                .map_err(release_error)?;
                let (tagged, head, merge) = done;
                NewPublication {
                    deploy: deploy.0,
                    tag: tagged.name,
                    signed: tagged.signed,
                    branch_head: head,
                    true_up: merge,
                }
            }
        };

        let environment = self
            .config
            .production()
            .map(|e| e.name.clone())
            .unwrap_or_default();
        let release = &train.release;
        let render = |notes: &PublishedNotes| {
            json!({
                "service": service.name,
                "release": label,
                "kind": release.kind,
                "off_cycle": release.kind == ReleaseKind::OffCycle,
                "reason": release.reason,
                "version": release.version,
                "commit": publication.branch_head,
                "tag": publication.tag,
                "signed": publication.signed,
                "branch": train.train.branch,
                "range": train.train.range,
                "environment": environment,
                "deploy": publication.deploy,
                "revision": notes.revision,
                "published_at": timestamp(notes.published_at),
                "notes": notes.body,
                "changelog": train.train.changelog,
            })
            .to_string()
        };
        let delivery = source.train.notes_webhook.as_ref().map(|_| NotesDelivery {
            destination: slipway_notify::notes_destination(&service.name),
            deploy: DeployId(publication.deploy),
            render: &render,
        });
        let delivers = delivery.is_some();
        let (notes, first) = self
            .store
            .publish_release_notes(
                &service.name,
                label,
                &publication,
                delivery,
                self.clock.now(),
            )
            .await?;
        if first {
            tracing::info!(service = %service.name, release = %label, tag = %publication.tag, "release notes published");
        }
        if delivers && let Some(wake) = self.wake {
            wake.notify_one();
        }
        Ok(Some(notes))
    }
}

/// The engine's notifier that publishes a train release when its production deploy succeeds.
pub struct NotesPublisher {
    store: Store,
    config: Arc<Config>,
    config_dir: PathBuf,
    clock: Arc<dyn Clock>,
    wake: Option<Arc<Notify>>,
}

impl NotesPublisher {
    /// `None` when no service names a source repository: nothing can be published.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        config_dir: PathBuf,
        clock: Arc<dyn Clock>,
        wake: Option<Arc<Notify>>,
    ) -> Option<NotesPublisher> {
        if config.services.iter().all(|s| s.source.is_none()) {
            return None;
        }
        Some(NotesPublisher {
            store,
            config,
            config_dir,
            clock,
            wake,
        })
    }
}

#[async_trait]
impl Notifier for NotesPublisher {
    async fn notify(
        &self,
        _key: &EffectKey,
        deploy: &Deploy,
        notice: &Notice,
    ) -> Result<(), PluginError> {
        let spec = &deploy.spec;
        let succeeded = matches!(
            notice,
            Notice::Finished {
                result: DeployResult::Succeeded,
                ..
            }
        );
        let production = self.config.production().map(|e| e.name.as_str());
        if !succeeded
            || spec.purpose != Purpose::Release
            || production != Some(spec.environment.as_str())
        {
            return Ok(());
        }
        let Some(service) = self.config.service(&spec.service) else {
            return Ok(());
        };
        let publishing = Publishing {
            store: &self.store,
            config: &self.config,
            config_dir: Some(&self.config_dir),
            clock: self.clock.as_ref(),
            wake: self.wake.as_deref(),
        };
        publishing
            .publish(service, &spec.release.label, spec.id)
            .await
            .map(|_| ())
            .map_err(|error| {
                let hint = error
                    .hint
                    .as_deref()
                    .map(|hint| format!(" (hint: {hint})"))
                    .unwrap_or_default();
                PluginError::new(format!(
                    "publishing {} {}: {}{hint}; then: slipway release publish {} {}",
                    spec.service,
                    spec.release.label,
                    error.message,
                    spec.service,
                    spec.release.label.trim_start_matches("RC ")
                ))
            })
    }
}
