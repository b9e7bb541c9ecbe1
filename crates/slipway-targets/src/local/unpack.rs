//! An artifact made ready to run: unpacked once per digest under `<data_dir>/releases/<hex>/`.
//!
//! A gzip-compressed tarball (recognised by its magic bytes, as the cache names files by digest
//! only) is extracted; an entry that would land outside the directory — an absolute path, a
//! `..`, a link pointing out, a device node — refuses the whole artifact. Any other file is
//! copied as one executable named `app`. Work happens in a temporary directory renamed into
//! place when complete, so a crash never leaves a half-unpacked release that looks finished.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// The executable a single-file artifact becomes.
pub const SINGLE_FILE_NAME: &str = "app";

/// Why an artifact could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The artifact is not in the cache.
    #[error("artifact {} is not in the artifact cache: {source}", path.display())]
    Missing { path: PathBuf, source: io::Error },
    /// An entry would be written outside the release directory.
    #[error(
        "the tarball's entry `{entry}` would land outside its directory ({why}); refusing the whole artifact"
    )]
    Escapes { entry: String, why: &'static str },
    /// The tarball is damaged or not a tarball.
    #[error("cannot unpack the artifact as a .tar.gz: {0}")]
    Tarball(io::Error),
    /// Reading or writing files failed.
    #[error("cannot unpack into {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Unpacks `artifact` (the cache file of digest `hex`) under `releases_dir`, unless done before;
/// returns the release directory.
pub fn unpack(artifact: &Path, releases_dir: &Path, hex: &str) -> Result<PathBuf, UnpackError> {
    let target = releases_dir.join(hex);
    if target.is_dir() {
        return Ok(target);
    }
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| UnpackError::Io { path, source }
    };
    fs::create_dir_all(releases_dir).map_err(io_error(releases_dir))?;
    let mut file = File::open(artifact).map_err(|source| UnpackError::Missing {
        path: artifact.to_owned(),
        source,
    })?;
    let mut magic = [0u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(file);

    let work = releases_dir.join(format!(
        ".{hex}.unpacking-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    fs::create_dir_all(&work).map_err(io_error(&work))?;
    let result = if gzip {
        extract(artifact, &work)
    } else {
        copy_single(artifact, &work)
    };
    if let Err(error) = result {
        let _ = fs::remove_dir_all(&work);
        return Err(error);
    }
    match fs::rename(&work, &target) {
        Ok(()) => {}
        // Unpacked by someone else meanwhile: theirs is as good as ours.
        Err(_) if target.is_dir() => {
            let _ = fs::remove_dir_all(&work);
        }
        Err(source) => {
            let _ = fs::remove_dir_all(&work);
            return Err(UnpackError::Io {
                path: target,
                source,
            });
        }
    }
    if let Ok(dir) = File::open(releases_dir) {
        let _ = dir.sync_all();
    }
    Ok(target)
}

fn copy_single(artifact: &Path, work: &Path) -> Result<(), UnpackError> {
    use std::os::unix::fs::PermissionsExt;
    let app = work.join(SINGLE_FILE_NAME);
    fs::copy(artifact, &app).map_err(|source| UnpackError::Io {
        path: app.clone(),
        source,
    })?;
    fs::set_permissions(&app, fs::Permissions::from_mode(0o755))
        .map_err(|source| UnpackError::Io { path: app, source })
}

fn extract(artifact: &Path, work: &Path) -> Result<(), UnpackError> {
    let file = File::open(artifact).map_err(|source| UnpackError::Missing {
        path: artifact.to_owned(),
        source,
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    for entry in archive.entries().map_err(UnpackError::Tarball)? {
        let mut entry = entry.map_err(UnpackError::Tarball)?;
        let path = entry.path().map_err(UnpackError::Tarball)?.into_owned();
        let shown = path.display().to_string();
        let escapes = |why| UnpackError::Escapes {
            entry: shown.clone(),
            why,
        };
        check_relative(&path).map_err(escapes)?;
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Err(escapes("a device or pipe"));
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(UnpackError::Tarball)?
                .ok_or_else(|| escapes("a link without a target"))?
                .into_owned();
            if kind.is_hard_link() {
                // A hard link names another entry of the archive, from its root.
                check_relative(&link).map_err(escapes)?;
            } else {
                let from = path.parent().unwrap_or(Path::new(""));
                check_link(from, &link).map_err(escapes)?;
            }
        }
        // `unpack_in` also refuses to write through a link that points out; it says so by
        // returning false.
        let unpacked = entry.unpack_in(work).map_err(|error| match error.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => UnpackError::Tarball(error),
            _ => UnpackError::Io {
                path: work.join(&path),
                source: error,
            },
        })?;
        if !unpacked {
            return Err(escapes("a path through `..` or a link"));
        }
    }
    Ok(())
}

/// A path inside the archive's root: relative, without `..`.
fn check_relative(path: &Path) -> Result<(), &'static str> {
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("a `..` in its path"),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path"),
        }
    }
    Ok(())
}

/// A symbolic link at directory `from` (relative to the root) pointing at `target`, which must
/// stay inside the root.
fn check_link(from: &Path, target: &Path) -> Result<(), &'static str> {
    let mut depth: usize = from
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1).ok_or("a link pointing outside")?;
            }
            Component::RootDir | Component::Prefix(_) => return Err("a link to an absolute path"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_may_point_anywhere_inside_the_root_only() {
        assert!(check_link(Path::new("bin"), Path::new("../lib/app")).is_ok());
        assert!(check_link(Path::new(""), Path::new("./app")).is_ok());
        assert!(check_link(Path::new("bin"), Path::new("../../etc/passwd")).is_err());
        assert!(check_link(Path::new(""), Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn entries_must_be_relative_without_parent_steps() {
        assert!(check_relative(Path::new("bin/app")).is_ok());
        assert!(check_relative(Path::new("./bin/app")).is_ok());
        assert!(check_relative(Path::new("../app")).is_err());
        assert!(check_relative(Path::new("bin/../../app")).is_err());
        assert!(check_relative(Path::new("/usr/bin/app")).is_err());
    }
}
