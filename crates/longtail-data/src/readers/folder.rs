//! Image folders for a user's own data: `root/<class>/<image>.{jpg,jpeg,png}`. Classes are the
//! sub-folders in sorted name order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dataset::{Dataset, ImageStore};
use crate::error::{DataError, Result};

fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    Ok(entries)
}

/// Reads one image-folder split. With `classes` given (e.g. the train split's), the split must
/// use the same class folders.
pub fn read_folder(root: &Path, name: &str, classes: Option<&[String]>, grayscale: bool) -> Result<Dataset> {
    if !root.is_dir() {
        return Err(DataError::NotFound {
            what: format!("image folder {}", root.display()),
            hint: "lay the images out as root/<class name>/<image>.jpg".into(),
        });
    }
    let mut found = Vec::new();
    for dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let Some(name) = dir.file_name() else { continue };
        // a lossy name would point at no folder and leave the class silently empty
        let name = name.to_str().ok_or_else(|| {
            DataError::format(
                root,
                format!("class folder name {:?} is not valid UTF-8; rename the folder (class names are UTF-8 text)", dir.file_name().unwrap_or_default()),
            )
        })?;
        found.push(name.to_string());
    }
    let class_names: Vec<String> = match classes {
        Some(expected) => {
            if let Some(extra) = found.iter().find(|f| !expected.contains(f)) {
                return Err(DataError::format(root, format!("class folder `{extra}` is not one of the training classes")));
            }
            expected.to_vec()
        }
        None => found,
    };
    if class_names.is_empty() {
        return Err(DataError::format(root, "no class sub-folders found (expected root/<class>/<image>.jpg)"));
    }
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in class_names.iter().enumerate() {
        let dir = root.join(class);
        if !dir.is_dir() {
            continue;
        }
        for file in sorted_entries(&dir)?.into_iter().filter(|p| p.is_file() && is_image(p)) {
            paths.push(PathBuf::from(class).join(file.file_name().unwrap()));
            labels.push(label);
        }
    }
    let store = ImageStore::Files { root: root.to_path_buf(), paths: Arc::new(paths), grayscale };
    Dataset::new(name, class_names, store, labels)
}
