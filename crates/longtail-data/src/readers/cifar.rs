//! CIFAR-10 and CIFAR-100, from the binary version or from the python version torchvision uses.
//!
//! Binary CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `data_batch_5.bin` and
//! `test_batch.bin`, each record 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue,
//! row-major 32x32); class names in `batches.meta.txt`. Binary CIFAR-100 (`cifar-100-binary/`):
//! `train.bin` and `test.bin`, each record a coarse label byte, a fine label byte and 3072 pixel
//! bytes; names in `fine_label_names.txt` and `coarse_label_names.txt`.
//!
//! Python CIFAR-10 (`cifar-10-batches-py/`): pickled dicts `data_batch_1` .. `data_batch_5` and
//! `test_batch`, each with `data` (uint8 N x 3072, the same planar rows) and `labels`; names in
//! `batches.meta` (`label_names`). Python CIFAR-100 (`cifar-100-python/`): `train` and `test`
//! with `fine_labels` and `coarse_labels`; names in `meta` (`fine_label_names`,
//! `coarse_label_names`). Read by the safe [`super::pickle`] reader, in torchvision's order.
//!
//! Both layouts give the same samples in file order with HWC pixels; where a folder of each is
//! present the binary one is read. CIFAR-100's 20 superclasses become the dataset's hierarchy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{find_dir, read_file, read_names};
use crate::dataset::{Dataset, ImageStore, Splits};
use crate::error::{DataError, Result};
use crate::hierarchy::Hierarchy;

const PIXELS: usize = 3072;
const SIDE: usize = 32;

mod python;

/// Parsed records of CIFAR files: HWC pixels and labels (fine, optional coarse).
#[derive(Default)]
struct Records {
    pixels: Vec<u8>,
    fine: Vec<usize>,
    coarse: Vec<usize>,
}

fn parse(path: &Path, label_bytes: usize, num_fine: usize, records: &mut Records) -> Result<()> {
    let bytes = read_file(path)?;
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(DataError::format(
            path,
            format!("{} bytes is not a whole number of {record}-byte records (truncated or not a CIFAR binary file)", bytes.len()),
        ));
    }
    for (r, chunk) in bytes.chunks_exact(record).enumerate() {
        let fine = chunk[label_bytes - 1] as usize;
        if fine >= num_fine {
            return Err(DataError::format(path, format!("record {r}: label {fine} outside 0..{num_fine}")));
        }
        if label_bytes == 2 {
            records.coarse.push(chunk[0] as usize);
        }
        records.fine.push(fine);
        push_hwc(&chunk[label_bytes..], &mut records.pixels);
    }
    Ok(())
}

/// Appends one image of planar CHW bytes as interleaved HWC.
fn push_hwc(planes: &[u8], pixels: &mut Vec<u8>) {
    for p in 0..SIDE * SIDE {
        for c in 0..3 {
            pixels.push(planes[c * SIDE * SIDE + p]);
        }
    }
}

fn dataset(name: &str, classes: Vec<String>, records: Records) -> Result<Dataset> {
    let store = ImageStore::Memory { height: SIDE, width: SIDE, channels: 3, pixels: Arc::new(records.pixels) };
    Dataset::new(name, classes, store, records.fine)
}

fn names_or_default(path: &Path, n: usize, prefix: &str) -> Result<Vec<String>> {
    if path.exists() {
        let names = read_names(path)?;
        if names.len() < n {
            return Err(DataError::format(path, format!("{} class names, expected {n}", names.len())));
        }
        Ok(names.into_iter().take(n).collect())
    } else {
        Ok((0..n).map(|i| format!("{prefix}{i}")).collect())
    }
}

/// The two on-disk versions of CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `cifar-10-batches-bin/`, `cifar-100-binary/`.
    Binary,
    /// torchvision's pickles: `cifar-10-batches-py/`, `cifar-100-python/`.
    Python,
}

/// Where a CIFAR version lives: its folders of each layout and a file each must hold.
struct Folders {
    title: &'static str,
    binary: (&'static str, &'static str),
    python: (&'static str, &'static str),
    archives: (&'static str, &'static str),
}

const CIFAR10: Folders = Folders {
    title: "CIFAR-10",
    binary: ("cifar-10-batches-bin", "test_batch.bin"),
    python: ("cifar-10-batches-py", "test_batch"),
    archives: ("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"),
};

const CIFAR100: Folders = Folders {
    title: "CIFAR-100",
    binary: ("cifar-100-binary", "test.bin"),
    python: ("cifar-100-python", "test"),
    archives: ("cifar-100-binary.tar.gz", "cifar-100-python.tar.gz"),
};

/// Binary first (`root`, then its binary folder), then python (`root`, then its python folder).
fn locate(root: &Path, f: &Folders) -> Result<(PathBuf, Layout)> {
    let binary = find_dir(root, &[".", f.binary.0], f.binary.1).map(|d| (d, Layout::Binary));
    binary.or_else(|| find_dir(root, &[".", f.python.0], f.python.1).map(|d| (d, Layout::Python))).ok_or_else(|| DataError::NotFound {
        what: format!("{} under {} (neither {}/{} nor {}/{})", f.title, root.display(), f.binary.0, f.binary.1, f.python.0, f.python.1),
        hint: format!(
            "download {} (binary) or {} (the python version torchvision uses) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there",
            f.archives.0, f.archives.1
        ),
    })
}

/// Locates the CIFAR-10 folder and its layout: `root` or `root/cifar-10-batches-bin` with the
/// binary files, else `root` or `root/cifar-10-batches-py` with the pickles.
pub fn locate_cifar10_layout(root: &Path) -> Result<(PathBuf, Layout)> {
    locate(root, &CIFAR10)
}

/// Locates the CIFAR-100 folder and its layout: `root` or `root/cifar-100-binary` with the
/// binary files, else `root` or `root/cifar-100-python` with the pickles.
pub fn locate_cifar100_layout(root: &Path) -> Result<(PathBuf, Layout)> {
    locate(root, &CIFAR100)
}

/// The CIFAR-10 folder (see [`locate_cifar10_layout`]).
pub fn locate_cifar10(root: &Path) -> Result<PathBuf> {
    locate_cifar10_layout(root).map(|(dir, _)| dir)
}

/// The CIFAR-100 folder (see [`locate_cifar100_layout`]).
pub fn locate_cifar100(root: &Path) -> Result<PathBuf> {
    locate_cifar100_layout(root).map(|(dir, _)| dir)
}

/// Appends the data file `stem` (`data_batch_1`, `train`, ...) of either layout; returns its path.
fn read_part(dir: &Path, layout: Layout, stem: &str, cifar100: bool, records: &mut Records) -> Result<PathBuf> {
    let num_fine = if cifar100 { 100 } else { 10 };
    match layout {
        Layout::Binary => {
            let path = dir.join(format!("{stem}.bin"));
            parse(&path, if cifar100 { 2 } else { 1 }, num_fine, records)?;
            Ok(path)
        }
        Layout::Python => {
            let path = dir.join(stem);
            python::parse_batch(&path, num_fine, cifar100, records)?;
            Ok(path)
        }
    }
}

/// Class names from the text file `txt` (binary) or the `key` list of the pickle `meta` (python).
fn class_names(dir: &Path, layout: Layout, txt: &str, (meta, key): (&str, &str), n: usize, prefix: &str) -> Result<Vec<String>> {
    match layout {
        Layout::Binary => names_or_default(&dir.join(txt), n, prefix),
        Layout::Python => python::names_or_default(&dir.join(meta), key, n, prefix),
    }
}

/// Reads CIFAR-10 (balanced train and test splits) from either layout.
pub fn read_cifar10(root: &Path) -> Result<Splits> {
    let (dir, layout) = locate_cifar10_layout(root)?;
    let classes = class_names(&dir, layout, "batches.meta.txt", ("batches.meta", "label_names"), 10, "class_")?;
    let mut train = Records::default();
    for b in 1..=5 {
        read_part(&dir, layout, &format!("data_batch_{b}"), false, &mut train)?;
    }
    let mut test = Records::default();
    read_part(&dir, layout, "test_batch", false, &mut test)?;
    Ok(Splits { train: dataset("cifar10", classes.clone(), train)?, test: dataset("cifar10", classes, test)?, val: None })
}

/// Reads CIFAR-100 with its 20-superclass hierarchy from either layout.
pub fn read_cifar100(root: &Path) -> Result<Splits> {
    let (dir, layout) = locate_cifar100_layout(root)?;
    let fine_names = class_names(&dir, layout, "fine_label_names.txt", ("meta", "fine_label_names"), 100, "class_")?;
    let coarse_names = class_names(&dir, layout, "coarse_label_names.txt", ("meta", "coarse_label_names"), 20, "superclass_")?;
    let mut train = Records::default();
    let train_path = read_part(&dir, layout, "train", true, &mut train)?;
    let mut test = Records::default();
    read_part(&dir, layout, "test", true, &mut test)?;
    let hierarchy = superclasses(&train_path, &train, coarse_names)?;
    let train = dataset("cifar100", fine_names.clone(), train)?.with_hierarchy(hierarchy.clone())?;
    let test = dataset("cifar100", fine_names, test)?.with_hierarchy(hierarchy)?;
    Ok(Splits { train, test, val: None })
}

/// Derives the fine -> coarse map from the coarse label bytes, checking it is a function.
fn superclasses(path: &Path, records: &Records, coarse_names: Vec<String>) -> Result<Hierarchy> {
    let mut parent: Vec<Option<usize>> = vec![None; 100];
    for (&f, &c) in records.fine.iter().zip(&records.coarse) {
        if c >= coarse_names.len() {
            return Err(DataError::format(path, format!("coarse label {c} outside 0..{}", coarse_names.len())));
        }
        match parent[f] {
            Some(p) if p != c => {
                return Err(DataError::format(path, format!("fine class {f} appears under coarse classes {p} and {c}")));
            }
            _ => parent[f] = Some(c),
        }
    }
    let parent = parent
        .into_iter()
        .enumerate()
        .map(|(f, p)| p.ok_or_else(|| DataError::format(path, format!("fine class {f} has no image"))))
        .collect::<Result<Vec<_>>>()?;
    Hierarchy::new(coarse_names, parent)
}
