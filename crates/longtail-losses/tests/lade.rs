//! LADE against a line-by-line NumPy port of the authors' `LADELoss.py` + `PriorCELoss.py`
//! (hyperconnect/LADE; tests/fixtures/lade_ref.py -> lade_ref.json, float64): the PriorCE value,
//! the regulariser, the total and its gradient wrt the logits.

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::{Loss, LossInputs, LossSpec, LossState};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/lade_ref.json")).unwrap()
}

fn flat(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect()
}

/// (PriorCE, LADE total, gradient of the total) for `alpha`, `lambda`.
fn run(alpha: f64, lambda: f64) -> (f64, f64, Vec<f32>) {
    let r = reference();
    let d = Device::flex().autodiff();
    let z: Vec<f32> = flat(&r["inputs"]["logits"]).iter().map(|&x| x as f32).collect();
    let logits = Tensor::<2>::from_data(TensorData::new(z, [4, 5]), &d).require_grad();
    let y: Vec<i64> = r["inputs"]["labels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(y, [4]), &d);
    let counts: Vec<usize> = r["inputs"]["counts"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as usize).collect();
    let inputs = LossInputs { logits: logits.clone(), aux: None, features: None, targets, coarse_targets: None, experts: Vec::new() };
    let loss = Loss::new(&LossSpec::Lade { alpha, lambda }, &counts, None, &d).unwrap();
    let prior_ce: f32 = loss.per_sample(&inputs, LossState::new(0, 1)).unwrap().mean().into_scalar();
    let total = loss.forward(&inputs, LossState::new(0, 1)).unwrap();
    let value: f32 = total.clone().into_scalar();
    let grads = total.backward();
    (prior_ce as f64, value as f64, logits.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap())
}

fn close(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= 2e-6 * want.abs().max(1.0), "{what}: {got} vs the reference {want}");
}

#[test]
fn lade_matches_the_authors_code() {
    let r = reference();
    let (prior_ce, total, grad) = run(0.1, 0.1);
    close("PriorCE", prior_ce, r["prior_ce"].as_f64().unwrap());
    close("PriorCE + 0.1 LADER", total, r["total"].as_f64().unwrap());
    close("LADER", (total - prior_ce) / 0.1, r["lade_reg"].as_f64().unwrap());
    let want = flat(&r["grad_total_analytic"]);
    assert_eq!(grad.len(), want.len());
    for (i, (g, w)) in grad.iter().zip(&want).enumerate() {
        assert!((*g as f64 - w).abs() < 2e-6, "grad[{i}] {g} vs {w}");
    }
    // lambda 0.01 (the README's CIFAR-100-LT IF 100 command)
    let v = &r["lambda_0.01_variant"];
    let (_, total, _) = run(0.1, 0.01);
    close("total at lambda 0.01", total, v["total"].as_f64().unwrap());
}

#[test]
fn lade_without_its_regulariser_is_balanced_softmax() {
    let (prior_ce, total, _) = run(0.0, 0.1);
    assert_eq!(prior_ce, total);
    let err = Loss::new(&LossSpec::Lade { alpha: -1.0, lambda: 0.1 }, &[5, 3], None, &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("alpha"), "{err}");
}
