//! Shared helpers: a tiny long-tailed IDX dataset and configs around it.
#![allow(dead_code)]

use std::path::Path;

use longtail_data::longtail::{LongTailSpec, Profile, Selection};
use longtail_data::{DataConfig, Recipe, SamplerSpec, SourceSpec};
use longtail_losses::LossSpec;
use longtail_models::{Arch, HeadConfig, ModelConfig};
use longtail_train::config::{EvalConfig, ExperimentConfig, LoaderConfig, OptimizerConfig, StageConfig};
use longtail_train::schedule::{Decay, LrConfig};

pub const CLASSES: usize = 4;

/// Writes a balanced 60-per-class synthetic IDX set (25 test images per class) under `dir`.
pub fn write_data(dir: &Path) {
    longtail_data::synthetic::write_idx_dataset(dir, &[60; CLASSES], 25, 7).unwrap();
}

pub fn stage(name: &str, epochs: usize, loss: LossSpec) -> StageConfig {
    StageConfig {
        name: name.into(),
        epochs,
        batch_size: 16,
        sampler: SamplerSpec::Instance,
        loss,
        lr: LrConfig { base: 0.05, warmup_epochs: 0, warmup_per_step: true, warmup_start: 0.0, decay: Decay::Constant },
        optimizer: OptimizerConfig { momentum: 0.9, weight_decay: 5e-4, nesterov: false },
        drw: None,
        deferred_sampler: None,
        mixup: None,
        train: Default::default(),
        head: Default::default(),
        h2t: None,
        cmo: None,
        cumulative: None,
    }
}

/// A config on the data in `data` (exp profile IF 10: class sizes 60, 27, 12, 6).
pub fn config(data: &Path, head: HeadConfig, stages: Vec<StageConfig>) -> ExperimentConfig {
    ExperimentConfig {
        name: "test".into(),
        method: "test".into(),
        seed: 3,
        precision: Default::default(),
        data: DataConfig {
            source: SourceSpec::Idx { root: data.to_path_buf(), classes: (0..CLASSES).map(|c| format!("c{c}")).collect() },
            long_tail: LongTailSpec { profile: Profile::Exp, imbalance_factor: 10.0, max_per_class: None, selection: Selection::First },
            hierarchy: None,
            recipe: Recipe::FashionMnist,
            train_transform: None,
            test_transform: None,
        },
        model: ModelConfig::new(Arch::Resnet8, 1, CLASSES, head),
        stages,
        eval: EvalConfig::default(),
        loader: LoaderConfig { threads: 2, prefetch: 2 },
        init_from: None,
        fusion: None,
    }
}

/// Run options for a fresh run in `dir` on the CPU, quiet.
pub fn opts(dir: &Path) -> longtail_train::RunOptions {
    longtail_train::RunOptions {
        run_dir: dir.to_path_buf(),
        device: burn::tensor::Device::flex(),
        resume: false,
        max_epochs: None,
        quiet: true,
        data_parallel: Vec::new(),
    }
}

/// Every float parameter of a module, flattened in visiting order.
pub fn all_weights<M: burn::module::Module>(m: &M) -> Vec<f32> {
    struct C(Vec<f32>);
    impl burn::module::ModuleVisitor for C {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::tensor::Tensor<D>>) {
            self.0.extend(p.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = C(Vec::new());
    m.visit(&mut c);
    c.0
}
