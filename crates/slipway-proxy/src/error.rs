//! The proxy's one error type.

use std::io;
use std::path::PathBuf;

use crate::Route;

/// What can go wrong when the proxy is configured, persisted or served.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The state file could not be read, written, synced or renamed into place.
    #[error("cannot {action} the proxy state file {}: {source}", path.display())]
    StateFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The state file exists but is not a state this version of slipway wrote.
    #[error(
        "the proxy state file {} is not valid: {source} (hint: restore it from a backup, or \
         remove it and let the engine set the routes again)",
        path.display()
    )]
    StateCorrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A split names a header route that is not `Name: value` with a valid header name and value.
    #[error(
        "the header route {header:?} of {route} is not valid (hint: write it as `Name: value`)"
    )]
    InvalidHeaderRoute { route: Route, header: String },
    /// Two backends of one route share an id.
    #[error("backend id {id:?} appears twice in {route} (hint: give every instance its own id)")]
    DuplicateBackend { route: Route, id: String },
    /// `drain` named a backend the route does not have.
    #[error("{route} has no backend {id:?}")]
    UnknownBackend { route: Route, id: String },
    /// The listener failed.
    #[error("the proxy listener of {route} failed: {source}")]
    Listener {
        route: Route,
        #[source]
        source: io::Error,
    },
}
