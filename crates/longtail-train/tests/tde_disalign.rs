//! De-confound-TDE's causal normalised classifier and DisAlign's calibrated classifier against
//! NumPy ports of the authors' code (tests/fixtures/tde_disalign_ref.py -> tde_disalign_ref.json,
//! float64): the training logits, the moving feature sum over three batches and its
//! learning-rate rule, the TDE logits (counterfactual subtraction) at alpha 1.5 and 0; DisAlign's
//! confidence, calibrated logits, generalised re-weighting weights, the weighted loss and its
//! gradient wrt the scales and shifts (central differences in float64). Then the stage surgery:
//! DisAlign on a linear head trains only its calibration, and bad head settings are refused.

use burn::module::{Param, RunningState};
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::{ClassWeighting, Loss, LossInputs, LossSpec, LossState};
use longtail_models::heads::{CausalNormConfig, CausalNormHead, DisAlignHead};
use longtail_models::{Arch, Head, HeadConfig, ModelConfig};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/tde_disalign_ref.json")).unwrap()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn matrix(m: &[Vec<f64>], d: &Device) -> Tensor<2> {
    let shape = [m.len(), m[0].len()];
    Tensor::from_data(TensorData::new(m.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>(), shape), d)
}

fn tensor1(v: &[f64], d: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [v.len()]), d)
}

/// `[C, D]` (the torch layout) to `[D, C]` (Burn's).
fn transposed(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..m[0].len()).map(|j| m.iter().map(|r| r[j]).collect()).collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: {g} vs the reference {w}");
    }
}

fn causal_head(r: &Value, d: &Device) -> CausalNormHead {
    let t = &r["tde"]["inputs"];
    let config = CausalNormConfig { heads: t["heads"].as_u64().unwrap() as usize, ..CausalNormConfig::with_alpha(t["alpha"].as_f64().unwrap()) };
    assert_eq!((config.tau, config.gamma, config.momentum), (t["tau"].as_f64().unwrap(), t["gamma"].as_f64().unwrap(), t["mu"].as_f64().unwrap()));
    let weight = transposed(&rows(&t["weight_cd"]));
    let mut init = longtail_models::init::Init::new(0, d);
    let mut head = CausalNormHead::init(&config, &mut init, weight.len(), weight[0].len());
    head.weight = Param::from_tensor(matrix(&weight, d));
    head
}

#[test]
fn causal_norm_training_logits_and_moving_average_match_the_authors_code() {
    let r = reference();
    let ad = Device::flex().autodiff();
    let head = causal_head(&r, &ad);
    let x = matrix(&rows(&r["tde"]["inputs"]["features"]), &ad);
    // a forward on a plain device (evaluation) does not move the average
    let plain = causal_head(&r, &Device::flex());
    let _ = plain.forward(x.clone().inner());
    assert!(values(plain.running_mean.value_sync()).iter().all(|&v| v == 0.0), "evaluation moved the feature sum");
    let want: Vec<f64> = rows(&r["tde"]["train_logits"]).concat();
    for batch in r["tde"]["inputs"]["batches"].as_array().unwrap() {
        let _ = head.forward(matrix(&rows(batch), &ad));
    }
    assert_close("moving feature sum", &values(head.running_mean.value_sync()), &vector(&r["tde"]["embed_after_batches"]), 1e-5);
    // the training logits do not depend on the moving sum
    assert_close("training logits", &values(head.forward(x).inner()), &want, 1e-5);
}

#[test]
fn tde_removes_the_head_direction_as_the_authors_code() {
    let r = reference();
    let d = Device::flex();
    let mut head = causal_head(&r, &d);
    head.running_mean = RunningState::new(tensor1(&vector(&r["tde"]["embed_after_batches"]), &d));
    let x = matrix(&rows(&r["tde"]["inputs"]["features"]), &d);
    let tde = values(head.predict(x.clone()));
    assert_close("TDE logits", &tde, &rows(&r["tde"]["tde_logits"]).concat(), 1e-5);
    // the counterfactual term changes the logits (the test can fail)
    let plain = values(head.forward(x.clone()));
    assert!(tde.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 0.1));
    head.alpha = 0.0;
    assert_close("alpha 0", &values(head.predict(x)), &rows(&r["tde"]["tde_logits_alpha0"]).concat(), 1e-5);
    assert_close("alpha 0 = training logits", &plain, &rows(&r["tde"]["tde_logits_alpha0"]).concat(), 1e-5);
}

#[test]
fn moving_average_momentum_follows_the_learning_rate_when_asked() {
    let r = reference();
    let d = Device::flex();
    for pair in r["tde"]["mu_for_lr"].as_array().unwrap() {
        let (lr, mu) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
        let mut head = causal_head(&r, &d);
        assert_eq!(head.clone().at_learning_rate(lr).mu, 0.9, "fixed momentum (CIFAR) at lr {lr}");
        head.momentum_follows_lr = true;
        assert!((head.at_learning_rate(lr).mu - mu).abs() < 1e-12, "lr {lr}: the code's mu is {mu}");
    }
}

fn disalign_head(r: &Value, d: &Device) -> DisAlignHead {
    let i = &r["disalign"]["inputs"];
    let fc = Linear {
        weight: Param::from_tensor(matrix(&transposed(&rows(&i["fc_weight_cd"])), d)),
        bias: Some(Param::from_tensor(tensor1(&vector(&i["fc_bias"]), d))),
    };
    let mut head = DisAlignHead::on(fc, &mut longtail_models::init::Init::new(3, d));
    head.confidence.bias = Some(Param::from_tensor(tensor1(&vector(&i["confidence_bias"]), d)));
    head
}

#[test]
fn disalign_calibration_and_generalized_reweighting_match_the_authors_code() {
    let r = reference();
    let i = &r["disalign"]["inputs"];
    let d = Device::flex().autodiff();
    let mut head = disalign_head(&r, &d);
    let x = matrix(&rows(&i["features"]), &d);
    // as the code starts: weight 0.1 confidence, scale 1, shift 0
    assert_close("logits at init", &values(head.forward(x.clone()).inner()), &rows(&r["disalign"]["logits_at_init"]).concat(), 1e-5);
    head.scale = Param::from_tensor(tensor1(&vector(&i["scale"]), &d));
    head.shift = Param::from_tensor(tensor1(&vector(&i["shift"]), &d));
    assert_close("confidence", &values(head.confidence(x.clone()).inner()), &vector(&r["disalign"]["confidence"]), 1e-6);
    let logits = head.forward(x);
    assert_close("calibrated logits", &values(logits.clone().inner()), &rows(&r["disalign"]["logits"]).concat(), 1e-5);

    let counts: Vec<usize> = vector(&i["counts"]).iter().map(|&c| c as usize).collect();
    let p = i["p"].as_f64().unwrap();
    assert_close("GRW weights", &ClassWeighting::Generalized { p }.weights(&counts), &vector(&r["disalign"]["grw_weights"]), 1e-12);
    let y: Vec<i64> = i["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(y, [4]), &d);
    let loss = Loss::new(&LossSpec::WeightedCe { weighting: ClassWeighting::Generalized { p } }, &counts, None, &d).unwrap();
    let inputs = LossInputs { logits, aux: None, features: None, targets, coarse_targets: None, experts: Vec::new() };
    let value = loss.forward(&inputs, LossState::new(0, 1)).unwrap();
    assert_close("GRW loss", &[value.clone().into_scalar::<f32>() as f64], &[r["disalign"]["loss"].as_f64().unwrap()], 1e-5);
    let grads = value.backward();
    assert_close("d loss / d scale", &values(head.scale.grad(&grads).unwrap()), &vector(&r["disalign"]["grad_scale"]), 1e-4);
    assert_close("d loss / d shift", &values(head.shift.grad(&grads).unwrap()), &vector(&r["disalign"]["grad_shift"]), 1e-4);
}

#[test]
fn disalign_stage_trains_only_the_calibration_on_the_frozen_classifier() {
    let d = Device::flex().autodiff();
    let model = ModelConfig::new(Arch::Resnet8, 1, 4, HeadConfig::Linear);
    let net = model.init(1, &d).unwrap();
    let before = net.head().unwrap().as_linear().unwrap().weight.val();
    let stage = longtail_train::methods::default_config("disalign", longtail_train::presets::Dataset::FashionMnistLt, 100.0).unwrap().stages.remove(0);
    assert_eq!(stage.head, longtail_train::config::HeadChange::DisAlign);
    assert_eq!(stage.train, longtail_train::config::Trainable::ClassifierShiftBn, "the method's own stage II trains the calibration only");
    let net = longtail_train::stage::change_head(net, &stage.head, &model, &[8, 4, 2, 1], 1, 1, &d).unwrap();
    let net = longtail_train::stage::set_trainable(net, &stage).unwrap();
    let Some(Head::DisAlign(h)) = net.head() else { panic!("not a DisAlign head: {:?}", net.head().map(Head::kind_name)) };
    // the frozen classifier is the stage-I one; the calibration starts as the code's
    assert_eq!(values(h.fc.weight.val().inner()), values(before.inner()));
    assert!(!h.fc.weight.is_require_grad() && h.scale.is_require_grad() && h.shift.is_require_grad() && h.confidence.weight.is_require_grad());
    assert!(values(h.confidence.weight.val().inner()).iter().all(|&w| (w - 0.1).abs() < 1e-7));
    let x = Tensor::<4>::ones([2, 1, 16, 16], &d);
    let loss = net.forward(x).logits.sum();
    let grads = loss.backward();
    let Some(Head::DisAlign(h)) = net.head() else { unreachable!() };
    assert!(h.fc.weight.grad(&grads).is_none(), "the stage-I classifier must stay frozen");
    assert!(h.scale.grad(&grads).is_some() && h.confidence.weight.grad(&grads).is_some());
    // and the backbone too: only the head's calibration has gradients
    let frozen = GradientsParams::from_grads(grads, &net);
    assert_eq!(frozen.len(), 4, "scale, shift, confidence weight and bias only ({} parameters with gradients)", frozen.len());
}

/// The presets carry the authors' numbers: TDE's alpha per dataset, its CIFAR and ImageNet-LT
/// schedules, DisAlign's stage II (10 epochs, wd 5e-4, instance sampling, p = 1.2).
#[test]
fn tde_and_disalign_presets_follow_the_authors_configs() {
    use longtail_train::methods::default_config;
    use longtail_train::presets::Dataset;
    let alpha = |ds| match default_config("tde", ds, 100.0).unwrap().model.head {
        HeadConfig::CausalNorm(c) => (c.alpha, c.momentum_follows_lr),
        other => panic!("tde on {ds:?}: head {other:?}"),
    };
    assert_eq!(alpha(Dataset::Cifar10Lt), (1.0, false));
    assert_eq!(alpha(Dataset::Cifar100Lt), (1.5, false));
    assert_eq!(alpha(Dataset::ImagenetLt), (3.0, true));
    assert_eq!(alpha(Dataset::PlacesLt), (3.0, true));
    let cifar = default_config("tde", Dataset::Cifar100Lt, 100.0).unwrap();
    let s = &cifar.stages[0];
    assert_eq!((s.epochs, s.batch_size, s.lr.base, s.lr.warmup_epochs, s.optimizer.weight_decay), (200, 256, 0.2, 5, 5e-4));
    let inet = default_config("tde", Dataset::ImagenetLt, 100.0).unwrap();
    assert_eq!(inet.model.arch, Arch::Resnext50_32x4d);
    assert_eq!((inet.stages[0].epochs, inet.stages[0].batch_size, inet.stages[0].lr.base), (90, 512, 0.2));
    let da = default_config("disalign", Dataset::ImagenetLt, 100.0).unwrap();
    let s = &da.stages[0];
    assert_eq!((s.epochs, s.optimizer.weight_decay, s.sampler.clone()), (10, 5e-4, longtail_data::SamplerSpec::Instance));
    assert_eq!(s.loss, LossSpec::WeightedCe { weighting: ClassWeighting::Generalized { p: 1.2 } });
}

#[test]
fn bad_causal_norm_settings_are_refused_naming_the_field() {
    let d = Device::flex();
    let bad = [
        (CausalNormConfig { heads: 5, ..CausalNormConfig::with_alpha(1.0) }, "head.heads"),
        (CausalNormConfig { heads: 0, ..CausalNormConfig::with_alpha(1.0) }, "head.heads"),
        (CausalNormConfig::with_alpha(-1.0), "head.alpha"),
        (CausalNormConfig { gamma: 0.0, ..CausalNormConfig::with_alpha(1.0) }, "head.gamma"),
        (CausalNormConfig { momentum: 1.0, ..CausalNormConfig::with_alpha(1.0) }, "head.momentum"),
    ];
    for (c, field) in bad {
        let e = ModelConfig::new(Arch::Resnet8, 1, 4, HeadConfig::CausalNorm(c)).init(1, &d).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    // an unknown key in the head table is an error, not ignored
    let toml = "arch = \"resnet8\"\nnum_classes = 4\nhead = { kind = \"causal-norm\", alpha = 1.0, alhpa = 2.0 }\n";
    assert!(toml::from_str::<ModelConfig>(toml).unwrap_err().to_string().contains("alhpa"));
}
