//! Running a shell command in its own process group and reading what it prints, bounded in
//! time and size: shared by the `command` target and by slipway-verify's command checks.

use std::borrow::Cow;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

/// How long a command's pipes may still be read after it exited (a background child holding
/// them open must not hold the caller).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// How a command's run ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Failed(std::io::Error),
}

/// Which pipe a chunk of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipe {
    Stdout,
    Stderr,
}

/// Reads the command's output, handing each chunk to `sink` in the order it arrived, while
/// waiting for the command to exit or for `limit` to pass.
pub async fn collect(
    child: &mut Child,
    limit: Duration,
    mut sink: impl FnMut(Pipe, &[u8]),
) -> Ended {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out_buffer = vec![0u8; 8192];
    let mut err_buffer = vec![0u8; 8192];
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut ended: Option<Ended> = None;
    // Set once the command has exited: how long its pipes may still be read.
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        if ended.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buffer), if stdout.is_some() => match read {
                Some(n) => sink(Pipe::Stdout, &out_buffer[..n]),
                None => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buffer), if stderr.is_some() => match read {
                Some(n) => sink(Pipe::Stderr, &err_buffer[..n]),
                None => stderr = None,
            },
            status = child.wait(), if ended.is_none() => {
                ended = Some(match status {
                    Ok(status) => Ended::Exited(status),
                    Err(error) => Ended::Failed(error),
                });
                grace = Some(Box::pin(tokio::time::sleep(OUTPUT_GRACE)));
            },
            () = &mut deadline, if ended.is_none() => return Ended::TimedOut,
            () = async { if let Some(grace) = grace.as_mut() { grace.await } }, if grace.is_some() => break,
        }
    }
    ended.unwrap_or(Ended::TimedOut)
}

/// The next chunk of a pipe; `None` at its end or on an error (the output is only a report).
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buffer: &mut [u8]) -> Option<usize> {
    let pipe = pipe.as_mut()?;
    match pipe.read(buffer).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// The last `limit` bytes of output.
#[derive(Debug)]
pub struct Tail {
    bytes: Vec<u8>,
    limit: usize,
    /// How many earlier bytes were dropped.
    dropped: u64,
}

impl Tail {
    pub fn new(limit: usize) -> Tail {
        Tail {
            bytes: Vec::new(),
            limit,
            dropped: 0,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trim in batches so a stream of small writes does not move the buffer each time.
        if self.bytes.len() > 2 * self.limit {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// The kept output as text (invalid UTF-8 replaced), at most `limit` bytes of it.
    pub fn text(&self) -> Cow<'_, str> {
        let start = self.bytes.len().saturating_sub(self.limit);
        String::from_utf8_lossy(&self.bytes[start..])
    }

    pub fn is_truncated(&self) -> bool {
        self.dropped > 0 || self.bytes.len() > self.limit
    }

    pub fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }
}

/// A command's process group, killed when this is dropped while the command still runs — when
/// the future running it is cancelled — or when [`ProcessGroup::kill`] is called.
#[derive(Debug)]
pub struct ProcessGroup {
    /// The group's id (the shell's pid); `None` once the command ended or the group was killed.
    id: Option<u32>,
}

impl ProcessGroup {
    /// The group led by the process `id` (spawned with `process_group(0)`).
    pub fn new(id: Option<u32>) -> ProcessGroup {
        ProcessGroup { id }
    }

    /// Kills every process of the group, once.
    pub fn kill(&mut self) {
        if let Some(id) = self.id.take() {
            kill_group(id);
        }
    }

    /// The command ended by itself: nothing to kill on drop.
    pub fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGKILL to every process of group `id`. Runs the `kill` program (a negative id names
/// a group) because slipway has no unsafe code to call `killpg` with; it is quick and rare.
fn kill_group(id: u32) {
    let result = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{id}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // `kill` exiting non-zero means only that the group was already gone; not being able to run
    // it at all is worth a warning.
    if let Err(error) = result {
        tracing::warn!(group = id, %error, "cannot run `kill` to stop a process group");
    }
}
