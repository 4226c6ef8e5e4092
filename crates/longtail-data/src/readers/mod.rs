//! Readers of the on-disk formats of the long-tailed benchmarks.

pub mod cifar;
pub mod folder;
pub mod idx;
pub mod inat;
pub mod list;
pub mod pickle;

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Reads a file of class names, one per line (blank lines ignored).
pub fn read_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// Refuses a listed image path that leaves the image root (absolute, or through `..`): a list
/// file would otherwise make an arbitrary file on the machine a training image under its label.
/// `what` names the entry in the error (`line 12`).
pub fn inside_root(path: &Path, source: &Path, what: &str) -> Result<()> {
    use std::path::Component;
    if path.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_))) {
        return Err(DataError::format(
            source,
            format!(
                "{what}: `{}` is outside the image root (absolute or through `..`); set allow_outside_root = true in the data source to accept it",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The first of `candidates` (relative to `root`) that is a directory containing the file `marker`.
pub(crate) fn find_dir(root: &Path, candidates: &[&str], marker: &str) -> Option<PathBuf> {
    candidates.iter().map(|c| root.join(c)).find(|d| d.join(marker).is_file())
}
