//! Downloading the benchmarks' official archives: over HTTPS with a blocking client, resumable,
//! checked against pinned digests, unpacked into a staging folder and moved into place only when
//! complete, so that a reader never sees a half-written dataset.
//!
//! Work in progress lives in `<dest>/.partial/`: `<file>.part` while downloading (kept when a
//! transfer is cut short, and resumed with `Range` next time), `<file>` once verified, and the
//! staging folder of an extraction.

mod catalog;
mod download;
mod error;
mod extract;
mod verify;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use catalog::{CIFAR_HOST, FASHION_MNIST_GITHUB, FASHION_MNIST_OFFICIAL, Layout, Remote, RemoteFile, Spec, TORCHVISION_MODELS};
pub use error::{FetchError, Result};

/// Name of the folder under the destination that holds unfinished work.
pub const PARTIAL_DIR: &str = ".partial";

/// How to download.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// A base URL replacing the catalog's host; file names are appended unchanged.
    pub mirror: Option<String>,
    /// Limit on resolving and connecting (and the TLS handshake).
    pub connect_timeout: Duration,
    /// Limit on waiting for the response and on each read of the body.
    pub read_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions { mirror: None, connect_timeout: Duration::from_secs(20), read_timeout: Duration::from_secs(60) }
    }
}

/// The step a [`Progress`] report belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Bytes of the file received (a resumed download starts at the partial size).
    Download,
    /// Bytes of the file hashed.
    Verify,
    /// Compressed bytes of the archive unpacked.
    Extract,
}

/// A progress report: `done` of `total` bytes (when known) of `file` in `stage`.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    pub file: &'a str,
    pub stage: Stage,
    pub done: u64,
    pub total: Option<u64>,
}

/// What a fetch would download, for a one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub title: String,
    pub files: Vec<String>,
    /// Sum of the files' sizes, when all are known.
    pub total_bytes: Option<u64>,
    /// The file's URL, or the base URL when there are several files.
    pub url: String,
}

impl Summary {
    /// `fetching CIFAR-10 (162.2 MiB) from https://... into data/cifar10`.
    pub fn line(&self, dest: &Path) -> String {
        let mut size = match self.files.len() {
            1 => String::new(),
            n => format!("{n} files"),
        };
        if let Some(bytes) = self.total_bytes {
            let mib = format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
            size = if size.is_empty() { mib } else { format!("{size}, {mib}") };
        }
        let size = if size.is_empty() { String::new() } else { format!(" ({size})") };
        format!("fetching {}{size} from {} into {}", self.title, self.url, dest.display())
    }
}

/// What fetching `remote` downloads, and from where (the mirror's URL when one is set).
pub fn describe(remote: Remote, opts: &FetchOptions) -> Summary {
    describe_spec(&remote.spec(), opts)
}

/// [`describe`] for any catalog entry.
pub fn describe_spec(spec: &Spec, opts: &FetchOptions) -> Summary {
    let mirror = opts.mirror.as_deref();
    let url = match spec.files.as_slice() {
        [one] => spec.url(one, mirror),
        _ => spec.base(mirror).to_string(),
    };
    Summary { title: spec.title.clone(), files: spec.files.iter().map(|f| f.name.clone()).collect(), total_bytes: spec.total_bytes(), url }
}

/// Downloads `remote` into `dest` unless it is there already, and returns the folder a reader
/// opens: `dest/<archive folder>` for the CIFAR archives, `dest` itself for Fashion-MNIST.
pub fn fetch(remote: Remote, dest: &Path, opts: &FetchOptions, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    fetch_spec(&remote.spec(), dest, opts, progress)
}

/// [`fetch`] for any catalog entry (tests serve their own archives this way).
pub fn fetch_spec(spec: &Spec, dest: &Path, opts: &FetchOptions, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    let existed = dest.exists();
    let result = match &spec.layout {
        Layout::Archive { folder, members } => fetch_archive(spec, folder, members, dest, opts, progress),
        Layout::Files { marker } => fetch_files(spec, marker, dest, opts, progress),
    };
    if result.is_err() {
        // a failure that left nothing to resume leaves no empty folders behind either
        let _ = std::fs::remove_dir(dest.join(PARTIAL_DIR));
        if !existed {
            let _ = std::fs::remove_dir(dest);
        }
    }
    result
}

/// The folder of a dataset already in place (every archive member, or every file, present;
/// [`fetch`] also checks the digests of a [`Layout::Files`] dataset's files).
pub fn present(spec: &Spec, dest: &Path) -> Option<PathBuf> {
    match &spec.layout {
        Layout::Archive { folder, members } => {
            let dir = dest.join(folder);
            members.iter().all(|m| dir.join(m).is_file()).then_some(dir)
        }
        Layout::Files { .. } => spec.files.iter().all(|f| dest.join(&f.name).is_file()).then(|| dest.to_path_buf()),
    }
}

fn fetch_archive(spec: &Spec, folder: &str, members: &[String], dest: &Path, opts: &FetchOptions, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    let target = dest.join(folder);
    if let Some(dir) = present(spec, dest) {
        return Ok(dir);
    }
    if target.exists() {
        let missing = members.iter().find(|m| !target.join(m).is_file()).map(String::as_str).unwrap_or(folder);
        return Err(FetchError::archive(&target, format!("exists but lacks {missing}; move it away and fetch again")));
    }
    let partial = partial_dir(dest)?;
    let agent = download::agent(opts);
    let staging = partial.join(format!("{folder}.unpacking"));
    remove_dir(&staging)?;
    for file in &spec.files {
        let archive = obtain(&agent, spec, file, &partial, opts, progress)?;
        if let Err(e) = extract::untar_gz(&archive, &staging, &file.name, progress) {
            remove_dir(&staging)?;
            if !matches!(e, FetchError::Io { .. }) {
                remove_file(&archive)?; // verified but unusable: nothing to keep it for
            }
            return Err(e);
        }
    }
    let unpacked = staging.join(folder);
    if let Some(m) = members.iter().find(|m| !unpacked.join(m).is_file()) {
        remove_dir(&staging)?;
        let shown = partial.join(spec.files.first().map_or(folder, |f| f.name.as_str()));
        for file in &spec.files {
            remove_file(&partial.join(&file.name))?; // verified but not the dataset the catalog describes
        }
        return Err(FetchError::archive(shown, format!("the archive holds no {folder}/{m}")));
    }
    std::fs::rename(&unpacked, &target).map_err(|e| FetchError::io(&target, e))?;
    for file in &spec.files {
        remove_file(&partial.join(&file.name))?;
    }
    remove_dir(&staging)?;
    let _ = std::fs::remove_dir(&partial); // only when empty
    Ok(target)
}

fn fetch_files(spec: &Spec, marker: &str, dest: &Path, opts: &FetchOptions, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    let mut missing = Vec::new();
    for file in &spec.files {
        if !verify::matches(&dest.join(&file.name), file, progress)? {
            missing.push(file);
        }
    }
    if missing.is_empty() {
        return Ok(dest.to_path_buf());
    }
    let partial = partial_dir(dest)?;
    let agent = download::agent(opts);
    let mut ready = Vec::new();
    for file in missing {
        ready.push((obtain(&agent, spec, file, &partial, opts, progress)?, dest.join(&file.name)));
    }
    // the file readers look for goes last, so they never find an incomplete set
    ready.sort_by_key(|(_, to)| to.file_name().is_some_and(|n| n == marker));
    for (from, to) in ready {
        std::fs::rename(&from, &to).map_err(|e| FetchError::io(&to, e))?;
    }
    let _ = std::fs::remove_dir(&partial);
    Ok(dest.to_path_buf())
}

/// A verified copy of `file` in the partial folder: one from an earlier run, or a fresh (or
/// resumed) download. A download that fails its digest check is removed.
fn obtain(agent: &ureq::Agent, spec: &Spec, file: &RemoteFile, partial: &Path, opts: &FetchOptions, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    let done = partial.join(&file.name);
    if verify::matches(&done, file, progress)? {
        return Ok(done);
    }
    remove_file(&done)?;
    let part = partial.join(format!("{}.part", file.name));
    let url = spec.url(file, opts.mirror.as_deref());
    download::download(agent, &url, &part, file, progress)?;
    let digests = verify::digests(&part, file, progress)?;
    if let Some((algorithm, expected, actual)) = verify::mismatch(file, &digests) {
        remove_file(&part)?;
        return Err(FetchError::Checksum { file: file.name.clone(), url, algorithm, expected, actual });
    }
    std::fs::rename(&part, &done).map_err(|e| FetchError::io(&done, e))?;
    Ok(done)
}

fn partial_dir(dest: &Path) -> Result<PathBuf> {
    let dir = dest.join(PARTIAL_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| FetchError::io(&dir, e))?;
    Ok(dir)
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(FetchError::io(path, e)),
        _ => Ok(()),
    }
}

fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(FetchError::io(path, e)),
        _ => Ok(()),
    }
}
