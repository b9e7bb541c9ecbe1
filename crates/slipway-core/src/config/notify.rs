//! `[[notify]]` and `[chat]`: where notices about deploys go (Slack incoming webhooks, signed
//! JSON webhooks), for which environments, and how Slack's slash commands and buttons reach
//! slipway (the signing secret and which chat user is which slipway user).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One `[[notify]]` destination.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyDestination {
    /// Stable name of the destination (`name`, or `KIND-N` by position): deliveries are
    /// recorded under it, so it must not change while deliveries are pending.
    pub name: String,
    pub kind: NotifyKind,
    /// Where payloads are POSTed. A Slack webhook URL carries its credential in the path: it
    /// is never logged or shown whole, only its origin.
    pub url: String,
    /// The environments whose deploys are notified here; every environment when empty.
    pub environments: Vec<String>,
    /// The release kinds whose deploys are notified here (`kinds = ["off-cycle"]` for a wider
    /// audience that hears only of surprises); every kind when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<crate::plan::ReleaseKind>,
    /// The key that signs webhook payloads (`kind = "webhook"` only).
    pub secret: Option<SecretSource>,
}

impl NotifyDestination {
    /// Whether deploys of a `kind` release to `environment` are notified here.
    pub fn routes(&self, environment: &str, kind: crate::plan::ReleaseKind) -> bool {
        (self.environments.is_empty() || self.environments.iter().any(|e| e == environment))
            && (self.kinds.is_empty() || self.kinds.contains(&kind))
    }

    /// `scheme://host[:port]` of the URL: what messages may show of it (never a path, a query
    /// or `user:password@`, which may hold credentials).
    pub fn origin(&self) -> String {
        let (scheme, rest) = self
            .url
            .split_once("://")
            .unwrap_or(("", self.url.as_str()));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        format!("{scheme}://{host}")
    }
}

impl fmt::Debug for NotifyDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyDestination")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &format_args!("{}/…", self.origin()))
            .field("environments", &self.environments)
            .field("kinds", &self.kinds)
            .field("secret", &self.secret)
            .finish()
    }
}

/// What a destination receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A Slack-compatible incoming webhook (`attachments` with a colour, `text`).
    Slack,
    /// slipway's own JSON, signed with HMAC-SHA256.
    Webhook,
}

impl NotifyKind {
    pub fn name(self) -> &'static str {
        match self {
            NotifyKind::Slack => "slack",
            NotifyKind::Webhook => "webhook",
        }
    }
}

/// Where a secret is read from: never written in `slipway.toml` itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// A file, relative to the config file; surrounding whitespace is ignored.
    File(String),
    /// An environment variable of the slipway process.
    Env(String),
}

/// `[chat]`: Slack slash commands and interactive buttons.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatConfig {
    /// The Slack app's signing secret (`signing_secret_file` or `signing_secret_env`); the chat
    /// endpoints refuse every request while it is not configured.
    pub signing_secret: Option<SecretSource>,
    /// `[chat.users]`: Slack user id (`U024BE7LH`) → slipway user name. A chat user acts with
    /// the roles of the slipway user; an unmapped one is refused.
    pub users: BTreeMap<String, String>,
}
