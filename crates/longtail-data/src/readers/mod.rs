//! Readers of the on-disk formats of the long-tailed benchmarks.

pub mod cifar;
pub mod folder;
pub mod idx;
pub mod inat;
pub mod list;

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

/// The first of `candidates` (relative to `root`) that is a directory containing `marker`.
pub(crate) fn find_dir(root: &Path, candidates: &[&str], marker: &str) -> Option<PathBuf> {
    candidates.iter().map(|c| root.join(c)).find(|d| d.join(marker).exists())
}
