//! Batch norm's running statistics against PyTorch's `nn.BatchNorm2d` (tests/fixtures/
//! batch_norm_ref.py -> batch_norm_reference.json): the running variance moves towards the
//! *unbiased* batch variance, as PyTorch's does.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use longtail_models::BatchNorm;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/batch_norm_reference.json")).unwrap()
}

fn flat(v: &Value, out: &mut Vec<f32>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flat(i, out)),
        x => out.push(x.as_f64().unwrap() as f32),
    }
}

fn values(v: &Value) -> Vec<f32> {
    let mut out = Vec::new();
    flat(v, &mut out);
    out
}

fn input(v: &Value, shape: [usize; 4], d: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values(v), shape), d)
}

fn assert_close(what: &str, got: Tensor<1>, expected: &Value) {
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    for (g, e) in got.iter().zip(values(expected)) {
        assert!((g - e).abs() <= 2e-6 * e.abs().max(1.0), "{what}: {got:?} vs PyTorch's {e}");
    }
}

#[test]
fn running_statistics_follow_pytorch() {
    let r = reference();
    let d = Device::flex().autodiff();
    let bn = BatchNorm::new(3, &d);
    let _ = bn.forward(input(&r["x1"], [8, 3, 4, 4], &d));
    assert_close("running_mean after one batch", bn.running_mean.value_sync(), &r["after_one"]["running_mean"]);
    assert_close("running_var after one batch (128 values per channel)", bn.running_var.value_sync(), &r["after_one"]["running_var"]);
    let _ = bn.forward(input(&r["x2"], [2, 3, 1, 1], &d));
    assert_close("running_mean after two", bn.running_mean.value_sync(), &r["after_two"]["running_mean"]);
    assert_close("running_var after two (2 values per channel)", bn.running_var.value_sync(), &r["after_two"]["running_var"]);
    // evaluation normalises with them
    let eval = bn.valid();
    let y = eval.forward(input(&r["x2"], [2, 3, 1, 1], &Device::flex()));
    let (got, expected) = (y.into_data().try_to_vec::<f32>().unwrap(), values(&r["eval_x2"]));
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "eval output {got:?} vs PyTorch's {expected:?}");
    }
}

#[test]
fn a_frozen_batch_norm_keeps_its_statistics() {
    let r = reference();
    let d = Device::flex().autodiff();
    let bn = BatchNorm::new(3, &d).freeze();
    let _ = bn.forward(input(&r["x1"], [8, 3, 4, 4], &d));
    assert_eq!(bn.running_var.value_sync().into_data().try_to_vec::<f32>().unwrap(), vec![1.0; 3]);
    assert_eq!(bn.running_mean.value_sync().into_data().try_to_vec::<f32>().unwrap(), vec![0.0; 3]);
}
