//! RIDE (Wang et al., ICLR 2021) and RIDE + H2T: the multi-expert model against the authors'
//! `ride_resnet_cifar.ResNet_s` (parameter counts computed with their code and torch), the mean
//! of the experts' logits, H2T's per-expert masks, the smallest end-to-end runs with exact
//! resume, and the bad inputs.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{config, opts, stage, write_data};
use longtail_data::SamplerSpec;
use longtail_losses::LossSpec;
use longtail_models::{Arch, ExpertsConfig, HeadConfig, ModelConfig};
use longtail_train::config::{H2tConfig, RunSource, Trainable};
use longtail_train::h2t::{expert_channel_mask, fused_channels};
use longtail_train::{RunOptions, load_run_network, train};
use rand::SeedableRng;

fn ride_model(arch: Arch, classes: usize, count: usize, reduced_width: bool) -> ModelConfig {
    ModelConfig { experts: Some(ExpertsConfig { count, reduced_width, ..ExpertsConfig::default() }), ..ModelConfig::new(arch, 3, classes, HeadConfig::Cosine) }
}

/// `sum(p.numel() for p in ResNet_s(BasicBlock, [5, 5, 5], num_experts, num_classes,
/// reduce_dimension, use_norm=True).parameters())` of the authors' code @ ab8be5c.
#[test]
fn the_experts_have_the_authors_shapes() {
    let d = Device::flex();
    for (arch, classes, count, reduced, want) in [
        (Arch::Resnet32, 100, 3, true, 783_856),
        (Arch::Resnet32, 10, 3, true, 770_896),
        (Arch::Resnet32, 10, 1, false, 464_144),
        (Arch::Resnet32, 10, 3, false, 1_344_784),
        (Arch::Resnet8, 4, 3, true, 125_808),
    ] {
        let net = ride_model(arch, classes, count, reduced).init(0, &d).unwrap();
        assert_eq!(net.num_trainable_params(), want, "{arch:?} {classes} classes {count} experts reduced {reduced}");
        assert_eq!(net.num_experts(), count);
    }
}

/// The logits are the experts' mean (`torch.stack(outs, dim=1).mean(dim=1)`), each expert reading
/// its own 48-wide slice of the pooled feature; test-time logits are the training ones.
#[test]
fn the_logits_are_the_mean_of_the_experts() {
    let d = Device::flex();
    let net = ride_model(Arch::Resnet8, 4, 3, true).init(1, &d).unwrap().valid();
    let v: Vec<f32> = (0..2 * 3 * 32 * 32).map(|i| ((i as f64 * 0.017).sin()) as f32).collect();
    let x = Tensor::<4>::from_data(TensorData::new(v, [2, 3, 32, 32]), &d);
    let out = net.forward(x.clone());
    assert_eq!((out.features.dims(), out.feature_map.dims(), out.experts.len()), ([2, 144], [2, 144, 8, 8], 3));
    let flat = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let experts: Vec<Vec<f32>> = out.experts.iter().cloned().map(flat).collect();
    let mean = flat(out.logits.clone());
    for (i, m) in mean.iter().enumerate() {
        let want = experts.iter().map(|e| e[i]).sum::<f32>() / 3.0;
        assert!((m - want).abs() < 1e-6, "logit {i}: {m} vs {want}");
        assert!(experts.iter().all(|e| e[i].abs() <= 1.0 + 1e-6), "cosine logits");
    }
    assert_ne!(experts[0], experts[1], "the experts are initialised apart");
    assert_eq!(flat(net.predict(x)), mean);
}

/// H2T on a multi-expert model: one independent `int(p d)`-channel subset per expert's map (a
/// fresh `randperm` each, `methods.py` @ 5b366e2), so each block holds exactly that many; maps
/// that do not split into equal experts are refused.
#[test]
fn h2t_masks_every_expert_on_its_own() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mask = expert_channel_mask(0.4, 3 * 48, 3, &mut rng).unwrap();
    let blocks: Vec<&[bool]> = mask.chunks(48).collect();
    for b in &blocks {
        assert_eq!(b.iter().filter(|&&m| m).count(), fused_channels(0.4, 48));
    }
    assert_eq!(fused_channels(0.4, 48), 19);
    assert!(blocks[0] != blocks[1] || blocks[1] != blocks[2], "independent subsets");
    let single = expert_channel_mask(0.3, 64, 1, &mut rng).unwrap();
    assert_eq!(single.iter().filter(|&&m| m).count(), 19);
    let err = expert_channel_mask(0.4, 100, 3, &mut rng).unwrap_err().to_string();
    assert!(err.contains("equal expert maps"), "{err}");
}

#[test]
fn ride_and_ride_h2t_train_resume_exactly_and_refuse_bad_models() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let s = stage("ride", 4, LossSpec::ride(-0.45, Some(3), 0.05));
    let mut cfg = config(&tmp.path().join("data"), HeadConfig::Cosine, vec![s]);
    cfg.model.experts = Some(ExpertsConfig::default());
    let whole = train(&cfg, &opts(&tmp.path().join("whole"))).unwrap();
    let metrics = &whole.final_report.as_ref().unwrap().metrics;
    assert!(metrics.accuracy > 30.0, "accuracy {}", metrics.accuracy);
    // the report has every expert alone next to their mean
    assert_eq!(metrics.experts.iter().map(|e| e.expert).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(metrics.experts.iter().all(|e| (0.0..=100.0).contains(&e.accuracy) && e.shots.accuracy.iter().flatten().count() > 0));
    let dir = tmp.path().join("cut");
    train(&cfg, &RunOptions { max_epochs: Some(2), ..opts(&dir) }).unwrap();
    train(&cfg, &RunOptions { resume: true, ..opts(&dir) }).unwrap();
    let load = |run: &std::path::Path| common::all_weights(&load_run_network(run, &Device::flex()).unwrap().0);
    assert_eq!(load(&whole.run_dir), load(&dir), "resumed = uninterrupted");
    let dp = RunOptions { data_parallel: vec![Device::flex()], ..opts(&tmp.path().join("dp")) };
    assert!(train(&cfg, &dp).unwrap().finished);

    // stage II: the classifiers only, every expert's map fused (the backbone stays as trained)
    let mut s2 = stage("ride-h2t", 2, LossSpec::ride(-0.2, None, 0.05));
    (s2.sampler, s2.train) = (SamplerSpec::ClassBalanced, Trainable::Classifier);
    s2.h2t = Some(H2tConfig { ratio: 0.4, fusing_sampler: SamplerSpec::Instance });
    let mut h2t = cfg.clone();
    (h2t.stages, h2t.init_from) = (vec![s2], Some(RunSource::Run { run: whole.run_dir.clone() }));
    let fused = train(&h2t, &opts(&tmp.path().join("h2t"))).unwrap();
    assert!(fused.final_report.as_ref().unwrap().metrics.accuracy > 30.0);
    let backbone = |run: &std::path::Path| {
        let n = load_run_network(run, &Device::flex()).unwrap().0;
        common::all_weights(n.backbone().unwrap())
    };
    assert_eq!(backbone(&whole.run_dir), backbone(&fused.run_dir), "stage II trains the classifiers only");
    let cut = tmp.path().join("h2t-cut");
    train(&h2t, &RunOptions { max_epochs: Some(1), ..opts(&cut) }).unwrap();
    train(&h2t, &RunOptions { resume: true, ..opts(&cut) }).unwrap();
    assert_eq!(load(&fused.run_dir), load(&cut), "RIDE + H2T resumed = uninterrupted");

    let err = |c: &longtail_train::ExperimentConfig| train(c, &opts(&tmp.path().join("bad"))).map(|_| ()).unwrap_err().to_string();
    let mut none = cfg.clone();
    none.model.experts = Some(ExpertsConfig::ride(0));
    assert!(err(&none).contains("experts.count must be at least 1"), "{}", err(&none));
    let mut single = cfg.clone();
    single.model.experts = None;
    assert!(err(&single).contains("needs a multi-expert model"), "{}", err(&single));
    let mut linear = cfg.clone();
    linear.model.head = HeadConfig::Linear;
    assert!(err(&linear).contains("cosine"), "{}", err(&linear));
    let mut dual = cfg.clone();
    dual.model.head = HeadConfig::Dual { reweight_weight: 0.5 };
    assert!(err(&dual).contains("linear or a cosine classifier"), "{}", err(&dual));
    let mut bbn = cfg.clone();
    bbn.model.two_branch = true;
    assert!(err(&bbn).contains("does not combine with two_branch"), "{}", err(&bbn));
}

/// The registry's configs follow the authors' json files.
#[test]
fn ride_configs_follow_the_authors_json() {
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    let c = default_config("ride", Dataset::Cifar100Lt, 100.0).unwrap();
    let s = &c.stages[0];
    assert_eq!(c.model.experts, Some(ExpertsConfig::ride(3)));
    assert_eq!((s.epochs, s.batch_size, s.optimizer.weight_decay, s.optimizer.nesterov), (200, 128, 5e-4, true));
    assert_eq!(s.loss, LossSpec::ride(-0.45, Some(160), 0.05));
    // CustomLR: 0.1 (1 + k) / 5 for k < 5, x0.01 from k = 160, x0.0001 from 180
    let lr = |k: usize| s.lr.rate(k, 200, 0, 100);
    for (k, want) in [(0, 0.02), (4, 0.1), (159, 0.1), (160, 1e-3), (180, 1e-5)] {
        assert!((lr(k) - want).abs() < 1e-12, "epoch {k}: {} vs {want}", lr(k));
    }
    let ops = &c.data.train_transform.as_ref().unwrap().ops;
    assert!(ops.contains(&longtail_data::TransformOp::RandomRotation { degrees: 15.0 }));
    let inet = default_config("ride", Dataset::ImagenetLt, 1.0).unwrap();
    assert_eq!((inet.model.arch, inet.stages[0].epochs, inet.stages[0].batch_size), (Arch::Resnext50_32x4d, 100, 256));
    assert_eq!(inet.stages[0].loss, LossSpec::ride(-0.2, Some(80), 0.02));
    let inat = default_config("ride", Dataset::Inat2018, 1.0).unwrap();
    assert_eq!((inat.stages[0].batch_size, inat.stages[0].lr.base, inat.stages[0].loss.clone()), (512, 0.2, LossSpec::ride(-0.2, Some(80), 0.015)));
    let h2t = default_config("ride-h2t", Dataset::Cifar100Lt, 100.0).unwrap();
    let s = &h2t.stages[0];
    assert_eq!((s.epochs, s.batch_size, s.train.clone(), s.h2t.as_ref().unwrap().ratio), (10, 512, Trainable::Classifier, 0.4));
    assert!(h2t.data.train_transform.is_none() && matches!(h2t.init_from, Some(RunSource::Config { .. })));
}
