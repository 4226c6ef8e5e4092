//! iNaturalist 2018 annotations (COCO style): `train2018.json` / `val2018.json`, each with
//! `images` (`id`, `file_name`), `annotations` (`image_id`, `category_id`) and `categories`
//! (`id`, `name`). Category ids are mapped to contiguous labels in increasing id order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::dataset::{Dataset, ImageStore, Splits};
use crate::error::{DataError, Result};

#[derive(Debug, Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
    #[serde(default)]
    categories: Vec<CocoCategory>,
}

#[derive(Debug, Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}

#[derive(Debug, Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    category_id: u64,
}

#[derive(Debug, Deserialize)]
struct CocoCategory {
    id: u64,
    #[serde(default)]
    name: Option<String>,
}

fn load(path: &Path) -> Result<CocoFile> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DataError::format(path, format!("not an iNaturalist/COCO annotation file: {e}")))
}

/// `(file names, category ids)` of every annotated image, in the file's image order.
fn annotated(path: &Path, file: &CocoFile) -> Result<(Vec<PathBuf>, Vec<u64>)> {
    let mut category_of: HashMap<u64, u64> = HashMap::with_capacity(file.annotations.len());
    for a in &file.annotations {
        category_of.insert(a.image_id, a.category_id);
    }
    let mut paths = Vec::with_capacity(file.images.len());
    let mut cats = Vec::with_capacity(file.images.len());
    for img in &file.images {
        let cat = category_of.get(&img.id).ok_or_else(|| DataError::format(path, format!("image {} (`{}`) has no annotation", img.id, img.file_name)))?;
        paths.push(PathBuf::from(&img.file_name));
        cats.push(*cat);
    }
    Ok((paths, cats))
}

/// Reads the iNaturalist 2018 train and val annotation files; `image_root` is the folder the
/// `file_name`s are relative to. The official val split serves as the test set.
pub fn read_inat(train_json: &Path, val_json: &Path, image_root: &Path, allow_outside_root: bool) -> Result<Splits> {
    let train = load(train_json)?;
    let val = load(val_json)?;
    let (train_paths, train_cats) = annotated(train_json, &train)?;
    let (val_paths, val_cats) = annotated(val_json, &val)?;
    if !allow_outside_root {
        for (file, paths) in [(train_json, &train_paths), (val_json, &val_paths)] {
            for (i, p) in paths.iter().enumerate() {
                super::inside_root(p, file, &format!("image {}", i + 1))?;
            }
        }
    }
    // Category table: from the files' `categories`, else the ids seen in the annotations.
    let mut ids: Vec<(u64, Option<String>)> = if !train.categories.is_empty() {
        train.categories.iter().map(|c| (c.id, c.name.clone())).collect()
    } else {
        let mut seen: Vec<u64> = train_cats.iter().chain(&val_cats).copied().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().map(|id| (id, None)).collect()
    };
    ids.sort_by_key(|(id, _)| *id);
    let index: HashMap<u64, usize> = ids.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    let class_names: Vec<String> = ids.iter().map(|(id, name)| name.clone().unwrap_or_else(|| format!("category_{id}"))).collect();
    let to_labels = |path: &Path, cats: &[u64]| -> Result<Vec<usize>> {
        cats.iter()
            .map(|c| {
                index.get(c).copied().ok_or_else(|| DataError::LabelOutOfRange {
                    source_name: path.display().to_string(),
                    label: *c as i64,
                    num_classes: class_names.len(),
                })
            })
            .collect()
    };
    let train_labels = to_labels(train_json, &train_cats)?;
    let val_labels = to_labels(val_json, &val_cats)?;
    let store = |paths| ImageStore::Files { root: image_root.to_path_buf(), paths: Arc::new(paths), grayscale: false };
    Ok(Splits {
        train: Dataset::new("inat2018", class_names.clone(), store(train_paths), train_labels)?,
        test: Dataset::new("inat2018", class_names, store(val_paths), val_labels)?,
        val: None,
    })
}
