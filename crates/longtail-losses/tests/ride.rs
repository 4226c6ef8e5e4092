//! RIDE's loss against the authors' own `RIDELoss` (frank-xwang/RIDE-LongTailRecognition
//! `model/loss.py` @ ab8be5c) on fixed inputs: tests/fixtures/ride_reslt_ref.py ->
//! ride_reslt_reference.json, values and autograd gradients in float64. Three experts' cosine
//! logits `C_k`; the authors' model hands the loss `x_k = 30 C_k` and their mean.

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::{Loss, LossInputs, LossSpec, LossState};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/ride_reslt_reference.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        x => vec![x.as_f64().unwrap()],
    }
}

/// The loss and its gradient wrt every expert's cosine logits (flattened, expert-major).
fn run(spec: &LossSpec, epoch: usize) -> (f64, Vec<f64>) {
    let r = reference();
    let d = Device::flex().autodiff();
    let counts: Vec<usize> = floats(&r["ride_counts"]).iter().map(|&n| n as usize).collect();
    let y: Vec<i64> = floats(&r["ride_targets"]).iter().map(|&t| t as i64).collect();
    let cos = floats(&r["ride_cos"]);
    let (n, c) = (y.len(), counts.len());
    let experts: Vec<Tensor<2>> = cos
        .chunks(n * c)
        .map(|e| Tensor::<2>::from_data(TensorData::new(e.iter().map(|&v| v as f32).collect::<Vec<_>>(), [n, c]), &d).require_grad())
        .collect();
    let mean = experts.iter().cloned().reduce(|a, b| a + b).unwrap().div_scalar(experts.len() as f64);
    let targets: Tensor<1, Int> = Tensor::from_data(TensorData::new(y, [n]), &d);
    let inputs = LossInputs { experts: experts.clone(), ..LossInputs::new(mean, targets) };
    let value = Loss::new(spec, &counts, None, &d).unwrap().forward(&inputs, LossState::new(epoch, 200)).unwrap();
    let v: f32 = value.clone().into_scalar();
    let grads = value.backward();
    let grad = experts.iter().flat_map(|e| e.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap()).map(|g| g as f64).collect();
    (v as f64, grad)
}

fn check(name: &str, spec: &LossSpec, epoch: usize) {
    let r = reference();
    let (value, grad) = run(spec, epoch);
    let expected = r[name]["value"].as_f64().unwrap();
    assert!((value - expected).abs() <= 2e-5 * expected.abs().max(1.0), "{name}: {value} vs the authors' {expected}");
    let eg = floats(&r[name]["grad_C"]);
    assert_eq!(grad.len(), eg.len(), "{name}: gradient length");
    for (i, (g, e)) in grad.iter().zip(&eg).enumerate() {
        assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{name}: grad[{i}] {g} vs the authors' {e}");
    }
}

/// The CIFAR-100 config: diversity -0.45, re-weighting from epoch 161 (0-based 160).
fn cifar(diversity: f64) -> LossSpec {
    LossSpec::ride(diversity, Some(160), 0.05)
}

#[test]
fn ride_loss_matches_the_authors_code_before_and_after_reweighting() {
    // 0-based 0 and 159 are the code's epochs 1 and 160 (still unweighted), 160 its epoch 161
    check("ride_a_s30_epoch1", &cifar(-0.45), 0);
    check("ride_a_s30_epoch160", &cifar(-0.45), 159);
    check("ride_a_s30_epoch161", &cifar(-0.45), 160);
}

#[test]
fn without_diversity_the_base_loss_is_on_the_mean_once_per_expert() {
    check("ride_b_s30_epoch1", &cifar(0.0), 0);
    check("ride_b_s30_epoch161", &cifar(0.0), 160);
}

#[test]
fn without_reweighting_nothing_changes_with_the_epoch() {
    let spec = LossSpec::ride(-0.45, None, 0.05);
    let (early, _) = run(&spec, 0);
    let (late, _) = run(&spec, 199);
    assert_eq!(early, late);
    let (weighted_early, _) = run(&cifar(-0.45), 0);
    assert!((early - weighted_early).abs() < 1e-5, "before its epoch re-weighting changes nothing");
}

#[test]
fn the_per_class_temperature_is_the_codes() {
    let r = reference();
    let counts: Vec<usize> = floats(&r["ride_counts"]).iter().map(|&n| n as usize).collect();
    let t = longtail_core::class_stats::ride_temperature(&counts, 1.0, 0.05);
    for (a, b) in t.iter().zip(floats(&r["ride_constants"]["diversity_temperature_161"])) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    assert!((mean - r["ride_constants"]["temperature_mean_161"].as_f64().unwrap()).abs() < 1e-12);
}

#[test]
fn a_model_without_experts_is_refused_by_name() {
    let d = Device::flex();
    let inputs = LossInputs::new(Tensor::<2>::zeros([2, 3], &d), Tensor::from_data(TensorData::new(vec![0i64, 1], [2]), &d));
    let err = Loss::new(&cifar(-0.45), &[5, 3, 1], None, &d).unwrap().forward(&inputs, LossState::new(0, 10)).unwrap_err();
    assert!(err.to_string().contains("expert"), "{err}");
}
