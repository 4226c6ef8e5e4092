//! H2T's fusion mask and paired sampling; FFN's stage II leaves both backbones untouched.

mod common;

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_data::{Sampler, SamplerSpec};
use longtail_losses::LossSpec;
use longtail_models::{HeadConfig, Network, weights};
use longtail_train::config::{FusionSources, RunSource, Trainable};
use longtail_train::data::DeviceBatch;
use longtail_train::h2t::{channel_mask, fuse, fused_channels, fused_forward, paired_orders};
use longtail_train::{RunOptions, train};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn the_mask_takes_int_p_times_d_channels() {
    assert_eq!(fused_channels(0.3, 64), 19);
    assert_eq!(fused_channels(0.25, 64), 16);
    assert_eq!(fused_channels(0.29, 100), 28); // int(0.29 * 100) in Python is 28 too
    assert_eq!(fused_channels(0.0, 64), 0);
    assert_eq!(fused_channels(1.0, 2048), 2048);
    assert_eq!(fused_channels(0.3, 2048), 614);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let a = channel_mask(0.3, 64, &mut rng);
    let b = channel_mask(0.3, 64, &mut rng);
    assert_eq!(a.iter().filter(|&&m| m).count(), 19);
    assert_ne!(a, b, "a new random subset for every batch");
}

#[test]
fn fusion_copies_exactly_the_masked_channels_from_the_fusing_map() {
    let d = Device::flex();
    let (n, c, h, w) = (3, 64, 2, 2);
    let balanced = Tensor::<1, Int>::arange(0..(n * c * h * w) as i64, &d).float().reshape([n, c, h, w]);
    let fusing = balanced.clone().neg().sub_scalar(1.0); // every value differs from the balanced map
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mask = channel_mask(0.3, c, &mut rng);
    let fused = fuse(balanced.clone(), fusing.clone(), &mask).into_data().try_to_vec::<f32>().unwrap();
    let b = balanced.into_data().try_to_vec::<f32>().unwrap();
    let f = fusing.into_data().try_to_vec::<f32>().unwrap();
    for i in 0..fused.len() {
        let channel = (i / (h * w)) % c;
        let expected = if mask[channel] { f[i] } else { b[i] };
        assert_eq!(fused[i], expected, "element {i} (channel {channel})");
    }
    let taken = (0..c).filter(|&ch| mask[ch]).count();
    assert_eq!((taken, c - taken), (19, 45), "19 channels from the fusing map, 45 kept");
}

#[test]
fn the_fused_forward_keeps_the_balanced_labels() {
    let d = Device::flex();
    let net = longtail_models::ModelConfig::new(longtail_models::Arch::Resnet8, 1, 4, HeadConfig::Linear).init(0, &d).unwrap();
    let batch = |labels: Vec<i64>, value: f32| DeviceBatch {
        images: Tensor::<4>::ones([labels.len(), 1, 32, 32], &d).mul_scalar(value),
        len: labels.len(),
        targets: Tensor::from_data(TensorData::new(labels.clone(), [labels.len()]), &d),
        coarse: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let fused = fused_forward(&net, batch(vec![3, 2, 1], 1.0), batch(vec![0, 0, 0, 0], -1.0), 0.3, &mut rng).unwrap();
    assert_eq!(fused.targets.into_data().convert::<i64>().try_to_vec::<i64>().unwrap(), vec![3, 2, 1]);
    assert_eq!(fused.output.features.dims(), [3, 64]);
    assert_eq!(fused.output.logits.dims(), [3, 4]);
}

#[test]
fn paired_sampling_draws_each_branch_from_its_sampler() {
    let labels: Vec<usize> = [800, 150, 40, 10].iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c, n)).collect();
    let balanced = Sampler::new(SamplerSpec::ClassBalanced, &labels, 4).unwrap();
    let instance = Sampler::new(SamplerSpec::Instance, &labels, 4).unwrap();
    let (b, i) = paired_orders(&balanced, &instance, 9, 0, 10);
    assert_eq!((b.len(), i.len()), (1000, 1000));
    let share = |order: &[usize], class: usize| order.iter().filter(|&&k| labels[k] == class).count() as f64 / order.len() as f64;
    for class in 0..4 {
        assert!((share(&b, class) - 0.25).abs() < 0.06, "balanced branch class {class}: {}", share(&b, class));
    }
    let mut sorted = i.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>(), "the fusing branch is an instance-wise epoch");
    assert!((share(&i, 0) - 0.8).abs() < 1e-12);
}

fn weights_of<M: Module>(m: &M) -> Vec<f32> {
    struct C(Vec<f32>);
    impl burn::module::ModuleVisitor for C {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.extend(p.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = C(Vec::new());
    m.visit(&mut c);
    c.0
}

#[test]
fn ffn_stage_two_leaves_both_backbones_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_data(&data);
    let opts = |dir: &std::path::Path| RunOptions {
        run_dir: dir.to_path_buf(),
        device: Device::flex(),
        resume: false,
        max_epochs: None,
        quiet: true,
        data_parallel: Vec::new(),
    };
    let ce = common::config(&data, HeadConfig::Linear, vec![common::stage("ce", 2, LossSpec::Ce)]);
    train(&ce, &opts(&tmp.path().join("ce"))).unwrap();
    let kps_loss = LossSpec::Kps { n_base: 50.0, max_margin: 0.2, base_scale: 15.0, ga_epoch: Some(1), scale_cap: 50.0, margins: Default::default() };
    let kps = common::config(&data, HeadConfig::Cosine, vec![common::stage("kps", 2, kps_loss)]);
    train(&kps, &opts(&tmp.path().join("kps"))).unwrap();

    let mut stage = common::stage("fusion", 2, LossSpec::Ldam { max_margin: 0.5, scale: 30.0 });
    stage.train = Trainable::Classifier;
    stage.sampler = SamplerSpec::ClassBalanced;
    let mut ffn = common::config(&data, HeadConfig::Cosine, vec![stage]);
    ffn.model.feature_fusion = Some(0.5);
    ffn.fusion = Some(FusionSources { first: RunSource::Run { run: tmp.path().join("kps") }, second: RunSource::Run { run: tmp.path().join("ce") } });
    let out = train(&ffn, &opts(&tmp.path().join("ffn"))).unwrap();
    assert!(out.finished);

    let d = Device::flex();
    let fused = weights::load(ffn.model.init(0, &d).unwrap(), &out.run_dir.join("checkpoints/final.bpk")).unwrap();
    let (kps_net, _) = longtail_train::load_run_network(&tmp.path().join("kps"), &d).unwrap();
    let (ce_net, _) = longtail_train::load_run_network(&tmp.path().join("ce"), &d).unwrap();
    let Network::FeatureFusion(f) = &fused else { panic!("FFN builds a fusion model") };
    assert_eq!(weights_of(&f.first), weights_of(kps_net.backbone().unwrap()), "the KPS backbone changed");
    assert_eq!(weights_of(&f.second), weights_of(ce_net.backbone().unwrap()), "the CE backbone changed");
    assert_ne!(weights_of(&f.head), weights_of(kps_net.head().unwrap()), "the fused classifier is trained");

    // a first network without a cosine head has no classifier to start from: an error, not a
    // random classifier trained on frozen backbones
    ffn.fusion = Some(FusionSources { first: RunSource::Run { run: tmp.path().join("ce") }, second: RunSource::Run { run: tmp.path().join("kps") } });
    let err = train(&ffn, &opts(&tmp.path().join("ffn-linear-first"))).unwrap_err().to_string();
    assert!(err.contains("cosine classifier") && err.contains("linear head"), "{err}");
}
