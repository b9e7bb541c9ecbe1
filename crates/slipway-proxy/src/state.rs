//! The persisted routing state: every route's split and backends, in one JSON file replaced
//! atomically (temp file, fsync, rename, fsync of the directory), so a restarted slipway routes
//! as it did before.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use slipway_core::deploy::Split;

use crate::error::ProxyError;
use crate::route::{Backend, Route};

/// What the proxy was told about one route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RouteConfig {
    /// `None` until the engine first sets traffic: no version gets any.
    pub(crate) split: Option<Split>,
    pub(crate) backends: Vec<StoredBackend>,
}

/// A backend and whether it is being drained. Draining sticks to the id until the caller removes
/// the backend, so a health update cannot send traffic back to an instance about to stop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredBackend {
    #[serde(flatten)]
    pub(crate) backend: Backend,
    #[serde(default)]
    pub(crate) draining: bool,
}

pub(crate) type Routes = BTreeMap<Route, RouteConfig>;

/// The file's shape. Routes are a list because JSON object keys must be strings.
#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    routes: Vec<StoredRoute>,
}

#[derive(Serialize, Deserialize)]
struct StoredRoute {
    service: String,
    region: Option<String>,
    split: Option<Split>,
    backends: Vec<StoredBackend>,
}

const FORMAT: u32 = 1;

/// Reads the state file; a missing file is an empty state.
pub(crate) fn load(path: &Path) -> Result<Routes, ProxyError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Routes::new()),
        Err(source) => {
            return Err(ProxyError::StateFile {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: StateFile =
        serde_json::from_slice(&bytes).map_err(|source| ProxyError::StateCorrupt {
            path: path.to_owned(),
            source,
        })?;
    Ok(file
        .routes
        .into_iter()
        .map(|stored| {
            let route = Route {
                service: stored.service,
                region: stored.region,
            };
            let config = RouteConfig {
                split: stored.split,
                backends: stored.backends,
            };
            (route, config)
        })
        .collect())
}

/// Serializes `routes` for `write`.
pub(crate) fn encode(routes: &Routes) -> Vec<u8> {
    let file = StateFile {
        format: FORMAT,
        routes: routes
            .iter()
            .map(|(route, config)| StoredRoute {
                service: route.service.clone(),
                region: route.region.clone(),
                split: config.split.clone(),
                backends: config.backends.clone(),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).expect("the proxy state always serializes");
    bytes.push(b'\n');
    bytes
}

/// Replaces the file at `path` with `bytes`: a reader (or a crash) sees the old file or the new
/// one, never a mix.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), ProxyError> {
    let fail = |action: &'static str| {
        let path = path.to_owned();
        move |source| ProxyError::StateFile {
            action,
            path,
            source,
        }
    };
    let temp = temp_path(path);
    let mut file = fs::File::create(&temp).map_err(fail("create a temporary copy of"))?;
    file.write_all(bytes).map_err(fail("write"))?;
    file.sync_all().map_err(fail("sync"))?;
    drop(file);
    fs::rename(&temp, path).map_err(fail("rename into place"))?;
    // The rename is durable only once the directory entry is.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(fail("sync the directory of"))?;
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}
