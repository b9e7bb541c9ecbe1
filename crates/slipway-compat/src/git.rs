//! Reading two revisions of a repository with the `git` binary: the diff between them, the
//! files of a tree, and blobs in bulk through one `git cat-file --batch` process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;

use crate::CompatError;

/// One changed path of `git diff --name-status BASE HEAD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `A`, `M`, `D` (renames are reported as a delete and an add: `--no-renames`).
    pub status: char,
    pub path: String,
}

/// Runs git (`slipway_git`: the repository named, English messages, no prompts, a deadline).
fn run(repo: &Path, args: &[&str], revision: &str) -> Result<Vec<u8>, CompatError> {
    let output = slipway_git::output(repo, args, slipway_git::DEADLINE)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(classify_failure(repo, revision, args[0], stderr));
    }
    Ok(output.stdout)
}

fn classify_failure(repo: &Path, revision: &str, command: &str, stderr: String) -> CompatError {
    match slipway_git::classify(&stderr) {
        slipway_git::Failure::NotARepository => CompatError::NotARepository {
            path: repo.display().to_string(),
        },
        slipway_git::Failure::UnknownRevision => CompatError::UnknownRevision {
            revision: revision.to_owned(),
            detail: stderr,
        },
        slipway_git::Failure::Other => CompatError::GitFailed {
            command: command.to_owned(),
            detail: stderr,
        },
    }
}

/// The full commit id `revision` names.
pub fn resolve(repo: &Path, revision: &str) -> Result<String, CompatError> {
    if revision.starts_with('-') {
        return Err(CompatError::RevisionLooksLikeOption {
            revision: revision.to_owned(),
        });
    }
    if !repo.is_dir() {
        return Err(CompatError::NotARepository {
            path: repo.display().to_string(),
        });
    }
    let spec = format!("{revision}^{{commit}}");
    let stdout = run(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
        revision,
    )
    .map_err(|error| match error {
        // `--quiet` makes an unknown revision fail with nothing on stderr.
        CompatError::GitFailed { detail, .. } if detail.is_empty() => {
            CompatError::UnknownRevision {
                revision: revision.to_owned(),
                detail: "no commit has that name".to_owned(),
            }
        }
        other => other,
    })?;
    Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
}

/// The paths that differ between two commits.
pub fn diff(repo: &Path, base: &str, head: &str) -> Result<Vec<Change>, CompatError> {
    let stdout = run(
        repo,
        &[
            "diff",
            "--name-status",
            "--no-renames",
            "-z",
            "--no-color",
            base,
            head,
            "--",
        ],
        head,
    )?;
    let text = String::from_utf8_lossy(&stdout);
    let mut fields = text.split('\0').filter(|field| !field.is_empty());
    let mut changes = Vec::new();
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        changes.push(Change {
            status: status.chars().next().unwrap_or('M'),
            path: path.to_owned(),
        });
    }
    Ok(changes)
}

/// Every blob of the tree of `commit`: path → object id.
pub fn tree(repo: &Path, commit: &str) -> Result<BTreeMap<String, String>, CompatError> {
    let stdout = run(
        repo,
        &["ls-tree", "-r", "-z", "--full-tree", commit],
        commit,
    )?;
    let text = String::from_utf8_lossy(&stdout);
    let mut files = BTreeMap::new();
    for record in text.split('\0').filter(|record| !record.is_empty()) {
        // `<mode> SP <type> SP <object> TAB <path>`
        let Some((meta, path)) = record.split_once('\t') else {
            continue;
        };
        let mut parts = meta.split(' ');
        let (_mode, kind, object) = (parts.next(), parts.next(), parts.next());
        if kind == Some("blob")
            && let Some(object) = object
        {
            files.insert(path.to_owned(), object.to_owned());
        }
    }
    Ok(files)
}

/// The contents of `objects` (blob ids), read through a single `git cat-file --batch`. A blob
/// that is not valid UTF-8 is read lossily; one git does not find is left out.
pub fn blobs(repo: &Path, objects: &[String]) -> Result<BTreeMap<String, String>, CompatError> {
    let mut found = BTreeMap::new();
    if objects.is_empty() {
        return Ok(found);
    }
    let mut command = slipway_git::command(repo);
    command
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let deadline = slipway_git::Deadline::new(&command, slipway_git::DEADLINE);
    let mut child = command
        .spawn()
        .map_err(|source| CompatError::GitMissing { source })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let input: String = objects.iter().map(|object| format!("{object}\n")).collect();
    // Written from another thread so that a full stdout pipe cannot block both sides.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // git is waited for on its own thread and killed at the deadline, which closes its
    // stdout and ends the reading below.
    let waiter = std::thread::spawn(move || deadline.wait(&mut child));
    let mut reader = BufReader::new(stdout);
    let mut header = String::new();
    for _ in objects {
        header.clear();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            break;
        }
        // `<object> SP <type> SP <size>` or `<object> SP missing`.
        let parts: Vec<&str> = header.trim_end().split(' ').collect();
        if parts.len() != 3 {
            continue;
        }
        let size: usize = parts[2].parse().unwrap_or(0);
        let mut content = vec![0; size + 1];
        if reader.read_exact(&mut content).is_err() {
            break;
        }
        content.pop();
        found.insert(
            parts[0].to_owned(),
            String::from_utf8_lossy(&content).into_owned(),
        );
    }
    // Whatever is left unread: closing the pipe ends git instead of leaving it blocked.
    drop(reader);
    let _ = writer.join();
    let status = waiter.join().expect("the waiting thread does not panic")?;
    if !status.success() {
        let detail = errors.join().unwrap_or_default();
        return Err(CompatError::GitFailed {
            command: "cat-file".to_owned(),
            detail: detail.trim().to_owned(),
        });
    }
    Ok(found)
}
