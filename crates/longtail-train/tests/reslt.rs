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
    let s = stage("reslt", 4, LossSpec::ResLt { beta: 0.9, medium_from: 1, tail_from: Some(2) });
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

    // the ImageNet model (convolution branches, tau-norm at test) learns and resumes exactly too
    let mut conv = cfg.clone();
    (conv.model.experts, conv.model.head) = (Some(ExpertsConfig::reslt_imagenet()), HeadConfig::TestTauNorm { tau: 0.7 });
    let conv_whole = train(&conv, &opts(&tmp.path().join("conv"))).unwrap();
    let conv_accuracy = conv_whole.final_report.as_ref().unwrap().metrics.accuracy;
    assert!(conv_accuracy > 30.0, "convolution branches: accuracy {conv_accuracy}");
    let conv_cut = tmp.path().join("conv-cut");
    train(&conv, &RunOptions { max_epochs: Some(2), ..opts(&conv_cut) }).unwrap();
    train(&conv, &RunOptions { resume: true, ..opts(&conv_cut) }).unwrap();
    assert_eq!(load(&conv_whole.run_dir), load(&conv_cut), "convolution branches: resumed = uninterrupted");
    let mut stray = cfg.clone();
    stray.model.head = HeadConfig::TestTauNorm { tau: 0.7 };

    // a folder per case: an error found once the data is read leaves its run folder behind
    let tries = std::cell::Cell::new(0);
    let err = |c: &longtail_train::ExperimentConfig| {
        tries.set(tries.get() + 1);
        train(c, &opts(&tmp.path().join(format!("bad{}", tries.get())))).map(|_| ()).unwrap_err().to_string()
    };
    assert!(err(&stray).contains("goes with model.experts.split = \"conv\""), "{}", err(&stray));
    let mut two = cfg.clone();
    two.model.experts = Some(ExpertsConfig { count: 2, ..ExpertsConfig::reslt() });
    assert!(err(&two).contains("needs a model with 3 branches"), "{}", err(&two));
    let mut empty = cfg.clone();
    empty.stages[0].loss = LossSpec::ResLt { beta: 0.9, medium_from: 1, tail_from: Some(4) };
    assert!(err(&empty).contains("a branch with no class"), "{}", err(&empty));
    let mut reduced = cfg.clone();
    reduced.model.experts = Some(ExpertsConfig { reduced_width: true, ..ExpertsConfig::reslt() });
    assert!(err(&reduced).contains("reduced_width applies to experts that own stages"), "{}", err(&reduced));
    let mut single = cfg.clone();
    single.model.experts = None;
    assert!(err(&single).contains("needs a multi-expert model"), "{}", err(&single));
}

/// ResLT's ImageNet model (`reslt_imagenet.py`) on a small backbone, against the formulas
/// computed here from its parts: training pools `relu(bn(conv1x1(map)))`, test pools first and
/// applies the ReLU after (`after_1x1conv`); branch `k` is the `k`-th third of the channels; the
/// shared classifier has its bias in training and is `W / ‖w_j‖^gamma` without bias at test. The
/// ResNeXt-50 model has the code's parameters: torchvision's 25,028,904 less its classifier,
/// plus the 2048 -> 6144 block (12,582,912 + 12,288) and the classifier (2,049,000).
#[test]
fn the_imagenet_branches_follow_the_code() {
    use longtail_models::{Backbone, Classifier, Head, MultiExpert, Network};
    let d = Device::flex();
    let cfg = ModelConfig { experts: Some(ExpertsConfig::reslt_imagenet()), ..ModelConfig::new(Arch::Resnet8, 3, 5, HeadConfig::TestTauNorm { tau: 0.7 }) };
    let net = cfg.init(4, &d).unwrap().valid();
    let v: Vec<f32> = (0..2 * 3 * 32 * 32).map(|i| ((i as f64 * 0.013).sin() + 0.3) as f32).collect();
    let x = Tensor::<4>::from_data(TensorData::new(v, [2, 3, 32, 32]), &d);
    let Network::Classifier(Classifier { backbone: Backbone::Experts(MultiExpert::Conv(b)), head: Head::Experts(h) }) = &net else { panic!("conv branches") };
    let map = b.base.forward(x.clone());
    let [n, c, hh, ww] = map.dims();
    // a fresh batch norm in inference mode divides by sqrt(1 + 1e-5); the 1x1 convolution is a matmul over channels
    let w = b.conv.weight.val().reshape([3 * c, c]).transpose();
    let bn = 1.0 / (1.0f64 + 1e-5).sqrt();
    let per_position = map.clone().reshape([n, c, hh * ww]).swap_dims(1, 2).matmul(w.clone().unsqueeze_dim(0)).mul_scalar(bn);
    let train_features = burn::tensor::activation::relu(per_position).mean_dim(1).reshape([n, 3 * c]);
    let pooled = map.reshape([n, c, hh * ww]).mean_dim(2).reshape([n, c]);
    let test_features = burn::tensor::activation::relu(pooled.matmul(w).mul_scalar(bn));
    let flat = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
        assert_eq!(a.len(), b.len());
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!((p - q).abs() <= 1e-4 * q.abs().max(1.0), "{what}[{i}]: {p} vs {q}");
        }
    };
    let out = net.forward(x.clone());
    close(flat(out.features.clone()), flat(train_features.clone()), "training features");
    assert_ne!(flat(train_features.clone()), flat(test_features.clone()), "the ReLU after pooling changes the features");
    let Head::TestTauNorm(fc) = &h.heads[0] else { panic!("the shared tau-norm-at-test classifier") };
    let (wc, bias) = (fc.fc.weight.val(), fc.fc.bias.as_ref().unwrap().val());
    let norm = wc.clone().powi_scalar(2).sum_dim(0).sqrt().powf_scalar(0.7);
    let branch = |f: &Tensor<2>, k: usize| f.clone().narrow(1, k * c, c);
    let mean = |z: Vec<Tensor<2>>| z.into_iter().reduce(|a, b| a + b).unwrap().div_scalar(3.0);
    let train_logits = mean((0..3).map(|k| branch(&train_features, k).matmul(wc.clone()) + bias.clone().unsqueeze_dim(0)).collect());
    close(flat(out.logits), flat(train_logits), "training logits");
    let test_logits = mean((0..3).map(|k| branch(&test_features, k).matmul(wc.clone() / norm.clone())).collect());
    close(flat(net.predict(x)), flat(test_logits), "test logits");
    let x50 = ModelConfig {
        experts: Some(ExpertsConfig::reslt_imagenet()),
        ..ModelConfig::new(Arch::Resnext50_32x4d, 3, 1000, HeadConfig::TestTauNorm { tau: 0.7 })
    };
    assert_eq!(x50.init(0, &d).unwrap().num_trainable_params(), 25_028_904 - 2_049_000 + 12_582_912 + 12_288 + 2_049_000);
}

/// The registry's configs: the scripts' beta and the code's split and schedule.
#[test]
fn reslt_configs_follow_the_authors_scripts() {
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    let loss = |d: Dataset, rho: f64| default_config("reslt", d, rho).unwrap().stages[0].loss.clone();
    assert_eq!(loss(Dataset::Cifar100Lt, 100.0), LossSpec::ResLt { beta: 0.995, medium_from: 35, tail_from: Some(70) });
    assert_eq!(loss(Dataset::Cifar100Lt, 50.0), LossSpec::ResLt { beta: 0.99, medium_from: 35, tail_from: Some(70) });
    assert_eq!(loss(Dataset::Cifar100Lt, 10.0), LossSpec::ResLt { beta: 0.72, medium_from: 35, tail_from: Some(70) });
    assert_eq!(loss(Dataset::Cifar10Lt, 100.0), LossSpec::ResLt { beta: 0.998, medium_from: 2, tail_from: Some(4) });
    assert_eq!(loss(Dataset::Cifar10Lt, 10.0), LossSpec::ResLt { beta: 0.96, medium_from: 2, tail_from: Some(4) });
    // ImageNet-LT's script: M on the 825 rarest classes, T on the 220 rarest
    assert_eq!(loss(Dataset::ImagenetLt, 1.0), LossSpec::ResLt { beta: 0.99, medium_from: 175, tail_from: Some(780) });
    // sh/X50.sh: ResNeXt-50 with the convolution branches, gamma 0.7, 180 epochs, batch 256, wd
    // 5e-4, plain SGD; lr 0.1 (e + 1) / 5 for e < 5, then 0.05 (1 + cos((e - 4) / 176 pi))
    let inet = default_config("reslt", Dataset::ImagenetLt, 1.0).unwrap();
    assert_eq!(
        (inet.model.arch, inet.model.experts.clone(), inet.model.head.clone()),
        (Arch::Resnext50_32x4d, Some(ExpertsConfig::reslt_imagenet()), HeadConfig::TestTauNorm { tau: 0.7 })
    );
    let s = &inet.stages[0];
    assert_eq!((s.epochs, s.batch_size, s.optimizer.weight_decay, s.optimizer.nesterov), (180, 256, 5e-4, false));
    let pi = std::f64::consts::PI;
    for (e, want) in [(0, 0.02), (4, 0.1), (5, 0.05 * (1.0 + (pi / 176.0).cos())), (179, 0.05 * (1.0 + (175.0 * pi / 176.0).cos()))] {
        let got = s.lr.rate(e, 180, 0, 100);
        assert!((got - want).abs() < 1e-12, "ImageNet-LT epoch {e}: {got} vs {want}");
    }
    // Inat/sh/R50.sh: ResNet-50, beta 0.85, M on the 6,600 rarest of 8,142, gamma 0.3, 200 epochs,
    // wd 1e-4, lr 0.05 (1 + cos(e / 200 pi))
    let inat = default_config("reslt", Dataset::Inat2018, 1.0).unwrap();
    let s = &inat.stages[0];
    assert_eq!(
        (inat.model.arch, inat.model.head.clone(), s.epochs, s.optimizer.weight_decay),
        (Arch::Resnet50, HeadConfig::TestTauNorm { tau: 0.3 }, 200, 1e-4)
    );
    assert_eq!(s.loss, LossSpec::ResLt { beta: 0.85, medium_from: 1542, tail_from: None });
    assert_eq!(inat.model.experts, Some(ExpertsConfig { count: 2, ..ExpertsConfig::reslt_imagenet() }), "two branches, as the script reads");
    for (e, want) in [(0, 0.1), (100, 0.05), (150, 0.05 * (1.0 + (0.75 * pi).cos()))] {
        assert!((s.lr.rate(e, 200, 0, 100) - want).abs() < 1e-12, "iNaturalist epoch {e}");
    }
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
    let mut cfg =
        config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("reslt", 2, LossSpec::ResLt { beta: 0.9, medium_from: 1, tail_from: Some(2) })]);
    cfg.model.experts = Some(ExpertsConfig::reslt());
    let first = train(&cfg, &opts(&tmp.path().join("reslt"))).unwrap();
    let mut s2 = stage("reslt-h2t", 2, LossSpec::ResLt { beta: 0.3, medium_from: 1, tail_from: Some(2) });
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
