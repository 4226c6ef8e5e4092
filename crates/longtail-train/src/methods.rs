//! The method registry: every runnable method, defined once ([`METHODS`]) with its paper, its
//! stages and the builder of its default config on each benchmark (`longtail methods`,
//! `longtail config`, `configs/<dataset>/<method>.toml`, the `cargo run --bin <method>` binaries).
//!
//! Adding a method is adding one [`Method`] to [`METHODS`] (docs/architecture.md, "Adding a
//! method"); `cargo xtask configs` then writes its configs and binary entry from this table.

use std::path::PathBuf;

use longtail_data::longtail::Selection;
use longtail_data::{DataConfig, SamplerSpec};
use longtail_losses::{BranchSchedule, ClassWeighting, FocalForm, LevelSplit, LossSpec, SmoothingShape};
use longtail_models::heads::CausalNormConfig;
use longtail_models::{Arch, ExpertsConfig, HeadConfig, ModelConfig, RouterConfig};

use crate::config::{
    CmoConfig, CumulativeConfig, Deferred, EvalConfig, ExperimentConfig, FusionSources, H2tConfig, HeadChange, LoaderConfig, MixupConfig, OptimizerConfig,
    RemixConfig, RunSource, StageConfig, Trainable,
};
use crate::error::{Result, TrainError};
use crate::presets::{Dataset, ThesisTable, TrainRecipe};
use crate::schedule::{Decay, LrConfig};

/// A registered method: what `longtail methods` lists and how its default configs are built.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub name: &'static str,
    pub title: &'static str,
    pub paper: &'static str,
    pub stages: &'static str,
    /// The method's stages on a benchmark; it may also set the model, the data, the recipe and
    /// the runs it starts from on the [`Build`].
    pub build: fn(&mut Build) -> Result<Vec<StageConfig>>,
}

/// The former name of [`Method`].
pub type MethodInfo = Method;

/// What a method's builder starts from and may change: the benchmark's preset.
#[derive(Debug, Clone)]
pub struct Build {
    pub dataset: Dataset,
    pub imbalance_factor: f64,
    /// The stage-I recipe (the preset's unless the method takes the thesis's tables).
    pub recipe: TrainRecipe,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub init_from: Option<RunSource>,
    pub fusion: Option<FusionSources>,
    /// Where a pretrained start trains only some parts in stage I (the thesis's Places-LT code
    /// freezes all but the last residual stage).
    pub pretrained_parts: Option<Vec<String>>,
}

impl Build {
    fn new(dataset: Dataset, imbalance_factor: f64) -> Self {
        let imbalance = if dataset.is_small() { imbalance_factor } else { 1.0 };
        Self {
            dataset,
            imbalance_factor,
            recipe: dataset.recipe(),
            model: ModelConfig::new(dataset.arch(), dataset.in_channels(), dataset.num_classes(), HeadConfig::Linear),
            data: dataset.data(imbalance),
            init_from: None,
            fusion: None,
            pretrained_parts: None,
        }
    }

    fn small(&self) -> bool {
        self.dataset.is_small()
    }

    /// Train with one of the thesis's tables where it gives one for this benchmark.
    fn thesis(&mut self, table: ThesisTable) {
        if let Some(r) = self.dataset.thesis_recipe(table) {
            self.recipe = r;
            if self.dataset == Dataset::PlacesLt {
                self.pretrained_parts = Some(vec!["backbone.layer4".into(), "head".into()]);
            }
        }
    }

    /// The shipped config of another method on this benchmark, as a stage-I source.
    fn source(&self, method: &str) -> RunSource {
        RunSource::Config { config: config_path(self.dataset, self.imbalance_factor, method) }
    }

    /// Stage-II learning rates: the papers' code scales the stage-I rate (CIFAR 0.2x, large-scale 0.05x).
    fn stage2_lr(&self) -> f64 {
        if self.small() { 0.2 * self.recipe.lr.base } else { 0.05 * self.recipe.lr.base }
    }

    /// Mixup's alpha: 1 on the small benchmarks, 0.2 on the large ones (the papers' code).
    fn mixup(&self) -> Option<MixupConfig> {
        Some(MixupConfig { alpha: if self.small() { 1.0 } else { 0.2 }, remix: None })
    }

    /// Deferred re-weighting from 80% of the schedule with effective-number weights (LDAM-DRW).
    fn drw(&self) -> Option<Deferred> {
        Some(Deferred { from_epoch: self.recipe.drw_epoch, weighting: ClassWeighting::EFFECTIVE_NUMBER })
    }

    /// A stage I trained from scratch on the recipe, instance-sampled.
    fn stage1(&self, name: &str, loss: LossSpec) -> StageConfig {
        let r = &self.recipe;
        StageConfig {
            name: name.into(),
            epochs: r.epochs,
            batch_size: r.batch_size,
            sampler: SamplerSpec::Instance,
            loss,
            lr: r.lr.clone(),
            optimizer: sgd(r.weight_decay),
            drw: None,
            deferred_sampler: None,
            mixup: None,
            train: Trainable::All,
            head: HeadChange::Keep,
            h2t: None,
            cmo: None,
            cumulative: None,
        }
    }

    /// A stage I with mixup.
    fn stage1_mixup(&self, name: &str, loss: LossSpec) -> StageConfig {
        StageConfig { mixup: self.mixup(), ..self.stage1(name, loss) }
    }

    /// A stage II with a per-epoch cosine rate from `lr` to 0.
    fn stage2(&self, name: &str, loss: LossSpec, part: Stage2) -> StageConfig {
        StageConfig {
            sampler: part.sampler,
            lr: LrConfig::cosine(part.lr, 0.0),
            optimizer: sgd(part.weight_decay),
            train: part.train,
            head: part.head,
            epochs: self.recipe.stage2_epochs,
            ..self.stage1(name, loss)
        }
    }

    /// KPS's largest margin: the authors' CIFAR script passes 0.2 (the thesis text says 0.5); no
    /// public code covers the large-scale datasets, so those keep the thesis's 0.35 / 0.3.
    fn kps_margin(&self) -> f64 {
        match self.dataset {
            Dataset::FashionMnistLt | Dataset::Cifar10Lt | Dataset::Cifar100Lt => 0.2,
            Dataset::Inat2018 => 0.3,
            _ => 0.35,
        }
    }

    /// KPS with gradient adjustment from 60% of the schedule (the code's epoch 120 of 200).
    fn kps(&self, max_margin: f64) -> LossSpec {
        LossSpec::kps(max_margin, Some(self.recipe.scaled(120)))
    }

    /// The H2T code's one multi-expert stage II (`cifar10_imb001_stage2_ResLT_H2T.yaml`):
    /// class-balanced batches fused at p = 0.4 with instance-sampled ones, the classifier only
    /// with batch norms frozen (`shift_bn: False`), wd 5e-4, 10 epochs, batch 512, lr 0.05 cosine;
    /// Fashion-MNIST-LT keeps the protocol's stage II.
    fn multi_expert_h2t(&self, name: &str, loss: LossSpec) -> StageConfig {
        let small = self.dataset == Dataset::FashionMnistLt;
        let part = Stage2 {
            sampler: SamplerSpec::ClassBalanced,
            lr: if small { self.stage2_lr() } else { 0.05 },
            weight_decay: 5e-4,
            train: Trainable::Classifier,
            head: HeadChange::Keep,
        };
        let mut s = self.stage2(name, loss, part);
        s.h2t = Some(H2tConfig { ratio: 0.4, fusing_sampler: SamplerSpec::Instance });
        if !small {
            (s.epochs, s.batch_size) = (10, 512);
        }
        s
    }

    /// FFN's stage-I script draws its CIFAR-LT subset with `rand_number` 666 (its stage II with 0).
    fn ffn_stage1_data(&mut self) {
        if self.dataset.is_cifar() {
            self.data.long_tail.selection = Selection::NumpyShuffle { seed: 666 };
        }
    }
}

/// What a stage II sets.
struct Stage2 {
    sampler: SamplerSpec,
    lr: f64,
    weight_decay: f64,
    train: Trainable,
    head: HeadChange,
}

fn sgd(weight_decay: f64) -> OptimizerConfig {
    OptimizerConfig { momentum: 0.9, weight_decay, nesterov: false }
}

const THESIS: &str = "Li, Advances in Long-Tailed Visual Recognition (PhD thesis, 2022)";
const H2T: &str = "Li et al., Feature Fusion from Head to Tail (AAAI 2024)";
const KANG: &str = "Kang et al., Decoupling Representation and Classifier (ICLR 2020)";
const CUI: &str = "Cui et al., Class-Balanced Loss (CVPR 2019)";
const CAO: &str = "Cao et al., LDAM-DRW (NeurIPS 2019)";
const MENON: &str = "Menon et al., Logit Adjustment (ICLR 2021)";
const FFN: &str = "Zhou et al., Feature fusion network (Pattern Recognition 2023)";
const MGKT: &str = "Zhao & Zhao, MGKT-MFF (Pattern Recognition)";
const CMO: &str = "Park et al., CMO (CVPR 2022)";

/// LADE (Hong et al. 2021) with the authors' README commands: CIFAR-100-LT `--alpha 0.1
/// --remine_lambda 0.01` on lr 0.2, batch 256, wd 5e-4, x0.01 at 120 and 160 of 200 with a
/// 5-epoch warm-up; ImageNet-LT and iNaturalist `--alpha 0.05`, lambda 0.5; Places-LT
/// `--alpha 0.005`, lambda 0.1. Fashion-MNIST keeps the CPU protocol's schedule.
fn lade(b: &mut Build) -> Vec<StageConfig> {
    let (alpha, lambda) = match b.dataset {
        Dataset::ImagenetLt | Dataset::Inat2018 => (0.05, 0.5),
        Dataset::PlacesLt => (0.005, 0.1),
        _ => (0.1, 0.01),
    };
    if b.dataset.is_cifar() {
        tde_codebase_cifar_recipe(&mut b.recipe);
    }
    vec![b.stage1("lade", LossSpec::Lade { alpha, lambda })]
}

/// The CIFAR-LT schedule of Tang et al.'s codebase (`config/CIFAR*_LT/causal_norm_32.yaml`),
/// which LADE's code keeps: batch 256, lr 0.2 with a 5-epoch linear warm-up, x0.01 at 120 and
/// x0.0001 at 160 of 200, weight decay 5e-4.
fn tde_codebase_cifar_recipe(r: &mut TrainRecipe) {
    (r.batch_size, r.weight_decay) = (256, 5e-4);
    r.lr = LrConfig {
        base: 0.2,
        warmup_epochs: 5,
        warmup_per_step: false,
        warmup_start: 0.0,
        decay: Decay::Steps { at: vec![120, 160], factors: vec![0.01, 0.0001] },
    };
}

/// De-confound-TDE (Tang et al. 2020): CE on the causal normalised classifier, TDE at test time.
/// alpha from the authors' yaml files (CIFAR-10-LT 1.0, CIFAR-100-LT 1.5, ImageNet-LT and
/// Places-LT 3.0; Fashion-MNIST-LT takes CIFAR-10-LT's, iNaturalist ImageNet-LT's). The moving
/// average's momentum follows the learning rate outside CIFAR, as `run_networks.py` does.
fn tde(b: &mut Build) -> Vec<StageConfig> {
    let alpha = match b.dataset {
        Dataset::Cifar10Lt | Dataset::FashionMnistLt => 1.0,
        Dataset::Cifar100Lt => 1.5,
        _ => 3.0,
    };
    b.model.head = HeadConfig::CausalNorm(CausalNormConfig { momentum_follows_lr: !b.small(), ..CausalNormConfig::with_alpha(alpha) });
    if b.dataset.is_cifar() {
        tde_codebase_cifar_recipe(&mut b.recipe);
    }
    if matches!(b.dataset, Dataset::ImagenetLt | Dataset::PlacesLt) {
        // config/{ImageNet_LT,Places_LT}/causal_norm.yaml: ResNeXt-50 from scratch, batch 512,
        // lr 0.2, cosine to 0 over 90 epochs, weight decay 5e-4
        b.model.arch = Arch::Resnext50_32x4d;
        (b.recipe.epochs, b.recipe.batch_size, b.recipe.lr, b.recipe.weight_decay) = (90, 512, LrConfig::cosine(0.2, 0.0), 5e-4);
    }
    vec![b.stage1("tde", LossSpec::Ce)]
}

/// DisAlign (Zhang et al. 2021) stage II on the CE run, as the authors' ImageNet-LT config
/// (`resx50...90e.disalign.10e`): the adaptive calibration on the frozen classifier, generalised
/// re-weighting with `p` = 1.2, instance sampling, cosine from stage I's rate over 10 epochs (the
/// small benchmarks keep their stage-II length), weight decay 5e-4. Batch norms keep updating
/// their statistics: the code freezes the parameters but trains in `model.train()` mode.
fn disalign(b: &mut Build) -> Vec<StageConfig> {
    b.init_from = Some(b.source("ce"));
    let part =
        Stage2 { sampler: SamplerSpec::Instance, lr: b.recipe.lr.base, weight_decay: 5e-4, train: Trainable::ClassifierShiftBn, head: HeadChange::DisAlign };
    let mut s = b.stage2("disalign", LossSpec::WeightedCe { weighting: ClassWeighting::Generalized { p: 1.2 } }, part);
    if !b.small() {
        s.epochs = 10;
    }
    vec![s]
}

/// Remix (Chou et al. 2020) on mixup's stage I, kappa 3, tau 0.5 (the paper's values), alpha 1.
fn remix(b: &mut Build) -> Vec<StageConfig> {
    let mut s = b.stage1_mixup("remix", LossSpec::Ce);
    s.mixup = Some(MixupConfig { alpha: 1.0, remix: Some(RemixConfig::default()) });
    vec![s]
}

/// CMO (Park et al. 2022) with the code's defaults (prob 0.5, beta 1, window 3 / 3, weighted
/// sampler alpha 1) on a stage I with `loss`.
fn cmo(b: &mut Build, name: &str, loss: LossSpec) -> Vec<StageConfig> {
    vec![StageConfig { cmo: Some(CmoConfig::default()), ..b.stage1(name, loss) }]
}

/// BBN (Zhou et al., CVPR 2020) as Megvii-Nanjing/BBN trains it: the two-branch backbone
/// (last residual block duplicated), CE under cumulative learning with a reversed sampler, SGD
/// with Nesterov momentum. CIFAR (`configs/cifar10.yaml`): 200 epochs, batch 128, lr 0.1 with
/// `WarmupMultiStepLR` (5 epochs from 1/3), x0.01 at 1-based epoch 120 and again at 160 (0-based
/// 119 / 159), wd 2e-4. iNaturalist 2018 (`configs/iNaturalist2018.yaml`): ResNet-50, 180 epochs,
/// batch 128, lr 0.05, x0.1 at 120 and 160, wd 1e-4 (`div_epoch` 200). ImageNet-LT and Places-LT
/// have no config in the authors' code: the presets' recipes (docs/methods/bbn.md).
/// Fashion-MNIST-LT keeps the shared protocol (no Nesterov) so its row compares.
fn bbn(b: &mut Build) -> Vec<StageConfig> {
    b.model.two_branch = true;
    let steps = |at: [usize; 2], factors: [f64; 2]| Decay::Steps { at: at.to_vec(), factors: factors.to_vec() };
    match b.dataset {
        Dataset::Cifar10Lt | Dataset::Cifar100Lt => {
            (b.recipe.epochs, b.recipe.batch_size, b.recipe.weight_decay) = (200, 128, 2e-4);
            b.recipe.lr = LrConfig { base: 0.1, warmup_epochs: 5, warmup_per_step: false, warmup_start: 1.0 / 3.0, decay: steps([119, 159], [0.01, 0.0001]) };
        }
        Dataset::Inat2018 => {
            (b.recipe.epochs, b.recipe.batch_size, b.recipe.weight_decay) = (180, 128, 1e-4);
            b.recipe.lr = LrConfig { base: 0.05, warmup_epochs: 0, warmup_per_step: false, warmup_start: 0.0, decay: steps([119, 159], [0.1, 0.01]) };
        }
        _ => {}
    }
    let mut s = StageConfig { cumulative: Some(CumulativeConfig::default()), ..b.stage1("bbn", LossSpec::Ce) };
    s.optimizer.nesterov = b.dataset != Dataset::FashionMnistLt;
    vec![s]
}

/// RIDE (Wang et al., ICLR 2021) as frank-xwang/RIDE-LongTailRecognition trains it: three
/// experts at 3/4 width (`reduce_dimension`) with cosine classifiers (`use_norm`, s = 30), the
/// RIDE loss (LDAM margins, the diversity term, re-weighting and the per-class temperature from
/// the DRW epoch), SGD with Nesterov momentum. CIFAR (`config_imbalance_cifar100_ride.json`;
/// the code ships no CIFAR-10 config, so CIFAR-10-LT takes it too): 200 epochs, batch 128, lr 0.1,
/// 5 warm-up epochs, x0.01 at 160 and 180, wd 5e-4, diversity -0.45, re-weighting from 160,
/// crop + flip + `RandomRotation(15)`. ImageNet-LT (ResNeXt-50) and iNaturalist (ResNet-50):
/// 100 epochs, batch 256 / 512, lr 0.1 / 0.2, x0.1 at 60 and 80, wd 2e-4, diversity -0.2,
/// re-weighting from 80 with factor 0.02 / 0.015. Places-LT has no config in the code (the
/// preset's recipe). Fashion-MNIST-LT keeps the shared protocol (no Nesterov, no rotation).
fn ride(b: &mut Build) -> Vec<StageConfig> {
    b.model.head = HeadConfig::Cosine;
    b.model.experts = Some(ExpertsConfig::default());
    let large = |r: &mut TrainRecipe, batch_size: usize, base: f64| {
        (r.epochs, r.batch_size, r.weight_decay, r.drw_epoch) = (100, batch_size, 2e-4, 80);
        r.lr =
            LrConfig { base, warmup_epochs: 5, warmup_per_step: false, warmup_start: 0.0, decay: Decay::Steps { at: vec![60, 80], factors: vec![0.1, 0.01] } };
    };
    let (diversity, factor) = match b.dataset {
        Dataset::ImagenetLt => {
            b.model.arch = Arch::Resnext50_32x4d;
            large(&mut b.recipe, 256, 0.1);
            (-0.2, 0.02)
        }
        Dataset::Inat2018 => {
            large(&mut b.recipe, 512, 0.2);
            (-0.2, 0.015)
        }
        Dataset::PlacesLt => (-0.2, 0.05),
        Dataset::Cifar10Lt | Dataset::Cifar100Lt => {
            b.recipe.weight_decay = 5e-4;
            use longtail_data::transform::{CIFAR_MEAN, CIFAR_STD, Pipeline, TransformOp::*};
            let ops = vec![RandomCrop { size: 32, padding: 4 }, HorizontalFlip { p: 0.5 }, RandomRotation { degrees: 15.0 }];
            b.data.train_transform = Some(Pipeline::new(ops, &CIFAR_MEAN, &CIFAR_STD));
            (-0.45, 0.05)
        }
        Dataset::FashionMnistLt => (-0.45, 0.05),
    };
    let mut s = b.stage1("ride", LossSpec::ride(diversity, Some(b.recipe.drw_epoch), factor));
    s.optimizer.nesterov = b.dataset != Dataset::FashionMnistLt;
    vec![s]
}

/// RIDE-EA (Wang et al., ICLR 2021, §3.3) as the authors' `config_*_ride_ea.json` train it: on
/// the RIDE run, expert-assignment routers are added (hidden width 16, the top 30 mean logits on
/// CIFAR-100-LT, 50 on ImageNet-LT and iNaturalist, s = 30, one shared output layer) and train
/// alone with the router loss (`pos_weight` 100), every other parameter frozen with its batch
/// norms in inference mode: class-balanced batches (`BalancedSampler`) of 512, SGD 0.9 with
/// Nesterov momentum, lr 0.01 cosine to 0 over 5 epochs, wd 5e-4. The code ships no 10-class
/// config: CIFAR-10-LT and Fashion-MNIST-LT read the constructor's default top 5 (30 would
/// exceed the classes); Places-LT takes the large-scale configs' 50.
fn ride_ea(b: &mut Build) -> Vec<StageConfig> {
    ride(b);
    b.data.train_transform = None;
    b.init_from = Some(b.source("ride"));
    let top_k = match b.dataset {
        Dataset::Cifar100Lt => 30,
        Dataset::Cifar10Lt | Dataset::FashionMnistLt => 5,
        _ => 50,
    };
    let part = Stage2 {
        sampler: SamplerSpec::ClassBalanced,
        lr: 0.01,
        weight_decay: 5e-4,
        train: Trainable::Classifier,
        head: HeadChange::Router(RouterConfig::with_top_k(top_k)),
    };
    let mut s = b.stage2("ride-ea", LossSpec::RideRouter { pos_weight: 100.0 }, part);
    (s.epochs, s.batch_size, s.optimizer.nesterov) = (5, 512, true);
    vec![s]
}

/// RIDE + H2T (Li et al., AAAI 2024): a classifier-only stage II on the RIDE run, class-balanced
/// batches whose every expert's map is fused with its own channel subset of the same
/// instance-sampled image. The H2T code releases no RIDE config; this is its one multi-expert
/// stage II (the ResLT + H2T CIFAR-10 config): 10 epochs, batch 512, lr 0.05 cosine, wd 5e-4,
/// p = 0.4, batch norms frozen (`shift_bn: False`), with the RIDE loss of the H2T code's port
/// (diversity -0.2, no re-weighting). Fashion-MNIST-LT keeps the protocol's stage II.
fn ride_h2t(b: &mut Build) -> Vec<StageConfig> {
    ride(b);
    // the H2T code's stage II augments with crop + flip only
    b.data.train_transform = None;
    b.init_from = Some(b.source("ride"));
    vec![b.multi_expert_h2t("ride-h2t", LossSpec::ride(-0.2, None, 0.05))]
}

/// ResLT (Cui et al., TPAMI 2022) as jiequancui/ResLT trains CIFAR: one ResNet-32 whose three
/// branches are batch norms on its last map (`BNH`, `BNM`, `BNT`) read by one shared linear
/// classifier, the ResLT loss with the scripts' beta (CIFAR-100-LT IF 100 0.995, 50 0.99, 10 0.72;
/// CIFAR-10-LT 100 / 50 0.998, 10 0.96; IF 200 takes IF 100's, 20 IF 10's) and the branch split of
/// the code (CIFAR-100: M from class 35, T from 70; CIFAR-10: 2 and 4), 200 epochs, batch 128,
/// SGD 0.9 Nesterov, wd 5e-4, lr 0.1 warmed up over 5 epochs from 1/3, x0.1 at 160, x0.01 at 180.
/// The large benchmarks take the ImageNet code's model (`reslt_imagenet.py`): the branches are a
/// 1x1 convolution block on the last map split in three, the shared classifier is tau-normalised
/// without its bias at test (`gamma`), and the block's ReLU comes after pooling at test
/// (`after_1x1conv`). ImageNet-LT (`sh/X50.sh`): ResNeXt-50, 180 epochs, batch 256, SGD 0.9, lr
/// 0.1 warmed up over 5 epochs then the code's cosine (`cos((e - 5 + 1) / (180 - 5 + 1) pi)`),
/// wd 5e-4, beta 0.99, gamma 0.7, M the 825 rarest classes, T the 220 rarest. iNaturalist 2018
/// (`Inat/sh/R50.sh`): ResNet-50, 200 epochs, batch 256, lr 0.1 cosine, wd 1e-4, beta 0.85, gamma
/// 0.3, two branches (the script reads only H and M), M on the 6,600 rarest classes. Places-LT has no script: ImageNet-LT's model and
/// split with the preset's recipe and the code's default gamma 0.5. Fashion-MNIST-LT keeps the
/// shared protocol with CIFAR-10-LT IF 100's beta and split.
fn reslt(b: &mut Build) -> Vec<StageConfig> {
    b.model.experts = Some(ExpertsConfig::reslt());
    let c = b.dataset.num_classes();
    let rho = b.imbalance_factor;
    let (beta, medium_from, tail_from) = match b.dataset {
        Dataset::Cifar100Lt => (
            if rho >= 100.0 {
                0.995
            } else if rho >= 50.0 {
                0.99
            } else {
                0.72
            },
            35,
            Some(70),
        ),
        Dataset::Cifar10Lt | Dataset::FashionMnistLt => (if rho >= 50.0 { 0.998 } else { 0.96 }, 2, Some(4)),
        Dataset::Inat2018 => (0.85, c - 6600, None),
        _ => (0.99, c - (0.825 * c as f64).round() as usize, Some(c - (0.22 * c as f64).round() as usize)),
    };
    if !b.small() {
        // the iNaturalist script trains and tests two branches (H, M): the third is computed and
        // never read, and its channels of the 1x1 block touch no other's, so it is not built
        let count = if tail_from.is_some() { 3 } else { 2 };
        b.model.experts = Some(ExpertsConfig { count, ..ExpertsConfig::reslt_imagenet() });
        let gamma = match b.dataset {
            Dataset::ImagenetLt => 0.7,
            Dataset::Inat2018 => 0.3,
            _ => 0.5,
        };
        b.model.head = HeadConfig::TestTauNorm { tau: gamma };
        let cosine = |warmup_epochs: usize, offset: usize| LrConfig {
            base: 0.1,
            warmup_epochs,
            warmup_per_step: false,
            warmup_start: 0.0,
            decay: Decay::Cosine { min: 0.0, offset },
        };
        match b.dataset {
            Dataset::ImagenetLt => {
                b.model.arch = Arch::Resnext50_32x4d;
                (b.recipe.epochs, b.recipe.batch_size, b.recipe.weight_decay, b.recipe.lr) = (180, 256, 5e-4, cosine(5, 1));
            }
            Dataset::Inat2018 => {
                b.model.arch = Arch::Resnet50;
                (b.recipe.epochs, b.recipe.batch_size, b.recipe.weight_decay, b.recipe.lr) = (200, 256, 1e-4, cosine(0, 0));
            }
            _ => {}
        }
    }
    if b.dataset.is_cifar() {
        (b.recipe.epochs, b.recipe.batch_size, b.recipe.weight_decay) = (200, 128, 5e-4);
        b.recipe.lr = LrConfig {
            base: 0.1,
            warmup_epochs: 5,
            warmup_per_step: false,
            warmup_start: 1.0 / 3.0,
            decay: Decay::Steps { at: vec![160, 180], factors: vec![0.1, 0.01] },
        };
    }
    let mut s = b.stage1("reslt", LossSpec::ResLt { beta, medium_from, tail_from });
    s.optimizer.nesterov = b.dataset.is_cifar();
    vec![s]
}

/// ResLT + H2T (Li et al., AAAI 2024; `cifar10_imb001_stage2_ResLT_H2T.yaml` @ 204804e): a
/// stage II on the ResLT run with the backbone frozen (batch norms in inference mode,
/// `shift_bn: False`) and the branches' batch norms and the classifier trained, class-balanced
/// batches whose shared map is fused (before the branches) with an instance-sampled partner's,
/// the ResLT loss at beta 0.3, 10 epochs, batch 512, lr 0.05 cosine, wd 5e-4, p = 0.4.
/// Fashion-MNIST-LT keeps the protocol's stage II.
fn reslt_h2t(b: &mut Build) -> Vec<StageConfig> {
    let stage1 = reslt(b).remove(0);
    b.init_from = Some(b.source("reslt"));
    let loss = match stage1.loss {
        LossSpec::ResLt { medium_from, tail_from, .. } => LossSpec::ResLt { beta: 0.3, medium_from, tail_from },
        other => other,
    };
    vec![b.multi_expert_h2t("reslt-h2t", loss)]
}

/// Kang et al.'s decoupled stage II on the CE run: class-balanced, lr 0.5x stage I's, wd 5e-4.
fn decoupled(b: &mut Build, name: &str, head: HeadChange) -> Vec<StageConfig> {
    b.init_from = Some(b.source("ce"));
    let part = Stage2 { sampler: SamplerSpec::ClassBalanced, lr: 0.5 * b.recipe.lr.base, weight_decay: 5e-4, train: Trainable::Classifier, head };
    vec![b.stage2(name, LossSpec::Ce, part)]
}

/// A classifier change on the CE run without training (epochs 0).
fn post_hoc(b: &mut Build, name: &str, weight_decay: f64, head: HeadChange) -> Vec<StageConfig> {
    b.init_from = Some(b.source("ce"));
    let part = Stage2 { sampler: SamplerSpec::Instance, lr: b.stage2_lr(), weight_decay, train: Trainable::Classifier, head };
    vec![StageConfig { epochs: 0, ..b.stage2(name, LossSpec::Ce, part) }]
}

fn ldam(b: &mut Build, name: &str, drw: bool) -> Vec<StageConfig> {
    b.model.head = HeadConfig::Cosine;
    let s = b.stage1(name, LossSpec::ldam());
    vec![if drw { StageConfig { drw: b.drw(), ..s } } else { s }]
}

fn mgkt(b: &mut Build, name: &str, drw: bool) -> Result<Vec<StageConfig>> {
    let num_coarse = match b.dataset {
        Dataset::FashionMnistLt => 5,
        Dataset::Cifar100Lt => 20,
        other => {
            return Err(TrainError::config("method", format!("MGKT needs a class hierarchy; {} has none built in (give data.hierarchy a file)", other.name())));
        }
    };
    b.model.arch = Arch::CsmsResnet;
    b.model.head = HeadConfig::CoarseFine { num_coarse };
    let r = &b.recipe;
    let loss =
        LossSpec::MultiGranularity { coarse_epochs: r.scaled(40), fine_epochs: r.scaled(90), magnitude_scaling: false, drw_epoch: drw.then_some(r.drw_epoch) };
    Ok(vec![b.stage1(name, loss)])
}

fn mislas(b: &mut Build) -> Vec<StageConfig> {
    let (head, tail) = match b.dataset {
        Dataset::Cifar100Lt | Dataset::PlacesLt => (0.4, 0.1),
        _ => (0.3, 0.0),
    };
    let las = LossSpec::LabelAwareSmoothing { head, tail, shape: SmoothingShape::Concave };
    let part = Stage2 {
        sampler: SamplerSpec::ClassBalanced,
        lr: b.stage2_lr(),
        weight_decay: b.recipe.weight_decay,
        train: Trainable::ClassifierShiftBn,
        head: HeadChange::Keep,
    };
    vec![b.stage1_mixup("ce-mixup", LossSpec::Ce), b.stage2("las", las, part)]
}

fn gcl(b: &mut Build) -> Vec<StageConfig> {
    b.thesis(ThesisTable::Gcl);
    b.model.head = HeadConfig::Cosine;
    let lr = if b.small() { 0.2 * b.recipe.lr.base } else { 0.1 * b.recipe.lr.base };
    let part = Stage2 {
        sampler: SamplerSpec::Cben { a: 0.999, b: 0.0009 },
        lr,
        weight_decay: b.recipe.weight_decay,
        train: Trainable::Classifier,
        head: HeadChange::Keep,
    };
    vec![b.stage1_mixup("gcl", LossSpec::gcl()), b.stage2("cben-crt", LossSpec::gcl(), part)]
}

fn h2t(b: &mut Build) -> Vec<StageConfig> {
    // H2T's own stage I on CIFAR; elsewhere it is the mixup baseline's config
    b.init_from = Some(b.source(if b.dataset.is_cifar() { "h2t-mixup" } else { "mixup" }));
    // H2T's CIFAR-100-LT stage-II configs: wd 2e-4 at IF 50 and 200, 5e-4 at IF 100
    let weight_decay = if b.small() && b.imbalance_factor != 100.0 { 2e-4 } else { 5e-4 };
    let part = Stage2 { sampler: SamplerSpec::ClassBalanced, lr: b.stage2_lr(), weight_decay, train: Trainable::ClassifierShiftBn, head: HeadChange::Keep };
    let mut s = b.stage2("h2t", LossSpec::Ce, part);
    s.h2t = Some(H2tConfig { ratio: 0.3, fusing_sampler: SamplerSpec::Instance });
    // the paper's stage II is 10 epochs on every benchmark (Fashion-MNIST keeps the CPU protocol's)
    if b.dataset != Dataset::FashionMnistLt {
        s.epochs = 10;
    }
    vec![s]
}

fn h2t_mixup(b: &mut Build) -> Vec<StageConfig> {
    // H2T's stage I (train_stage1.py): x0.1 after epoch 160 and x0.01 after 180 on CIFAR,
    // not LDAM-DRW's x0.01 / x0.0001
    if b.dataset.is_cifar() {
        b.recipe.lr.decay = Decay::Steps { at: vec![160, 180], factors: vec![0.1, 0.01] };
    }
    vec![b.stage1_mixup("ce-mixup", LossSpec::Ce)]
}

fn ffn(b: &mut Build) -> Vec<StageConfig> {
    b.model.head = HeadConfig::Cosine;
    b.model.feature_fusion = Some(if b.dataset.num_classes() <= 10 { 0.5 } else { 0.9 });
    b.fusion = Some(FusionSources { first: b.source("ffn-kps"), second: b.source("ffn-ce") });
    let part =
        Stage2 { sampler: SamplerSpec::ClassBalanced, lr: 0.02 * b.recipe.lr.base, weight_decay: 1e-4, train: Trainable::Classifier, head: HeadChange::Keep };
    let mut s = b.stage2("fusion", LossSpec::ldam(), part);
    if b.small() {
        s.epochs = if b.dataset == Dataset::FashionMnistLt { b.recipe.stage2_epochs } else { 30 };
    }
    vec![s]
}

fn ffn_kps(b: &mut Build) -> Vec<StageConfig> {
    b.ffn_stage1_data();
    b.model.head = HeadConfig::Cosine;
    let margin = match b.dataset {
        Dataset::Cifar10Lt | Dataset::FashionMnistLt => 0.2,
        Dataset::Cifar100Lt => 0.5,
        _ => 0.35,
    };
    vec![b.stage1_mixup("ffn-kps", b.kps(margin))]
}

fn hrdc(b: &mut Build) -> Vec<StageConfig> {
    b.model.head = HeadConfig::Dual { reweight_weight: 0.75 };
    if b.dataset == Dataset::ImagenetLt {
        b.model.arch = Arch::Resnext50_32x4d;
    }
    let levels =
        if b.dataset.num_classes() <= 10 { LevelSplit::Rank { head: 3, medium: 4 } } else { LevelSplit::Thresholds { many_above: 100, few_below: 20 } };
    let gamma = if b.small() { 0.2 } else { 0.1 };
    vec![b.stage1("hrdc", LossSpec::Hrdc { gamma, levels, schedule: BranchSchedule::Quadratic, reweight_loss: None })]
}

/// Every runnable method, in `longtail methods` order.
pub const METHODS: &[Method] = &[
    Method { name: "ce", title: "Cross-entropy", paper: "baseline", stages: "1: CE", build: |b| Ok(vec![b.stage1("ce", LossSpec::Ce)]) },
    Method {
        name: "weighted-ce",
        title: "Inverse-frequency weighted CE",
        paper: "baseline",
        stages: "1: weighted CE",
        build: |b| Ok(vec![b.stage1("weighted-ce", LossSpec::WeightedCe { weighting: ClassWeighting::InverseFrequency })]),
    },
    Method {
        name: "cb-ce",
        title: "Class-balanced CE (effective number)",
        paper: CUI,
        stages: "1: CB-CE",
        build: |b| Ok(vec![b.stage1("cb-ce", LossSpec::WeightedCe { weighting: ClassWeighting::EFFECTIVE_NUMBER })]),
    },
    Method {
        name: "focal",
        title: "Focal loss",
        paper: "Lin et al., Focal Loss (ICCV 2017)",
        stages: "1: focal",
        // the thesis authors' focal baseline ((1 - p) detached)
        build: |b| Ok(vec![b.stage1("focal", LossSpec::Focal { gamma: 1.0, weighting: None, form: FocalForm::Softmax, detach: true })]),
    },
    Method {
        name: "cb-focal",
        title: "Class-balanced focal loss",
        paper: CUI,
        stages: "1: CB-focal",
        // Cui et al.'s per-class sigmoid form
        build: |b| {
            let loss = LossSpec::Focal { gamma: 1.0, weighting: Some(ClassWeighting::EFFECTIVE_NUMBER), form: FocalForm::Sigmoid, detach: false };
            Ok(vec![b.stage1("cb-focal", loss)])
        },
    },
    Method {
        name: "label-smoothing",
        title: "Label smoothing",
        paper: "Szegedy et al. (CVPR 2016)",
        stages: "1: smoothed CE",
        build: |b| Ok(vec![b.stage1("label-smoothing", LossSpec::LabelSmoothing { epsilon: 0.1 })]),
    },
    Method {
        name: "ce-drw",
        title: "CE with deferred re-weighting",
        paper: CAO,
        stages: "1: CE, DRW at 80%",
        build: |b| Ok(vec![StageConfig { drw: b.drw(), ..b.stage1("ce-drw", LossSpec::Ce) }]),
    },
    Method { name: "ldam", title: "LDAM", paper: CAO, stages: "1: LDAM", build: |b| Ok(ldam(b, "ldam", false)) },
    Method { name: "ldam-drw", title: "LDAM with deferred re-weighting", paper: CAO, stages: "1: LDAM, DRW at 80%", build: |b| Ok(ldam(b, "ldam-drw", true)) },
    Method {
        name: "balanced-softmax",
        title: "Balanced softmax",
        paper: "Ren et al., BALMS (NeurIPS 2020)",
        stages: "1: balanced softmax",
        build: |b| Ok(vec![b.stage1("balanced-softmax", LossSpec::BalancedSoftmax)]),
    },
    Method {
        name: "logit-adjustment",
        title: "Logit-adjusted loss",
        paper: MENON,
        stages: "1: LA loss",
        build: |b| Ok(vec![b.stage1("logit-adjustment", LossSpec::logit_adjusted())]),
    },
    Method {
        name: "logit-adjustment-posthoc",
        title: "Post-hoc logit adjustment",
        paper: MENON,
        stages: "2: CE run, post-hoc adjustment",
        build: |b| {
            let wd = b.recipe.weight_decay;
            Ok(post_hoc(b, "posthoc", wd, HeadChange::LogitAdjust { tau: 1.0 }))
        },
    },
    Method {
        name: "cdt",
        title: "Class-dependent temperatures",
        paper: "Ye et al., CDT (2020)",
        stages: "1: CDT",
        build: |b| Ok(vec![b.stage1("cdt", LossSpec::Cdt { gamma: if b.small() { 0.2 } else { 0.1 } })]),
    },
    Method {
        name: "mixup",
        title: "CE with mixup",
        paper: "Zhang et al., mixup (ICLR 2018)",
        stages: "1: CE + mixup",
        build: |b| Ok(vec![b.stage1_mixup("ce-mixup", LossSpec::Ce)]),
    },
    Method { name: "remix", title: "Remix (rebalanced mixup)", paper: "Chou et al., Remix (ECCV-W 2020)", stages: "1: CE + Remix", build: |b| Ok(remix(b)) },
    Method { name: "cmo", title: "CE with CMO", paper: CMO, stages: "1: CE + CMO", build: |b| Ok(cmo(b, "ce-cmo", LossSpec::Ce)) },
    Method {
        name: "bs-cmo",
        title: "Balanced softmax with CMO",
        paper: CMO,
        stages: "1: balanced softmax + CMO",
        build: |b| Ok(cmo(b, "bs-cmo", LossSpec::BalancedSoftmax)),
    },
    Method {
        name: "bbn",
        title: "BBN (bilateral-branch network, cumulative learning)",
        paper: "Zhou et al., BBN (CVPR 2020)",
        stages: "1: two-branch CE, instance + reversed sampling, alpha = 1 - (t/T)^2",
        build: |b| Ok(bbn(b)),
    },
    Method {
        name: "ride",
        title: "RIDE (routing diverse distribution-aware experts)",
        paper: "Wang et al., RIDE (ICLR 2021)",
        stages: "1: 3 experts, RIDE loss (LDAM + diversity), DRW at 80%",
        build: |b| Ok(ride(b)),
    },
    Method {
        name: "ride-ea",
        title: "RIDE-EA (RIDE with expert-assignment routers)",
        paper: "Wang et al., RIDE (ICLR 2021)",
        stages: "2: the RIDE run, routers only (router loss, class-balanced); test: each sample's experts",
        build: |b| Ok(ride_ea(b)),
    },
    Method {
        name: "ride-h2t",
        title: "RIDE + H2T",
        paper: H2T,
        stages: "2: the RIDE run, classifier with H2T on every expert (class-balanced)",
        build: |b| Ok(ride_h2t(b)),
    },
    Method {
        name: "reslt",
        title: "ResLT (residual learning for long-tailed recognition)",
        paper: "Cui et al., ResLT (TPAMI 2022)",
        stages: "1: three batch-norm branches (all / medium + tail / tail), ResLT loss",
        build: |b| Ok(reslt(b)),
    },
    Method {
        name: "reslt-h2t",
        title: "ResLT + H2T",
        paper: H2T,
        stages: "2: the ResLT run, branches and classifier with H2T on the shared map (class-balanced)",
        build: |b| Ok(reslt_h2t(b)),
    },
    Method { name: "lade", title: "LADE", paper: "Hong et al., LADE (CVPR 2021)", stages: "1: LADE (PriorCE + LADER)", build: |b| Ok(lade(b)) },
    Method {
        name: "tde",
        title: "De-confound-TDE",
        paper: "Tang et al., De-confound-TDE (NeurIPS 2020)",
        stages: "1: CE on the causal normalised classifier, TDE inference",
        build: |b| Ok(tde(b)),
    },
    Method {
        name: "mislas",
        title: "MiSLAS",
        paper: "Zhong et al., MiSLAS (CVPR 2021)",
        stages: "2: CE + mixup, LAS + shift BN (class-balanced)",
        build: |b| Ok(mislas(b)),
    },
    Method {
        name: "crt",
        title: "Classifier re-training",
        paper: KANG,
        stages: "2: CE run, re-initialised classifier (class-balanced)",
        build: |b| Ok(decoupled(b, "crt", HeadChange::Reinit)),
    },
    Method {
        name: "lws",
        title: "Learnable weight scaling",
        paper: KANG,
        stages: "2: CE run, LWS (class-balanced)",
        build: |b| Ok(decoupled(b, "lws", HeadChange::Lws)),
    },
    Method {
        name: "disalign",
        title: "DisAlign",
        paper: "Zhang et al., DisAlign (CVPR 2021)",
        stages: "2: CE run, adaptive calibration + generalised re-weighting",
        build: |b| Ok(disalign(b)),
    },
    Method {
        name: "tau-norm",
        title: "Tau-normalised classifier",
        paper: KANG,
        stages: "2: CE run, post-hoc tau-norm",
        build: |b| Ok(post_hoc(b, "tau-norm", 5e-4, HeadChange::TauNorm { tau: 1.0 })),
    },
    Method {
        name: "kps",
        title: "Key point sensitive loss + gradient adjustment",
        paper: THESIS,
        stages: "1: KPS, GA from 60%",
        build: |b| {
            b.thesis(ThesisTable::Kps);
            b.model.head = HeadConfig::Cosine;
            Ok(vec![b.stage1("kps", b.kps(b.kps_margin()))])
        },
    },
    Method {
        name: "fbl",
        title: "Feature-balanced loss",
        paper: THESIS,
        stages: "1: FBL with curriculum",
        build: |b| {
            b.thesis(ThesisTable::Fbl);
            Ok(vec![b.stage1("fbl", LossSpec::fbl(if b.small() { 60.0 } else { 150.0 }))])
        },
    },
    Method { name: "gcl", title: "Gaussian clouded logit", paper: THESIS, stages: "2: GCL + mixup, GCL classifier (CBEN sampling)", build: |b| Ok(gcl(b)) },
    Method {
        name: "h2t",
        title: "Head-to-tail feature fusion",
        paper: H2T,
        stages: "2: CE + mixup run, H2T classifier (class-balanced)",
        build: |b| Ok(h2t(b)),
    },
    Method {
        name: "h2t-mixup",
        title: "H2T stage I: CE + mixup network",
        paper: H2T,
        stages: "1: CE + mixup (CIFAR: x0.1 at 160, x0.01 at 180; else the preset's)",
        build: |b| Ok(h2t_mixup(b)),
    },
    Method { name: "ffn", title: "Feature fusion network", paper: FFN, stages: "3: CE run, KPS run, fused cosine classifier (LDAM)", build: |b| Ok(ffn(b)) },
    Method {
        name: "ffn-ce",
        title: "FFN stage I: CE + mixup network",
        paper: "Zhou et al. (2023)",
        stages: "1: CE + mixup",
        build: |b| {
            b.ffn_stage1_data();
            Ok(vec![b.stage1_mixup("ffn-ce", LossSpec::Ce)])
        },
    },
    Method {
        name: "ffn-kps",
        title: "FFN stage I: KPS + mixup network",
        paper: "Zhou et al. (2023)",
        stages: "1: KPS + mixup, GA from 60%",
        build: |b| Ok(ffn_kps(b)),
    },
    Method {
        name: "hrdc",
        title: "Hierarchical rebalancing dual classifier",
        paper: "Zhang et al., HRDC (IEEE Access)",
        stages: "1: dual head, alpha = (1 - T/T_max)^2",
        build: |b| Ok(hrdc(b)),
    },
    Method {
        name: "mgkt",
        title: "MGKT-MFF (CSMS-ResNet + multi-granularity loss)",
        paper: MGKT,
        stages: "1: coarse -> joint -> fine",
        build: |b| mgkt(b, "mgkt", false),
    },
    Method {
        name: "mgkt-drw",
        title: "MGKT-MFF with DRW",
        paper: MGKT,
        stages: "1: coarse -> joint -> fine, DRW at 80%",
        build: |b| mgkt(b, "mgkt-drw", true),
    },
];

/// Looks a method up by name.
pub fn method(name: &str) -> Result<&'static Method> {
    METHODS.iter().find(|m| m.name == name).ok_or_else(|| {
        TrainError::config(
            "method",
            format!("unknown method `{name}`; run `longtail methods` for the list ({})", METHODS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")),
        )
    })
}

/// Where the config of `method` on this dataset lives (for stage-I references).
pub fn config_path(dataset: Dataset, imbalance_factor: f64, method: &str) -> PathBuf {
    PathBuf::from(format!("configs/{}/{}.toml", dataset.config_dir(imbalance_factor), method.replace('-', "_")))
}

/// The benchmarks and imbalance factors whose configs are shipped under `configs/`.
pub fn shipped_benchmarks() -> Vec<(Dataset, f64)> {
    let factors = [10.0, 20.0, 50.0, 100.0, 200.0];
    let mut out = vec![(Dataset::FashionMnistLt, 100.0)];
    for d in [Dataset::Cifar10Lt, Dataset::Cifar100Lt] {
        out.extend(factors.map(|f| (d, f)));
    }
    out.extend([Dataset::ImagenetLt, Dataset::Inat2018, Dataset::PlacesLt].map(|d| (d, 1.0)));
    out
}

/// Every shipped config: its path under the repository and its contents (a method that has no
/// config on a benchmark, MGKT without a hierarchy, is left out).
pub fn shipped_configs() -> Vec<(PathBuf, &'static Method, ExperimentConfig)> {
    let mut out = Vec::new();
    for (dataset, factor) in shipped_benchmarks() {
        for m in METHODS {
            if let Ok(config) = default_config(m.name, dataset, factor) {
                out.push((config_path(dataset, factor, m.name), m, config));
            }
        }
    }
    out
}

/// Where the configs expect torchvision's ImageNet ResNet-152 (`IMAGENET1K_V1`, the file
/// `torchvision.models.resnet152(weights=...)` downloads; `longtail fetch resnet152-imagenet`).
pub const RESNET152_IMAGENET: &str = "data/pretrained/resnet152-394f9c45.pth";

/// Places-LT starts from an ImageNet-pretrained ResNet-152 in every paper (OLTR's protocol): a
/// run of it trained from scratch, with no stage-I run or fusion to start from, starts there.
fn imagenet_pretrained(b: &Build) -> Option<RunSource> {
    let from_scratch = b.init_from.is_none() && b.fusion.is_none();
    let torchvision_shaped = b.model.arch == longtail_models::Arch::Resnet152 && !b.model.two_branch;
    (b.dataset == Dataset::PlacesLt && from_scratch && torchvision_shaped).then(|| {
        RunSource::Weights(crate::config::PretrainedWeights {
            weights: RESNET152_IMAGENET.into(),
            layout: longtail_models::weights::PytorchLayout::Torchvision,
            with_classifier: false,
            allow_missing: false,
            allow_unexpected: false,
        })
    })
}

/// The header of a shipped config file.
pub fn config_header(method: &Method) -> String {
    format!(
        "# Generated by `cargo xtask configs` from the method registry (longtail-train/src/methods.rs).\n# Run: cargo run --release --bin {} -- --config <this file>\n\n",
        method.name
    )
}

/// The default config of `method` on `dataset` (the papers' hyperparameters; see each method's
/// page under docs/methods for the readings of what the papers leave open).
pub fn default_config(method_name: &str, dataset: Dataset, imbalance_factor: f64) -> Result<ExperimentConfig> {
    let m = method(method_name)?;
    let mut b = Build::new(dataset, imbalance_factor);
    let mut stages = (m.build)(&mut b)?;
    if let Some(pretrained) = imagenet_pretrained(&b) {
        b.init_from = Some(pretrained);
        if let (Some(parts), Some(first)) = (b.pretrained_parts.take(), stages.first_mut())
            && first.train == Trainable::All
        {
            first.train = Trainable::Parts(parts);
        }
    }
    Ok(ExperimentConfig {
        name: format!("{}-{}", dataset.config_dir(imbalance_factor).replace('_', "-"), m.name),
        method: m.name.into(),
        seed: 0,
        precision: Default::default(),
        data: b.data,
        model: b.model,
        stages,
        eval: EvalConfig::default(),
        loader: LoaderConfig::default(),
        init_from: b.init_from,
        fusion: b.fusion,
    })
}
