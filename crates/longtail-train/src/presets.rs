//! Dataset presets: the data, backbone and training recipe each benchmark uses.
//!
//! | preset | backbone | epochs | batch | lr | decay | DRW | stage II |
//! |---|---|---|---|---|---|---|---|
//! | Fashion-MNIST-LT (CPU protocol) | ResNet-32, 1-channel stem | 15 | 128 | 0.1, 1-epoch warm-up | x0.01 at 12, x0.0001 at 14 | 12 | 5 epochs |
//! | CIFAR-10/100-LT | ResNet-32 | 200 | 128 | 0.1, 5-epoch warm-up | x0.01 at 160, x0.0001 at 180 | 160 | 10 epochs |
//! | ImageNet-LT | ResNet-50 | 90 | 256 | 0.1 | cosine | 72 | 10 epochs |
//! | iNaturalist 2018 | ResNet-50 | 180 | 256 | 0.1 | cosine | 144 | 30 epochs |
//! | Places-LT | ResNet-152 (from torchvision's ImageNet weights: `methods::RESNET152_IMAGENET`) | 30 | 256 | 0.1 | cosine | 24 | 10 epochs |
//!
//! The thesis's methods (KPS, FBL, GCL) use the thesis's own tables instead on the papers'
//! benchmarks ([`Dataset::thesis_recipe`]: CIFAR batch 64, x0.1 at 160 and again at 180).

use std::path::PathBuf;

use longtail_data::longtail::{LongTailSpec, Profile, Selection};
use longtail_data::{DataConfig, Recipe, SourceSpec};
use longtail_models::Arch;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::schedule::{Decay, LrConfig};

/// A benchmark and its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    FashionMnistLt,
    Cifar10Lt,
    Cifar100Lt,
    ImagenetLt,
    Inat2018,
    PlacesLt,
}

impl Dataset {
    pub const ALL: [Dataset; 6] = [Dataset::FashionMnistLt, Dataset::Cifar10Lt, Dataset::Cifar100Lt, Dataset::ImagenetLt, Dataset::Inat2018, Dataset::PlacesLt];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::FashionMnistLt => "fashion-mnist-lt",
            Dataset::Cifar10Lt => "cifar10-lt",
            Dataset::Cifar100Lt => "cifar100-lt",
            Dataset::ImagenetLt => "imagenet-lt",
            Dataset::Inat2018 => "inat2018",
            Dataset::PlacesLt => "places-lt",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        let n = name.replace('_', "-").to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|d| d.name() == n || d.name().trim_end_matches("-lt") == n)
            .ok_or_else(|| TrainError::config("dataset", format!("unknown dataset `{name}`; known: {}", Self::ALL.map(|d| d.name()).join(", "))))
    }

    /// CIFAR-10/100-LT, where the authors' CIFAR scripts set several defaults.
    pub fn is_cifar(self) -> bool {
        matches!(self, Dataset::Cifar10Lt | Dataset::Cifar100Lt)
    }

    /// CIFAR and Fashion-MNIST are made long-tailed; the others are long-tailed already.
    pub fn is_small(self) -> bool {
        matches!(self, Dataset::FashionMnistLt | Dataset::Cifar10Lt | Dataset::Cifar100Lt)
    }

    pub fn num_classes(self) -> usize {
        match self {
            Dataset::FashionMnistLt | Dataset::Cifar10Lt => 10,
            Dataset::Cifar100Lt => 100,
            Dataset::ImagenetLt => 1000,
            Dataset::Inat2018 => 8142,
            Dataset::PlacesLt => 365,
        }
    }

    pub fn default_imbalance(self) -> f64 {
        match self {
            Dataset::FashionMnistLt | Dataset::Cifar10Lt | Dataset::Cifar100Lt => 100.0,
            _ => 1.0,
        }
    }

    pub fn in_channels(self) -> usize {
        if self == Dataset::FashionMnistLt { 1 } else { 3 }
    }

    pub fn arch(self) -> Arch {
        match self {
            Dataset::FashionMnistLt | Dataset::Cifar10Lt | Dataset::Cifar100Lt => Arch::Resnet32,
            Dataset::ImagenetLt | Dataset::Inat2018 => Arch::Resnet50,
            Dataset::PlacesLt => Arch::Resnet152,
        }
    }

    /// The data section (`imbalance_factor` applies to the small datasets).
    pub fn data(self, imbalance_factor: f64) -> DataConfig {
        let natural = LongTailSpec { profile: Profile::Natural, imbalance_factor: 1.0, max_per_class: None, selection: Selection::First };
        let list = |dir: &str, prefix: &str, val: bool| SourceSpec::List {
            image_root: PathBuf::from(format!("data/{dir}")),
            train: PathBuf::from(format!("data/{dir}/{prefix}_train.txt")),
            test: PathBuf::from(format!("data/{dir}/{prefix}_test.txt")),
            val: val.then(|| PathBuf::from(format!("data/{dir}/{prefix}_val.txt"))),
            class_names: None,
            num_classes: Some(self.num_classes()),
            grayscale: false,
            allow_outside_root: false,
        };
        match self {
            Dataset::FashionMnistLt => DataConfig { hierarchy: Some("builtin:fashion-mnist".into()), ..DataConfig::fashion_mnist_lt(imbalance_factor) },
            Dataset::Cifar10Lt => DataConfig::cifar_lt(false, PathBuf::from("data/cifar10"), imbalance_factor),
            Dataset::Cifar100Lt => DataConfig::cifar_lt(true, PathBuf::from("data/cifar100"), imbalance_factor),
            Dataset::ImagenetLt => DataConfig {
                source: list("imagenet", "ImageNet_LT", true),
                long_tail: natural,
                hierarchy: None,
                recipe: Recipe::Imagenet,
                train_transform: None,
                test_transform: None,
            },
            Dataset::Inat2018 => DataConfig {
                source: SourceSpec::Inat2018 {
                    image_root: PathBuf::from("data/inat2018"),
                    train_json: PathBuf::from("data/inat2018/train2018.json"),
                    val_json: PathBuf::from("data/inat2018/val2018.json"),
                    allow_outside_root: false,
                },
                long_tail: natural,
                hierarchy: None,
                recipe: Recipe::Imagenet,
                train_transform: None,
                test_transform: None,
            },
            Dataset::PlacesLt => DataConfig {
                source: list("places365", "Places_LT", true),
                long_tail: natural,
                hierarchy: None,
                recipe: Recipe::Imagenet,
                train_transform: None,
                test_transform: None,
            },
        }
    }

    /// The stage-I recipe.
    pub fn recipe(self) -> TrainRecipe {
        let steps = |at: Vec<usize>, factors: Vec<f64>| Decay::Steps { at, factors };
        match self {
            Dataset::FashionMnistLt => TrainRecipe {
                epochs: 15,
                batch_size: 128,
                lr: LrConfig { base: 0.1, warmup_epochs: 1, warmup_per_step: true, warmup_start: 0.0, decay: steps(vec![12, 14], vec![0.01, 0.0001]) },
                weight_decay: 2e-4,
                drw_epoch: 12,
                stage2_epochs: 5,
            },
            Dataset::Cifar10Lt | Dataset::Cifar100Lt => {
                TrainRecipe { epochs: 200, batch_size: 128, lr: LrConfig::cifar(0.1), weight_decay: 2e-4, drw_epoch: 160, stage2_epochs: 10 }
            }
            Dataset::ImagenetLt => {
                TrainRecipe { epochs: 90, batch_size: 256, lr: LrConfig::cosine(0.1, 0.0), weight_decay: 5e-4, drw_epoch: 72, stage2_epochs: 10 }
            }
            Dataset::Inat2018 => {
                TrainRecipe { epochs: 180, batch_size: 256, lr: LrConfig::cosine(0.1, 0.0), weight_decay: 1e-4, drw_epoch: 144, stage2_epochs: 30 }
            }
            Dataset::PlacesLt => {
                TrainRecipe { epochs: 30, batch_size: 256, lr: LrConfig::cosine(0.1, 0.0), weight_decay: 5e-4, drw_epoch: 24, stage2_epochs: 10 }
            }
        }
    }

    /// The training recipe of one of the thesis's own tables ([`ThesisTable`]; spec
    /// `002_thesis.md`), or `None` where the thesis
    /// gives none (Fashion-MNIST-LT keeps the toolkit's shared CPU protocol so its rows compare).
    ///
    /// "Decay ratio 0.01 at {160, 180}" is read as x0.1 at 160 and x0.1 again at 180 (0.01
    /// overall), as the authors' code does (the spec's best reading); large-scale decays are x0.1
    /// at each milestone. CIFAR batch 64 follows the text and the authors' README (GCL's Table 5.1
    /// prints 128; its code uses 64). Places-LT starts from an ImageNet-pretrained ResNet-152 in
    /// the thesis, as the configs do (`methods::RESNET152_IMAGENET`), training only its last stage and
    /// the head in stage I as the authors' code.
    pub fn thesis_recipe(self, table: ThesisTable) -> Option<TrainRecipe> {
        let steps = |base: f64, warmup_epochs: usize, at: [usize; 2]| LrConfig {
            base,
            warmup_epochs,
            warmup_per_step: false,
            warmup_start: 0.0,
            decay: Decay::Steps { at: at.to_vec(), factors: vec![0.1, 0.01] },
        };
        let recipe = |epochs: usize, batch_size: usize, lr: LrConfig, weight_decay: f64, stage2_epochs: usize| TrainRecipe {
            epochs,
            batch_size,
            lr,
            weight_decay,
            drw_epoch: epochs * 4 / 5,
            stage2_epochs,
        };
        let cifar = || recipe(200, 64, steps(0.1, 5, [160, 180]), 2e-4, 10);
        use ThesisTable::{Fbl, Gcl, Kps};
        match (table, self) {
            (_, Dataset::Cifar10Lt | Dataset::Cifar100Lt) => Some(cifar()),
            (Kps, Dataset::ImagenetLt) => Some(recipe(180, 128, steps(0.1, 0, [120, 160]), 1e-4, 10)),
            (Kps, Dataset::Inat2018) => Some(recipe(180, 512, steps(0.2, 0, [120, 160]), 1e-4, 30)),
            (Fbl, Dataset::ImagenetLt) => Some(recipe(200, 512, steps(0.2, 0, [160, 180]), 2e-4, 10)),
            (Fbl, Dataset::Inat2018) => Some(recipe(180, 512, steps(0.2, 0, [120, 160]), 1e-4, 30)),
            (Fbl, Dataset::PlacesLt) => Some(recipe(90, 512, steps(0.2, 0, [60, 80]), 5e-4, 30)),
            (Gcl, Dataset::ImagenetLt) => Some(recipe(200, 256, steps(0.1, 0, [160, 180]), 2e-4, 10)),
            (Gcl, Dataset::Inat2018) => Some(recipe(180, 256, steps(0.1, 0, [120, 160]), 1e-4, 30)),
            (Gcl, Dataset::PlacesLt) => Some(recipe(90, 512, steps(0.2, 0, [60, 80]), 5e-4, 30)),
            _ => None,
        }
    }

    /// The config folder name (`configs/<dir>/<method>.toml`).
    pub fn config_dir(self, imbalance_factor: f64) -> String {
        let base = self.name().replace('-', "_");
        if self.is_small() && imbalance_factor != 100.0 { format!("{base}_if{imbalance_factor}") } else { base }
    }
}

/// The thesis's training tables: KPS's Table 3.1, FBL's Table 4.1, GCL's Table 5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThesisTable {
    Kps,
    Fbl,
    Gcl,
}

/// A benchmark's stage-I training recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRecipe {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: LrConfig,
    pub weight_decay: f64,
    /// First epoch of deferred re-weighting (80% of the schedule).
    pub drw_epoch: usize,
    pub stage2_epochs: usize,
}

impl TrainRecipe {
    /// An epoch count scaled from the papers' 200-epoch CIFAR schedule.
    pub fn scaled(&self, epoch_of_200: usize) -> usize {
        ((epoch_of_200 as f64 * self.epochs as f64 / 200.0).round() as usize).min(self.epochs)
    }
}
