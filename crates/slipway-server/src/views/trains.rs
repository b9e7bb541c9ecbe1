//! The API's shapes for release trains: what a cut or patch made, and a release's notes.

use serde::{Deserialize, Serialize};
use slipway_store::{NotesRecord, TrainRecord};
use utoipa::ToSchema;

use super::{ReleaseView, timestamp};

/// What `release cut` did: the release it numbered (absent while a patch waits for its
/// artifact), its branch and the range since production with its changelog.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrainView {
    /// False when the same commit had been cut before and that release is returned.
    pub created: bool,
    /// `full` (cut from what staging runs) or `patch` (picked onto production).
    pub kind: String,
    pub release: Option<ReleaseView>,
    pub branch: String,
    /// What production ran (the production branch's head), if anything.
    pub base: Option<String>,
    /// The release's code: what staging ran, or a patch's last pick.
    pub head: String,
    /// The branch's head: the true-up merge when one was recorded, else `head`.
    pub branch_head: String,
    /// `BASE..HEAD` in full shas.
    pub range: String,
    /// The merge of the production branch recorded on the release branch, if one was needed.
    pub true_up: Option<String>,
    /// A patch's picked commits, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub picks: Vec<String>,
    /// The changelog of the range, Markdown.
    pub changelog: String,
    /// What to do next, when something is still missing (a patch's artifact).
    pub next: Option<String>,
    /// The release's number: `RC N.M` reserved by a patch's first call while its artifact is
    /// awaited, then the release's label.
    #[serde(default)]
    pub number: Option<String>,
}

impl TrainView {
    pub fn from_record(record: &TrainRecord, created: bool) -> Self {
        let train = &record.train;
        TrainView {
            created,
            kind: super::enum_name(&train.kind),
            release: Some((&record.release).into()),
            branch: train.branch.clone(),
            base: train.base.clone(),
            head: train.head.clone(),
            branch_head: train.branch_head.clone(),
            range: train.range.clone(),
            true_up: train.true_up.clone(),
            picks: train.picks.clone(),
            changelog: train.changelog.clone(),
            next: None,
            number: Some(record.release.label.clone()),
        }
    }
}

/// The current notes of a release, and their publication.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotesView {
    pub service: String,
    pub release: String,
    /// 1 for the draft the cut wrote; each edit adds one.
    pub revision: i64,
    pub body: String,
    pub written_by: String,
    pub written_at: String,
    /// `draft` or `published`.
    pub state: String,
    pub published: Option<PublicationView>,
}

/// When and how the notes were published.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicationView {
    pub revision: i64,
    /// The production deploy whose success published them.
    pub deploy: i64,
    /// The tag set on the deployed commit.
    pub tag: String,
    pub signed: bool,
    pub published_at: String,
    /// The delivery to the notes webhook: `pending` (being tried, with backoff), `delivered` or
    /// `failed` (given up; `slipway release publish` tries again); absent without a webhook.
    pub delivery: Option<String>,
    /// When the notes webhook took them; absent until then or without a webhook.
    pub delivered_at: Option<String>,
}

impl From<&NotesRecord> for NotesView {
    fn from(notes: &NotesRecord) -> Self {
        NotesView {
            service: notes.service.clone(),
            release: notes.label.clone(),
            revision: notes.revision,
            body: notes.body.clone(),
            written_by: notes.written_by.clone(),
            written_at: timestamp(notes.written_at),
            state: if notes.published.is_some() {
                "published"
            } else {
                "draft"
            }
            .to_owned(),
            published: notes.published.as_ref().map(|p| PublicationView {
                revision: p.revision,
                deploy: p.deploy,
                tag: p.tag.clone(),
                signed: p.signed,
                published_at: timestamp(p.published_at),
                delivery: p.delivery.map(|d| d.name().to_owned()),
                delivered_at: p.delivered_at.map(timestamp),
            }),
        }
    }
}

/// The new text of a release's notes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotesBody {
    pub body: String,
}
