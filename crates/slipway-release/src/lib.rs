//! Release trains from a git repository: the commits of a range (`git`) and the changelog
//! built from their messages (`changelog`, pure). Cutting branches, release notes and tags
//! come with the rest of issue 7.

pub mod changelog;
pub mod git;

pub use changelog::{
    Categories, Changelog, Commit, Dependency, Entry, EntrySource, Reason, Revert, Unassigned,
    build,
};
pub use git::commits;

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
    /// git's output did not have the shape asked for in `--format`.
    #[error("unexpected output from git log: {detail}")]
    UnexpectedOutput { detail: String },
    /// The configured categories cannot be used (empty, repeated, or a conventional-commit
    /// type mapped to a category that is not in the list).
    #[error("invalid changelog categories: {detail}")]
    Categories { detail: String },
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
            Self::UnexpectedOutput { .. } => {
                "check that no git configuration changes `git log --format` output".to_owned()
            }
            Self::Categories { .. } => {
                "list each category once, and map feat, fix and the other types to listed ones"
                    .to_owned()
            }
        }
    }
}
