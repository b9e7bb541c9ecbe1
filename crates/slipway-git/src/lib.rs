//! Running the `git` binary the one way every part of slipway does (release trains, the
//! compatibility check): in the repository named, not one a surrounding hook's `GIT_DIR`
//! points at; with English messages (failures are classified by their text); never waiting for
//! a person — no terminal prompt, no askpass program, no editor, stdin closed, its own process
//! group away from a terminal; and killed when it outlives a deadline, so that a hung signing
//! agent, remote or filesystem cannot hold the engine.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest one git command may run by default.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Why git gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot run git: {source}")]
    Missing {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "git {command} was killed after {} s without finishing (a prompt, an agent or a remote \
         that does not answer?)",
        after.as_secs_f64()
    )]
    TimedOut { command: String, after: Duration },
}

/// `git -C dir` with slipway's environment; stdin closed unless the caller pipes it.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("LC_ALL", "C")
        .env("GIT_EDITOR", "true")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("SSH_ASKPASS_REQUIRE", "never")
        .stdin(Stdio::null())
        // Its own process group: away from a terminal's foreground, where ssh could prompt.
        .process_group(0)
        .arg("-C")
        .arg(dir);
    command
}

/// Runs `git -C dir ARGS…` to the end or until `deadline`, collecting its output. A failing
/// exit status is the caller's to read in the output.
pub fn output<I, S>(dir: &Path, args: I, deadline: Duration) -> Result<Output, RunError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = command(dir);
    command.args(args);
    output_within(&mut command, deadline)
}

/// Runs `command` with its stdout and stderr collected, killed when it outlives `deadline`.
pub fn output_within(command: &mut Command, deadline: Duration) -> Result<Output, RunError> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RunError::Missing { source })?;
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = Deadline::new(command, deadline).wait(&mut child)?;
    // The readers end when the last holder of the pipes is gone; after a kill a helper (ssh)
    // may still hold them, so they are joined only when git finished by itself.
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain(pipe: Option<Box<dyn Read + Send>>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The end of a spawned git command's time: [`Deadline::wait`] waits for the child and kills
/// it when the time is up. For commands fed through a pipe (`cat-file --batch`), run it on
/// another thread while this one talks to git: a kill closes the pipes and ends the talk.
#[derive(Clone, Debug)]
pub struct Deadline {
    started: Instant,
    after: Duration,
    /// The git subcommand, for the error.
    name: String,
}

impl Deadline {
    /// Starts now, for `command` (a `git -C DIR SUBCOMMAND …`).
    pub fn new(command: &Command, after: Duration) -> Deadline {
        // The first argument after `-C DIR` that is not an option (nor `-c`'s value).
        let mut args = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned());
        let mut name = String::new();
        while let Some(arg) = args.next() {
            if arg == "-C" || arg == "-c" {
                args.next();
            } else if !arg.starts_with('-') {
                name = arg;
                break;
            }
        }
        Deadline {
            started: Instant::now(),
            after,
            name,
        }
    }

    /// Waits for `child` to exit; kills and reaps it when the deadline passes first.
    pub fn wait(&self, child: &mut Child) -> Result<ExitStatus, RunError> {
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|source| RunError::Missing { source })?
            {
                return Ok(status);
            }
            let spent = self.started.elapsed();
            if spent >= self.after {
                // The whole group: a helper git started (ssh, a signing program) goes too.
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::TimedOut {
                    command: self.name.clone(),
                    after: self.after,
                });
            }
            std::thread::sleep(pause.min(self.after - spent));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

/// What a failed git command's stderr says went wrong, read from git's English messages (see
/// [`command`]: `LC_ALL=C`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The directory is no repository (or cannot be entered).
    NotARepository,
    /// A revision or range names nothing the repository has.
    UnknownRevision,
    /// Anything else: the caller quotes stderr.
    Other,
}

/// Classifies a failed git command by its stderr.
pub fn classify(stderr: &str) -> Failure {
    let lower = stderr.to_lowercase();
    if lower.contains("not a git repository") || lower.contains("cannot change to") {
        Failure::NotARepository
    } else if [
        "unknown revision",
        "bad revision",
        "needed a single revision",
        "ambiguous argument",
        "not a valid object name",
        "does not have any commits",
    ]
    .iter()
    .any(|said| lower.contains(said))
    {
        Failure::UnknownRevision
    } else {
        Failure::Other
    }
}

/// SIGKILL to process group `id` (git's own, see [`command`]). Runs the `kill` program, as
/// slipway has no unsafe code to call `killpg` with; a child that leads no group has no group
/// of its id, and the call does nothing.
fn kill_group(id: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{id}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::{RunError, command, output, output_within};

    #[test]
    fn failures_are_classified_by_git_s_english_messages() {
        use super::{Failure, classify};
        assert_eq!(
            classify("fatal: not a git repository (or any of the parent directories): .git"),
            Failure::NotARepository
        );
        assert_eq!(
            classify("fatal: bad revision 'nope..main'"),
            Failure::UnknownRevision
        );
        assert_eq!(
            classify("fatal: your current branch 'main' does not have any commits yet"),
            Failure::UnknownRevision
        );
        assert_eq!(classify("error: cannot lock ref"), Failure::Other);
    }

    #[test]
    fn a_command_past_its_deadline_is_killed() {
        let started = Instant::now();
        let mut command = Command::new("sh");
        command.args(["-c", "exec sleep 30"]);
        let error = output_within(&mut command, Duration::from_millis(300)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(error, RunError::TimedOut { .. }), "{error:?}");
        assert!(error.to_string().contains("killed after 0.3 s"), "{error}");
    }

    #[test]
    fn a_helper_the_command_started_is_killed_with_it() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("helper.pid");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "sleep 30 & echo $! > {}; exec sleep 30",
                file.display()
            ))
            .stdin(std::process::Stdio::null())
            .process_group(0);
        let error = output_within(&mut command, Duration::from_millis(500)).unwrap_err();
        assert!(matches!(error, RunError::TimedOut { .. }), "{error:?}");
        let helper = std::fs::read_to_string(&file).unwrap();
        let proc = std::path::PathBuf::from(format!("/proc/{}", helper.trim()));
        // Killed, then reaped by whoever adopted it: gone, or a zombie for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let alive = || {
            std::fs::read_to_string(proc.join("stat"))
                .is_ok_and(|stat| !stat.split(") ").nth(1).unwrap_or("").starts_with('Z'))
        };
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !alive(),
            "the helper {} outlived the deadline",
            helper.trim()
        );
    }

    #[test]
    fn a_command_within_its_deadline_answers_with_its_output_and_no_stdin() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "cat; echo out; echo err >&2"])
            .stdin(std::process::Stdio::null());
        let output = output_within(&mut command, Duration::from_secs(30)).unwrap();
        assert!(output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "err\n");
    }

    #[test]
    fn git_runs_in_the_named_directory_in_english_and_names_its_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let answer = output(dir.path(), ["rev-parse", "--git-dir"], super::DEADLINE).unwrap();
        assert!(!answer.status.success());
        let text = String::from_utf8_lossy(&answer.stderr);
        assert!(text.contains("not a git repository"), "{text}");

        let mut signing = command(dir.path());
        signing.args(["-c", "gpg.format=ssh", "tag", "-s", "RC-1"]);
        let deadline = super::Deadline::new(&signing, Duration::from_secs(1));
        assert_eq!(deadline.name, "tag");
        assert_eq!(
            super::Deadline::new(&command(dir.path()), Duration::from_secs(1)).name,
            ""
        );
    }
}
