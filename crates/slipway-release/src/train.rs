//! The git operations of a release train on a local repository, through the `git` binary:
//! cutting the release branch (with the "true-up" merge of seed 000), checking and
//! cherry-picking a patch's commits onto the production line, and tagging the deployed commit.
//!
//! None of them touches the caller's working tree, index or checked-out branch: merges are
//! written with `git commit-tree`, cherry-picks happen in a temporary worktree, and branches
//! are created with `git update-ref` only once everything they point at exists. Nothing here
//! talks to a remote.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::ReleaseError;

/// The release branch of seed 000's team: `stages/rc-2020-06-17`.
pub const DEFAULT_BRANCH_PATTERN: &str = "stages/rc-{date}";
/// The branch production runs.
pub const DEFAULT_PROD_BRANCH: &str = "stages/prod";

/// What to cut a release from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutRequest {
    /// The commit staging runs (any revision git resolves to a commit).
    pub commit: String,
    /// The release branch's name; `{date}` becomes `date` as `YYYY-MM-DD`.
    pub branch_pattern: String,
    /// The date of the production release, given by the caller (time is an input).
    pub date: jiff::civil::Date,
    /// The production line; when it does not exist yet the release is the whole history.
    pub prod_branch: String,
}

impl CutRequest {
    /// A request with the default branch pattern and production branch.
    pub fn new(commit: impl Into<String>, date: jiff::civil::Date) -> Self {
        Self {
            commit: commit.into(),
            branch_pattern: DEFAULT_BRANCH_PATTERN.to_owned(),
            date,
            prod_branch: DEFAULT_PROD_BRANCH.to_owned(),
        }
    }

    /// The release branch's name for this request.
    pub fn branch(&self) -> String {
        branch_name(&self.branch_pattern, self.date)
    }
}

/// A release branch's name: `pattern` with `{date}` as `YYYY-MM-DD`.
pub fn branch_name(pattern: &str, date: jiff::civil::Date) -> String {
    pattern.replace("{date}", &date.strftime("%Y-%m-%d").to_string())
}

/// A release branch, cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The release branch.
    pub branch: String,
    /// The full sha of the commit staging runs: the release's code.
    pub commit: String,
    /// The full sha production runs, if the production branch exists.
    pub prod: Option<String>,
    /// The release's commits for `git log` and the changelog: `PROD..COMMIT` in full shas (so
    /// that it keeps its meaning when the branches move), or the commit alone for a first
    /// release.
    pub range: String,
    /// The merge that makes the release line contain production, when one was needed.
    pub true_up: Option<TrueUp>,
}

/// A merge of the production branch into the release branch with the `ours` strategy: the
/// release keeps its own tree, and since it now contains every commit of production (a patch
/// cherry-picked there, say), promoting it is a fast-forward instead of a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrueUp {
    /// The merge commit, the release branch's head.
    pub merge: String,
    /// The production commit it merged.
    pub prod: String,
}

/// Cuts the release branch at `request.commit`, records the true-up merge when production
/// has commits the release does not contain, and returns the range since production.
///
/// Idempotent: when the branch already exists at the commit, or at a true-up of it (merges
/// keeping the commit's tree on its first-parent line), it is kept, and advanced by a new
/// true-up only if production moved since. A branch that holds anything else is refused.
pub fn cut(repo: &Path, request: &CutRequest) -> Result<Cut, ReleaseError> {
    let branch = request.branch();
    check_branch_name(repo, &branch)?;
    cut_at(repo, branch, &request.commit, &request.prod_branch)
}

/// Brings release branch `branch`, cut at `commit`, up to date with `prod_branch` right before
/// it is promoted: when production moved since the cut (a patch shipped meanwhile), the branch
/// gets a new true-up merge, so that promoting it stays a fast-forward. What [`cut`] does to an
/// existing branch; the returned [`Cut`] names the branch's head in `true_up` (or `commit`).
pub fn true_up(
    repo: &Path,
    branch: &str,
    commit: &str,
    prod_branch: &str,
) -> Result<Cut, ReleaseError> {
    check_branch_name(repo, branch)?;
    cut_at(repo, branch.to_owned(), commit, prod_branch)
}

fn cut_at(
    repo: &Path,
    branch: String,
    commit: &str,
    prod_branch: &str,
) -> Result<Cut, ReleaseError> {
    let commit = resolve_commit(repo, commit)?;
    let prod = try_resolve_commit(repo, prod_branch)?;
    let range = match &prod {
        Some(prod) => format!("{prod}..{commit}"),
        None => commit.clone(),
    };
    let reference = format!("refs/heads/{branch}");
    let existing = try_resolve_commit(repo, &reference)?;

    let (head, mut true_up) = match &existing {
        None => (commit.clone(), None),
        Some(head) if *head == commit => (commit.clone(), None),
        Some(head) => match true_up_line(repo, &commit, head)? {
            Some(last) => (head.clone(), Some(last)),
            None => {
                return Err(ReleaseError::BranchExists {
                    branch,
                    at: head.clone(),
                    wanted: commit,
                });
            }
        },
    };

    let mut new_head = head.clone();
    if let Some(prod) = &prod
        && !is_ancestor(repo, prod, &head)?
    {
        let tree = git_text(repo, ["rev-parse", format!("{commit}^{{tree}}").as_str()])?;
        let message = format!(
            "Merge branch '{prod_branch}' into {branch}\n\n\
             True-up: the release keeps its own tree (merge -s ours) and now contains\n\
             {prod_branch}, so that promoting it does not conflict.\n",
        );
        let merge = git_text(
            repo,
            [
                "commit-tree",
                tree.as_str(),
                "-p",
                head.as_str(),
                "-p",
                prod.as_str(),
                "-m",
                message.as_str(),
            ],
        )
        .map_err(|error| identity_or(error, "commit-tree"))?;
        true_up = Some(TrueUp {
            merge: merge.clone(),
            prod: prod.clone(),
        });
        new_head = merge;
    }

    if existing.as_deref() != Some(new_head.as_str()) {
        // Compare-and-swap: created only if absent, advanced only from what was read above,
        // so a concurrent cut fails instead of being overwritten.
        let old = existing.clone().unwrap_or_default();
        let message = format!("slipway: cut {branch}");
        let output = git(
            repo,
            [
                "update-ref",
                "-m",
                message.as_str(),
                reference.as_str(),
                new_head.as_str(),
                old.as_str(),
            ],
        )?;
        if !output.status.success() {
            return Err(ReleaseError::BranchMoved {
                branch,
                detail: stderr(&output),
            });
        }
    }

    Ok(Cut {
        branch,
        commit,
        prod,
        range,
        true_up,
    })
}

/// Whether `head` is `commit` followed only by true-up merges (first-parent line of merges
/// whose tree is the commit's); returns the newest one.
fn true_up_line(repo: &Path, commit: &str, head: &str) -> Result<Option<TrueUp>, ReleaseError> {
    if !is_ancestor(repo, commit, head)? {
        return Ok(None);
    }
    let tree = git_text(repo, ["rev-parse", format!("{commit}^{{tree}}").as_str()])?;
    let line = git_text(
        repo,
        [
            "rev-list",
            "--first-parent",
            "--format=%T %P",
            "--no-commit-header",
            format!("{commit}..{head}").as_str(),
        ],
    )?;
    let mut newest = None;
    for entry in line.lines() {
        let fields: Vec<&str> = entry.split_whitespace().collect();
        match fields.as_slice() {
            [entry_tree, _first, second] if *entry_tree == tree => {
                newest.get_or_insert_with(|| (*second).to_owned());
            }
            _ => return Ok(None),
        }
    }
    Ok(newest.map(|prod| TrueUp {
        merge: head.to_owned(),
        prod,
    }))
}

/// The full sha of `sha`, refused unless it is reachable from `main`: a patch carries only
/// commits that are already on the main branch, so the next full release cannot lose them.
/// A patch records the full sha, so `abc1234` and its full sha name the same pick.
pub fn check_on_branch(repo: &Path, sha: &str, main: &str) -> Result<String, ReleaseError> {
    let commit = resolve_commit(repo, sha)?;
    let tip = resolve_commit(repo, main)?;
    if is_ancestor(repo, &commit, &tip)? {
        Ok(commit)
    } else {
        Err(ReleaseError::NotOnBranch {
            commit,
            branch: main.to_owned(),
        })
    }
}

/// A patch to build on the production line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickRequest {
    /// The production line branch the patch starts from.
    pub onto: String,
    /// The commits to cherry-pick, in order.
    pub shas: Vec<String>,
    /// The patch's release branch, created from `onto`; must not exist yet.
    pub new_branch: String,
}

/// A patch branch, built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    /// The new branch.
    pub branch: String,
    /// Its head: the last cherry-pick.
    pub head: String,
}

/// Creates `new_branch` from `onto` with the commits cherry-picked in order (`-x`, so each
/// records `(cherry picked from commit …)`). The picks happen in a temporary worktree,
/// removed afterwards whatever happens; the branch is created only when every pick applied,
/// so a conflict leaves nothing behind and names the commit.
pub fn pick(repo: &Path, request: &PickRequest) -> Result<Picked, ReleaseError> {
    check_branch_name(repo, &request.new_branch)?;
    let reference = format!("refs/heads/{}", request.new_branch);
    if let Some(at) = try_resolve_commit(repo, &reference)? {
        return Err(ReleaseError::PatchBranchExists {
            branch: request.new_branch.clone(),
            at,
        });
    }
    if request.shas.is_empty() {
        return Err(ReleaseError::NothingToPick);
    }
    let onto = resolve_commit(repo, &request.onto)?;
    let shas = request
        .shas
        .iter()
        .map(|sha| resolve_commit(repo, sha))
        .collect::<Result<Vec<_>, _>>()?;

    let worktree = TemporaryWorktree::add(repo, &onto)?;
    for sha in &shas {
        let output = git(worktree.path(), ["cherry-pick", "-x", sha.as_str()])?;
        if !output.status.success() {
            return Err(pick_failure(sha, &request.onto, stderr(&output)));
        }
    }
    let head = git_text(worktree.path(), ["rev-parse", "HEAD"])?;
    drop(worktree);

    let message = format!(
        "slipway: patch {} onto {}",
        request.new_branch, request.onto
    );
    let output = git(
        repo,
        [
            "update-ref",
            "-m",
            message.as_str(),
            reference.as_str(),
            head.as_str(),
            "",
        ],
    )?;
    if !output.status.success() {
        return Err(ReleaseError::BranchMoved {
            branch: request.new_branch.clone(),
            detail: stderr(&output),
        });
    }
    Ok(Picked {
        branch: request.new_branch.clone(),
        head,
    })
}

/// The error of a cherry-pick that failed, from what git wrote on stderr.
fn pick_failure(sha: &str, onto: &str, detail: String) -> ReleaseError {
    let lower = detail.to_lowercase();
    // Checked first: git's message for an empty pick mentions "conflict resolution".
    if lower.contains("is now empty") {
        ReleaseError::PickEmpty {
            commit: sha.to_owned(),
            onto: onto.to_owned(),
        }
    } else if lower.contains("is a merge") {
        ReleaseError::PickMerge {
            commit: sha.to_owned(),
        }
    } else if lower.contains("conflict") || lower.contains("could not apply") {
        ReleaseError::PickConflict {
            commit: sha.to_owned(),
            onto: onto.to_owned(),
            detail,
        }
    } else {
        identity_or(
            ReleaseError::GitFailed {
                command: "cherry-pick".to_owned(),
                detail,
            },
            "cherry-pick",
        )
    }
}

/// A detached worktree in a temporary directory, removed (and unregistered) on drop.
struct TemporaryWorktree {
    repo: PathBuf,
    // The worktree itself; deleted on drop, after git has unregistered it.
    dir: tempfile::TempDir,
}

impl TemporaryWorktree {
    fn add(repo: &Path, commit: &str) -> Result<Self, ReleaseError> {
        let dir = tempfile::Builder::new()
            .prefix("slipway-pick-")
            .tempdir()
            .map_err(|source| ReleaseError::TemporaryDirectory { source })?;
        let worktree = Self {
            repo: repo.to_owned(),
            dir,
        };
        let path = worktree.path().to_owned();
        let output = git(
            repo,
            [
                OsStr::new("worktree"),
                OsStr::new("add"),
                OsStr::new("--detach"),
                OsStr::new("--quiet"),
                path.as_os_str(),
                OsStr::new(commit),
            ],
        )?;
        if !output.status.success() {
            return Err(ReleaseError::GitFailed {
                command: "worktree add".to_owned(),
                detail: stderr(&output),
            });
        }
        Ok(worktree)
    }

    fn path(&self) -> &Path {
        // `git worktree add` accepts the empty directory.
        self.dir.path()
    }
}

impl Drop for TemporaryWorktree {
    fn drop(&mut self) {
        // Removing also discards a half-done cherry-pick; pruning catches the registration
        // if the removal failed after deleting files. Errors cannot be reported from drop,
        // and the temporary directory is deleted afterwards either way.
        let path = self.dir.path().as_os_str().to_owned();
        let _ = git(
            &self.repo,
            [
                OsStr::new("worktree"),
                OsStr::new("remove"),
                OsStr::new("--force"),
                OsStr::new("--force"),
                &path,
            ],
        );
        let _ = std::fs::remove_dir_all(self.dir.path());
        let _ = git(&self.repo, ["worktree", "prune"]);
    }
}

/// The key a tag is signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKey {
    /// An SSH private key file (`git -c gpg.format=ssh -c user.signingkey=PATH tag -s`);
    /// git signs with `ssh-keygen -Y sign`, so the key must not need a passphrase typed in.
    Ssh(PathBuf),
}

/// A tag on the deployed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The tag's name.
    pub name: String,
    /// The full sha of the commit it points at.
    pub commit: String,
    /// Whether the tag object carries a signature.
    pub signed: bool,
}

/// Creates the annotated tag `name` on `sha`, signed when a key is given. An existing tag on
/// the same commit is kept (idempotent); one on another commit is refused.
pub fn tag(
    repo: &Path,
    name: &str,
    sha: &str,
    message: &str,
    sign: Option<&SigningKey>,
) -> Result<Tag, ReleaseError> {
    let reference = format!("refs/tags/{name}");
    if name.starts_with('-')
        || !git(repo, ["check-ref-format", reference.as_str()])?
            .status
            .success()
    {
        return Err(ReleaseError::InvalidRefName {
            name: name.to_owned(),
        });
    }
    let commit = resolve_commit(repo, sha)?;
    if let Some(at) = try_resolve_commit(repo, &reference)? {
        if at != commit {
            return Err(ReleaseError::TagExists {
                name: name.to_owned(),
                at,
                wanted: commit,
            });
        }
        return Ok(Tag {
            name: name.to_owned(),
            commit,
            signed: is_signed(repo, &reference)?,
        });
    }

    let mut args: Vec<std::ffi::OsString> = Vec::new();
    match sign {
        Some(SigningKey::Ssh(key)) => {
            // git runs in `repo`: a relative path must mean what it meant to the caller.
            let key = std::path::absolute(key).map_err(|error| ReleaseError::SigningFailed {
                detail: format!("{}: {error}", key.display()),
            })?;
            let mut signing_key = std::ffi::OsString::from("user.signingkey=");
            signing_key.push(key.as_os_str());
            args.extend([
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                signing_key,
            ]);
            args.extend(["tag".into(), "-s".into()]);
        }
        None => args.extend(["tag".into(), "-a".into()]),
    }
    args.extend([
        "-m".into(),
        message.into(),
        "--end-of-options".into(),
        name.into(),
        commit.clone().into(),
    ]);
    let output = git(repo, &args)?;
    if !output.status.success() {
        let detail = stderr(&output);
        return Err(
            if sign.is_some() && detail.to_lowercase().contains("sign") {
                ReleaseError::SigningFailed { detail }
            } else {
                identity_or(
                    ReleaseError::GitFailed {
                        command: "tag".to_owned(),
                        detail,
                    },
                    "tag",
                )
            },
        );
    }
    Ok(Tag {
        name: name.to_owned(),
        commit,
        signed: sign.is_some(),
    })
}

/// Verifies the SSH signature of tag `name` against an allowed-signers file (the format of
/// `ssh-keygen -Y verify`: `EMAIL KEYTYPE KEY` per line).
pub fn verify_tag(repo: &Path, name: &str, allowed_signers: &Path) -> Result<(), ReleaseError> {
    let mut setting = std::ffi::OsString::from("gpg.ssh.allowedSignersFile=");
    setting.push(allowed_signers.as_os_str());
    let output = git(
        repo,
        [
            OsStr::new("-c"),
            &setting,
            OsStr::new("tag"),
            OsStr::new("-v"),
            OsStr::new("--end-of-options"),
            OsStr::new(name),
        ],
    )?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ReleaseError::TagNotVerified {
            name: name.to_owned(),
            detail: stderr(&output),
        })
    }
}

/// The full sha `branch` points at, or `None` when it does not exist.
pub fn branch_head(repo: &Path, branch: &str) -> Result<Option<String>, ReleaseError> {
    check_branch_name(repo, branch)?;
    try_resolve_commit(repo, &format!("refs/heads/{branch}"))
}

/// Moves the production line `branch` to `sha` after a production deploy: creates it when
/// absent, keeps it when already there, fast-forwards it otherwise. A move that would drop
/// commits of production (`sha` does not contain the branch's head) is refused. Returns where
/// the branch was before, if it existed.
pub fn promote(repo: &Path, branch: &str, sha: &str) -> Result<Option<String>, ReleaseError> {
    check_branch_name(repo, branch)?;
    let commit = resolve_commit(repo, sha)?;
    let reference = format!("refs/heads/{branch}");
    let existing = try_resolve_commit(repo, &reference)?;
    if let Some(at) = &existing {
        if *at == commit {
            return Ok(existing);
        }
        if !is_ancestor(repo, at, &commit)? {
            return Err(ReleaseError::NotFastForward {
                branch: branch.to_owned(),
                at: at.clone(),
                wanted: commit,
            });
        }
    }
    let old = existing.clone().unwrap_or_default();
    let message = format!("slipway: promote {branch}");
    let output = git(
        repo,
        [
            "update-ref",
            "-m",
            message.as_str(),
            reference.as_str(),
            commit.as_str(),
            old.as_str(),
        ],
    )?;
    if !output.status.success() {
        return Err(ReleaseError::BranchMoved {
            branch: branch.to_owned(),
            detail: stderr(&output),
        });
    }
    Ok(existing)
}

fn is_signed(repo: &Path, reference: &str) -> Result<bool, ReleaseError> {
    let object = git_text(repo, ["cat-file", "-p", reference])?;
    Ok(object.contains("-----BEGIN SSH SIGNATURE-----")
        || object.contains("-----BEGIN PGP SIGNATURE-----"))
}

fn check_branch_name(repo: &Path, branch: &str) -> Result<(), ReleaseError> {
    let valid = !branch.starts_with('-')
        && git(
            repo,
            ["check-ref-format", format!("refs/heads/{branch}").as_str()],
        )?
        .status
        .success();
    if valid {
        Ok(())
    } else {
        Err(ReleaseError::InvalidRefName {
            name: branch.to_owned(),
        })
    }
}

/// The full sha of the commit `revision` names, or an error naming it.
fn resolve_commit(repo: &Path, revision: &str) -> Result<String, ReleaseError> {
    try_resolve_commit(repo, revision)?.ok_or_else(|| ReleaseError::UnknownCommit {
        revision: revision.to_owned(),
    })
}

/// The full sha of the commit `revision` names, if any.
fn try_resolve_commit(repo: &Path, revision: &str) -> Result<Option<String>, ReleaseError> {
    if revision.starts_with('-') {
        return Ok(None);
    }
    let output = git(
        repo,
        [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            format!("{revision}^{{commit}}").as_str(),
        ],
    )?;
    if output.status.success() {
        Ok(Some(
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        ))
    } else {
        Ok(None)
    }
}

fn is_ancestor(repo: &Path, ancestor: &str, descendant: &str) -> Result<bool, ReleaseError> {
    let output = git(repo, ["merge-base", "--is-ancestor", ancestor, descendant])?;
    match output.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(ReleaseError::GitFailed {
            command: "merge-base".to_owned(),
            detail: stderr(&output),
        }),
    }
}

/// Turns git's "Please tell me who you are" into its own error.
fn identity_or(error: ReleaseError, command: &str) -> ReleaseError {
    match error {
        ReleaseError::GitFailed { detail, .. }
            if detail.contains("tell me who you are")
                || detail.contains("empty ident")
                || detail.contains("unable to auto-detect email") =>
        {
            ReleaseError::NoIdentity {
                command: command.to_owned(),
            }
        }
        other => other,
    }
}

/// Runs git in `dir` and returns its trimmed stdout, or `GitFailed` with its stderr.
fn git_text<I, S>(dir: &Path, args: I) -> Result<String, ReleaseError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let output = git(dir, &args)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let command = args
            .first()
            .map(|arg| arg.as_ref().to_string_lossy().into_owned())
            .unwrap_or_default();
        Err(ReleaseError::GitFailed {
            command,
            detail: stderr(&output),
        })
    }
}

/// Runs git in `dir` (`slipway_git`: no prompts, a deadline); fails only when git cannot be
/// started, outlives the deadline, or `dir` is no repository.
fn git<I, S>(dir: &Path, args: I) -> Result<Output, ReleaseError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = slipway_git::output(dir, args, slipway_git::DEADLINE)?;
    if !output.status.success()
        && slipway_git::classify(&stderr(&output)) == slipway_git::Failure::NotARepository
    {
        return Err(ReleaseError::NotARepository {
            path: dir.display().to_string(),
        });
    }
    Ok(output)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

/// Whether `base..head` holds exactly the cherry-picks of `picks` (full shas), as [`pick`]
/// writes them (`-x`): what an existing patch branch must hold to be this patch's.
pub fn holds_picks(
    repo: &Path,
    base: &str,
    head: &str,
    picks: &[String],
) -> Result<bool, ReleaseError> {
    let found = crate::git::commits(repo, &format!("{base}..{head}"))?;
    Ok(found.len() == picks.len()
        && picks.iter().all(|pick| {
            found.iter().any(|commit| {
                commit
                    .body
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("(cherry picked from commit "))
                    .any(|sha| sha.trim_end_matches(')') == pick)
            })
        }))
}
