//! Unpacking a `.tar.gz` into a staging folder: only plain files and folders, and only inside it.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;

use super::error::{FetchError, Result};
use super::{Progress, Stage};

/// Counts the compressed bytes read, for progress.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The path of an entry under `root`, or why it may not be written.
fn inside(root: &Path, entry: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = root.to_path_buf();
    for c in entry.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("leaves the destination through `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    Ok(out)
}

/// Unpacks `archive` (gzip-compressed tar) into `staging`, reporting compressed bytes read under
/// `name`. Links, devices and entries leaving `staging` are refused.
pub(crate) fn untar_gz(archive: &Path, staging: &Path, name: &str, progress: &mut dyn FnMut(Progress)) -> Result<()> {
    let file = File::open(archive).map_err(|e| FetchError::io(archive, e))?;
    let total = file.metadata().ok().map(|m| m.len());
    let count = Rc::new(Cell::new(0));
    let reader = Counting { inner: BufReader::new(file), count: count.clone() };
    let mut tar = tar::Archive::new(GzDecoder::new(reader));
    let bad = |e: io::Error| FetchError::archive(archive, format!("not a readable tar.gz: {e}"));
    std::fs::create_dir_all(staging).map_err(|e| FetchError::io(staging, e))?;
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let shown = path.display().to_string();
        let target = inside(staging, &path).map_err(|why| FetchError::UnsafeEntry { archive: archive.into(), entry: shown.clone(), why })?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&target).map_err(|e| FetchError::io(&target, e))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| FetchError::io(parent, e))?;
                }
                let mut out = File::create(&target).map_err(|e| FetchError::io(&target, e))?;
                // reading fails on a corrupt archive, writing on the disk (kept apart: only the
                // first makes the verified archive worthless)
                let mut bytes = Vec::new();
                io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| FetchError::archive(archive, format!("entry `{shown}`: {e}")))?;
                io::Write::write_all(&mut out, &bytes).map_err(|e| FetchError::io(&target, e))?;
            }
            // pax / GNU metadata records carry no file of their own
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {}
            _ => {
                return Err(FetchError::UnsafeEntry {
                    archive: archive.into(),
                    entry: shown,
                    why: "is not a plain file or folder (a link, device or sparse file)",
                });
            }
        }
        progress(Progress { file: name, stage: Stage::Extract, done: count.get(), total });
    }
    Ok(())
}
