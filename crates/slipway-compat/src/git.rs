//! Reading two revisions of a repository with the `git` binary: the diff between them, the
//! files of a tree, and blobs in bulk through one `git cat-file --batch` process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::CompatError;

/// One changed path of `git diff --name-status BASE HEAD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `A`, `M`, `D` (renames are reported as a delete and an add: `--no-renames`).
    pub status: char,
    pub path: String,
}

fn git(repo: &Path) -> Command {
    let mut command = Command::new("git");
    // The repository is the one named here, not one a surrounding hook points at; messages in
    // English (failures are classified by their text); never a prompt, stdin closed.
    command
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .arg("-C")
        .arg(repo);
    command
}

fn run(repo: &Path, args: &[&str], revision: &str) -> Result<Vec<u8>, CompatError> {
    let output = git(repo)
        .args(args)
        .output()
        .map_err(|source| CompatError::GitMissing { source })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(classify_failure(repo, revision, args[0], stderr));
    }
    Ok(output.stdout)
}

fn classify_failure(repo: &Path, revision: &str, command: &str, stderr: String) -> CompatError {
    let lower = stderr.to_lowercase();
    if lower.contains("not a git repository") || lower.contains("cannot change to") {
        CompatError::NotARepository {
            path: repo.display().to_string(),
        }
    } else if lower.contains("unknown revision")
        || lower.contains("bad revision")
        || lower.contains("needed a single revision")
        || lower.contains("ambiguous argument")
        || lower.contains("not a valid object name")
    {
        CompatError::UnknownRevision {
            revision: revision.to_owned(),
            detail: stderr,
        }
    } else {
        CompatError::GitFailed {
            command: command.to_owned(),
            detail: stderr,
        }
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
    let mut child = git(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CompatError::GitMissing { source })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input: String = objects.iter().map(|object| format!("{object}\n")).collect();
    // Written from another thread so that a full stdout pipe cannot block both sides.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
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
    let _ = writer.join();
    let status = child
        .wait()
        .map_err(|source| CompatError::GitMissing { source })?;
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        return Err(CompatError::GitFailed {
            command: "cat-file".to_owned(),
            detail: stderr.trim().to_owned(),
        });
    }
    Ok(found)
}
