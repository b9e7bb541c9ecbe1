//! Release trains (`docs/releases.md`): cutting a release candidate from what staging runs,
//! patches picked onto production, the git facts of a train release, and its notes.
//!
//! The git work runs on the server's clone of the service's repository (`[service.source]`),
//! on a blocking thread; the store then numbers the release and records it with its facts and
//! draft notes in one transaction.

use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use slipway_core::config::SourceConfig;
use slipway_core::deploy::Role;
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_release::{
    Categories, CutRequest, PickRequest, ReleaseError, branch_head, branch_name, build,
    check_on_branch, commits, cut as cut_branch, holds_picks, pick,
};
use slipway_store::{NewRelease, NewTrain, TrainKind, TrainRecord};
use utoipa::ToSchema;

use super::catalog::{check_commit, find_release, service};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};
use crate::publish::Publishing;
use crate::trains::{categories, draft_notes, release_error, repo_path};
use crate::views::trains::{NotesBody, NotesView, TrainView};

/// What to cut.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CutBody {
    /// A patch: `picks` cherry-picked onto the production line, numbered `RC N.M`.
    #[serde(default)]
    patch: bool,
    /// The commits of a patch, in order; each must be on the main branch.
    #[serde(default)]
    picks: Vec<String>,
    /// A patch's artifact: a pushed version built from the patch branch's head. Without it
    /// the branch is made and the answer says what to build.
    version: Option<String>,
    /// An off-cycle cut (not the scheduled train); needs `reason`.
    #[serde(default)]
    off_cycle: bool,
    /// Why an off-cycle release cannot wait.
    reason: Option<String>,
}

/// The environment staging is (the one before production) and production (the last one,
/// in promotion order).
fn stages(state: &AppState) -> ApiResult<(String, String)> {
    match (state.config.staging(), state.config.production()) {
        (Some(staging), Some(production)) => Ok((staging.name.clone(), production.name.clone())),
        _ => Err(ApiError::bad_request(
            "no_staging",
            "a release is cut from what the environment before production runs, and \
             slipway.toml has fewer than two environments",
        )
        .with_hint("add a staging environment before production in slipway.toml")),
    }
}

/// Runs git work on a blocking thread.
async fn git<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ReleaseError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(&error))?
        .map_err(release_error)
}

/// The server's date (UTC): what `{date}` of a branch pattern becomes.
fn today(state: &AppState) -> jiff::civil::Date {
    state
        .clock
        .now()
        .to_timestamp()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// The changelog of `range`, grouped in the service's `categories`, and the distinct authors
/// of its commits.
fn changelog(
    repo: &std::path::Path,
    range: &str,
    categories: &Categories,
) -> Result<(String, Vec<String>), ReleaseError> {
    let found = commits(repo, range)?;
    let mut authors: Vec<String> = Vec::new();
    for commit in &found {
        if !commit.author.is_empty() && !authors.contains(&commit.author) {
            authors.push(commit.author.clone());
        }
    }
    Ok((build(&found, categories).to_markdown(), authors))
}

/// Cuts the next release candidate of a service from the commit staging runs (or, with
/// `patch`, picks commits onto the production line). Cutting the same commit again returns
/// the release cut before (200).
#[utoipa::path(post, path = "/api/v1/releases/{service}/cut", tag = "releases",
    params(("service" = String, Path)),
    request_body = CutBody,
    responses(
        (status = 201, description = "Cut: a new release", body = TrainView),
        (status = 200, description = "This commit was cut before: that release", body = TrainView),
        (status = 202, description = "Patch branch made; its artifact is awaited", body = TrainView),
        (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "The branch exists at another commit", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn cut(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<CutBody>,
) -> ApiResult<(StatusCode, Json<TrainView>)> {
    caller.require(Role::Deployer, "cutting a release")?;
    let source = service(&state, &name)?.source.clone().ok_or_else(|| {
        ApiError::bad_request(
            "no_source",
            format!("{name} names no git repository to cut releases in"),
        )
        .with_hint(format!(
            "add [service.source] with repo = \"PATH\" (a local clone, relative to slipway.toml) \
             to the [[service]] {name}"
        ))
    })?;
    let repo = repo_path(state.settings.config_dir.as_deref(), &source.repo);
    if !repo.is_dir() {
        return Err(ApiError::bad_request(
            "repo_missing",
            format!("the repository of {name} is not at {}", repo.display()),
        )
        .with_hint(
            "clone the repository there on the server, or fix [service.source] repo (a \
             relative path is relative to slipway.toml)",
        ));
    }
    let reason = body.reason.clone().filter(|r| !r.trim().is_empty());
    if body.off_cycle && reason.is_none() {
        return Err(ApiError::bad_request(
            "reason_required",
            "an off-cycle release needs a reason",
        )
        .with_hint("say why it cannot wait for the train: --reason \"…\""));
    }
    if body.patch {
        patch(&state, &caller, &name, &source, repo, &body, reason).await
    } else {
        full(&state, &caller, &name, &source, repo, &body, reason).await
    }
}

async fn full(
    state: &AppState,
    caller: &Caller,
    name: &str,
    source: &SourceConfig,
    repo: PathBuf,
    body: &CutBody,
    reason: Option<String>,
) -> ApiResult<(StatusCode, Json<TrainView>)> {
    if !body.picks.is_empty() || body.version.is_some() {
        return Err(ApiError::bad_request(
            "patch_options",
            "picks and a version belong to a patch",
        )
        .with_hint("add --patch, or leave --pick and --version out to cut from staging"));
    }
    let (staging, _production) = stages(state)?;
    let running = state
        .store
        .current_release(name, &staging)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "staging_runs_nothing",
                format!("{staging} runs no release of {name} to cut from"),
            )
            .with_hint(format!(
                "deploy a release to {staging} first: slipway deploy {name} --env {staging} \
                 --release N"
            ))
        })?;
    let label = running.deploy.spec.release.label.clone();
    let staged = find_release(state, name, &label).await?;
    let commit = staged.commit.clone().ok_or_else(|| {
        ApiError::bad_request(
            "no_commit",
            format!("{label}, which {staging} runs, has no source commit"),
        )
        .with_hint(
            "push artifacts with --commit SHA (the commit they were built from) so that a \
             release can be cut from them",
        )
    })?;
    // Whatever its kind: a patch staging runs is already a train release, and cutting it again
    // must not open a new day's branch for it.
    if let Some(existing) = state.store.train_for_commit(name, &commit).await? {
        return Ok((
            StatusCode::OK,
            Json(TrainView::from_record(&existing, false)),
        ));
    }

    let date = today(state);
    let request = CutRequest {
        commit,
        branch_pattern: source.train.branch_pattern.clone(),
        date,
        prod_branch: source.train.prod_branch.clone(),
    };
    let categories = categories(source.train.changelog.as_ref()).map_err(release_error)?;
    let (made, (log, authors)) = git(move || {
        let made = cut_branch(&repo, &request)?;
        let log = changelog(&repo, &made.range, &categories)?;
        Ok((made, log))
    })
    .await?;
    let kind = if body.off_cycle {
        ReleaseKind::OffCycle
    } else {
        ReleaseKind::Full
    };
    let new = NewRelease {
        service: name.to_owned(),
        version: staged.version.clone(),
        kind,
        created_by: caller.user.name.clone(),
        reason,
        authors,
        reconfigures: None,
    };
    let train = NewTrain {
        kind: TrainKind::Full,
        branch: made.branch,
        base: made.prod,
        branch_head: made
            .true_up
            .as_ref()
            .map_or_else(|| made.commit.clone(), |t| t.merge.clone()),
        head: made.commit,
        range: made.range,
        true_up: made.true_up.map(|t| t.merge),
        picks: Vec::new(),
        changelog: log,
    };
    record_train(state, &new, &train).await
}

async fn patch(
    state: &AppState,
    caller: &Caller,
    name: &str,
    source: &SourceConfig,
    repo: PathBuf,
    body: &CutBody,
    reason: Option<String>,
) -> ApiResult<(StatusCode, Json<TrainView>)> {
    if body.picks.is_empty() {
        return Err(
            ApiError::bad_request("nothing_to_pick", "a patch needs commits to pick")
                .with_hint("name them with --pick SHA (repeat it), oldest first"),
        );
    }
    for sha in &body.picks {
        check_commit(sha)?;
    }
    // A patch patches what production runs: RC N there makes this RC N.M, whatever was cut
    // since.
    let (_, production) = stages(state)?;
    let running = state
        .store
        .current_release(name, &production)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "no_release_to_patch",
                format!("{production} runs no release of {name} to patch"),
            )
            .with_hint(format!(
                "a patch goes onto what production runs; cut a release first: slipway release \
                 cut {name}"
            ))
        })?;
    let patched = find_release(state, name, &running.deploy.spec.release.label).await?;
    let full_label = format!("RC {}", patched.major);
    let full = state.store.train(name, &full_label).await?;
    let base_branch = match &full {
        Some(full) => full.train.branch.clone(),
        None => branch_name(&source.train.branch_pattern, today(state)),
    };
    // Git is only read before the number is reserved: the picks (on main, as full shas, so an
    // abbreviation names the same patch) and the production line.
    let (main, prod_branch) = (source.branch.clone(), source.train.prod_branch.clone());
    let (given, repo_for_git) = (body.picks.clone(), repo.clone());
    let (picks, production_head) = git(move || {
        let picks = given
            .iter()
            .map(|sha| check_on_branch(&repo_for_git, sha, &main))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((picks, branch_head(&repo_for_git, &prod_branch)?))
    })
    .await?;
    let Some(production_head) = production_head else {
        return Err(ApiError::bad_request(
            "no_production_line",
            format!(
                "{} does not exist in the repository of {name}",
                source.train.prod_branch
            ),
        )
        .with_hint(format!(
            "a patch goes onto what production runs: slipway creates {} when a cut release's \
             production deploy succeeds",
            source.train.prod_branch
        )));
    };
    // The number and branch are stored before git acts: a patch with other picks reserved
    // meanwhile takes the next number, and these picks again find this one.
    let (pending, reserved) = state
        .store
        .reserve_patch(
            name,
            patched.major,
            &picks,
            |minor| format!("{base_branch}.{minor}"),
            &caller.user.name,
            state.clock.now(),
        )
        .await?;
    let branch = pending.branch.clone();
    let number = format!("RC {}.{}", pending.major, pending.minor);
    let prod_branch = source.train.prod_branch.clone();
    let (branch_for_git, repo_for_git) = (branch.clone(), repo.clone());
    let (recorded_base, picks_for_git) = (pending.base.clone(), picks.clone());
    let made = git(move || {
        let repo = repo_for_git;
        let picks = picks_for_git;
        match branch_head(&repo, &branch_for_git)? {
            Some(head) => {
                // The branch of an earlier call must hold exactly these picks.
                let base = recorded_base.unwrap_or(production_head);
                if !holds_picks(&repo, &base, &head, &picks)? {
                    return Err(ReleaseError::PatchBranchExists {
                        branch: branch_for_git,
                        at: head,
                    });
                }
                Ok((base, head, false))
            }
            None => {
                let request = PickRequest {
                    onto: prod_branch,
                    shas: picks,
                    new_branch: branch_for_git,
                };
                Ok((production_head, pick(&repo, &request)?.head, true))
            }
        }
    })
    .await;
    let (base, head, picked) = match made {
        Ok(made) => made,
        Err(error) => {
            // The number this call reserved is given back only when git shows no branch for
            // it: an identical call may have made the branch meanwhile (this one then lost the
            // race to create it). A reservation found again stays, and so does one whose
            // branch was recorded.
            let (repo, branch_for_git) = (repo.clone(), branch.clone());
            let branchless = matches!(
                git(move || branch_head(&repo, &branch_for_git)).await,
                Ok(None)
            );
            if reserved
                && branchless
                && let Err(drop) = state
                    .store
                    .drop_pending_patch(pending.id, state.clock.now())
                    .await
            {
                tracing::warn!(service = %name, %branch, error = %drop, "cannot give back the patch number");
            }
            return Err(error);
        }
    };
    state
        .store
        .record_patch_branch(pending.id, &base, &head)
        .await?;
    if let Some(existing) = state.store.train_for_commit(name, &head).await? {
        return Ok((
            StatusCode::OK,
            Json(TrainView::from_record(&existing, false)),
        ));
    }
    let range = format!("{base}..{head}");
    let log_range = range.clone();
    let categories = categories(source.train.changelog.as_ref()).map_err(release_error)?;
    let (log, authors) = git(move || changelog(&repo, &log_range, &categories)).await?;
    let mut view = TrainView {
        created: picked,
        kind: "patch".to_owned(),
        release: None,
        branch: branch.clone(),
        base: Some(base.clone()),
        head: head.clone(),
        branch_head: head.clone(),
        range: range.clone(),
        true_up: None,
        picks: picks.clone(),
        changelog: log.clone(),
        next: None,
        number: Some(number),
    };
    let Some(version) = &body.version else {
        let flags: Vec<String> = picks.iter().map(|p| format!("--pick {p}")).collect();
        view.next = Some(format!(
            "build {branch} ({head}) and push it: slipway artifact push FILE --service {name} \
             --version V --commit {head}; then: slipway release cut {name} --patch {} \
             --version V",
            flags.join(" ")
        ));
        return Ok((StatusCode::ACCEPTED, Json(view)));
    };
    let artifact = state.store.artifact(name, version).await?.ok_or_else(|| {
        ApiError::not_found(format!("no artifact of {name} with version `{version}`")).with_hint(
            format!(
                "build {branch} and push it: slipway artifact push FILE --service {name} \
                     --version {version} --commit {head}"
            ),
        )
    })?;
    let matches = artifact
        .commit
        .as_deref()
        .is_some_and(|c| !c.is_empty() && head.starts_with(&c.to_ascii_lowercase()));
    if !matches {
        return Err(ApiError::bad_request(
            "artifact_commit_mismatch",
            format!(
                "version {version} was built from {}, not from the patch branch's head {head}",
                artifact.commit.as_deref().unwrap_or("an unknown commit")
            ),
        )
        .with_hint(format!(
            "build {branch} and push it with --commit {head}, then name that version"
        )));
    }
    let new = NewRelease {
        service: name.to_owned(),
        version: version.clone(),
        kind: ReleaseKind::Patch,
        created_by: caller.user.name.clone(),
        reason,
        authors,
        reconfigures: Some(patched.label.clone()),
    };
    let train = NewTrain {
        kind: TrainKind::Patch,
        branch,
        base: Some(base),
        head: head.clone(),
        branch_head: head,
        range,
        true_up: None,
        picks,
        changelog: log,
    };
    let (record, created) = state
        .store
        .create_patch_release(
            &pending,
            &new,
            &train,
            |release| draft_notes(release, &train.changelog),
            state.clock.now(),
        )
        .await?;
    Ok(answer(&new, &train, &record, created))
}

/// Stores a release the train made with its draft notes: 201 when it is new, 200 when the same
/// head was recorded before.
async fn record_train(
    state: &AppState,
    new: &NewRelease,
    train: &NewTrain,
) -> ApiResult<(StatusCode, Json<TrainView>)> {
    let (record, created) = state
        .store
        .create_train_release(
            new,
            train,
            |release| draft_notes(release, &train.changelog),
            state.clock.now(),
        )
        .await?;
    Ok(answer(new, train, &record, created))
}

/// The answer to a train release stored: 201 when it is new, 200 when it was made before.
fn answer(
    new: &NewRelease,
    train: &NewTrain,
    record: &TrainRecord,
    created: bool,
) -> (StatusCode, Json<TrainView>) {
    tracing::info!(
        service = %new.service,
        release = %record.release.label,
        kind = ?train.kind,
        created,
        "train release recorded"
    );
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(TrainView::from_record(record, created)))
}

/// The git facts of a release the train made: branch, range, true-up, picks, changelog.
#[utoipa::path(get, path = "/api/v1/releases/{service}/{number}/train", tag = "releases",
    params(("service" = String, Path), ("number" = String, Path, description = "`12` or `12.1`")),
    responses((status = 200, body = TrainView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get_train(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, number)): Path<(String, String)>,
) -> ApiResult<Json<TrainView>> {
    service(&state, &name)?;
    let release = find_release(&state, &name, &number).await?;
    match state.store.train(&name, &release.label).await? {
        Some(record) => Ok(Json(TrainView::from_record(&record, false))),
        None => Err(not_a_train_release(&name, &release.label)),
    }
}

fn not_a_train_release(name: &str, label: &str) -> ApiError {
    ApiError::not_found(format!(
        "{name} {label} was not cut by the train, so it has no branch or notes"
    ))
    .with_hint(format!(
        "releases cut with `slipway release cut {name}` have them"
    ))
}

/// The current notes of a release: the draft the cut wrote, its edits, and the publication.
#[utoipa::path(get, path = "/api/v1/releases/{service}/{number}/notes", tag = "releases",
    params(("service" = String, Path), ("number" = String, Path, description = "`12` or `12.1`")),
    responses((status = 200, body = NotesView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get_notes(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, number)): Path<(String, String)>,
) -> ApiResult<Json<NotesView>> {
    service(&state, &name)?;
    let release = find_release(&state, &name, &number).await?;
    match state.store.release_notes(&name, &release.label).await? {
        Some(notes) => Ok(Json((&notes).into())),
        None => Err(not_a_train_release(&name, &release.label)),
    }
}

/// Replaces the text of a release's notes (a new revision, audited). Published notes are final.
#[utoipa::path(put, path = "/api/v1/releases/{service}/{number}/notes", tag = "releases",
    params(("service" = String, Path), ("number" = String, Path, description = "`12` or `12.1`")),
    request_body = NotesBody,
    responses(
        (status = 200, body = NotesView),
        (status = 400, description = "Empty, or already published", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
    ))]
pub(crate) async fn edit_notes(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, number)): Path<(String, String)>,
    Body(body): Body<NotesBody>,
) -> ApiResult<Json<NotesView>> {
    caller.require(Role::Deployer, "editing release notes")?;
    service(&state, &name)?;
    let release = find_release(&state, &name, &number).await?;
    if body.body.trim().is_empty() {
        return Err(
            ApiError::bad_request("empty_notes", "release notes cannot be empty")
                .with_hint("write what the release changes for its users"),
        );
    }
    if state
        .store
        .release_notes(&name, &release.label)
        .await?
        .is_none()
    {
        return Err(not_a_train_release(&name, &release.label));
    }
    let notes = state
        .store
        .edit_release_notes(
            &name,
            &release.label,
            &body.body,
            &caller.user.name,
            state.clock.now(),
        )
        .await?;
    Ok(Json((&notes).into()))
}

/// Publishes a release's notes by hand, as a successful production deploy does: the tag, the
/// production branch and the stored publication with the delivery to the notes webhook. For a
/// release already published it only enqueues the delivery again (a failed one is tried once
/// more). The release must be what production runs.
#[utoipa::path(post, path = "/api/v1/releases/{service}/{number}/publish", tag = "releases",
    params(("service" = String, Path), ("number" = String, Path, description = "`12` or `12.1`")),
    responses(
        (status = 200, body = NotesView),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Production does not run this release", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, number)): Path<(String, String)>,
) -> ApiResult<Json<NotesView>> {
    caller.require(Role::Deployer, "publishing release notes")?;
    let service = service(&state, &name)?;
    let release = find_release(&state, &name, &number).await?;
    let Some(notes) = state.store.release_notes(&name, &release.label).await? else {
        return Err(not_a_train_release(&name, &release.label));
    };
    let deploy = match &notes.published {
        Some(published) => slipway_core::deploy::DeployId(published.deploy),
        None => {
            let (_, production) = stages(&state)?;
            let running = state.store.current_release(&name, &production).await?;
            match running {
                // A rollback that put this release back publishes nothing, as its deploy's
                // notice does not: the release's own production deploy does.
                Some(running)
                    if running.deploy.spec.release.label == release.label
                        && running.deploy.spec.purpose == Purpose::Release =>
                {
                    running.deploy.spec.id
                }
                _ => {
                    return Err(ApiError::conflict(
                        "not_in_production",
                        format!(
                            "{production} does not run {name} {} from its own deploy; notes \
                             are published for the release production runs",
                            release.label
                        ),
                    )
                    .with_hint(format!(
                        "deploy it first: slipway deploy {name} --env {production} --release {}; \
                         its success publishes the notes",
                        release.label.trim_start_matches("RC ")
                    )));
                }
            }
        }
    };
    let publishing = Publishing {
        store: &state.store,
        config: &state.config,
        config_dir: state.settings.config_dir.as_deref(),
        clock: state.clock.as_ref(),
        wake: state.settings.notes_wake.as_deref(),
    };
    match publishing.publish(service, &release.label, deploy).await? {
        Some(notes) => {
            tracing::info!(service = %name, release = %release.label, by = %caller.user.name, "release publication requested");
            Ok(Json((&notes).into()))
        }
        None => Err(not_a_train_release(&name, &release.label)),
    }
}
