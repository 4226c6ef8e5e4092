//! Losses against the authors' own PyTorch code on fixed inputs (tests/fixtures/authors_ref.py ->
//! authors_reference.json: the thesis authors' focal baseline, LDAM-DRW's focal loss, Cui et al.'s
//! CB-focal, KPSLoss, FeaBalLoss), values and autograd gradients in float64.

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::class_stats::kps_constants;
use longtail_losses::{ClassWeighting, Curriculum, FocalForm, KpsMargins, Loss, LossInputs, LossSpec, LossState};
use serde_json::Value;

const Z: [[f32; 5]; 4] = [[0.2, -0.5, 0.9, 0.1, -0.3], [0.7, 0.3, -0.2, 0.5, 0.0], [-0.6, 0.4, 0.8, -0.1, 0.35], [0.05, 0.6, -0.4, 0.25, -0.7]];
const Y: [i64; 4] = [0, 2, 4, 1];
const COUNTS: [usize; 5] = [500, 200, 50, 20, 5];

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/authors_reference.json")).unwrap()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()).collect()
}

fn matrix(v: &[Vec<f32>], d: &Device) -> Tensor<2> {
    let cols = v[0].len();
    Tensor::from_data(TensorData::new(v.iter().flatten().copied().collect::<Vec<_>>(), [v.len(), cols]), d)
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

struct Run {
    value: f64,
    grad: Vec<f32>,
    grad_features: Option<Vec<f32>>,
}

/// The loss, its gradient wrt the logits and (when given) wrt the features.
fn run(spec: &LossSpec, counts: &[usize], targets: &[i64], features: Option<Vec<Vec<f32>>>, state: LossState) -> Run {
    let d = Device::flex().autodiff();
    let z: Vec<Vec<f32>> = Z.iter().map(|r| r.to_vec()).collect();
    let logits = matrix(&z, &d).require_grad();
    let features = features.map(|f| matrix(&f, &d).require_grad());
    let targets: Tensor<1, Int> = Tensor::from_data(TensorData::new(targets.to_vec(), [targets.len()]), &d);
    let inputs = LossInputs { logits: logits.clone(), aux: None, features: features.clone(), targets, coarse_targets: None, experts: Vec::new() };
    let value = Loss::new(spec, counts, None, &d).unwrap().forward(&inputs, state).unwrap();
    let v: f32 = value.clone().into_scalar();
    let grads = value.backward();
    let flat = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    Run { value: v as f64, grad: flat(logits.grad(&grads).unwrap()), grad_features: features.map(|f| f.grad(&grads).map(flat).unwrap_or_default()) }
}

fn close(name: &str, what: &str, got: &[f32], expected: &[Vec<f32>]) {
    let expected: Vec<f32> = expected.iter().flatten().copied().collect();
    assert_eq!(got.len(), expected.len(), "{name}: {what} length");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!(g.is_finite(), "{name}: {what}[{i}] = {g}");
        assert!((g - e).abs() <= 2e-5 * e.abs().max(1.0), "{name}: {what}[{i}] {g} vs the authors' {e}");
    }
}

fn assert_matches(name: &str, out: &Run) {
    let r = &reference()[name];
    let value = r["value"].as_f64().unwrap();
    assert!((out.value - value).abs() < 2e-6 * value.abs().max(1.0), "{name}: value {} vs the authors' {value}", out.value);
    close(name, "grad", &out.grad, &rows(&r["grad"]));
    if let Some(g) = r.get("grad_0") {
        close(name, "grad wrt features", out.grad_features.as_ref().expect("features"), &rows(g));
    }
}

fn state() -> LossState {
    LossState::new(0, 10)
}

fn focal(gamma: f64, weighted: bool, form: FocalForm, detach: bool) -> LossSpec {
    LossSpec::Focal { gamma, weighting: weighted.then_some(ClassWeighting::EffectiveNumber { beta: 0.9999 }), form, detach }
}

#[test]
fn focal_as_the_thesis_authors_code_it_detaches_the_modulator() {
    for (name, gamma) in [("focal_thesis_g1", 1.0), ("focal_thesis_g2", 2.0)] {
        assert_matches(name, &run(&focal(gamma, false, FocalForm::Softmax, true), &COUNTS, &Y, None, state()));
    }
    assert_matches("focal_thesis_weighted_g1", &run(&focal(1.0, true, FocalForm::Softmax, true), &COUNTS, &Y, None, state()));
    // same values, other gradients: the detached form is not LDAM-DRW's
    let detached = run(&focal(1.0, false, FocalForm::Softmax, true), &COUNTS, &Y, None, state());
    let full = run(&focal(1.0, false, FocalForm::Softmax, false), &COUNTS, &Y, None, state());
    assert!((detached.value - full.value).abs() < 1e-6);
    assert!(detached.grad.iter().zip(&full.grad).any(|(a, b)| (a - b).abs() > 1e-2), "the two forms' gradients differ");
}

#[test]
fn focal_as_ldam_drw_codes_it_takes_p_from_the_weighted_ce() {
    assert_matches("focal_ldam_g1", &run(&focal(1.0, false, FocalForm::Softmax, false), &COUNTS, &Y, None, state()));
    assert_matches("focal_ldam_weighted_g1", &run(&focal(1.0, true, FocalForm::Softmax, false), &COUNTS, &Y, None, state()));
}

#[test]
fn cb_focal_as_cui_et_al_code_it_uses_one_sigmoid_per_class() {
    for (name, gamma) in [("cb_focal_cui_g0", 0.0), ("cb_focal_cui_g1", 1.0), ("cb_focal_cui_g2", 2.0)] {
        assert_matches(name, &run(&focal(gamma, true, FocalForm::Sigmoid, false), &COUNTS, &Y, None, state()));
    }
}

fn kps(margins: KpsMargins, scale_cap: f64) -> LossSpec {
    LossSpec::Kps { n_base: 50.0, max_margin: 0.2, base_scale: 15.0, ga_epoch: Some(5), scale_cap, margins }
}

#[test]
fn kps_reverses_the_radii_list_and_caps_the_scale_as_the_code_does() {
    let reference = reference();
    for (counts, lists) in [("kps_unsorted_counts", "kps_code_unsorted_lists"), ("kps_steep_counts", "kps_code_steep_lists")] {
        let counts = usizes(&reference[counts]);
        let (r, m, s) = kps_constants(&counts, 50.0, 0.2, 15.0, KpsMargins::Reversed);
        let s: Vec<f64> = s.iter().map(|v| v.clamp(15.0, 50.0)).collect();
        for (what, got) in [("r", &r), ("m", &m), ("s", &s)] {
            let expected: Vec<f64> = reference[lists][what].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-12 * e.abs().max(1.0), "{lists}.{what}: {got:?} vs {expected:?}");
            }
        }
    }
    let unsorted = usizes(&reference["kps_unsorted_counts"]);
    let steep = usizes(&reference["kps_steep_counts"]);
    assert_matches("kps_code_unsorted", &run(&kps(KpsMargins::Reversed, 50.0), &unsorted, &Y, None, LossState::new(4, 10)));
    assert_matches("kps_code_unsorted_ga", &run(&kps(KpsMargins::Reversed, 50.0), &unsorted, &Y, None, LossState::new(5, 10)));
    assert_matches("kps_code_steep_ga", &run(&kps(KpsMargins::Reversed, 50.0), &steep, &Y, None, LossState::new(5, 10)));
    // Eq. 3.28 on unsorted counts and an uncapped scale are other losses
    let thesis = run(&kps(KpsMargins::Thesis, 50.0), &unsorted, &Y, None, LossState::new(4, 10));
    assert!((thesis.value - reference["kps_code_unsorted"]["value"].as_f64().unwrap()).abs() > 1e-3);
    let uncapped = run(&kps(KpsMargins::Reversed, f64::INFINITY), &steep, &Y, None, LossState::new(5, 10));
    assert!((uncapped.value - reference["kps_code_steep_ga"]["value"].as_f64().unwrap()).abs() > 1e-3);
}

#[test]
fn kps_defaults_are_the_codes() {
    let spec: LossSpec = serde_json::from_str(r#"{"kind": "kps", "max_margin": 0.2}"#).unwrap();
    let LossSpec::Kps { scale_cap, margins, .. } = spec else { panic!("kps") };
    assert_eq!((scale_cap, margins), (50.0, KpsMargins::Reversed));
}

#[test]
fn fbl_at_a_zero_feature_row_has_torch_norms_gradient() {
    let reference = reference();
    let features = rows(&reference["fbl_zero_row_features"]);
    let targets: Vec<i64> = reference["fbl_zero_row_targets"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    let spec = LossSpec::Fbl { strength: 60.0, curriculum: Curriculum::Parabolic, end_fraction: 0.95 };
    let out = run(&spec, &COUNTS, &targets, Some(features), LossState::new(10, 20));
    assert_matches("fbl_zero_row", &out);
    assert!(out.grad_features.unwrap()[3..6].iter().all(|&g| g == 0.0), "torch.norm's gradient at 0 is 0");
}
