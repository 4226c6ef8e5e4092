//! Dataset configuration: which reader, which long-tailed subset, which hierarchy, which
//! transforms. A config names everything a run needs to rebuild exactly the same data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::Splits;
use crate::error::{DataError, Result};
use crate::hierarchy::Hierarchy;
use crate::longtail::{LongTailSpec, Profile, Selection, build_long_tail};
use crate::readers::{cifar, folder, idx, inat, list};
use crate::transform::{Pipeline, Recipe};

/// Hierarchies shipped with the toolkit, usable as `hierarchy = "builtin:<name>"`.
pub const BUILTIN_HIERARCHIES: [(&str, &str); 1] = [("fashion-mnist", include_str!("../../../datasets/fashion_mnist_groups.toml"))];

/// Where the images come from and in which format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceSpec {
    /// CIFAR-10 binary version.
    Cifar10 { root: PathBuf },
    /// CIFAR-100 binary version (with its 20 superclasses).
    Cifar100 { root: PathBuf },
    /// Fashion-MNIST IDX files; Debian's `/usr/share/datasets/fashion-mnist` when `root` is absent.
    FashionMnist {
        #[serde(default)]
        root: Option<PathBuf>,
    },
    /// Any MNIST-layout IDX dataset.
    Idx { root: PathBuf, classes: Vec<String> },
    /// `path label` list files (ImageNet-LT, Places-LT, iNaturalist lists).
    List {
        image_root: PathBuf,
        train: PathBuf,
        test: PathBuf,
        #[serde(default)]
        val: Option<PathBuf>,
        #[serde(default)]
        class_names: Option<PathBuf>,
        #[serde(default)]
        num_classes: Option<usize>,
        #[serde(default)]
        grayscale: bool,
        /// Accept listed paths outside `image_root` (absolute, or through `..`); refused by default.
        #[serde(default, skip_serializing_if = "is_false")]
        allow_outside_root: bool,
    },
    /// iNaturalist 2018 COCO-style JSON annotations.
    Inat2018 {
        image_root: PathBuf,
        train_json: PathBuf,
        val_json: PathBuf,
        /// Accept `file_name`s outside `image_root` (absolute, or through `..`); refused by default.
        #[serde(default, skip_serializing_if = "is_false")]
        allow_outside_root: bool,
    },
    /// `root/<class>/<image>` folders.
    Folder {
        train: PathBuf,
        test: PathBuf,
        #[serde(default)]
        grayscale: bool,
    },
}

/// Everything that defines a run's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub source: SourceSpec,
    /// The long-tailed training subset (`profile = { kind = "natural" }` for data that is
    /// long-tailed already).
    pub long_tail: LongTailSpec,
    /// A fine -> coarse hierarchy file, or `builtin:fashion-mnist`. CIFAR-100 brings its own.
    #[serde(default)]
    pub hierarchy: Option<String>,
    /// The augmentation recipe.
    pub recipe: Recipe,
    /// Explicit pipelines replacing the recipe's.
    #[serde(default)]
    pub train_transform: Option<Pipeline>,
    #[serde(default)]
    pub test_transform: Option<Pipeline>,
}

impl DataConfig {
    /// Fashion-MNIST-LT with the exponential profile: the toolkit's default real dataset.
    pub fn fashion_mnist_lt(imbalance_factor: f64) -> Self {
        Self {
            source: SourceSpec::FashionMnist { root: None },
            long_tail: LongTailSpec::exp(imbalance_factor),
            hierarchy: None,
            recipe: Recipe::FashionMnist,
            train_transform: None,
            test_transform: None,
        }
    }

    /// CIFAR-10/100-LT as the LDAM-DRW code builds it (exponential profile, seed-0 NumPy shuffle).
    pub fn cifar_lt(hundred: bool, root: PathBuf, imbalance_factor: f64) -> Self {
        let source = if hundred { SourceSpec::Cifar100 { root } } else { SourceSpec::Cifar10 { root } };
        Self {
            source,
            long_tail: LongTailSpec { profile: Profile::Exp, imbalance_factor, max_per_class: None, selection: Selection::NumpyShuffle { seed: 0 } },
            hierarchy: None,
            recipe: Recipe::Cifar,
            train_transform: None,
            test_transform: None,
        }
    }

    /// Reads the splits and builds the long-tailed training set.
    pub fn load(&self) -> Result<Splits> {
        let mut splits = read_source(&self.source)?;
        splits.train = build_long_tail(&splits.train, &self.long_tail)?;
        if let Some(spec) = &self.hierarchy {
            let hierarchy = load_hierarchy(spec, &splits.train.class_names)?;
            splits.train = splits.train.with_hierarchy(hierarchy.clone())?;
            splits.test = splits.test.with_hierarchy(hierarchy.clone())?;
            if let Some(val) = splits.val.take() {
                splits.val = Some(val.with_hierarchy(hierarchy)?);
            }
        }
        Ok(splits)
    }

    /// The training pipeline for a model with `channels` input channels.
    pub fn train_pipeline(&self, channels: usize) -> Pipeline {
        self.train_transform.clone().unwrap_or_else(|| self.recipe.train(channels))
    }

    /// The evaluation pipeline for a model with `channels` input channels.
    pub fn test_pipeline(&self, channels: usize) -> Pipeline {
        self.test_transform.clone().unwrap_or_else(|| self.recipe.test(channels))
    }
}

/// Reads the raw (not yet long-tailed) splits of a source.
pub fn read_source(source: &SourceSpec) -> Result<Splits> {
    match source {
        SourceSpec::Cifar10 { root } => cifar::read_cifar10(root),
        SourceSpec::Cifar100 { root } => cifar::read_cifar100(root),
        SourceSpec::FashionMnist { root } => idx::read_fashion_mnist(root.as_deref()),
        SourceSpec::Idx { root, classes } => idx::read_idx_dataset(root, "idx", classes),
        SourceSpec::List { image_root, train, test, val, class_names, num_classes, grayscale, allow_outside_root } => list::read_list_splits(&list::ListSpec {
            name: "list".into(),
            image_root: image_root.clone(),
            train: train.clone(),
            test: test.clone(),
            val: val.clone(),
            class_names: class_names.clone(),
            num_classes: *num_classes,
            grayscale: *grayscale,
            allow_outside_root: *allow_outside_root,
        }),
        SourceSpec::Inat2018 { image_root, train_json, val_json, allow_outside_root } => inat::read_inat(train_json, val_json, image_root, *allow_outside_root),
        SourceSpec::Folder { train, test, grayscale } => {
            let train = folder::read_folder(train, "folder", None, *grayscale)?;
            let test = folder::read_folder(test, "folder", Some(&train.class_names), *grayscale)?;
            Ok(Splits { train, test, val: None })
        }
    }
}

/// Loads `builtin:<name>` or a hierarchy file.
pub fn load_hierarchy(spec: &str, fine_names: &[String]) -> Result<Hierarchy> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        let (_, text) = BUILTIN_HIERARCHIES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| DataError::invalid("hierarchy", format!("no built-in hierarchy `{name}` (available: fashion-mnist)")))?;
        let dir = std::env::temp_dir().join(format!("longtail-builtin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).map_err(|e| DataError::io(&path, e))?;
        let result = Hierarchy::load(&path, fine_names);
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    }
    Hierarchy::load(Path::new(spec), fine_names)
}

fn is_false(b: &bool) -> bool {
    !*b
}
