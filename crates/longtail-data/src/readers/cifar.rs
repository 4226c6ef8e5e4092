//! CIFAR-10 and CIFAR-100, binary version.
//!
//! CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `data_batch_5.bin` and
//! `test_batch.bin`, each record 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue,
//! row-major 32x32); class names in `batches.meta.txt`.
//!
//! CIFAR-100 (`cifar-100-binary/`): `train.bin` and `test.bin`, each record a coarse label byte, a
//! fine label byte and 3072 pixel bytes; names in `fine_label_names.txt` and
//! `coarse_label_names.txt`. The 20 superclasses become the dataset's hierarchy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{find_dir, read_file, read_names};
use crate::dataset::{Dataset, ImageStore, Splits};
use crate::error::{DataError, Result};
use crate::hierarchy::Hierarchy;

const PIXELS: usize = 3072;
const SIDE: usize = 32;

/// Parsed records of one CIFAR file: HWC pixels and labels (fine, optional coarse).
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
        // planar CHW -> interleaved HWC
        let planes = &chunk[label_bytes..];
        for p in 0..SIDE * SIDE {
            for c in 0..3 {
                records.pixels.push(planes[c * SIDE * SIDE + p]);
            }
        }
    }
    Ok(())
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

/// Locates the CIFAR-10 binary folder: `root` itself or `root/cifar-10-batches-bin`.
pub fn locate_cifar10(root: &Path) -> Result<PathBuf> {
    find_dir(root, &[".", "cifar-10-batches-bin"], "test_batch.bin").ok_or_else(|| DataError::NotFound {
        what: format!("CIFAR-10 binary files under {}", root.display()),
        hint: "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there".into(),
    })
}

/// Locates the CIFAR-100 binary folder: `root` itself or `root/cifar-100-binary`.
pub fn locate_cifar100(root: &Path) -> Result<PathBuf> {
    find_dir(root, &[".", "cifar-100-binary"], "test.bin").ok_or_else(|| DataError::NotFound {
        what: format!("CIFAR-100 binary files under {}", root.display()),
        hint: "download cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there".into(),
    })
}

/// Reads CIFAR-10 (balanced train and test splits).
pub fn read_cifar10(root: &Path) -> Result<Splits> {
    let dir = locate_cifar10(root)?;
    let classes = names_or_default(&dir.join("batches.meta.txt"), 10, "class_")?;
    let mut train = Records { pixels: Vec::new(), fine: Vec::new(), coarse: Vec::new() };
    for b in 1..=5 {
        parse(&dir.join(format!("data_batch_{b}.bin")), 1, 10, &mut train)?;
    }
    let mut test = Records { pixels: Vec::new(), fine: Vec::new(), coarse: Vec::new() };
    parse(&dir.join("test_batch.bin"), 1, 10, &mut test)?;
    Ok(Splits { train: dataset("cifar10", classes.clone(), train)?, test: dataset("cifar10", classes, test)?, val: None })
}

/// Reads CIFAR-100 with its 20-superclass hierarchy.
pub fn read_cifar100(root: &Path) -> Result<Splits> {
    let dir = locate_cifar100(root)?;
    let fine_names = names_or_default(&dir.join("fine_label_names.txt"), 100, "class_")?;
    let coarse_names = names_or_default(&dir.join("coarse_label_names.txt"), 20, "superclass_")?;
    let mut train = Records { pixels: Vec::new(), fine: Vec::new(), coarse: Vec::new() };
    parse(&dir.join("train.bin"), 2, 100, &mut train)?;
    let mut test = Records { pixels: Vec::new(), fine: Vec::new(), coarse: Vec::new() };
    parse(&dir.join("test.bin"), 2, 100, &mut test)?;
    let hierarchy = superclasses(&dir.join("train.bin"), &train, coarse_names)?;
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
