//! Reading the commits of a range from a real repository with the `git` binary.

use std::path::Path;

use crate::ReleaseError;
use crate::changelog::Commit;

/// Fields of one commit, separated by NUL; `-z` ends each record with another NUL. Commit
/// messages cannot contain NUL, so every record is exactly `FIELDS` fields.
const FORMAT: &str = "--format=%H%x00%P%x00%an%x00%ae%x00%s%x00%b";
const FIELDS: usize = 6;

/// The commits of `range` (anything `git log` takes, e.g. `stages/prod..main`), oldest first
/// with parents before children, merges included so that their pull request numbers are seen.
pub fn commits(repo: &Path, range: &str) -> Result<Vec<Commit>, ReleaseError> {
    if range.starts_with('-') {
        return Err(ReleaseError::RangeLooksLikeOption {
            range: range.to_owned(),
        });
    }
    let output = slipway_git::output(
        repo,
        [
            // Settings that would add text to the log or change its encoding.
            "-c",
            "log.showSignature=false",
            "-c",
            "i18n.logOutputEncoding=UTF-8",
            "log",
            "-z",
            "--reverse",
            "--topo-order",
            "--no-color",
            FORMAT,
            "--end-of-options",
            range,
            "--",
        ],
        slipway_git::DEADLINE,
    )?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(classify_failure(repo, range, stderr));
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

fn classify_failure(repo: &Path, range: &str, stderr: String) -> ReleaseError {
    match slipway_git::classify(&stderr) {
        slipway_git::Failure::NotARepository => ReleaseError::NotARepository {
            path: repo.display().to_string(),
        },
        slipway_git::Failure::UnknownRevision => ReleaseError::UnknownRevision {
            range: range.to_owned(),
            detail: stderr,
        },
        slipway_git::Failure::Other => ReleaseError::GitFailed {
            command: "log".to_owned(),
            detail: stderr,
        },
    }
}

fn parse(stdout: &str) -> Result<Vec<Commit>, ReleaseError> {
    let mut fields: Vec<&str> = stdout.split('\0').collect();
    // The last record's terminator leaves one empty piece behind.
    if fields.last() == Some(&"") {
        fields.pop();
    }
    if !fields.len().is_multiple_of(FIELDS) {
        return Err(ReleaseError::UnexpectedOutput {
            detail: format!(
                "{} NUL-separated fields, not a multiple of {FIELDS}",
                fields.len()
            ),
        });
    }
    Ok(fields
        .chunks_exact(FIELDS)
        .map(|record| Commit {
            // `-z` puts the separator before the next record's first field only.
            sha: record[0].trim_start_matches('\n').to_owned(),
            parents: record[1].split_whitespace().map(str::to_owned).collect(),
            author: record[2].to_owned(),
            author_email: record[3].to_owned(),
            subject: record[4].to_owned(),
            body: record[5].trim_end().to_owned(),
        })
        .collect())
}
