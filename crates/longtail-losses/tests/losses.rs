//! Loss values and gradients with respect to the logits against an independent NumPy
//! implementation (tests/fixtures/losses_ref.py -> losses_reference.json), plus identities.

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::class_stats::{hierarchical_factors, kps_constants};
use longtail_losses::{
    BranchSchedule, ClassWeighting, Curriculum, FocalForm, KpsMargins, LevelSplit, Loss, LossInputs, LossSpec, LossState, SmoothingShape, mg_lambda,
};
use serde_json::Value;

const Z: [[f32; 5]; 4] = [[0.2, -0.5, 0.9, 0.1, -0.3], [0.7, 0.3, -0.2, 0.5, 0.0], [-0.6, 0.4, 0.8, -0.1, 0.35], [0.05, 0.6, -0.4, 0.25, -0.7]];
const AUX: [[f32; 5]; 4] = [[0.3, 0.1, -0.2, 0.6, -0.4], [0.0, 0.2, 0.9, -0.3, 0.1], [0.5, -0.5, 0.2, 0.3, 1.1], [-0.2, 0.8, 0.1, 0.0, -0.6]];
const AUXC: [[f32; 2]; 4] = [[0.4, -0.1], [0.2, 0.5], [-0.3, 0.6], [0.9, 0.1]];
const F: [[f32; 3]; 4] = [[1.0, 2.0, 0.5], [0.2, 0.1, 0.3], [3.0, -1.0, 2.0], [0.5, 0.5, -0.5]];
const Y: [i64; 4] = [0, 2, 4, 1];
const YC: [i64; 4] = [0, 1, 1, 0];
const COUNTS: [usize; 5] = [500, 200, 50, 20, 5];
const COARSE: [usize; 2] = [700, 75];

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/losses_reference.json")).unwrap()
}

fn t2<const C: usize>(v: &[[f32; C]; 4], d: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.iter().flatten().copied().collect::<Vec<_>>(), [4, C]), d)
}

fn ints(v: &[i64], d: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), d)
}

struct Outcome {
    value: f64,
    grad: Vec<f32>,
    grad_aux: Option<Vec<f32>>,
}

#[derive(Clone, Copy)]
enum Aux {
    None,
    Dual,
    Coarse,
}

fn run(spec: &LossSpec, epoch: usize, total: usize, aux: Aux, coarse: bool) -> Outcome {
    let d = Device::flex().autodiff();
    let logits = t2(&Z, &d).require_grad();
    let aux = match aux {
        Aux::None => None,
        Aux::Dual => Some(t2(&AUX, &d).require_grad()),
        Aux::Coarse => Some(t2(&AUXC, &d).require_grad()),
    };
    let loss = Loss::new(spec, &COUNTS, Some(&COARSE), &d).unwrap();
    let inputs = LossInputs {
        logits: logits.clone(),
        aux: aux.clone(),
        features: Some(t2(&F, &d)),
        targets: ints(&Y, &d),
        coarse_targets: coarse.then(|| ints(&YC, &d)),
        experts: Vec::new(),
    };
    let value = loss.forward(&inputs, LossState::new(epoch, total)).unwrap();
    let v: f32 = value.clone().into_scalar();
    let grads = value.backward();
    let g = logits.grad(&grads).map(|g| g.into_data().try_to_vec::<f32>().unwrap()).unwrap_or_else(|| vec![0.0; 20]);
    let ga = aux.and_then(|a| a.grad(&grads)).map(|g| g.into_data().try_to_vec::<f32>().unwrap());
    Outcome { value: v as f64, grad: g, grad_aux: ga }
}

fn flat(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect()
}

fn assert_case(name: &str, out: &Outcome) {
    let r = &reference()[name];
    let value = r["value"].as_f64().unwrap();
    assert!((out.value - value).abs() < 2e-5 * value.abs().max(1.0), "{name}: value {} vs {value}", out.value);
    for (i, (g, e)) in out.grad.iter().zip(flat(&r["grad"])).enumerate() {
        assert!((*g as f64 - e).abs() < 2e-4 * e.abs().max(1.0), "{name}: grad[{i}] {g} vs {e}");
    }
    if let Some(expected) = r.get("grad_aux") {
        let ga = out.grad_aux.as_ref().unwrap_or_else(|| panic!("{name}: no gradient reached the second head"));
        for (i, (g, e)) in ga.iter().zip(flat(expected)).enumerate() {
            assert!((*g as f64 - e).abs() < 2e-4 * e.abs().max(1.0), "{name}: grad_aux[{i}] {g} vs {e}");
        }
    }
}

fn check(name: &str, spec: LossSpec) {
    assert_case(name, &run(&spec, 0, 10, Aux::None, false));
}

#[test]
fn cross_entropy_family() {
    check("ce", LossSpec::Ce);
    check("weighted_ce_effnum", LossSpec::WeightedCe { weighting: ClassWeighting::EffectiveNumber { beta: 0.9999 } });
    check("weighted_ce_inverse", LossSpec::WeightedCe { weighting: ClassWeighting::InverseFrequency });
    let focal = |gamma: f64, weighting: Option<ClassWeighting>| LossSpec::Focal { gamma, weighting, form: FocalForm::Softmax, detach: false };
    check("focal_g1", focal(1.0, None));
    check("focal_g2", focal(2.0, None));
    check("cb_focal_g1", focal(1.0, Some(ClassWeighting::EffectiveNumber { beta: 0.9999 })));
    check("label_smoothing_0.1", LossSpec::LabelSmoothing { epsilon: 0.1 });
    check("las_0.4_0.1", LossSpec::LabelAwareSmoothing { head: 0.4, tail: 0.1, shape: SmoothingShape::Concave });
}

#[test]
fn margin_and_logit_adjusted_losses() {
    check("ldam", LossSpec::Ldam { max_margin: 0.5, scale: 30.0 });
    check("balanced_softmax", LossSpec::BalancedSoftmax);
    check("logit_adjusted_1", LossSpec::LogitAdjusted { tau: 1.0 });
    check("logit_adjusted_0.5", LossSpec::LogitAdjusted { tau: 0.5 });
    check("cdt_0.2", LossSpec::Cdt { gamma: 0.2 });
}

#[test]
fn kps_before_and_after_gradient_adjustment() {
    let spec = LossSpec::Kps { n_base: 50.0, max_margin: 0.5, base_scale: 15.0, ga_epoch: Some(5), scale_cap: f64::INFINITY, margins: KpsMargins::Thesis };
    assert_case("kps", &run(&spec, 4, 10, Aux::None, false));
    assert_case("kps_ga", &run(&spec, 5, 10, Aux::None, false));
    // GA scales each sample's gradient by s_y / s_base at the same point (softmax aside): the
    // tail sample (class 4) gets the largest factor, the head sample (class 0) keeps s_base.
    let (_, _, s) = kps_constants(&COUNTS, 50.0, 0.5, 15.0, KpsMargins::Thesis);
    assert!((s[0] - 15.0).abs() < 1e-12);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "scales grow toward the tail: {s:?}");
}

#[test]
fn kps_constants_match_the_thesis_worked_example() {
    // Thesis §3.4, CIFAR-10-LT rho = 100
    let counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
    let (r, m, s) = kps_constants(&counts, 50.0, 0.5, 15.0, KpsMargins::Thesis);
    let er = [2.177, 2.046, 1.915, 1.785, 1.654, 1.523, 1.392, 1.261, 1.130, 1.000];
    let em = [0.230, 0.260, 0.290, 0.320, 0.350, 0.380, 0.410, 0.440, 0.470, 0.500];
    let es = [15.00, 16.96, 18.93, 20.89, 22.85, 24.81, 26.77, 28.74, 30.71, 32.66];
    for i in 0..10 {
        assert!((r[i] - er[i]).abs() < 6e-3 && (m[i] - em[i]).abs() < 6e-3 && (s[i] - es[i]).abs() < 6e-2, "class {i}");
    }
    // on CIFAR-LT's exponential profile the code's reversed radii are Eq. 3.28 (to the rounding of
    // the integer counts)
    let (_, m_code, s_code) = kps_constants(&counts, 50.0, 0.5, 15.0, KpsMargins::Reversed);
    for i in 0..10 {
        assert!((m_code[i] - m[i]).abs() < 2e-3 && (s_code[i] - s[i]).abs() < 5e-2, "class {i}: {} vs {}", m_code[i], m[i]);
    }
}

#[test]
fn fbl_follows_its_curriculum() {
    let spec = LossSpec::Fbl { strength: 60.0, curriculum: Curriculum::Parabolic, end_fraction: 0.95 };
    assert_case("fbl_e0", &run(&spec, 0, 20, Aux::None, false));
    assert_case("fbl_e10", &run(&spec, 10, 20, Aux::None, false));
    // at epoch 0 the stimulus is off: FBL equals CE
    assert!((run(&spec, 0, 20, Aux::None, false).value - reference()["ce"]["value"].as_f64().unwrap()).abs() < 1e-5);
    // the stimulus reaches the backbone through the feature norm: d loss / d features at epoch 10
    let d = Device::flex().autodiff();
    let features = t2(&F, &d).require_grad();
    let loss = Loss::new(&spec, &COUNTS, None, &d).unwrap();
    let inputs =
        LossInputs { logits: t2(&Z, &d), aux: None, features: Some(features.clone()), targets: ints(&Y, &d), coarse_targets: None, experts: Vec::new() };
    let grads = loss.forward(&inputs, LossState::new(10, 20)).unwrap().backward();
    let g = features.grad(&grads).expect("FBL's gradient flows into the features").into_data().try_to_vec::<f32>().unwrap();
    let expected = flat(&reference()["fbl_e10"]["grad_features"]);
    assert_eq!(g.len(), expected.len());
    for (i, (g, e)) in g.iter().zip(&expected).enumerate() {
        assert!((*g as f64 - e).abs() < 2e-4 * e.abs().max(1.0), "fbl_e10: grad_features[{i}] {g} vs {e}");
    }
    assert_eq!(Curriculum::Parabolic.value(0.5), 0.25);
    assert_eq!(Curriculum::Linear.value(0.5), 0.5);
    assert!((Curriculum::Sine.value(1.0) - 1.0).abs() < 1e-12);
}

#[test]
fn gcl_deterministic_part_and_noise() {
    let s30 = LossSpec::Gcl { scale: 30.0, noise_mul: 0.5, sigma: 0.0, margin: 0.0, focal_gamma: 0.0 };
    check("gcl_nonoise_s30", s30);
    let s20 = LossSpec::Gcl { scale: 20.0, noise_mul: 0.5, sigma: 0.0, margin: 0.1, focal_gamma: 0.0 };
    check("gcl_nonoise_s20_m0.1", s20);
    // with noise, the same step seed draws the same cloud and the mean loss rises (tail logits
    // are lowered); other seeds draw other clouds (gcl_noise_is_drawn_per_step)
    let noisy = LossSpec::Gcl { scale: 30.0, noise_mul: 0.5, sigma: 1.0 / 3.0, margin: 0.0, focal_gamma: 0.0 };
    let a = run(&noisy, 0, 10, Aux::None, false).value;
    let b = run(&noisy, 0, 10, Aux::None, false).value;
    assert_eq!(a, b, "the same step seed draws the same cloud");
    assert!(a > reference()["gcl_nonoise_s30"]["value"].as_f64().unwrap(), "clouds lower the logits of non-head classes");
}

#[test]
fn gcl_cloud_shifts_logits_by_the_expected_amount() {
    // Only the rarest class gets a full cloud: the mean shift of its logit is
    // noise_mul * E|clamp(N(0, sigma), -1, 1)| ≈ 0.5 * sigma * sqrt(2/pi); the head class gets none.
    let d = Device::flex();
    let n = 20_000;
    let counts = [1000, 10];
    let loss_for = |sigma: f64| Loss::new(&LossSpec::Gcl { scale: 1.0, noise_mul: 0.5, sigma, margin: 0.0, focal_gamma: 0.0 }, &counts, None, &d).unwrap();
    let zeros = Tensor::<2>::zeros([n, 2], &d);
    // target = class 0 (head): per-sample CE = log(1 + exp(z1 - z0)) with z0 exact and z1 = -shift
    let inputs = LossInputs { logits: zeros, aux: None, features: None, targets: Tensor::<1, Int>::zeros([n], &d), coarse_targets: None, experts: Vec::new() };
    let per = loss_for(1.0 / 3.0).per_sample(&inputs, LossState::new(0, 1)).unwrap();
    let values = per.into_data().try_to_vec::<f32>().unwrap();
    // invert: shift = -ln(exp(l) - 1)
    let mean_shift = values.iter().map(|&l| -((l as f64).exp() - 1.0).ln()).sum::<f64>() / n as f64;
    let expected = 0.5 * (1.0 / 3.0) * (2.0 / std::f64::consts::PI).sqrt();
    assert!((mean_shift - expected).abs() < 0.004, "mean shift {mean_shift} vs {expected}");
}

#[test]
fn hrdc_loss_value_and_gradients_on_both_heads() {
    let spec = LossSpec::Hrdc { gamma: 0.2, levels: LevelSplit::Rank { head: 2, medium: 1 }, schedule: BranchSchedule::Quadratic, reweight_loss: None };
    assert_case("hrdc_e4_of_10", &run(&spec, 4, 10, Aux::Dual, false));
}

#[test]
fn hrdc_schedules_and_factors() {
    // alpha = ((T - T_max) / T_max)^2 with T = epoch + 1
    let q = BranchSchedule::Quadratic;
    assert!((q.alpha(0, 200) - 0.990025).abs() < 1e-12);
    assert!((q.alpha(99, 200) - 0.25).abs() < 1e-12);
    assert_eq!(q.alpha(199, 200), 0.0);
    assert_eq!(BranchSchedule::Equal.alpha(7, 200), 0.5);
    assert_eq!(BranchSchedule::Segmented { switch_fraction: 0.6 }.alpha(119, 200), 1.0);
    assert_eq!(BranchSchedule::Segmented { switch_fraction: 0.6 }.alpha(120, 200), 0.0);
    assert!((BranchSchedule::Cosine.alpha(99, 200) - (std::f64::consts::FRAC_PI_4).cos()).abs() < 1e-12);
    // Spec 001 §4.7: CIFAR-10-LT IF 100, gamma 0.2, rank split 3/4/3
    let counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
    let a_h = hierarchical_factors(&counts, 0.2, &LevelSplit::Rank { head: 3, medium: 4 });
    let expected = [1.0, 1.1078, 1.1117, 1.3594, 1.5062, 1.5954, 1.5954, 2.0473, 2.2698, 2.2763];
    for (a, e) in a_h.iter().zip(expected) {
        assert!((a - e).abs() < 1e-4, "{a_h:?}");
    }
}

#[test]
fn multi_granularity_phases_values_and_gradients() {
    let spec = LossSpec::MultiGranularity { coarse_epochs: 2, fine_epochs: 4, magnitude_scaling: false, drw_epoch: None };
    // lambda = 0.75 at t with 1 - ((t + 1 - 2) / 4)^2 = 0.75 -> t = 3 (total 10: joint phase 2..5)
    assert_eq!(mg_lambda(3, 10, 2, 4), 0.75);
    assert_case("mg_joint_0.75", &run(&spec, 3, 10, Aux::Coarse, true));
    let drw = LossSpec::MultiGranularity { coarse_epochs: 2, fine_epochs: 4, magnitude_scaling: false, drw_epoch: Some(8) };
    assert_case("mg_fine_drw", &run(&drw, 8, 10, Aux::Coarse, true));
    // coarse-only phase: the fine logits get no gradient
    let coarse_only = run(&spec, 1, 10, Aux::Coarse, true);
    assert!(coarse_only.grad.iter().all(|g| *g == 0.0));
    // the spec's worked values with E_c = 40, E_f = 90 of 200
    assert!((mg_lambda(60, 200, 40, 90) - 0.910).abs() < 1e-3);
    assert!((mg_lambda(74, 200, 40, 90) - 0.75).abs() < 1e-3);
    assert_eq!(mg_lambda(39, 200, 40, 90), 1.0);
    assert_eq!(mg_lambda(109, 200, 40, 90), 0.0);
    assert_eq!(mg_lambda(110, 200, 40, 90), 0.0);
}

/// MGKT's magnitude scaling (`L = λ L_c + (1-λ) s L_f`, `s = 10^(floor(log10 mean L_c) -
/// floor(log10 mean L_f))`, a constant for the gradient), at λ = 0.75. The fine logits are the
/// Z fixture with `shift` added to each target logit, so the fine loss is far below or far above
/// the coarse one (mean L_c = 0.4352). Expected values from NumPy (float64 on the float32 inputs).
#[test]
fn multi_granularity_magnitude_scaling() {
    let spec = LossSpec::MultiGranularity { coarse_epochs: 2, fine_epochs: 4, magnitude_scaling: true, drw_epoch: None };
    let cases: [(f32, f64, f64, [f64; 5]); 2] = [
        // mean L_f = 0.010426 -> s = 10^(-1 - (-2)) = 10
        (6.0, 10.0, 0.352_443_337_788_740_04, [-0.006_169_011_33, 0.000_761_726_575, 0.003_088_953_51, 0.001_387_956_32, 0.000_930_374_929]),
        // mean L_f = 13.333 -> s = 10^(-1 - 1) = 0.01
        (-12.0, 0.01, 0.359_711_260_697_842_8, [-0.000_624_999_045, 7.717_255_76e-5, 0.000_312_950_146, 0.000_140_617_568, 9.425_877_36e-5]),
    ];
    for (shift, s, value, grad_row0) in cases {
        let d = Device::flex().autodiff();
        let mut z = Z;
        for (row, &y) in z.iter_mut().zip(&Y) {
            row[y as usize] += shift;
        }
        let logits = t2(&z, &d).require_grad();
        let loss = Loss::new(&spec, &COUNTS, Some(&COARSE), &d).unwrap();
        let inputs = LossInputs {
            logits: logits.clone(),
            aux: Some(t2(&AUXC, &d)),
            features: None,
            targets: ints(&Y, &d),
            coarse_targets: Some(ints(&YC, &d)),
            experts: Vec::new(),
        };
        let out = loss.forward(&inputs, LossState::new(3, 10)).unwrap();
        let v: f32 = out.clone().into_scalar();
        assert!((v as f64 - value).abs() < 2e-5 * value, "s = {s}: value {v} vs {value}");
        let g = logits.grad(&out.backward()).unwrap().into_data().try_to_vec::<f32>().unwrap();
        // (1 - λ) s (softmax - onehot) / N: s scales the gradient and is not differentiated
        for (i, (g, e)) in g.iter().zip(grad_row0).enumerate() {
            assert!((*g as f64 - e).abs() < 2e-4 * e.abs(), "s = {s}: grad[{i}] {g} vs {e}");
        }
    }
}

#[test]
fn identities_that_must_hold() {
    let d = Device::flex();
    let inputs = |d: &Device| LossInputs { logits: t2(&Z, d), aux: None, features: None, targets: ints(&Y, d), coarse_targets: None, experts: Vec::new() };
    let value = |spec: &LossSpec, counts: &[usize]| -> f32 {
        Loss::new(spec, counts, None, &d).unwrap().forward(&inputs(&d), LossState::new(0, 1)).unwrap().into_scalar()
    };
    let ce = value(&LossSpec::Ce, &COUNTS);
    // LDAM with zero margins and scale 1 is CE
    assert!((value(&LossSpec::Ldam { max_margin: 0.0, scale: 1.0 }, &COUNTS) - ce).abs() < 1e-6);
    // balanced softmax / logit adjustment / CDT / inverse-frequency weighting with equal counts are CE
    let equal = [7; 5];
    assert!((value(&LossSpec::BalancedSoftmax, &equal) - ce).abs() < 1e-6);
    assert!((value(&LossSpec::LogitAdjusted { tau: 1.0 }, &equal) - ce).abs() < 1e-6);
    assert!((value(&LossSpec::Cdt { gamma: 0.5 }, &equal) - ce).abs() < 1e-6);
    assert!((value(&LossSpec::WeightedCe { weighting: ClassWeighting::InverseFrequency }, &equal) - ce).abs() < 1e-6);
    // focal with gamma 0 and label smoothing with epsilon 0 are CE
    for detach in [false, true] {
        assert!((value(&LossSpec::Focal { gamma: 0.0, weighting: None, form: FocalForm::Softmax, detach }, &COUNTS) - ce).abs() < 1e-6);
    }
    assert!((value(&LossSpec::LabelSmoothing { epsilon: 0.0 }, &COUNTS) - ce).abs() < 1e-6);
    // CDT with gamma 0 and HRDC with gamma 0 at its last epoch (alpha = 0) are CE
    assert!((value(&LossSpec::Cdt { gamma: 0.0 }, &COUNTS) - ce).abs() < 1e-6);
}

#[test]
fn bad_hyperparameters_and_missing_inputs_are_errors() {
    let d = Device::flex();
    assert!(Loss::new(&LossSpec::LabelSmoothing { epsilon: 1.5 }, &COUNTS, None, &d).is_err());
    assert!(Loss::new(&LossSpec::Ce, &[10, 0, 3], None, &d).unwrap_err().to_string().contains("at least one training image"));
    let mg = LossSpec::MultiGranularity { coarse_epochs: 1, fine_epochs: 1, magnitude_scaling: false, drw_epoch: None };
    assert!(Loss::new(&mg, &COUNTS, None, &d).unwrap_err().to_string().contains("hierarchy"));
    let hrdc =
        Loss::new(&LossSpec::Hrdc { gamma: 0.2, levels: LevelSplit::RankThirds, schedule: BranchSchedule::Quadratic, reweight_loss: None }, &COUNTS, None, &d)
            .unwrap();
    let inputs = LossInputs { logits: t2(&Z, &d), aux: None, features: None, targets: ints(&Y, &d), coarse_targets: None, experts: Vec::new() };
    let err = hrdc.forward(&inputs, LossState::new(0, 2)).unwrap_err();
    assert!(err.to_string().contains("dual"), "{err}");
}

#[test]
fn evaluation_uses_the_scale_the_loss_puts_on_cosine_logits() {
    let ldam: LossSpec = json_spec(r#"{"kind": "ldam"}"#);
    assert_eq!(ldam.eval_logit_scale(), 30.0, "LDAM's default s");
    let gcl: LossSpec = json_spec(r#"{"kind": "gcl", "scale": 16.0}"#);
    assert_eq!(gcl.eval_logit_scale(), 16.0);
    assert_eq!(LossSpec::Ce.eval_logit_scale(), 1.0);
    assert_eq!(LossSpec::BalancedSoftmax.eval_logit_scale(), 1.0);
}

fn json_spec(text: &str) -> LossSpec {
    serde_json::from_str(text).expect("valid loss spec")
}

#[test]
fn gcl_noise_is_drawn_per_step() {
    let d = Device::flex();
    let noisy = LossSpec::Gcl { scale: 30.0, noise_mul: 0.5, sigma: 1.0 / 3.0, margin: 0.0, focal_gamma: 0.0 };
    let loss = Loss::new(&noisy, &COUNTS, None, &d).unwrap();
    let inputs = LossInputs { logits: t2(&Z, &d), aux: None, features: None, targets: ints(&Y, &d), coarse_targets: None, experts: Vec::new() };
    let at = |seed: u64| -> f64 {
        let v: f32 = loss.forward(&inputs, LossState { epoch: 0, total_epochs: 10, seed }).unwrap().into_scalar();
        v as f64
    };
    let values: Vec<f64> = (0..4).map(at).collect();
    assert_eq!(at(2), values[2], "a step's seed fixes its cloud");
    for i in 0..4 {
        for j in i + 1..4 {
            assert!((values[i] - values[j]).abs() > 1e-6, "seeds {i} and {j} drew the same cloud: {values:?}");
        }
    }
    // sigma = 0 turns the cloud off: every seed gives the deterministic loss
    let clean = Loss::new(&LossSpec::Gcl { scale: 30.0, noise_mul: 0.5, sigma: 0.0, margin: 0.0, focal_gamma: 0.0 }, &COUNTS, None, &d).unwrap();
    let expected = reference()["gcl_nonoise_s30"]["value"].as_f64().unwrap();
    for seed in [0, 7, 99] {
        let v: f32 = clean.forward(&inputs, LossState { epoch: 0, total_epochs: 10, seed }).unwrap().into_scalar();
        let v = v as f64;
        assert!((v - expected).abs() < 2e-5 * expected.max(1.0), "seed {seed}: {v} vs {expected}");
    }
}
