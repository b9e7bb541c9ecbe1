//! Publishing a train release when its production deploy succeeds: the deployed commit is
//! tagged (SSH-signed when `[service.source] signing_key` is set), the production branch moves
//! to it, the notes are stored as published, and POSTed as JSON to `notes_webhook`.
//!
//! A [`Notifier`]: the engine calls it with every notice, and it answers only a successful
//! finish of a release (not a rollback) in the last environment of the promotion order, for a
//! release the train made. Every part is idempotent, so a repeated notice (a retry, a restart)
//! publishes nothing twice: the tag and the branch are kept where they are, the store keeps the
//! first publication, and the webhook is sent (three attempts, the same `Idempotency-Key`) only
//! while no delivery has succeeded.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use slipway_core::config::Config;
use slipway_core::deploy::{Deploy, DeployResult, EffectKey, Notice};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_engine::clock::Clock;
use slipway_engine::plugin::{Notifier, PluginError};
use slipway_release::{ReleaseError, SigningKey, promote, tag};
use slipway_server::trains::{repo_path, tag_name};
use slipway_server::views::timestamp;
use slipway_store::Store;

/// How long the delivery of the notes to the webhook may take: it runs inside the deploy's
/// notify step, so it is one short attempt (a repeated notice sends again while undelivered).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes train releases after their production deploy.
pub(crate) struct NotesPublisher {
    store: Store,
    config: Arc<Config>,
    config_dir: PathBuf,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
}

impl NotesPublisher {
    /// `None` when no service names a source repository: nothing can be published.
    pub(crate) fn new(
        store: Store,
        config: Arc<Config>,
        config_dir: PathBuf,
        clock: Arc<dyn Clock>,
    ) -> Option<NotesPublisher> {
        if config.services.iter().all(|s| s.source.is_none()) {
            return None;
        }
        let http = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .ok()?;
        Some(NotesPublisher {
            store,
            config,
            config_dir,
            clock,
            http,
        })
    }
}

fn plugin_error(what: &str) -> impl Fn(ReleaseError) -> PluginError + '_ {
    move |error| PluginError::new(format!("{what}: {error} (hint: {})", error.hint()))
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
        let Some(source) = self
            .config
            .service(&spec.service)
            .and_then(|s| s.source.clone())
        else {
            return Ok(());
        };
        let label = spec.release.label.clone();
        let store_error = |error: slipway_store::StoreError| PluginError::new(error.to_string());
        let Some(train) = self
            .store
            .train(&spec.service, &label)
            .await
            .map_err(store_error)?
        else {
            return Ok(());
        };

        let repo = repo_path(Some(&self.config_dir), &source.repo);
        let key = source
            .train
            .signing_key
            .as_deref()
            .map(|key| SigningKey::Ssh(self.config_dir.join(key)));
        let name = tag_name(&label);
        let message = format!("{} {label}", spec.service);
        let head = train.train.branch_head.clone();
        let prod_branch = source.train.prod_branch.clone();
        let tagged = tokio::task::spawn_blocking(move || {
            let tagged =
                tag(&repo, &name, &head, &message, key.as_ref()).map_err(plugin_error("tag"))?;
            promote(&repo, &prod_branch, &head).map_err(plugin_error("production branch"))?;
            Ok::<_, PluginError>(tagged)
        })
        .await
        .map_err(|error| PluginError::new(error.to_string()))??;

        let (notes, first) = self
            .store
            .publish_release_notes(
                &spec.service,
                &label,
                spec.id.0,
                &tagged.name,
                tagged.signed,
                self.clock.now(),
            )
            .await
            .map_err(store_error)?;
        if first {
            tracing::info!(service = %spec.service, release = %label, tag = %tagged.name, "release notes published");
        }
        let Some(webhook) = &source.train.notes_webhook else {
            return Ok(());
        };
        let Some(publication) = &notes.published else {
            return Ok(());
        };
        if publication.delivered_at.is_some() {
            return Ok(());
        }
        let release = &train.release;
        let body = json!({
            "service": spec.service,
            "release": label,
            "kind": release.kind,
            "off_cycle": release.kind == ReleaseKind::OffCycle,
            "reason": release.reason,
            "version": release.version,
            "commit": tagged.commit,
            "tag": tagged.name,
            "signed": tagged.signed,
            "branch": train.train.branch,
            "range": train.train.range,
            "environment": spec.environment,
            "deploy": spec.id.0,
            "revision": publication.revision,
            "published_at": timestamp(publication.published_at),
            "notes": notes.body,
            "changelog": train.train.changelog,
        });
        // Named by origin only in errors: webhook URLs often carry a secret in their path.
        let origin = origin(webhook);
        // One attempt: this runs inside the deploy's notify step, which must not stall.
        let sent = self
            .http
            .post(webhook)
            .header("Idempotency-Key", format!("notes/{}/{label}", spec.service))
            .json(&body)
            .send()
            .await;
        let failure = match sent {
            Ok(answer) if answer.status().is_success() => String::new(),
            Ok(answer) => format!(
                "release notes webhook ({origin}) answered {}",
                answer.status()
            ),
            Err(error) => format!(
                "release notes webhook ({origin}) unreachable: {}",
                error.without_url()
            ),
        };
        if !failure.is_empty() {
            return Err(PluginError::new(failure));
        }
        self.store
            .notes_delivered(notes.release_id, self.clock.now())
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// `scheme://host[:port]` of a webhook URL, all a message may show of it: its user, password,
/// path and query can each carry a secret.
fn origin(webhook: &str) -> String {
    let Ok(url) = reqwest::Url::parse(webhook) else {
        return "an unparsable URL".to_owned();
    };
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn a_webhook_origin_drops_credentials_path_and_query() {
        assert_eq!(
            origin("https://bot:s3cr3t@hooks.example.com:8443/notes/t0k3n?key=k3y"),
            "https://hooks.example.com:8443"
        );
        assert_eq!(
            origin("http://user@127.0.0.1/notes/s3cr3t"),
            "http://127.0.0.1"
        );
        assert_eq!(origin("http://[::1]:9/x"), "http://[::1]:9");
        assert_eq!(origin("not a url s3cr3t"), "an unparsable URL");
    }
}
