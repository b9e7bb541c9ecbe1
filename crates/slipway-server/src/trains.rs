//! What the release-train routes and the notes publisher share: where a service's repository
//! is, how a release's tag is named, the draft notes a cut writes, the categories of a
//! service's changelog, and git errors as API errors.

use std::path::{Path, PathBuf};

use slipway_core::config::ChangelogConfig;
use slipway_core::plan::ReleaseKind;
use slipway_release::{Categories, ReleaseError};
use slipway_store::ReleaseRecord;

use crate::error::ApiError;

/// The repository of `[service.source] repo`: a relative path is relative to the config
/// file's directory (`config_dir`), like calendars and key files.
pub fn repo_path(config_dir: Option<&Path>, repo: &str) -> PathBuf {
    let path = Path::new(repo);
    match config_dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    }
}

/// The tag of a release on its deployed commit: `RC-112`, `RC-112.1`.
pub fn tag_name(label: &str) -> String {
    label.replace(' ', "-")
}

/// The notes a cut drafts: a title, the kind (an off-cycle release says so and why, so that
/// every announcement made from the notes shows it), and the changelog.
pub fn draft_notes(release: &ReleaseRecord, changelog: &str) -> String {
    let mut notes = format!("# {} {}\n\n", release.service, release.label);
    match release.kind {
        ReleaseKind::OffCycle => notes.push_str(&format!(
            "**Off-cycle release**: {}\n\n",
            release.reason.as_deref().unwrap_or("no reason given")
        )),
        ReleaseKind::Patch => {
            notes.push_str(&format!("Patch release of RC {}.\n\n", release.major))
        }
        _ => {}
    }
    if changelog.trim().is_empty() {
        notes.push_str("No changes listed.\n");
    } else {
        notes.push_str(changelog.trim_end());
        notes.push('\n');
    }
    notes
}

/// The categories a service's changelog is grouped in: its `[service.source.changelog]`, or
/// seed 000's when it has none. The one place the config's names become `Categories`, for the
/// cut, the patch and `slipway changelog --service`. The config parser has refused whatever
/// `Categories::new` would, so an error here means a config that skipped the parser.
pub fn categories(config: Option<&ChangelogConfig>) -> Result<Categories, ReleaseError> {
    let Some(config) = config else {
        return Ok(Categories::default());
    };
    let categories = Categories::new(
        config.categories.iter().map(String::as_str),
        &config.features,
        &config.fixes,
        &config.other,
    )?;
    Ok(match config.threshold {
        Some(threshold) => categories.with_threshold(threshold),
        None => categories,
    })
}

/// A git refusal as the API's error: the caller's mistakes are 400s or 409s with the hint of
/// `ReleaseError`, a missing git binary a 500.
pub fn release_error(error: ReleaseError) -> ApiError {
    let hint = error.hint();
    let message = error.to_string();
    let api = match &error {
        ReleaseError::BranchExists { .. }
        | ReleaseError::BranchMoved { .. }
        | ReleaseError::PatchBranchExists { .. }
        | ReleaseError::TagExists { .. }
        | ReleaseError::NotFastForward { .. } => ApiError::conflict("branch_conflict", message),
        ReleaseError::NotOnBranch { .. } => ApiError::bad_request("not_on_main_branch", message),
        ReleaseError::PickConflict { .. }
        | ReleaseError::PickEmpty { .. }
        | ReleaseError::PickMerge { .. }
        | ReleaseError::NothingToPick => ApiError::bad_request("cannot_pick", message),
        ReleaseError::UnknownCommit { .. } | ReleaseError::UnknownRevision { .. } => {
            ApiError::bad_request("unknown_commit", message)
        }
        ReleaseError::NotARepository { .. } => ApiError::bad_request("repo_missing", message),
        ReleaseError::Categories { .. } => {
            return ApiError::bad_request("invalid_categories", message).with_hint(
                "fix [service.source.changelog] in slipway.toml and check it with `slipway \
                 check-config`",
            );
        }
        ReleaseError::GitMissing { .. } | ReleaseError::TemporaryDirectory { .. } => {
            return ApiError::internal(&error);
        }
        // Not the caller's mistake: a 503, so a schedule tries again on its next pass.
        ReleaseError::GitTimedOut { .. } => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "git_timeout",
            message,
        ),
        _ => ApiError::bad_request("git_failed", message),
    };
    api.with_hint(hint)
}
