//! Shapes, parameter counts, gradients, seeded initialisation and checkpoint round trips.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use longtail_models::csms::{Csms, FusionWeight, WeightedPath};
use longtail_models::init::Init;
use longtail_models::weights::{load, load_safetensors, save, save_safetensors};
use longtail_models::{Arch, HeadConfig, ModelConfig, ModelError, Network};

fn device() -> Device {
    Device::flex()
}

fn input(n: usize, c: usize, side: usize, device: &Device) -> Tensor<4> {
    Tensor::random([n, c, side, side], Distribution::Normal(0.0, 1.0), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn resnet32_shapes_for_rgb_and_grayscale() {
    let d = device();
    for channels in [3, 1] {
        let model = ModelConfig::new(Arch::Resnet32, channels, 10, HeadConfig::Linear).init(0, &d).unwrap();
        let out = model.valid().forward(input(2, channels, 32, &d));
        assert_eq!(out.feature_map.dims(), [2, 64, 8, 8]);
        assert_eq!(out.features.dims(), [2, 64]);
        assert_eq!(out.logits.dims(), [2, 10]);
        assert!(out.aux.is_none());
    }
}

#[test]
fn bottleneck_and_csms_backbones_give_their_feature_maps() {
    let d = device();
    for (arch, side, map) in [(Arch::Resnet50, 64, [1, 2048, 2, 2]), (Arch::Resnext50_32x4d, 64, [1, 2048, 2, 2]), (Arch::CsmsResnet, 32, [1, 640, 2, 2])] {
        let model = ModelConfig::new(arch, 3, 7, HeadConfig::Linear).init(1, &d).unwrap();
        let out = model.valid().forward(input(1, 3, side, &d));
        assert_eq!(out.feature_map.dims(), map, "{arch:?}");
        assert_eq!(out.logits.dims(), [1, 7]);
    }
}

#[test]
fn every_head_gives_its_outputs() {
    let d = device();
    let x = input(3, 3, 32, &d);
    let build = |head| ModelConfig::new(Arch::Resnet20, 3, 10, head).init(2, &d).unwrap().valid();

    let cosine = build(HeadConfig::Cosine).forward(x.clone());
    let v = values(cosine.logits);
    assert!(v.iter().all(|c| (-1.0001..=1.0001).contains(c)), "cosines {v:?}");

    let dual = build(HeadConfig::Dual { reweight_weight: 0.75 });
    let out = dual.forward(x.clone());
    let (plain, reweight) = (values(out.logits), values(out.aux.expect("dual head has two outputs")));
    let fused = values(dual.predict(x.clone()));
    for i in 0..fused.len() {
        assert!((fused[i] - (0.25 * plain[i] + 0.75 * reweight[i])).abs() < 1e-5);
    }

    let cf = build(HeadConfig::CoarseFine { num_coarse: 4 }).forward(x.clone());
    assert_eq!(cf.logits.dims(), [3, 10]);
    assert_eq!(cf.aux.unwrap().dims(), [3, 4]);

    let lws = build(HeadConfig::Lws);
    let lin = build(HeadConfig::Linear);
    // same seed, same linear layer; LWS scales start at 1
    assert_eq!(values(lws.predict(x.clone())), values(lin.predict(x.clone())));

    let tau = build(HeadConfig::TauNorm { tau: 0.0 });
    // tau = 0 is the plain linear layer without its bias
    let (t, l) = (values(tau.predict(x.clone())), values(lin.predict(x.clone())));
    let bias = values(lin.head().unwrap().as_linear().unwrap().bias.as_ref().unwrap().val());
    for i in 0..t.len() {
        assert!((t[i] + bias[i % 10] - l[i]).abs() < 1e-4, "{i}: {} {} {}", t[i], bias[i % 10], l[i]);
    }
}

#[test]
fn feature_fusion_mixes_normalised_features_of_two_backbones() {
    let d = device();
    let mut config = ModelConfig::new(Arch::Resnet20, 3, 5, HeadConfig::Cosine);
    config.feature_fusion = Some(0.9);
    let model = config.init(3, &d).unwrap().valid();
    let out = model.forward(input(2, 3, 32, &d));
    assert_eq!(out.logits.dims(), [2, 5]);
    // ‖0.9 a + 0.1 b‖ <= 1 for unit a, b, so |logit| <= 1
    assert!(values(out.logits).iter().all(|v| v.abs() <= 1.0001));
    let Network::FeatureFusion(ffn) = &model else { panic!("expected FFN") };
    assert_eq!(ffn.first_weight, 0.9);
    // it has no one feature map for H2T to merge
    let err = model.forward_combined(input(2, 3, 32, &d), input(2, 3, 32, &d), |a, _| a).unwrap_err().to_string();
    assert!(err.contains("single-backbone"), "{err}");
    // its classifier can be replaced by another cosine classifier, by nothing else
    let linear = ModelConfig::new(Arch::Resnet20, 3, 5, HeadConfig::Linear).init_head(1, &d);
    let err = model.clone().with_head(linear).unwrap_err().to_string();
    assert!(err.contains("cosine classifier") && err.contains("linear head"), "{err}");
    let cosine = config.init_head(1, &d);
    let longtail_models::Head::Cosine(expected) = cosine.clone() else { panic!("a cosine head") };
    let Network::FeatureFusion(swapped) = model.with_head(cosine).unwrap() else { panic!("still FFN") };
    assert_eq!(values(swapped.head.weight.val()), values(expected.weight.val()));
}

#[test]
fn parameter_counts_match_torchvision() {
    let d = device();
    let count = |arch, classes| ModelConfig::new(arch, 3, classes, HeadConfig::Linear).init(0, &d).unwrap().num_trainable_params();
    assert_eq!(count(Arch::Resnet50, 1000), 25_557_032);
    assert_eq!(count(Arch::Resnet152, 1000), 60_192_808);
    assert_eq!(count(Arch::Resnext50_32x4d, 1000), 25_028_904);
    assert_eq!(count(Arch::Resnet32, 10), 464_154);
    // CSMS-ResNet: 12,974,904 backbone parameters (550,584 in the CSMS modules) + a 640x100 head
    assert_eq!(count(Arch::CsmsResnet, 100), 13_039_004);
}

#[test]
fn forward_and_backward_on_the_cpu_backend() {
    let d = device().autodiff();
    let model = ModelConfig::new(Arch::Resnet32, 3, 10, HeadConfig::Linear).init(0, &d).unwrap();
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 3, 5, 7], [4]), &d);
    let out = model.forward(input(4, 3, 32, &d));
    let loss = burn::tensor::loss::cross_entropy_with_logits(out.logits, y.one_hot(10).float());
    let grads = loss.backward();
    let Network::Classifier(c) = &model else { panic!() };
    let longtail_models::Backbone::ResNetCifar(b) = &c.backbone else { panic!() };
    let g = b.conv1.weight.grad(&grads).expect("stem weight has a gradient");
    let g = values(g);
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|v| *v != 0.0));
}

fn all_weights(model: &Network) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.extend(p.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

#[test]
fn the_same_seed_gives_identical_initial_weights() {
    let d = device();
    let config = ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Cosine);
    let a = all_weights(&config.init(42, &d).unwrap());
    let b = all_weights(&config.init(42, &d).unwrap());
    let c = all_weights(&config.init(43, &d).unwrap());
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Kaiming-normal fan-in for the 3x3x3 stem: std = sqrt(2/27) ≈ 0.272
    let stem = &a[..16 * 27];
    let std = (stem.iter().map(|v| v * v).sum::<f32>() / stem.len() as f32).sqrt();
    assert!((std - 0.272).abs() < 0.03, "stem std {std}");
}

#[test]
fn checkpoints_round_trip_to_identical_logits() {
    let d = device();
    let dir = tempfile::tempdir().unwrap();
    let config = ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Dual { reweight_weight: 0.75 });
    let model = config.init(7, &d).unwrap();
    let x = input(2, 3, 32, &d);
    let expected = values(model.valid().predict(x.clone()));

    let path = dir.path().join("model.bpk");
    save(&model, &path).unwrap();
    let loaded = load(config.init(99, &d).unwrap(), &path).unwrap();
    assert_eq!(values(loaded.valid().predict(x.clone())), expected);

    let st = dir.path().join("model.safetensors");
    save_safetensors(&model, &st).unwrap();
    let loaded = load_safetensors(config.init(98, &d).unwrap(), &st).unwrap();
    assert_eq!(values(loaded.valid().predict(x)), expected);
}

#[test]
fn mismatched_missing_and_corrupt_checkpoints_are_errors() {
    let d = device();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bpk");
    save(&ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Linear).init(0, &d).unwrap(), &path).unwrap();

    let other = ModelConfig::new(Arch::Resnet20, 3, 5, HeadConfig::Linear).init(0, &d).unwrap();
    let err = load(other, &path).unwrap_err();
    assert!(matches!(err, ModelError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("head"), "the message names the key: {err}");

    let err = load(ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Linear).init(0, &d).unwrap(), &dir.path().join("none.bpk")).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");

    let junk = dir.path().join("junk.bpk");
    std::fs::write(&junk, b"definitely not a checkpoint").unwrap();
    let err = load(ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Linear).init(0, &d).unwrap(), &junk).unwrap_err();
    assert!(matches!(err, ModelError::Read { .. }), "{err}");
}

#[test]
fn invalid_configs_name_the_field() {
    let d = device();
    let err = ModelConfig::new(Arch::Resnet32, 3, 1, HeadConfig::Linear).init(0, &d).unwrap_err();
    assert!(err.to_string().contains("num_classes"), "{err}");
    let err = ModelConfig::new(Arch::Resnet32, 3, 10, HeadConfig::Dual { reweight_weight: 1.5 }).init(0, &d).unwrap_err();
    assert!(err.to_string().contains("reweight_weight"), "{err}");
    let mut ffn = ModelConfig::new(Arch::Resnet32, 3, 10, HeadConfig::Linear);
    ffn.feature_fusion = Some(0.5);
    assert!(ffn.init(0, &d).unwrap_err().to_string().contains("cosine"));
}

fn set4(init: &mut Init, shape: [usize; 4], v: &[f64]) -> Param<Tensor<4>> {
    let _ = init;
    Param::from_tensor(Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape), &device()))
}

fn set1(v: &[f64]) -> Option<Param<Tensor<1>>> {
    Some(Param::from_tensor(Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [v.len()]), &device())))
}

/// A CSMS module with hand-set weights (4 channels, reduction 2), evaluated in inference mode
/// (batch norm = x / sqrt(1 + 1e-5)), against values from an independent NumPy implementation.
#[test]
fn csms_module_matches_hand_computed_values() {
    let d = device();
    let build = |fw, wp| {
        let mut init = Init::new(0, &d);
        let mut m = Csms::init(&mut init, 4, 2, fw, wp);
        m.local.pw1.weight = set4(&mut init, [2, 4, 1, 1], &[0.5, -0.2, 0.1, 0.3, -0.4, 0.25, 0.2, -0.1]);
        m.local.pw1.bias = set1(&[0.05, -0.02]);
        m.local.pw2.weight = set4(&mut init, [4, 2, 1, 1], &[0.3, -0.1, 0.2, 0.4, -0.5, 0.1, 0.15, -0.25]);
        m.local.pw2.bias = set1(&[0.01, 0.02, -0.03, 0.0]);
        m.global.pw1.weight = set4(&mut init, [2, 4, 1, 1], &[0.2, 0.1, -0.3, 0.05, 0.1, -0.2, 0.4, 0.3]);
        m.global.pw1.bias = set1(&[0.0, 0.1]);
        m.global.pw2.weight = set4(&mut init, [4, 2, 1, 1], &[-0.2, 0.3, 0.1, 0.1, 0.25, -0.15, 0.05, 0.2]);
        m.global.pw2.bias = set1(&[0.02, -0.01, 0.0, 0.03]);
        m.spatial.weight = set4(&mut init, [1, 2, 1, 1], &[0.6, -0.35]);
        m.valid()
    };
    let x_d = Tensor::<1, Int>::arange(0..16, &d).float().div_scalar(10.0).reshape([1, 4, 2, 2]);
    let x_p = Tensor::<1, Int>::arange(0..16, &d).float().flip([0]).div_scalar(20.0).sub_scalar(0.3).reshape([1, 4, 2, 2]);
    let close = |got: Vec<f32>, want: &[f64]| {
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-5, "got {got:?}\nwant {want:?}");
        }
    };
    let m = build(FusionWeight::SigmoidTimesM, WeightedPath::Shortcut);
    close(values(m.weight(x_d.clone(), x_p.clone())), &[-0.035952398859779064, -0.03735261789420876, -0.038748256641545936, -0.0401393162018123]);
    close(
        values(m.forward(x_d.clone(), x_p.clone())),
        &[
            0.46617857948690056,
            0.41120578536826263,
            0.35581223849623195,
            0.3,
            0.24460714017103316,
            0.1887942146317374,
            0.13256328451130436,
            0.07591641027891265,
            0.023035700855165687,
            -0.03361735610478789,
            -0.09068566947362322,
            -0.14816717944217472,
            -0.19853573846070172,
            -0.2560289268413131,
            -0.31393462345855083,
            -0.3722507691632621,
        ],
    );
    let m = build(FusionWeight::Sigmoid, WeightedPath::Shortcut);
    close(values(m.weight(x_d.clone(), x_p.clone())), &[0.4813354203497318, 0.48057871479438596, 0.4798220983285149, 0.479065574411766]);
    let m = build(FusionWeight::SigmoidTimesM, WeightedPath::Residual);
    close(
        values(m.forward(x_d, x_p)),
        &[
            -0.01617857948690058,
            0.08879421463173738,
            0.19418776150376815,
            0.3,
            0.4053928598289669,
            0.5112057853682627,
            0.6174367154886957,
            0.7240835897210872,
            0.8269642991448343,
            0.9336173561047879,
            1.0406856694736233,
            1.1481671794421748,
            1.2485357384607014,
            1.356028926841313,
            1.4639346234585509,
            1.5722507691632621,
        ],
    );
}

/// HRDC's inference fusions on fixed logits: tail (λ = 0.75, the default), average (0.5) and head
/// (0.25) fusion give `(1 - λ) · plain + λ · reweight`; values worked out by hand.
#[test]
fn dual_head_fusion_modes_on_fixed_logits() {
    use burn::nn::Linear;
    use longtail_models::heads::DualHead;
    let d = device();
    // identity features, so each row of a weight matrix is that sample's logits
    let fixed = |rows: [[f32; 3]; 3]| Linear { weight: Param::from_tensor(Tensor::<2>::from_data(TensorData::new(rows.concat(), [3, 3]), &d)), bias: None };
    let plain = [[2.0, 1.0, 0.0], [0.5, -1.0, 1.0], [0.0, 0.0, 0.0]];
    let reweight = [[0.0, 1.0, 3.0], [1.5, 1.0, -1.0], [0.0, 0.0, 0.0]];
    let features = Tensor::<2>::from_data(TensorData::new(vec![1f32, 0., 0., 0., 1., 0., 0., 0., 1.], [3, 3]), &d);
    let cases: [(f64, [f32; 6], [usize; 2]); 3] =
        [(0.75, [0.5, 1.0, 2.25, 1.25, 0.5, -0.5], [2, 0]), (0.5, [1.0, 1.0, 1.5, 1.0, 0.0, 0.0], [2, 0]), (0.25, [1.5, 1.0, 0.75, 0.75, -0.5, 0.5], [0, 0])];
    for (lambda, expected, argmax) in cases {
        let head = longtail_models::Head::Dual(DualHead { plain: fixed(plain), reweight: fixed(reweight), reweight_weight: lambda });
        let fused = head.predict(features.clone());
        let v = values(fused.clone());
        for (i, e) in expected.iter().enumerate() {
            assert!((v[i] - e).abs() < 1e-6, "lambda {lambda}: logit {i} = {} (expected {e})", v[i]);
        }
        assert!(v[6..].iter().all(|x| *x == 0.0));
        let pred = fused.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!([pred[0] as usize, pred[1] as usize], argmax, "lambda {lambda}");
        // training still sees both branches separately
        let out = head.forward(features.clone());
        assert_eq!(values(out.logits)[..3], [2.0, 1.0, 0.0]);
        assert_eq!(values(out.aux.unwrap())[..3], [0.0, 1.0, 3.0]);
    }
}

fn json_matrix(v: &serde_json::Value, d: &Device) -> Tensor<2> {
    let rows: Vec<Vec<f32>> = v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()).collect();
    let cols = rows[0].len();
    Tensor::from_data(TensorData::new(rows.concat(), [rows.len(), cols]), d)
}

/// The cosine head on a batch with an all-zero feature row (a ReLU network can pool to exactly
/// 0) against PyTorch's `NormedLinear` (tests/fixtures/normed_linear_ref.py): same cosines, and the
/// same finite gradients, where `sqrt'(0)` would put NaN into every weight.
#[test]
fn cosine_head_at_a_zero_feature_row_has_pytorchs_gradients() {
    let r: serde_json::Value = serde_json::from_str(include_str!("fixtures/normed_linear_reference.json")).unwrap();
    let d = device().autodiff();
    let x = json_matrix(&r["x"], &d).require_grad();
    let head = longtail_models::heads::CosineHead { weight: Param::from_tensor(json_matrix(&r["weight"], &d)) };
    let out = head.forward(x.clone());
    let grads = (out.clone() * json_matrix(&r["g"], &d)).sum().backward();
    let close = |what: &str, got: Tensor<2>, expected: &serde_json::Value| {
        let (got, expected) = (values(got), values(json_matrix(expected, &device())));
        for (g, e) in got.iter().zip(&expected) {
            assert!(g.is_finite() && (g - e).abs() <= 1e-5 * e.abs().max(1.0), "{what}: {got:?} vs PyTorch's {expected:?}");
        }
    };
    close("cosines", out, &r["out"]);
    close("gradient wrt the features", x.grad(&grads).unwrap(), &r["grad_x"]);
    close("gradient wrt the weight", head.weight.grad(&grads).unwrap(), &r["grad_weight"]);
}
