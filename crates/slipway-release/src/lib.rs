//! Release trains from a git repository: the commits of a range (`git`), the changelog
//! built from their messages (`changelog`, pure), and the branches and tags of a train
//! (`train`: cut with true-up, patch picks, tags, promotion of the production line). The server
//! and the binary run them for `slipway release cut` and the publication of release notes.

pub mod changelog;
pub mod git;
pub mod train;

pub use changelog::{
    Categories, Changelog, Commit, Dependency, Entry, EntrySource, Reason, Revert, Unassigned,
    build,
};
pub use git::commits;
pub use train::{
    Cut, CutRequest, PickRequest, Picked, SigningKey, Tag, TrueUp, branch_head, branch_name,
    check_on_branch, cut, holds_picks, pick, promote, tag, true_up, verify_tag,
};

impl From<slipway_git::RunError> for ReleaseError {
    fn from(error: slipway_git::RunError) -> Self {
        match error {
            slipway_git::RunError::Missing { source } => ReleaseError::GitMissing { source },
            slipway_git::RunError::TimedOut { ref command, .. } => ReleaseError::GitTimedOut {
                command: command.clone(),
                detail: error.to_string(),
            },
        }
    }
}

/// Everything that can go wrong in this crate. Each variant has a `hint` for the person at the
/// terminal.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The `git` binary could not be started.
    #[error("could not run git: {source}")]
    GitMissing {
        #[source]
        source: std::io::Error,
    },
    /// The directory is not inside a git repository.
    #[error("{path} is not a git repository")]
    NotARepository { path: String },
    /// A revision of the range names nothing in the repository.
    #[error("git does not know the range {range:?}: {detail}")]
    UnknownRevision { range: String, detail: String },
    /// The range looks like an option, which git would take as one.
    #[error("the range {range:?} starts with '-'")]
    RangeLooksLikeOption { range: String },
    /// `git` failed for another reason; `detail` is what it wrote on stderr.
    #[error("git {command} failed: {detail}")]
    GitFailed { command: String, detail: String },
    /// `git` outlived its deadline and was killed: the server's side, not the request's.
    #[error("{detail}")]
    GitTimedOut { command: String, detail: String },
    /// git's output did not have the shape asked for in `--format`.
    #[error("unexpected output from git log: {detail}")]
    UnexpectedOutput { detail: String },
    /// The configured categories cannot be used (empty, repeated, or a conventional-commit
    /// type mapped to a category that is not in the list).
    #[error("invalid changelog categories: {detail}")]
    Categories { detail: String },
    /// A revision meant to name a commit names nothing in the repository.
    #[error("git does not know the commit {revision:?}")]
    UnknownCommit { revision: String },
    /// A branch or tag name git would not accept (`git check-ref-format`).
    #[error("{name:?} is not a valid branch or tag name")]
    InvalidRefName { name: String },
    /// The release branch exists and holds something other than the commit to release.
    #[error("branch {branch} already exists at {at}, not at {wanted}")]
    BranchExists {
        branch: String,
        at: String,
        wanted: String,
    },
    /// A branch changed between reading and writing it (someone else cut at the same time).
    #[error("branch {branch} changed while it was being written: {detail}")]
    BranchMoved { branch: String, detail: String },
    /// A patch's commit is not on the main branch.
    #[error("commit {commit} is not on {branch}")]
    NotOnBranch { commit: String, branch: String },
    /// The patch branch to create already exists.
    #[error("patch branch {branch} already exists (at {at})")]
    PatchBranchExists { branch: String, at: String },
    /// A patch without commits.
    #[error("no commits to pick")]
    NothingToPick,
    /// A cherry-pick conflicted; nothing was left behind.
    #[error("commit {commit} does not apply cleanly onto {onto}: {detail}")]
    PickConflict {
        commit: String,
        onto: String,
        detail: String,
    },
    /// A cherry-pick changed nothing: production already has the change.
    #[error("commit {commit} changes nothing on {onto}")]
    PickEmpty { commit: String, onto: String },
    /// A merge commit was asked to be cherry-picked.
    #[error("commit {commit} is a merge and cannot be cherry-picked as one change")]
    PickMerge { commit: String },
    /// git needs a committer name and email to write commits and tags.
    #[error("git {command} needs a committer identity")]
    NoIdentity { command: String },
    /// The temporary directory for a worktree could not be created.
    #[error("could not create a temporary directory: {source}")]
    TemporaryDirectory {
        #[source]
        source: std::io::Error,
    },
    /// The tag exists on another commit.
    #[error("tag {name} already exists on {at}, not on {wanted}")]
    TagExists {
        name: String,
        at: String,
        wanted: String,
    },
    /// git could not sign the tag with the key given.
    #[error("could not sign the tag: {detail}")]
    SigningFailed { detail: String },
    /// The tag's signature is missing, or not by an allowed signer.
    #[error("tag {name} is not verified: {detail}")]
    TagNotVerified { name: String, detail: String },
    /// Moving the production line there would drop commits it has.
    #[error("{branch} is at {at}, which {wanted} does not contain")]
    NotFastForward {
        branch: String,
        at: String,
        wanted: String,
    },
}

impl ReleaseError {
    /// What to do about it, printed as the `hint:` line.
    pub fn hint(&self) -> String {
        match self {
            Self::GitMissing { .. } => "install git and make sure it is on PATH".to_owned(),
            Self::NotARepository { .. } => {
                "point at the repository's working tree (or a bare repository)".to_owned()
            }
            Self::UnknownRevision { .. } => {
                "write the range as OLD..NEW with branch names, tags or commits that exist; \
                 fetch first if they come from a remote"
                    .to_owned()
            }
            Self::RangeLooksLikeOption { .. } => {
                "write the range as OLD..NEW, e.g. stages/prod..main".to_owned()
            }
            Self::GitFailed { detail, .. } if detail.contains("dubious ownership") => {
                "the repository belongs to another user: mark it safe with \
                 `git config --global --add safe.directory PATH`"
                    .to_owned()
            }
            Self::GitFailed { .. } => "run the same git command by hand to see why".to_owned(),
            Self::GitTimedOut { .. } => {
                "try again; if it repeats, run the same git command by hand in the server's \
                 clone to see what it waits for (a signing agent, a lock, a slow disk)"
                    .to_owned()
            }
            Self::UnexpectedOutput { .. } => {
                "check that no git configuration changes `git log --format` output".to_owned()
            }
            Self::Categories { .. } => {
                "list each category once, and map feat, fix and the other types to listed ones"
                    .to_owned()
            }
            Self::UnknownCommit { .. } => {
                "give a commit sha, branch or tag that exists locally; fetch first if it comes \
                 from a remote"
                    .to_owned()
            }
            Self::InvalidRefName { .. } => {
                "use letters, digits, '-', '_', '.' and '/' (see `git check-ref-format`); \
                 check the branch pattern"
                    .to_owned()
            }
            Self::BranchExists { branch, .. } => format!(
                "a release was already cut on this date from another commit: delete {branch} \
                 if it was a mistake (`git branch -D {branch}`), or use another branch pattern"
            ),
            Self::BranchMoved { .. } => "another cut ran at the same time: run it again".to_owned(),
            Self::NotOnBranch { branch, .. } => format!(
                "merge the fix into {branch} first and pick the commit from there, so that the \
                 next full release keeps it"
            ),
            Self::PatchBranchExists { branch, .. } => format!(
                "pick onto a new branch name, or delete {branch} if it is left from an abandoned \
                 patch (`git branch -D {branch}`)"
            ),
            Self::NothingToPick => "name at least one commit with --pick".to_owned(),
            Self::PickConflict { .. } => {
                "the production line differs too much for this commit: pick the commits it \
                 depends on too (in order), or cut an off-cycle full release instead"
                    .to_owned()
            }
            Self::PickEmpty { .. } => {
                "leave this commit out of --pick: production already has its change".to_owned()
            }
            Self::PickMerge { .. } => {
                "pick the commits the merge brought in, or the squashed commit".to_owned()
            }
            Self::NoIdentity { .. } => {
                "set user.name and user.email in the repository's git config (or \
                 GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL)"
                    .to_owned()
            }
            Self::TemporaryDirectory { .. } => {
                "check that TMPDIR exists, is writable and has free space".to_owned()
            }
            Self::TagExists { name, .. } => format!(
                "a deployed commit keeps its tag: choose a new name, or delete {name} if it \
                 was never published (`git tag -d {name}`)"
            ),
            Self::SigningFailed { .. } => {
                "check that the key file exists, is readable only by you, needs no passphrase \
                 (or is loaded in ssh-agent) and that ssh-keygen is on PATH"
                    .to_owned()
            }
            Self::TagNotVerified { .. } => {
                "check that the allowed signers file lists the signer's email and public key"
                    .to_owned()
            }
            Self::NotFastForward { branch, .. } => format!(
                "production has commits the release lacks: cut the release again so that it \
                 records the true-up merge of {branch}"
            ),
        }
    }
}
