//! The artifact cache: files addressed by their SHA-256 under `<data_dir>/artifacts/sha256/<hex>`.
//!
//! An upload streams into a temporary file while it is hashed, is synced to disk, and only then
//! renamed to its digest: a file under `sha256/` is always complete, and a crash mid-upload
//! leaves at most a stray `.part` file in `tmp/`, removed at the next start.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Where artifact files live.
#[derive(Clone, Debug)]
pub struct Blobs {
    root: PathBuf,
}

/// A file stored (or found already stored) under its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// `sha256:<64 hex>`.
    pub digest: String,
    pub size: u64,
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The upload was longer than the limit; nothing was kept.
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The client's stream broke off; nothing was kept.
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// The disk refused (full, permissions).
    #[error("cannot write the artifact cache at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Removes a temporary file unless it was renamed into place.
struct PartFile {
    path: PathBuf,
    kept: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Blobs {
    /// The cache under `root` (`<data_dir>/artifacts`), created if missing; partial uploads
    /// older than an hour (a crashed earlier run's) are removed — younger ones may belong to
    /// another server sharing the directory.
    pub fn open(root: &Path) -> Result<Blobs, BlobError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| BlobError::Io { path, source }
        };
        let tmp = root.join("tmp");
        std::fs::create_dir_all(root.join("sha256")).map_err(io(root))?;
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for entry in std::fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
            let modified = entry.metadata().and_then(|m| m.modified());
            if modified.is_ok_and(|m| m < stale) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Blobs {
            root: root.to_owned(),
        })
    }

    /// The directory holding the cache (targets read artifacts from `<root>/sha256/<hex>`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `digest` (`sha256:<hex>`), if the digest is well formed.
    pub fn path_of(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let well_formed = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| self.root.join("sha256").join(hex))
    }

    /// Whether the file of `digest` is in the cache.
    pub fn contains(&self, digest: &str) -> bool {
        self.path_of(digest).is_some_and(|path| path.is_file())
    }

    /// Streams `body` into the cache, refusing more than `limit` bytes.
    pub async fn store<E: std::fmt::Display>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>>,
        limit: u64,
    ) -> Result<StoredBlob, BlobError> {
        let part_path = self
            .root
            .join("tmp")
            .join(format!("{}.part", crate::auth::random_hex(16)));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| BlobError::Io { path, source }
        };
        let mut part = PartFile {
            path: part_path.clone(),
            kept: false,
        };
        let mut file = tokio::fs::File::create(&part_path)
            .await
            .map_err(io(&part_path))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Interrupted(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io(&part_path))?;
        }
        file.sync_all().await.map_err(io(&part_path))?;
        drop(file);
        let hex = hex::encode(hasher.finalize());
        let digest = format!("sha256:{hex}");
        let final_path = self.root.join("sha256").join(&hex);
        if !final_path.is_file() {
            tokio::fs::rename(&part_path, &final_path)
                .await
                .map_err(io(&final_path))?;
            part.kept = true;
            // The rename is durable only once the directory itself is synced.
            if let Ok(dir) = tokio::fs::File::open(self.root.join("sha256")).await {
                let _ = dir.sync_all().await;
            }
        }
        Ok(StoredBlob { digest, size })
    }
}
