//! Errors of a download: each names the URL or file at fault.

use std::path::PathBuf;

/// Result alias of [`crate::fetch`].
pub type Result<T, E = FetchError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The host could not be reached at all (no network, DNS failure, connection refused or
    /// timed out): the caller can fall back to offline instructions.
    #[error("cannot reach {url}: {reason} (offline, or the host is unreachable)")]
    Offline { url: String, reason: String },

    /// The server answered with an error status.
    #[error("{url}: the server answered HTTP {status}")]
    Http { url: String, status: u16 },

    /// The connection ended before the announced length; the partial file is kept to resume.
    #[error("{url}: transfer cut short after {received} of {expected} bytes ({reason}); run again to resume from {}", partial.display())]
    Truncated { url: String, received: u64, expected: u64, reason: String, partial: PathBuf },

    /// Any other transport failure (TLS, protocol, a read timeout).
    #[error("{url}: {reason}")]
    Network { url: String, reason: String },

    /// The finished file does not hash to the pinned digest; it has been removed.
    #[error("{file}: {algorithm} mismatch (expected {expected}, got {actual}); the download from {url} was removed")]
    Checksum { file: String, url: String, algorithm: &'static str, expected: String, actual: String },

    /// An archive entry would land outside the extraction folder.
    #[error("{}: entry `{entry}` {why}; refusing to extract", archive.display())]
    UnsafeEntry { archive: PathBuf, entry: String, why: &'static str },

    /// The archive is corrupt or does not hold what the catalog says.
    #[error("{}: {msg}", path.display())]
    Archive { path: PathBuf, msg: String },

    /// A local file operation failed.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
}

impl FetchError {
    /// Whether the host was unreachable (as opposed to a failed or corrupt transfer).
    pub fn is_offline(&self) -> bool {
        matches!(self, FetchError::Offline { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        FetchError::Io { path: path.into(), error }
    }

    pub(crate) fn archive(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        FetchError::Archive { path: path.into(), msg: msg.into() }
    }
}
