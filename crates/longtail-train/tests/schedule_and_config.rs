//! LR schedules at given epochs, config parsing, overrides and validation messages.

use std::path::Path;

use longtail_train::ExperimentConfig;
use longtail_train::schedule::{Decay, LrConfig};

#[test]
fn cifar_recipe_gives_the_exact_rates() {
    let lr = LrConfig::cifar(0.1);
    let at = |e| lr.rate(e, 200, 0, 97);
    // LDAM-DRW code: lr * epoch / 5 for epochs 1..5 (1-based)
    assert!((at(0) - 0.02).abs() < 1e-12);
    assert!((at(4) - 0.1).abs() < 1e-12);
    assert!((at(5) - 0.1).abs() < 1e-12);
    assert!((at(159) - 0.1).abs() < 1e-12);
    assert!((at(160) - 0.001).abs() < 1e-12);
    assert!((at(179) - 0.001).abs() < 1e-12);
    assert!((at(180) - 0.00001).abs() < 1e-15);
}

#[test]
fn per_step_warmup_and_cosine() {
    let lr = LrConfig {
        base: 0.1,
        warmup_epochs: 1,
        warmup_per_step: true,
        warmup_start: 0.0,
        decay: Decay::Steps { at: vec![12, 14], factors: vec![0.01, 0.0001] },
    };
    assert!((lr.rate(0, 15, 0, 100) - 0.001).abs() < 1e-12);
    assert!((lr.rate(0, 15, 49, 100) - 0.05).abs() < 1e-12);
    assert!((lr.rate(0, 15, 99, 100) - 0.1).abs() < 1e-12);
    assert!((lr.rate(11, 15, 0, 100) - 0.1).abs() < 1e-12);
    assert!((lr.rate(12, 15, 0, 100) - 0.001).abs() < 1e-12);
    assert!((lr.rate(14, 15, 0, 100) - 0.00001).abs() < 1e-15);
    let cos = LrConfig::cosine(0.2, 0.0);
    assert!((cos.rate(0, 10, 0, 5) - 0.2).abs() < 1e-12);
    assert!((cos.rate(5, 10, 0, 5) - 0.1).abs() < 1e-12);
    assert!((cos.rate(9, 10, 3, 5) - 0.2 * 0.5 * (1.0 + (std::f64::consts::PI * 0.9).cos())).abs() < 1e-12);
}

const MINIMAL: &str = r#"
name = "x"
method = "ce"
[data]
recipe = "fashion-mnist"
source = { format = "fashion-mnist" }
long_tail = { profile = { kind = "exp" }, imbalance_factor = 100, selection = { kind = "first" } }
[model]
arch = "resnet32"
in_channels = 1
num_classes = 10
head = { kind = "linear" }
[[stages]]
name = "main"
epochs = 15
batch_size = 128
sampler = { kind = "instance" }
loss = { kind = "ce" }
lr = { base = 0.1, warmup_epochs = 1, decay = { kind = "steps", at = [12, 14], factors = [0.01, 0.0001] } }
optimizer = { momentum = 0.9, weight_decay = 2e-4 }
"#;

#[test]
fn configs_parse_and_overrides_apply() {
    let c = ExperimentConfig::from_toml(MINIMAL, Path::new("x.toml"), &[]).unwrap();
    assert_eq!(c.stages[0].epochs, 15);
    assert_eq!(c.eval.ece_bins, 15);
    let c =
        ExperimentConfig::from_toml(MINIMAL, Path::new("x.toml"), &["stages.0.epochs=3".into(), "data.long_tail.imbalance_factor=50".into(), "seed=9".into()])
            .unwrap();
    assert_eq!((c.stages[0].epochs, c.data.long_tail.imbalance_factor, c.seed), (3, 50.0, 9));
    // the resolved config round-trips
    let again = ExperimentConfig::from_toml(&c.to_toml(), Path::new("y.toml"), &[]).unwrap();
    assert_eq!(again, c);
}

#[test]
fn config_errors_name_file_field_and_expectation() {
    let unknown = MINIMAL.replace("seed", "x").replace("[model]", "[model]\nwidth = 3");
    let err = ExperimentConfig::from_toml(&unknown, Path::new("cfg/ce.toml"), &[]).unwrap_err().to_string();
    assert!(err.contains("cfg/ce.toml") && err.contains("unknown field `width`"), "{err}");
    let wrong_type = MINIMAL.replace("epochs = 15", "epochs = \"many\"");
    let err = ExperimentConfig::from_toml(&wrong_type, Path::new("c.toml"), &[]).unwrap_err().to_string();
    assert!(err.contains("c.toml") && err.contains("epochs"), "{err}");
    let err = ExperimentConfig::from_toml(MINIMAL, Path::new("c.toml"), &["data.long_tail.imbalance_factor=0.5".into()]).unwrap_err().to_string();
    assert!(err.contains("imbalance_factor") && err.contains(">= 1"), "{err}");
    let err = ExperimentConfig::from_toml(MINIMAL, Path::new("c.toml"), &["stages.0.optimizer.momentum=1.5".into()]).unwrap_err().to_string();
    assert!(err.contains("stages.0.optimizer.momentum"), "{err}");
    let err = ExperimentConfig::from_toml(MINIMAL, Path::new("c.toml"), &["stages.3.epochs=1".into()]).unwrap_err().to_string();
    assert!(err.contains("out of range"), "{err}");
    let err = ExperimentConfig::from_toml(MINIMAL, Path::new("c.toml"), &["stages.0.loss={ kind = \"ldam\" }".into()]).unwrap_err().to_string();
    assert!(err.contains("cosine"), "{err}");
    // values that used to abort on allocation are range errors
    let err = ExperimentConfig::from_toml(MINIMAL, Path::new("c.toml"), &["eval.ece_bins=10000000000".into()]).unwrap_err().to_string();
    assert!(err.contains("eval.ece_bins") && err.contains("at most"), "{err}");
    let err = ExperimentConfig::from_toml(MINIMAL, Path::new("c.toml"), &["loader.prefetch=1000000000".into()]).unwrap_err().to_string();
    assert!(err.contains("loader.prefetch") && err.contains("at most"), "{err}");
    // unknown keys inside the tagged tables are refused too (they were dropped from the saved config)
    for (key, value) in [
        ("stages.0.sampler", "{ kind = \"instance\", beta = 0.9 }"),
        ("stages.0.sampler", "{ kind = \"effective-number\", beta = 0.9, betta = 1 }"),
        ("data.long_tail.profile", "{ kind = \"exp\", steep = 2 }"),
        ("data.long_tail.profile", "{ kind = \"step\", minority_fraction = 0.5, fraction = 1 }"),
        ("data.long_tail.selection", "{ kind = \"first\", seed = 2 }"),
        ("data.long_tail.selection", "{ kind = \"numpy-shuffle\", seed = 1, sed = 2 }"),
    ] {
        let err = ExperimentConfig::from_toml(MINIMAL, Path::new("c.toml"), &[format!("{key}={value}")]).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{key} = {value}: {err}");
    }
}

/// KPS, FBL and GCL train with the thesis's own tables (spec 002: Tables 3.1, 4.1, 5.1) on the
/// papers' benchmarks; Fashion-MNIST-LT keeps the shared CPU protocol.
#[test]
fn thesis_methods_use_the_thesis_training_tables() {
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    for m in ["kps", "fbl", "gcl"] {
        let c = default_config(m, Dataset::Cifar100Lt, 100.0).unwrap();
        let s = &c.stages[0];
        assert_eq!((s.epochs, s.batch_size, s.optimizer.weight_decay), (200, 64, 2e-4), "{m}");
        let at = |e| s.lr.rate(e, 200, 0, 100);
        // 5-epoch warm-up, then x0.1 at 160 and x0.1 again at 180 (the authors' code)
        assert!((at(0) - 0.02).abs() < 1e-12 && (at(159) - 0.1).abs() < 1e-12, "{m}");
        assert!((at(160) - 0.01).abs() < 1e-12 && (at(180) - 0.001).abs() < 1e-12, "{m}");
        let f = default_config(m, Dataset::FashionMnistLt, 100.0).unwrap();
        assert_eq!((f.stages[0].epochs, f.stages[0].batch_size), (15, 128), "{m} on Fashion-MNIST keeps the protocol");
    }
    let kps = default_config("kps", Dataset::Inat2018, 1.0).unwrap();
    assert_eq!((kps.stages[0].batch_size, kps.stages[0].lr.base, kps.stages[0].epochs), (512, 0.2, 180));
    assert!((kps.stages[0].lr.rate(120, 180, 0, 10) - 0.02).abs() < 1e-12);
    let fbl = default_config("fbl", Dataset::PlacesLt, 1.0).unwrap();
    assert_eq!((fbl.stages[0].epochs, fbl.stages[0].optimizer.weight_decay), (90, 5e-4));
    assert!((fbl.stages[0].lr.rate(80, 90, 0, 10) - 0.002).abs() < 1e-12);
    let gcl = default_config("gcl", Dataset::Inat2018, 1.0).unwrap();
    assert_eq!((gcl.stages[0].batch_size, gcl.stages[1].epochs), (256, 30));
    assert!((gcl.stages[1].lr.base - 0.01).abs() < 1e-12, "stage II at 0.1 x the stage-I rate");
    // H2T's stage II is 10 epochs on every benchmark (the iNat preset's classifier stage is 30)
    for d in [Dataset::Cifar10Lt, Dataset::ImagenetLt, Dataset::Inat2018, Dataset::PlacesLt] {
        assert_eq!(default_config("h2t", d, d.default_imbalance()).unwrap().stages[0].epochs, 10, "{}", d.name());
    }
}

/// Defaults that follow the authors' code where it differs from the papers' text (issue: the
/// remaining differences). The values are the code's: Keke921/H2T `train_stage1.py` and its
/// CIFAR-100-LT stage-II yaml files (wd 2e-4 / 5e-4 / 2e-4 at IF 50 / 100 / 200), Keke921/KPSLoss
/// `cifar_train.py` (`max_m=0.2, s=15`, clamp at 50), the thesis authors' focal baseline
/// (`(1 - p.detach())`), Cui et al.'s sigmoid CB-focal, and FFN's `rand_number` 666 / 0.
#[test]
fn defaults_follow_the_authors_code() {
    use longtail_data::longtail::Selection;
    use longtail_losses::{FocalForm, KpsMargins, LossSpec};
    use longtail_train::config::RunSource;
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    // H2T's stage I: x0.1 after epoch 160 and x0.01 after 180, not LDAM-DRW's x0.01 / x0.0001
    for d in [Dataset::Cifar10Lt, Dataset::Cifar100Lt] {
        let s1 = default_config("h2t-mixup", d, 100.0).unwrap();
        let at = |e| s1.stages[0].lr.rate(e, 200, 0, 97);
        assert!((at(0) - 0.02).abs() < 1e-12 && (at(159) - 0.1).abs() < 1e-12);
        assert!((at(160) - 0.01).abs() < 1e-12 && (at(179) - 0.01).abs() < 1e-12 && (at(180) - 0.001).abs() < 1e-12);
        assert!(s1.stages[0].mixup.is_some());
        let h2t = default_config("h2t", d, 100.0).unwrap();
        let Some(RunSource::Config { config }) = &h2t.init_from else { panic!("h2t starts from a config") };
        assert!(config.ends_with("h2t_mixup.toml"), "{}", config.display());
    }
    for (imbalance, wd) in [(50.0, 2e-4), (100.0, 5e-4), (200.0, 2e-4)] {
        let h2t = default_config("h2t", Dataset::Cifar100Lt, imbalance).unwrap();
        assert_eq!(h2t.stages[0].optimizer.weight_decay, wd, "IF {imbalance}");
        assert!((h2t.stages[0].lr.rate(0, 10, 0, 10) - 0.02).abs() < 1e-12);
    }
    // KPS: the CIFAR script's m_max 0.2, the reversed radii list, the scale clamped at 50
    for d in [Dataset::Cifar10Lt, Dataset::Cifar100Lt] {
        let kps = default_config("kps", d, 100.0).unwrap();
        let LossSpec::Kps { max_margin, base_scale, scale_cap, margins, ga_epoch, .. } = &kps.stages[0].loss else { panic!("kps") };
        assert_eq!((*max_margin, *base_scale, *scale_cap, *margins, *ga_epoch), (0.2, 15.0, 50.0, KpsMargins::Reversed, Some(120)));
    }
    // focal: the thesis authors' detached form; CB-focal: Cui et al.'s sigmoids
    let focal = default_config("focal", Dataset::Cifar10Lt, 100.0).unwrap();
    assert!(matches!(focal.stages[0].loss, LossSpec::Focal { gamma: 1.0, weighting: None, form: FocalForm::Softmax, detach: true }));
    let cb = default_config("cb-focal", Dataset::Cifar10Lt, 100.0).unwrap();
    assert!(matches!(cb.stages[0].loss, LossSpec::Focal { gamma: 1.0, weighting: Some(_), form: FocalForm::Sigmoid, detach: false }));
    // FFN: stage-I subsets drawn with seed 666, stage II with seed 0
    for (m, seed) in [("ffn-ce", 666), ("ffn-kps", 666), ("ffn", 0)] {
        let c = default_config(m, Dataset::Cifar100Lt, 100.0).unwrap();
        assert_eq!(c.data.long_tail.selection, Selection::NumpyShuffle { seed }, "{m}");
    }
}

/// Combinations that would train something other than what the config says are refused.
#[test]
fn contradictory_method_settings_are_refused() {
    use longtail_losses::LossSpec;
    use longtail_models::HeadConfig;
    use longtail_train::config::{MixupConfig, Trainable};
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    let mut h2t = default_config("h2t", Dataset::FashionMnistLt, 100.0).unwrap();
    h2t.stages[0].mixup = Some(MixupConfig { alpha: 1.0, remix: None });
    let err = h2t.validate().unwrap_err().to_string();
    assert!(err.contains("stages.0.mixup") && err.contains("H2T"), "{err}");
    // a CMO window that leaves no epoch of the stage, and Remix values out of range
    let mut cmo = default_config("cmo", Dataset::FashionMnistLt, 100.0).unwrap();
    cmo.validate().unwrap();
    cmo.stages[0].cmo.as_mut().unwrap().start = 12;
    let err = cmo.validate().unwrap_err().to_string();
    assert!(err.contains("stages.0.cmo") && err.contains("leaves no epoch of this 15-epoch stage"), "{err}");
    let mut remix = default_config("remix", Dataset::FashionMnistLt, 100.0).unwrap();
    remix.validate().unwrap();
    remix.stages[0].mixup.as_mut().unwrap().remix.as_mut().unwrap().kappa = 0.5;
    let err = remix.validate().unwrap_err().to_string();
    assert!(err.contains("stages.0.mixup.remix") && err.contains("kappa"), "{err}");

    let mut ffn = default_config("ffn", Dataset::Cifar10Lt, 100.0).unwrap();
    ffn.validate().unwrap();
    ffn.stages[0].train = Trainable::All;
    let err = ffn.validate().unwrap_err().to_string();
    assert!(err.contains("stages.0.train") && err.contains("frozen"), "{err}");

    let mut hrdc = default_config("hrdc", Dataset::Cifar10Lt, 100.0).unwrap();
    hrdc.validate().unwrap();
    let LossSpec::Hrdc { reweight_loss, .. } = &mut hrdc.stages[0].loss else { panic!("hrdc's loss") };
    *reweight_loss = Some(Box::new(LossSpec::Ldam { max_margin: 0.5, scale: 30.0 }));
    let err = hrdc.validate().unwrap_err().to_string();
    assert!(err.contains("reweight_loss") && err.contains("LDAM"), "{err}");
    hrdc.stages[0].loss = LossSpec::Ce;
    let err = hrdc.validate().unwrap_err().to_string();
    assert!(err.contains("model.head") && err.contains("HRDC"), "{err}");
    hrdc.model.head = HeadConfig::Linear;
    hrdc.validate().unwrap();
}
