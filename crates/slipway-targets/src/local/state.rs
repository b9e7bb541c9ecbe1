//! What the local target must remember across its own restarts, in one JSON file per
//! environment replaced atomically (temporary file, fsync, rename, fsync of the directory):
//! every instance (id, release, pool, port, pid and the pid's start time), the counts each
//! release was launched with, and the effect keys already carried out.
//!
//! An instance is recorded *before* its process is spawned and again once it has a pid, so a
//! crash in between leaves a record that names it (see `LocalTarget::open`), never an orphan.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use slipway_core::deploy::ReleaseRef;

/// Most effect keys remembered; the engine never repeats a key that old.
const KEYS_KEPT: usize = 1000;

const FORMAT: u32 = 1;

/// One instance as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InstanceRecord {
    /// `web-3f9a1c`: the pool and random hex, unique on this machine; `SLIPWAY_INSTANCE` and the
    /// name of its log file.
    pub(crate) id: String,
    pub(crate) service: String,
    pub(crate) region: Option<String>,
    pub(crate) pool: String,
    pub(crate) release: ReleaseRef,
    /// The port its current process was given in `PORT` (0 before the first start).
    pub(crate) port: u16,
    /// The pid of its process (also its process group); `None` until spawned.
    pub(crate) pid: Option<u32>,
    /// The pid's start time (`/proc/PID/stat`), so a recycled pid is never taken for it.
    pub(crate) start_time: Option<u64>,
    /// A stop began and has not finished (its drain or kill failed): it is neither restarted
    /// nor counted as wanted, and the engine's retried stop ends it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) stopping: bool,
}

/// How many instances of a pool a release was launched with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Desired {
    pub(crate) service: String,
    pub(crate) region: Option<String>,
    /// The release label.
    pub(crate) release: String,
    pub(crate) pool: String,
    pub(crate) count: u32,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(default)]
    pub(crate) instances: Vec<InstanceRecord>,
    #[serde(default)]
    pub(crate) desired: Vec<Desired>,
    /// Effect keys whose launch, stop or task finished, oldest first.
    #[serde(default)]
    pub(crate) keys: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    #[serde(flatten)]
    state: State,
}

impl State {
    pub(crate) fn instance(&self, id: &str) -> Option<&InstanceRecord> {
        self.instances.iter().find(|i| i.id == id)
    }

    pub(crate) fn instance_mut(&mut self, id: &str) -> Option<&mut InstanceRecord> {
        self.instances.iter_mut().find(|i| i.id == id)
    }

    pub(crate) fn has_key(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    pub(crate) fn add_key(&mut self, key: String) {
        if !self.has_key(&key) {
            self.keys.push(key);
        }
        if self.keys.len() > KEYS_KEPT {
            let excess = self.keys.len() - KEYS_KEPT;
            self.keys.drain(..excess);
        }
    }
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing it failed.
    #[error("cannot {action} the local target's state file {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// It is not what slipway writes.
    #[error("the local target's state file {} is damaged ({source}); it lists the instances slipway started: fix it, or stop them and remove the file", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Reads the state; a missing file is an empty state.
pub(crate) fn load(path: &Path) -> Result<State, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(source) => {
            return Err(StateError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    Ok(file.state)
}

/// Writes `state` so the file is either the old one or the whole new one.
pub(crate) fn save(path: &Path, state: &State) -> Result<(), StateError> {
    let io_error = |action| {
        let path = path.to_owned();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    };
    let bytes = serde_json::to_vec_pretty(&StateFile {
        format: FORMAT,
        state: state.clone(),
    })
    .expect("the state is plain data");
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error("create the directory of"))?;
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = File::create(&temporary).map_err(io_error("write"))?;
    file.write_all(&bytes).map_err(io_error("write"))?;
    file.sync_all().map_err(io_error("write"))?;
    fs::rename(&temporary, path).map_err(io_error("replace"))?;
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
