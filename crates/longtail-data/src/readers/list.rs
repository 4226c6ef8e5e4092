//! List files: one `relative/path.jpg label` per line, resolved against an image root. This is the
//! format of the public split files of ImageNet-LT (`ImageNet_LT_{train,val,test}.txt`),
//! Places-LT (`Places_LT_{train,val,test}.txt`) and the iNaturalist-2018 lists of the decoupling
//! code (`iNaturalist18_{train,val}.txt`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::read_names;
use crate::dataset::{Dataset, ImageStore, Splits};
use crate::error::{DataError, Result};

/// The entries of one list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntries {
    pub paths: Vec<PathBuf>,
    pub labels: Vec<usize>,
}

/// Parses a list file; a line that does not parse is an error naming file and line number.
pub fn parse_list(path: &Path) -> Result<ListEntries> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut entries = ListEntries { paths: Vec::new(), labels: Vec::new() };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parse_err = |msg: String| DataError::Parse { path: path.to_path_buf(), line: n + 1, msg };
        let (file, label) = line.rsplit_once(char::is_whitespace).ok_or_else(|| parse_err(format!("expected `relative/path label`, found `{line}`")))?;
        let label: usize = label.trim().parse().map_err(|_| parse_err(format!("label `{}` is not a non-negative integer", label.trim())))?;
        entries.paths.push(PathBuf::from(file.trim()));
        entries.labels.push(label);
    }
    if entries.paths.is_empty() {
        return Err(DataError::format(path, "the list file has no entries"));
    }
    Ok(entries)
}

/// Describes a list-file benchmark: the image root, the split files and optional class names.
#[derive(Debug, Clone)]
pub struct ListSpec {
    pub name: String,
    pub image_root: PathBuf,
    pub train: PathBuf,
    pub test: PathBuf,
    pub val: Option<PathBuf>,
    /// A file with one class name per line, in label order.
    pub class_names: Option<PathBuf>,
    /// The number of classes; inferred as `max label + 1` over all splits when absent.
    pub num_classes: Option<usize>,
    pub grayscale: bool,
    /// Accept listed paths outside `image_root`.
    pub allow_outside_root: bool,
}

/// Reads the splits of a list-file benchmark.
pub fn read_list_splits(spec: &ListSpec) -> Result<Splits> {
    if !spec.image_root.is_dir() {
        return Err(DataError::NotFound {
            what: format!("image root {}", spec.image_root.display()),
            hint: "point `root` at the folder the list-file paths are relative to".into(),
        });
    }
    let train = parse_list(&spec.train)?;
    let test = parse_list(&spec.test)?;
    let val = spec.val.as_deref().map(parse_list).transpose()?;
    if !spec.allow_outside_root {
        for (file, entries) in [(&spec.train, &train), (&spec.test, &test)].into_iter().chain(spec.val.as_ref().zip(val.as_ref())) {
            for (i, p) in entries.paths.iter().enumerate() {
                super::inside_root(p, file, &format!("entry {}", i + 1))?;
            }
        }
    }
    let max_label = [&train, &test].into_iter().chain(val.as_ref()).flat_map(|e| e.labels.iter()).max().copied().unwrap_or(0);
    let num_classes = match spec.num_classes {
        Some(n) => {
            for (file, entries) in [(&spec.train, &train), (&spec.test, &test)] {
                if let Some(&bad) = entries.labels.iter().find(|&&l| l >= n) {
                    return Err(DataError::LabelOutOfRange { source_name: file.display().to_string(), label: bad as i64, num_classes: n });
                }
            }
            n
        }
        None => max_label + 1,
    };
    let class_names = match &spec.class_names {
        Some(path) => {
            let names = read_names(path)?;
            if names.len() != num_classes {
                return Err(DataError::format(path, format!("{} class names for {num_classes} classes", names.len())));
            }
            names
        }
        None => (0..num_classes).map(|i| format!("class_{i}")).collect(),
    };
    let make = |entries: ListEntries| {
        let store = ImageStore::Files { root: spec.image_root.clone(), paths: Arc::new(entries.paths), grayscale: spec.grayscale };
        Dataset::new(spec.name.clone(), class_names.clone(), store, entries.labels)
    };
    Ok(Splits { train: make(train)?, test: make(test)?, val: val.map(make).transpose()? })
}
