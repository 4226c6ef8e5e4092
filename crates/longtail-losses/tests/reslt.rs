//! ResLT's loss against the authors' own code (jiequancui/ResLT `CIFAR/cifarTrain_reslt_cifar10.py`
//! @ 9650d93, `crossEntropy` and the loss of `Train`) on fixed inputs: tests/fixtures/
//! ride_reslt_ref.py -> ride_reslt_reference.json, values and gradients in float64. CIFAR-10's
//! split: branch M on classes 2.., T on 4...

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::{Loss, LossInputs, LossSpec, LossState};
use serde_json::Value;

/// CIFAR-10-LT IF 100's counts: decreasing, so the frequency rank is the class index.
const COUNTS: [usize; 10] = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/ride_reslt_reference.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        x => vec![x.as_f64().unwrap()],
    }
}

fn run(spec: &LossSpec, counts: &[usize]) -> (f64, Vec<Vec<f64>>) {
    let r = reference();
    let d = Device::flex().autodiff();
    let y: Vec<i64> = floats(&r["reslt_targets"]).iter().map(|&t| t as i64).collect();
    let n = y.len();
    let branch = |key: &str| {
        let v: Vec<f32> = floats(&r[key]).iter().map(|&x| x as f32).collect();
        Tensor::<2>::from_data(TensorData::new(v, [n, 10]), &d).require_grad()
    };
    let z = vec![branch("reslt_zH"), branch("reslt_zM"), branch("reslt_zT")];
    let mean = (z[0].clone() + z[1].clone() + z[2].clone()).div_scalar(3.0);
    let targets: Tensor<1, Int> = Tensor::from_data(TensorData::new(y, [n]), &d);
    let inputs = LossInputs { experts: z.clone(), ..LossInputs::new(mean, targets) };
    let value = Loss::new(spec, counts, None, &d).unwrap().forward(&inputs, LossState::new(0, 200)).unwrap();
    let v: f32 = value.clone().into_scalar();
    let grads = value.backward();
    let g = z.iter().map(|t| t.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()).collect();
    (v as f64, g)
}

#[test]
fn reslt_loss_matches_the_authors_code() {
    let r = reference();
    for beta in [0.998, 0.5] {
        let name = format!("reslt_cifar10_beta{beta}");
        let (value, grads) = run(&LossSpec::ResLt { beta, medium_from: 2, tail_from: Some(4) }, &COUNTS);
        let want = r[&name]["value"].as_f64().unwrap();
        assert!((value - want).abs() <= 2e-5 * want.abs().max(1.0), "{name}: {value} vs the authors' {want}");
        for (b, g) in ["grad_zH", "grad_zM", "grad_zT"].iter().zip(&grads) {
            let e = floats(&r[&name][*b]);
            assert_eq!(e.len(), g.len());
            for (i, (a, w)) in g.iter().zip(&e).enumerate() {
                assert!((a - w).abs() <= 1e-5 * w.abs().max(1.0), "{name} {b}[{i}]: {a} vs the authors' {w}");
            }
        }
    }
}

/// The iNaturalist script's two branches (`logitH, logitM, _`): the loss and its gradients
/// against NumPy (tests/fixtures/reslt_two_branch_ref.py -> reslt_two_branch_reference.json).
#[test]
fn the_two_branch_loss_matches_the_inaturalist_script() {
    let r: Value = serde_json::from_str(include_str!("fixtures/reslt_two_branch_reference.json")).unwrap();
    let base = reference();
    let d = Device::flex().autodiff();
    let y: Vec<i64> = floats(&base["reslt_targets"]).iter().map(|&t| t as i64).collect();
    let n = y.len();
    let branch =
        |key: &str| Tensor::<2>::from_data(TensorData::new(floats(&base[key]).iter().map(|&x| x as f32).collect::<Vec<_>>(), [n, 10]), &d).require_grad();
    for beta in [0.85, 0.5] {
        let z = vec![branch("reslt_zH"), branch("reslt_zM")];
        let mean = (z[0].clone() + z[1].clone()).div_scalar(2.0);
        let targets: Tensor<1, Int> = Tensor::from_data(TensorData::new(y.clone(), [n]), &d);
        let inputs = LossInputs { experts: z.clone(), ..LossInputs::new(mean, targets) };
        let spec = LossSpec::ResLt { beta, medium_from: 3, tail_from: None };
        let value = Loss::new(&spec, &COUNTS, None, &d).unwrap().forward(&inputs, LossState::new(0, 200)).unwrap();
        let name = format!("beta{beta}");
        let want = r[&name]["value"].as_f64().unwrap();
        let got = f64::from(value.clone().into_scalar::<f32>());
        assert!((got - want).abs() <= 2e-5 * want.abs().max(1.0), "{name}: {got} vs {want}");
        let grads = value.backward();
        for (k, key) in ["grad_zH", "grad_zM"].iter().enumerate() {
            let g: Vec<f32> = z[k].grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
            for (i, (a, w)) in g.iter().zip(floats(&r[&name][*key])).enumerate() {
                assert!((f64::from(*a) - w).abs() <= 1e-5 * w.abs().max(1.0), "{name} {key}[{i}]: {a} vs {w}");
            }
        }
    }
}

/// The branches follow the frequency rank, not the class index: the same counts in another
/// class order, with the labels and logits permuted alike, give the same loss.
#[test]
fn the_branch_split_follows_the_counts() {
    let (ordered, _) = run(&LossSpec::ResLt { beta: 0.998, medium_from: 2, tail_from: Some(4) }, &COUNTS);
    let mut shuffled = COUNTS;
    shuffled.swap(1, 7);
    let (swapped, _) = run(&LossSpec::ResLt { beta: 0.998, medium_from: 2, tail_from: Some(4) }, &shuffled);
    // class 1 (a label of the batch) is now a tail class: its ICE picks up two more branches
    assert!((ordered - swapped).abs() > 1e-3, "{ordered} vs {swapped}");
    let ranks = longtail_core::class_stats::frequency_rank(&shuffled);
    assert_eq!((ranks[1], ranks[7]), (7, 1));
}

#[test]
fn bad_splits_and_models_are_refused_by_name() {
    let d = Device::flex();
    let err = Loss::new(&LossSpec::ResLt { beta: 0.5, medium_from: 5, tail_from: Some(3) }, &COUNTS, None, &d).unwrap_err().to_string();
    assert!(err.contains("medium_from <= tail_from"), "{err}");
    let err = Loss::new(&LossSpec::ResLt { beta: 0.5, medium_from: 2, tail_from: Some(10) }, &COUNTS, None, &d).unwrap_err().to_string();
    assert!(err.contains("a branch with no class"), "{err}");
    let loss = Loss::new(&LossSpec::ResLt { beta: 0.5, medium_from: 2, tail_from: Some(4) }, &COUNTS, None, &d).unwrap();
    let two = LossInputs { experts: vec![Tensor::zeros([1, 10], &d); 2], ..LossInputs::new(Tensor::zeros([1, 10], &d), Tensor::zeros([1], &d)) };
    let err = loss.forward(&two, LossState::new(0, 1)).unwrap_err().to_string();
    assert!(err.contains("three branches"), "{err}");
}
