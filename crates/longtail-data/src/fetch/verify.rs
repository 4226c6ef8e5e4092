//! Checking a file against its pinned MD5 / SHA-256.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};
use sha2::Sha256;

use super::catalog::RemoteFile;
use super::error::{FetchError, Result};
use super::{Progress, Stage};

/// Hex digests of one file (SHA-256 only when one is pinned).
pub(crate) struct Digests {
    pub md5: String,
    pub sha256: Option<String>,
}

/// Hashes `path` as `file` needs, reporting progress under its name.
pub(crate) fn digests(path: &Path, file: &RemoteFile, progress: &mut dyn FnMut(Progress)) -> Result<Digests> {
    let name = file.name.as_str();
    let mut input = File::open(path).map_err(|e| FetchError::io(path, e))?;
    let total = input.metadata().ok().map(|m| m.len());
    let mut md5 = Md5::new();
    let mut sha = file.sha256.is_some().then(Sha256::new);
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| FetchError::io(path, e))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        if let Some(sha) = sha.as_mut() {
            sha.update(&buf[..n]);
        }
        done += n as u64;
        progress(Progress { file: name, stage: Stage::Verify, done, total });
    }
    Ok(Digests { md5: hex(&md5.finalize()), sha256: sha.map(|s| hex(&s.finalize())) })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first pinned digest `actual` differs from: (algorithm, expected, actual).
pub(crate) fn mismatch(file: &RemoteFile, actual: &Digests) -> Option<(&'static str, String, String)> {
    let pinned = [("MD5", file.md5.as_deref(), Some(&actual.md5)), ("SHA-256", file.sha256.as_deref(), actual.sha256.as_ref())];
    pinned.into_iter().find_map(|(alg, want, got)| {
        let want = want?.trim().to_ascii_lowercase();
        let got = got.cloned().unwrap_or_default();
        // a SHA-256 pinned by a prefix (torch.hub's file names): at least 8 hex digits of it
        let prefix_pin = alg == "SHA-256" && want.len() >= 8 && want.len() < got.len();
        let differs = if prefix_pin { !got.starts_with(&want) } else { want != got };
        differs.then_some((alg, want, got))
    })
}

/// Whether `path` exists and matches every digest pinned for `file`.
pub(crate) fn matches(path: &Path, file: &RemoteFile, progress: &mut dyn FnMut(Progress)) -> Result<bool> {
    if !path.is_file() {
        return Ok(false);
    }
    Ok(mismatch(file, &digests(path, file, progress)?).is_none())
}
