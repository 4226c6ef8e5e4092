//! BBN (Zhou et al., CVPR 2020): the two-branch model, the cumulative-learning step, the
//! reversed sampler's class frequencies and the bad inputs, against the authors' code
//! (Megvii-Nanjing/BBN `lib/core/combiner.py`, `lib/dataset/imbalance_cifar.py`).

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{config, opts, stage, write_data};
use longtail_data::{Sampler, SamplerSpec};
use longtail_losses::LossSpec;
use longtail_models::{Arch, HeadConfig, ModelConfig, Network};
use longtail_train::config::CumulativeConfig;
use longtail_train::{RunOptions, load_run_network, train};

fn input(n: usize, seed: f64, d: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..n * 32 * 32).map(|i| ((i as f64 * 0.013 + seed).sin()) as f32).collect();
    Tensor::from_data(TensorData::new(v, [n, 1, 32, 32]), d)
}

fn two_branch(d: &Device) -> Network {
    ModelConfig { two_branch: true, ..ModelConfig::new(Arch::Resnet20, 1, 5, HeadConfig::Linear) }.init(4, d).unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * y.abs().max(1.0))
}

/// At alpha 0.5 with one image in both branches the training logits are the test logits
/// (`2 * 0.5 = 1`, `resnet_cifar.py:208-210`); at alpha 1 the re-balancing batch does not move
/// them; the feature is 128 wide, each half scaled by 2 alpha / 2 (1 - alpha).
#[test]
fn the_two_branch_forward_is_the_codes_combiner() {
    let d = Device::flex();
    let net = two_branch(&d).valid();
    let (x, other) = (input(3, 0.0, &d), input(3, 1.7, &d));
    let test = net.predict(x.clone()).into_data().try_to_vec::<f32>().unwrap();
    let half = net.forward_two_branch(x.clone(), x.clone(), 0.5).unwrap();
    assert!(close(&half.logits.into_data().try_to_vec::<f32>().unwrap(), &test, 1e-5));
    let a = net.forward_two_branch(x.clone(), other.clone(), 1.0).unwrap();
    let b = net.forward_two_branch(x.clone(), input(3, 3.1, &d), 1.0).unwrap();
    assert_eq!(a.logits.into_data().try_to_vec::<f32>().unwrap(), b.logits.into_data().try_to_vec::<f32>().unwrap());
    let f = net.forward_two_branch(x.clone(), other.clone(), 0.3).unwrap().features;
    assert_eq!(f.dims(), [3, 128]);
    let g = net.forward_two_branch(x, other, 0.5).unwrap().features;
    let (f, g) = (f.into_data().try_to_vec::<f32>().unwrap(), g.into_data().try_to_vec::<f32>().unwrap());
    for r in 0..3 {
        for c in 0..128 {
            let scale = if c < 64 { 0.6 } else { 1.4 };
            assert!((f[r * 128 + c] - scale * g[r * 128 + c]).abs() < 1e-5, "row {r} col {c}");
        }
    }
}

/// The reversed sampler draws class i with probability (1/n_i) / sum_j (1/n_j)
/// (`imbalance_cifar.py:85-88`, the n_max scaling cancels): CIFAR-10-LT IF 100's counts
/// 5000 .. 50, whose probabilities the Python of the code gives as below.
#[test]
fn the_reversed_sampler_draws_classes_inversely_to_their_size() {
    let counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
    let want = [0.004, 0.0067, 0.0112, 0.0187, 0.0312, 0.052, 0.0867, 0.1447, 0.2424, 0.4024];
    let labels: Vec<usize> = counts.iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c, n)).collect();
    let s = Sampler::new(SamplerSpec::Reversed, &labels, 10).unwrap();
    let mut hist = [0usize; 10];
    let mut total = 0;
    for epoch in 0..4 {
        for i in s.epoch_indices(3, epoch, 4, 1) {
            hist[labels[i]] += 1;
            total += 1;
        }
    }
    for (c, (&h, &p)) in hist.iter().zip(&want).enumerate() {
        let share = h as f64 / total as f64;
        // 4 x 12,406 draws: binomial sd at most 0.0022; allow 4 sd plus the table's rounding
        assert!((share - p).abs() < 0.0095, "class {c}: {share} vs {p}");
    }
}

#[test]
fn bbn_trains_resumes_exactly_and_refuses_bad_models() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    // 8 epochs: on ~7 steps an epoch the shared trunk's running statistics (which also see the
    // tail-heavy reversed batches) need that long before evaluation beats chance
    let mut s = stage("bbn", 8, LossSpec::Ce);
    s.cumulative = Some(CumulativeConfig::default());
    let mut cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![s]);
    cfg.model.arch = Arch::Resnet20;
    cfg.model.two_branch = true;
    let whole = train(&cfg, &opts(&tmp.path().join("whole"))).unwrap();
    let acc = whole.final_report.as_ref().unwrap().metrics.accuracy;
    assert!(acc > 30.0, "accuracy {acc}%");
    let dir = tmp.path().join("cut");
    train(&cfg, &RunOptions { max_epochs: Some(1), ..opts(&dir) }).unwrap();
    train(&cfg, &RunOptions { resume: true, ..opts(&dir) }).unwrap();
    let load = |run: &std::path::Path| common::all_weights(&load_run_network(run, &Device::flex()).unwrap().0);
    assert_eq!(load(&whole.run_dir), load(&dir), "resumed = uninterrupted");
    // two CPU replicas: the same recipe on each slice
    let dp = RunOptions { data_parallel: vec![Device::flex()], ..opts(&tmp.path().join("dp")) };
    assert!(train(&cfg, &dp).unwrap().finished);

    let err = |c: &longtail_train::ExperimentConfig| train(c, &opts(&tmp.path().join("bad"))).map(|_| ()).unwrap_err().to_string();
    let mut flat = cfg.clone();
    flat.model.arch = Arch::Resnet8;
    assert!(err(&flat).contains("the shared stage would be empty"), "{}", err(&flat));
    let mut single = cfg.clone();
    single.model.two_branch = false;
    assert!(err(&single).contains("set model.two_branch = true"), "{}", err(&single));
    let mut mixed = cfg.clone();
    mixed.stages[0].mixup = Some(longtail_train::config::MixupConfig { alpha: 1.0, remix: None });
    assert!(err(&mixed).contains("remove mixup"), "{}", err(&mixed));
    let mut grouped = cfg.clone();
    grouped.model.arch = Arch::Resnext50_32x4d;
    assert!(err(&grouped).contains("two_branch (BBN) needs"), "{}", err(&grouped));
}

/// The registry's configs: the authors' CIFAR schedule (x0.01 from 1-based epoch 120 and 160,
/// the warm-up from 1/3) and Nesterov momentum; `div_epoch` 200 for iNaturalist's 180 epochs.
#[test]
fn bbn_configs_follow_the_authors_yaml() {
    use longtail_train::cumulative::{alpha, div_epoch};
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    let c = default_config("bbn", Dataset::Cifar100Lt, 100.0).unwrap();
    let s = &c.stages[0];
    assert!(c.model.two_branch && s.optimizer.nesterov && s.cumulative.is_some());
    assert_eq!((s.epochs, s.batch_size, s.optimizer.weight_decay), (200, 128, 2e-4));
    let lr = |e: usize| s.lr.rate(e, 200, 0, 100);
    // WarmupMultiStepLR with last_epoch = e (1-based): 0.04667, 0.06, 0.07333, 0.08667, then 0.1
    for (e, want) in
        [(1, 0.1 * (1.0 / 3.0 * 0.8 + 0.2)), (2, 0.06), (4, 0.1 * (1.0 / 3.0 * 0.2 + 0.8)), (5, 0.1), (119, 0.1), (120, 1e-3), (159, 1e-3), (160, 1e-5)]
    {
        assert!((lr(e - 1) - want).abs() < 1e-12, "epoch {e}: {} vs {want}", lr(e - 1));
    }
    let inat = default_config("bbn", Dataset::Inat2018, 1.0).unwrap();
    assert_eq!((inat.stages[0].epochs, inat.model.arch, div_epoch(180)), (180, Arch::Resnet50, 200));
    assert!((alpha(179, div_epoch(180)) - (1.0 - (179.0f64 / 200.0).powi(2))).abs() < 1e-15);
}
