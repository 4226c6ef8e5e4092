//! The in-memory view of a labelled image dataset: where each image lives, its fine label, the
//! class names and, when the data has one, the fine -> coarse hierarchy.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{DataError, Result};
use crate::hierarchy::Hierarchy;
use crate::image::Image;

/// Where the pixels of a dataset live.
#[derive(Debug, Clone)]
pub enum ImageStore {
    /// Decoded images of one fixed size, `HWC` bytes back to back (CIFAR, IDX).
    Memory { height: usize, width: usize, channels: usize, pixels: Arc<Vec<u8>> },
    /// Encoded JPEG/PNG files under `root`, decoded on demand (list files, iNaturalist, folders).
    Files { root: PathBuf, paths: Arc<Vec<PathBuf>>, grayscale: bool },
}

impl ImageStore {
    /// Number of images held.
    pub fn len(&self) -> usize {
        match self {
            ImageStore::Memory { height, width, channels, pixels } => pixels.len() / (height * width * channels),
            ImageStore::Files { paths, .. } => paths.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads image `index` of the store.
    pub fn load(&self, index: usize) -> Result<Image> {
        match self {
            ImageStore::Memory { height, width, channels, pixels } => {
                let size = height * width * channels;
                let data = pixels[index * size..(index + 1) * size].to_vec();
                Ok(Image::new(*height, *width, *channels, data))
            }
            ImageStore::Files { root, paths, grayscale } => Image::open(&root.join(&paths[index]), *grayscale),
        }
    }

    /// The path of a file-backed image (for messages and predictions).
    pub fn describe(&self, index: usize) -> String {
        match self {
            ImageStore::Memory { .. } => format!("#{index}"),
            ImageStore::Files { root, paths, .. } => root.join(&paths[index]).display().to_string(),
        }
    }
}

/// A labelled image set: sample `i` is image `items[i]` of `store` with fine label `labels[i]`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub class_names: Vec<String>,
    pub store: ImageStore,
    pub items: Vec<usize>,
    pub labels: Vec<usize>,
    pub hierarchy: Option<Hierarchy>,
}

impl Dataset {
    /// Builds a dataset over every image of `store`, checking that the labels fit the classes.
    pub fn new(name: impl Into<String>, class_names: Vec<String>, store: ImageStore, labels: Vec<usize>) -> Result<Self> {
        let name = name.into();
        if labels.len() != store.len() {
            return Err(DataError::invalid("labels", format!("{name}: {} labels for {} images", labels.len(), store.len())));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= class_names.len()) {
            return Err(DataError::LabelOutOfRange { source_name: name, label: bad as i64, num_classes: class_names.len() });
        }
        let items = (0..labels.len()).collect();
        Ok(Self { name, class_names, store, items, labels, hierarchy: None })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// Sample indices of each class, in dataset order.
    pub fn indices_by_class(&self) -> Vec<Vec<usize>> {
        let mut by_class = vec![Vec::new(); self.num_classes()];
        for (i, &l) in self.labels.iter().enumerate() {
            by_class[l].push(i);
        }
        by_class
    }

    /// Loads sample `i`.
    pub fn image(&self, i: usize) -> Result<Image> {
        self.store.load(self.items[i])
    }

    /// The coarse label of sample `i`, when the dataset has a hierarchy.
    pub fn coarse_label(&self, i: usize) -> Option<usize> {
        self.hierarchy.as_ref().map(|h| h.parent[self.labels[i]])
    }

    /// The samples at `indices` (same storage, same classes).
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            name: self.name.clone(),
            class_names: self.class_names.clone(),
            store: self.store.clone(),
            items: indices.iter().map(|&i| self.items[i]).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            hierarchy: self.hierarchy.clone(),
        }
    }

    /// Attaches a hierarchy after checking it covers exactly this dataset's classes.
    pub fn with_hierarchy(mut self, hierarchy: Hierarchy) -> Result<Self> {
        if hierarchy.parent.len() != self.num_classes() {
            return Err(DataError::invalid(
                "hierarchy",
                format!("it maps {} fine classes but {} has {}", hierarchy.parent.len(), self.name, self.num_classes()),
            ));
        }
        self.hierarchy = Some(hierarchy);
        Ok(self)
    }

    /// Fails with a clear message when a class has no sample.
    pub fn check_no_empty_class(&self) -> Result<()> {
        match self.class_counts().iter().position(|&c| c == 0) {
            Some(class) => Err(DataError::EmptyClass { class, name: self.class_names[class].clone() }),
            None => Ok(()),
        }
    }

    /// Checks that every file-backed image of the dataset is a regular file (one `stat` each, no
    /// decoding), so a missing image is found before training starts, not after an epoch.
    pub fn check_files(&self) -> Result<()> {
        let ImageStore::Files { root, paths, .. } = &self.store else { return Ok(()) };
        let mut missing = Vec::new();
        let mut count = 0;
        for &i in &self.items {
            let path = root.join(&paths[i]);
            if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                count += 1;
                if missing.len() < 5 {
                    missing.push(path.display().to_string());
                }
            }
        }
        if count > 0 {
            return Err(DataError::NotFound {
                what: format!(
                    "{count} of the {} images of {} ({}{})",
                    self.items.len(),
                    self.name,
                    missing.join(", "),
                    if count > missing.len() { ", ..." } else { "" }
                ),
                hint: "check the image root and the list files (`longtail data inspect --check-images` decodes every image)".into(),
            });
        }
        Ok(())
    }

    /// Decodes every image, returning the first that fails.
    pub fn check_images(&self) -> Result<()> {
        use rayon::prelude::*;
        (0..self.len()).into_par_iter().try_for_each(|i| self.image(i).map(|_| ()))
    }
}

/// The splits of one dataset as the readers return them.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
    /// A validation split, where the dataset defines one (ImageNet-LT, Places-LT).
    pub val: Option<Dataset>,
}
