//! The python layout: one pickled dict per file, read as torchvision's `CIFAR10` / `CIFAR100`
//! read it (`labels` when the dict has it, else `fine_labels`; rows of `data` in file order).

use std::path::Path;

use super::{PIXELS, Records, SIDE, push_hwc};
use crate::error::{DataError, Result};
use crate::readers::pickle;

/// Appends the batch pickled at `path`; `cifar100` also reads `coarse_labels`.
pub(super) fn parse_batch(path: &Path, num_fine: usize, cifar100: bool, records: &mut Records) -> Result<()> {
    let p = pickle::load(path)?;
    let key = if p.has("labels") { "labels" } else { "fine_labels" };
    let fine = labels(path, &p.ints(key)?, key, num_fine)?;
    // the hierarchy's check names the coarse classes; 255 bounds them as the binary's byte does
    let coarse = if cifar100 { labels(path, &p.ints("coarse_labels")?, "coarse_labels", 256)? } else { Vec::new() };
    let data = p.u8_array("data")?;
    let n = match data.shape[..] {
        [n, PIXELS] => n,
        [n, 3, SIDE, SIDE] => n,
        _ => return Err(DataError::format(path, format!("`data` has shape {:?}, expected (N, 3072) or (N, 3, 32, 32)", data.shape))),
    };
    if fine.len() != n || (cifar100 && coarse.len() != n) {
        let coarse = if cifar100 { format!(" and {} `coarse_labels`", coarse.len()) } else { String::new() };
        return Err(DataError::format(path, format!("{} `{key}`{coarse} for {n} images", fine.len())));
    }
    for row in data.data.chunks_exact(PIXELS) {
        push_hwc(row, &mut records.pixels);
    }
    records.fine.extend(fine);
    records.coarse.extend(coarse);
    Ok(())
}

/// The labels of `key`, each checked to lie in `0..n`.
fn labels(path: &Path, values: &[i64], key: &str, n: usize) -> Result<Vec<usize>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| match usize::try_from(v) {
            Ok(l) if l < n => Ok(l),
            _ => Err(DataError::format(path, format!("`{key}`[{i}]: label {v} outside 0..{n}"))),
        })
        .collect()
}

/// The first `n` names of list `key` in the meta pickle at `path`; `prefix0`.. without the file.
pub(super) fn names_or_default(path: &Path, key: &str, n: usize, prefix: &str) -> Result<Vec<String>> {
    if !path.exists() {
        return Ok((0..n).map(|i| format!("{prefix}{i}")).collect());
    }
    let names = pickle::load(path)?.texts(key)?;
    if names.len() < n {
        return Err(DataError::format(path, format!("{} class names in `{key}`, expected {n}", names.len())));
    }
    Ok(names.into_iter().take(n).collect())
}
