//! ResLT (Cui et al., TPAMI 2022): the three batch-norm branches and their shared classifier
//! against the authors' `ResLTResNet32` (jiequancui/ResLT `CIFAR/networks/resnet_cifar.py` @
//! 9650d93; parameter counts from their code and torch), the smallest end-to-end run with exact
//! resume, ResLT + H2T's fusion of the shared map, the configs, the bad inputs.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{config, opts, stage, write_data};
use longtail_losses::LossSpec;
use longtail_models::{Arch, ExpertsConfig, HeadConfig, ModelConfig};
use longtail_train::{RunOptions, load_run_network, train};

fn reslt_model(classes: usize) -> ModelConfig {
    ModelConfig { experts: Some(ExpertsConfig::reslt()), ..ModelConfig::new(Arch::Resnet32, 3, classes, HeadConfig::Linear) }
}

/// `sum(p.numel() for p in ResLTResNet32(num_classes).parameters())`: 464,538 and 470,388.
#[test]
fn the_branches_have_the_authors_shapes() {
    let d = Device::flex();
    assert_eq!(reslt_model(10).init(0, &d).unwrap().num_trainable_params(), 464_538);
    assert_eq!(reslt_model(100).init(0, &d).unwrap().num_trainable_params(), 470_388);
}

/// One backbone, three batch norms on its map, one linear classifier on each branch's pooled
/// feature (`self.linear(self.avgpool(cat((BNH, BNM, BNT), dim=0)))`): with the batch norms at
/// their initial state (identity in inference mode) the three branches' logits are equal.
#[test]
fn the_branches_share_the_backbone_and_the_classifier() {
    let d = Device::flex();
    let net = reslt_model(10).init(2, &d).unwrap().valid();
    let v: Vec<f32> = (0..2 * 3 * 32 * 32).map(|i| ((i as f64 * 0.011).cos()) as f32).collect();
    let out = net.forward(Tensor::<4>::from_data(TensorData::new(v, [2, 3, 32, 32]), &d));
    assert_eq!((out.feature_map.dims(), out.experts.len()), ([2, 192, 8, 8], 3));
    let flat = |t: &Tensor<2>| t.clone().into_data().try_to_vec::<f32>().unwrap();
    let (h, m, t) = (flat(&out.experts[0]), flat(&out.experts[1]), flat(&out.experts[2]));
    for i in 0..h.len() {
        assert!((h[i] - m[i]).abs() < 1e-5 && (h[i] - t[i]).abs() < 1e-5, "logit {i}");
    }
    assert_eq!(net.fusion_blocks(), 1, "H2T fuses the shared map before the branches");
}

#[test]
fn reslt_trains_resumes_exactly_and_refuses_bad_models() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    // the synthetic set's 4 classes by count: M on ranks 1.., T on 2..
    let s = stage("reslt", 4, LossSpec::ResLt { beta: 0.9, medium_from: 1, tail_from: 2 });
    let mut cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![s]);
    cfg.model.experts = Some(ExpertsConfig::reslt());
    let whole = train(&cfg, &opts(&tmp.path().join("whole"))).unwrap();
    let metrics = &whole.final_report.as_ref().unwrap().metrics;
    assert!(metrics.accuracy > 30.0, "accuracy {}", metrics.accuracy);
    assert_eq!(metrics.experts.len(), 3, "each branch alone in the report");
    let dir = tmp.path().join("cut");
    train(&cfg, &RunOptions { max_epochs: Some(2), ..opts(&dir) }).unwrap();
    train(&cfg, &RunOptions { resume: true, ..opts(&dir) }).unwrap();
    let load = |run: &std::path::Path| common::all_weights(&load_run_network(run, &Device::flex()).unwrap().0);
    assert_eq!(load(&whole.run_dir), load(&dir), "resumed = uninterrupted");

    // a folder per case: an error found once the data is read leaves its run folder behind
    let tries = std::cell::Cell::new(0);
    let err = |c: &longtail_train::ExperimentConfig| {
        tries.set(tries.get() + 1);
        train(c, &opts(&tmp.path().join(format!("bad{}", tries.get())))).map(|_| ()).unwrap_err().to_string()
    };
    let mut two = cfg.clone();
    two.model.experts = Some(ExpertsConfig { count: 2, ..ExpertsConfig::reslt() });
    assert!(err(&two).contains("needs a model with 3 branches"), "{}", err(&two));
    let mut empty = cfg.clone();
    empty.stages[0].loss = LossSpec::ResLt { beta: 0.9, medium_from: 1, tail_from: 4 };
    assert!(err(&empty).contains("a branch with no class"), "{}", err(&empty));
    let mut reduced = cfg.clone();
    reduced.model.experts = Some(ExpertsConfig { reduced_width: true, ..ExpertsConfig::reslt() });
    assert!(err(&reduced).contains("reduced_width applies to experts that own stages"), "{}", err(&reduced));
    let mut single = cfg.clone();
    single.model.experts = None;
    assert!(err(&single).contains("needs a multi-expert model"), "{}", err(&single));
}

/// The registry's configs: the scripts' beta and the code's split and schedule.
#[test]
fn reslt_configs_follow_the_authors_scripts() {
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    let loss = |d: Dataset, rho: f64| default_config("reslt", d, rho).unwrap().stages[0].loss.clone();
    assert_eq!(loss(Dataset::Cifar100Lt, 100.0), LossSpec::ResLt { beta: 0.995, medium_from: 35, tail_from: 70 });
    assert_eq!(loss(Dataset::Cifar100Lt, 50.0), LossSpec::ResLt { beta: 0.99, medium_from: 35, tail_from: 70 });
    assert_eq!(loss(Dataset::Cifar100Lt, 10.0), LossSpec::ResLt { beta: 0.72, medium_from: 35, tail_from: 70 });
    assert_eq!(loss(Dataset::Cifar10Lt, 100.0), LossSpec::ResLt { beta: 0.998, medium_from: 2, tail_from: 4 });
    assert_eq!(loss(Dataset::Cifar10Lt, 10.0), LossSpec::ResLt { beta: 0.96, medium_from: 2, tail_from: 4 });
    // ImageNet-LT's script: M on the 825 rarest classes, T on the 220 rarest
    assert_eq!(loss(Dataset::ImagenetLt, 1.0), LossSpec::ResLt { beta: 0.99, medium_from: 175, tail_from: 780 });
    let c = default_config("reslt", Dataset::Cifar100Lt, 100.0).unwrap();
    let s = &c.stages[0];
    assert_eq!((s.epochs, s.batch_size, s.optimizer.weight_decay, s.optimizer.nesterov), (200, 128, 5e-4, true));
    // 0.1 ((1 - f) / 3 + f), f = (e + 1) / 5, then 0.1, 0.01 from 160, 0.001 from 180
    let lr = |e: usize| s.lr.rate(e, 200, 0, 100);
    for (e, want) in [(0, 0.1 * (0.8 / 3.0 + 0.2)), (3, 0.1 * (0.2 / 3.0 + 0.8)), (4, 0.1), (159, 0.1), (160, 0.01), (180, 0.001)] {
        assert!((lr(e) - want).abs() < 1e-12, "epoch {e}: {} vs {want}", lr(e));
    }
}

/// ResLT + H2T's stage II: the backbone under the branches stays as trained, the branches'
/// batch norms and the classifier train (the H2T code's `ResClassifier`), and it resumes exactly.
#[test]
fn reslt_h2t_trains_the_branches_and_the_classifier_only() {
    use longtail_data::SamplerSpec;
    use longtail_models::{Backbone, MultiExpert, Network};
    use longtail_train::config::{H2tConfig, RunSource, Trainable};
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let mut cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("reslt", 2, LossSpec::ResLt { beta: 0.9, medium_from: 1, tail_from: 2 })]);
    cfg.model.experts = Some(ExpertsConfig::reslt());
    let first = train(&cfg, &opts(&tmp.path().join("reslt"))).unwrap();
    let mut s2 = stage("reslt-h2t", 2, LossSpec::ResLt { beta: 0.3, medium_from: 1, tail_from: 2 });
    (s2.sampler, s2.train) = (SamplerSpec::ClassBalanced, Trainable::Classifier);
    s2.h2t = Some(H2tConfig { ratio: 0.4, fusing_sampler: SamplerSpec::Instance });
    let mut h2t = cfg.clone();
    (h2t.stages, h2t.init_from) = (vec![s2], Some(RunSource::Run { run: first.run_dir.clone() }));
    let fused = train(&h2t, &opts(&tmp.path().join("h2t"))).unwrap();
    assert!(fused.final_report.as_ref().unwrap().metrics.accuracy > 30.0);
    let parts = |run: &std::path::Path| {
        let n = load_run_network(run, &Device::flex()).unwrap().0;
        let Network::Classifier(c) = n else { panic!("one backbone") };
        let Backbone::Experts(MultiExpert::BatchNorm(b)) = c.backbone else { panic!("batch-norm branches") };
        (common::all_weights(&b.base), common::all_weights(&b.branches), common::all_weights(&c.head))
    };
    let (before, after) = (parts(&first.run_dir), parts(&fused.run_dir));
    assert_eq!(before.0, after.0, "the backbone under the branches is frozen");
    assert_ne!(before.1, after.1, "the branches' batch norms train");
    assert_ne!(before.2, after.2, "the classifier trains");
    let cut = tmp.path().join("cut");
    train(&h2t, &RunOptions { max_epochs: Some(1), ..opts(&cut) }).unwrap();
    train(&h2t, &RunOptions { resume: true, ..opts(&cut) }).unwrap();
    let load = |run: &std::path::Path| common::all_weights(&load_run_network(run, &Device::flex()).unwrap().0);
    assert_eq!(load(&fused.run_dir), load(&cut), "resumed = uninterrupted");
}
