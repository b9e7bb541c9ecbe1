//! Checklists: named prerequisites (`[[checklist]]` in `slipway.toml`) that a person ticks with
//! evidence before a deploy may start — seed 001's "agreement signed", "details confirmed",
//! "logo present", "reviewed by another engineer".
//!
//! This module is the pure part: which items apply to a service and environment, who may tick
//! them, what evidence they accept, and whether a set of ticks makes a deploy's checklist
//! complete. The store keeps the ticks, the server and preflight ask [`evaluate`].

use serde::{Deserialize, Serialize};

use crate::deploy::Role;
use crate::time::Time;

/// `[[checklist]]`: one prerequisite item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// How people name it (`agreement signed`); unique among the items of one service and
    /// environment.
    pub name: String,
    /// What to check and where, for people and the runbook.
    pub description: Option<String>,
    /// The services it applies to; empty means every service.
    pub services: Vec<String>,
    /// The environments it applies to; empty means every environment.
    pub environments: Vec<String>,
    pub per: Per,
    /// The roles whose people may tick (and untick) it, like the `roles` of approvals: exactly
    /// these, in rank order. Never empty; deployers, approvers and admins by default.
    pub roles: Vec<Role>,
    pub evidence: EvidenceKind,
    /// The person who ticks it must not be the one who requests the deploy ("reviewed by
    /// another engineer").
    pub different_from_requester: bool,
}

/// How long a tick counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// Ticked again for each release deployed (`per = "release"`, the default).
    Release,
    /// Standing: ticked once per service and environment (`per = "environment"`).
    Environment,
}

impl Per {
    pub fn name(self) -> &'static str {
        match self {
            Per::Release => "release",
            Per::Environment => "environment",
        }
    }
}

/// The evidence an item accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// An `http://` or `https://` link (the signed agreement, the review, the ticket).
    Link,
    /// A note in words.
    Note,
    /// Either (the default).
    Any,
}

impl EvidenceKind {
    pub fn name(self) -> &'static str {
        match self {
            EvidenceKind::Link => "link",
            EvidenceKind::Note => "note",
            EvidenceKind::Any => "any",
        }
    }

    /// What it takes, in words: `a link or a note`.
    pub fn words(self) -> &'static str {
        match self {
            EvidenceKind::Link => "a link",
            EvidenceKind::Note => "a note",
            EvidenceKind::Any => "a link or a note",
        }
    }

    /// The CLI option that gives such evidence, for hints: `--link URL`.
    pub fn option(self) -> &'static str {
        match self {
            EvidenceKind::Link | EvidenceKind::Any => "--link URL",
            EvidenceKind::Note => "--note TEXT",
        }
    }
}

/// What a person gave as proof that an item is done.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    Link(String),
    Note(String),
}

impl Evidence {
    pub fn kind(&self) -> EvidenceKind {
        match self {
            Evidence::Link(_) => EvidenceKind::Link,
            Evidence::Note(_) => EvidenceKind::Note,
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Evidence::Link(text) | Evidence::Note(text) => text,
        }
    }
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::Link(link) => write!(f, "link {link}"),
            Evidence::Note(note) => write!(f, "note \"{note}\""),
        }
    }
}

/// Why something cannot be ticked, or why a tick does not count.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub message: String,
    pub hint: String,
}

/// The longest note or link accepted: evidence points somewhere, it is not the document.
pub const MAX_EVIDENCE_LENGTH: usize = 2000;

impl ChecklistItem {
    /// Whether the item applies to deploys of `service` to `environment`.
    pub fn applies_to(&self, service: &str, environment: &str) -> bool {
        (self.services.is_empty() || self.services.iter().any(|s| s == service))
            && (self.environments.is_empty() || self.environments.iter().any(|e| e == environment))
    }

    /// The roles that may tick it when the configuration names none.
    pub const DEFAULT_ROLES: [Role; 3] = [Role::Deployer, Role::Approver, Role::Admin];

    /// Whether a person with `role` may tick (or untick) it.
    pub fn may_tick(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The roles that may tick it, in words: `approver or admin`.
    pub fn roles_text(&self) -> String {
        let names: Vec<&str> = self.roles.iter().map(|r| r.name()).collect();
        match names.as_slice() {
            [] => "no role".to_owned(),
            [one] => (*one).to_owned(),
            [first @ .., last] => format!("{} or {last}", first.join(", ")),
        }
    }

    /// Who may tick it, in words: `an approver or admin`.
    pub fn who_may_tick(&self) -> String {
        let text = self.roles_text();
        let article = if text.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {text}")
    }

    /// Refuses evidence the item does not accept, or that is empty, too long or not a link.
    pub fn check_evidence(&self, evidence: &Evidence) -> Result<(), Refused> {
        let text = evidence.text();
        if text.trim().is_empty() {
            let what = match evidence {
                Evidence::Link(_) => "the link",
                Evidence::Note(_) => "the note",
            };
            return Err(Refused {
                message: format!("{what} for `{}` is empty", self.name),
                hint: "say what was checked and where, e.g. --note \"IAA 2026-114 signed by the \
                       partner on 3 Nov\""
                    .to_owned(),
            });
        }
        if text.chars().count() > MAX_EVIDENCE_LENGTH {
            return Err(Refused {
                message: format!(
                    "the evidence for `{}` is longer than {MAX_EVIDENCE_LENGTH} characters",
                    self.name
                ),
                hint: "link to the document instead of pasting it".to_owned(),
            });
        }
        match (self.evidence, evidence) {
            (EvidenceKind::Note, Evidence::Link(_)) => {
                return Err(Refused {
                    message: format!("`{}` takes a note as evidence, not a link", self.name),
                    hint: "pass --note TEXT saying what was checked".to_owned(),
                });
            }
            (EvidenceKind::Link, Evidence::Note(_)) => {
                return Err(Refused {
                    message: format!("`{}` takes a link as evidence, not a note", self.name),
                    hint: "pass --link URL to the document that proves it (the signed \
                           agreement, the review, the ticket)"
                        .to_owned(),
                });
            }
            _ => {}
        }
        if let Evidence::Link(link) = evidence
            && !is_http_url(link)
        {
            return Err(Refused {
                message: format!("`{link}` is not an http:// or https:// link"),
                hint: "give the full address, e.g. --link https://tickets.example.com/1234"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

/// An absolute `http://` or `https://` URL with a host and no spaces.
pub fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !rest.contains(char::is_whitespace)
    })
}

/// The items of `items` that apply to `service` in `environment`, in file order.
pub fn items_for<'a>(
    items: &'a [ChecklistItem],
    service: &str,
    environment: &str,
) -> Vec<&'a ChecklistItem> {
    items
        .iter()
        .filter(|item| item.applies_to(service, environment))
        .collect()
}

/// A tick in force: the newest record of an item (for a release, or standing) when it was not
/// unticked since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub item: String,
    /// The release label for a per-release item; `None` for a standing one.
    pub release: Option<String>,
    pub by: String,
    /// The role `by` had when ticking.
    pub role: Role,
    pub evidence: Evidence,
    pub at: Time,
}

/// Whether one item is done, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemStatus<'a> {
    pub item: &'a ChecklistItem,
    /// The tick in force for the item (for the release asked about), even when it does not
    /// count.
    pub tick: Option<&'a Tick>,
    /// Why the item is not done; `None` when it is.
    pub missing: Option<String>,
}

impl ItemStatus<'_> {
    pub fn is_done(&self) -> bool {
        self.missing.is_none()
    }
}

/// The state of each of `items` given the ticks in force for their service and environment.
///
/// `release` is the release being deployed (or asked about); a per-release item is done only by
/// a tick for that release. `requester` is who requests the deploy, when there is one: an item
/// that must be ticked by someone else is not done by their tick. A tick whose role or evidence
/// the item no longer accepts (the config changed since) does not count either.
pub fn evaluate<'a>(
    items: &[&'a ChecklistItem],
    ticks: &'a [Tick],
    release: Option<&str>,
    requester: Option<&str>,
) -> Vec<ItemStatus<'a>> {
    items
        .iter()
        .map(|item| {
            let wanted = match item.per {
                Per::Release => release,
                Per::Environment => None,
            };
            let tick = ticks
                .iter()
                .filter(|t| t.item == item.name && t.release.as_deref() == wanted)
                .max_by_key(|t| t.at);
            let missing = match tick {
                _ if item.per == Per::Release && release.is_none() => {
                    Some("ticked per release; no release given".to_owned())
                }
                None => Some("not ticked".to_owned()),
                Some(tick) if !item.may_tick(tick.role) => Some(format!(
                    "ticked by {} as {}, but it needs {} now",
                    tick.by,
                    tick.role.name(),
                    item.who_may_tick()
                )),
                Some(tick) if item.check_evidence(&tick.evidence).is_err() => Some(format!(
                    "ticked by {} with a {}, but it needs a {} now",
                    tick.by,
                    tick.evidence.kind().name(),
                    item.evidence.name()
                )),
                Some(tick)
                    if item.different_from_requester && requester == Some(tick.by.as_str()) =>
                {
                    Some(format!(
                        "ticked by {}, who requested the deploy; someone else must tick it",
                        tick.by
                    ))
                }
                Some(_) => None,
            };
            ItemStatus {
                item,
                tick,
                missing,
            }
        })
        .collect()
}

/// The command that ticks `item`: `slipway checklist tick idp --env prod --release "RC 12"
/// "agreement signed" --link URL`. The release is left out for a standing item.
pub fn tick_command(
    item: &ChecklistItem,
    service: &str,
    environment: &str,
    release: Option<&str>,
) -> String {
    let mut command = format!(
        "slipway checklist tick {} --env {}",
        shell_word(service),
        shell_word(environment)
    );
    if item.per == Per::Release {
        command.push_str(&format!(
            " --release {}",
            shell_word(release.unwrap_or("RC"))
        ));
    }
    command.push_str(&format!(
        " {} {}",
        shell_word(&item.name),
        item.evidence.option()
    ));
    command
}

/// `word` as one shell word: as it is when it is plain, else quoted.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@+=,".contains(c));
    if plain {
        word.to_owned()
    } else if !word.contains(['"', '\\', '$', '`', '!']) {
        format!("\"{word}\"")
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
