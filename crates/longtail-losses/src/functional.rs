//! Small tensor helpers shared by the losses.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A constant `f32` vector on `device`.
pub fn constant(values: &[f64], device: &Device) -> Tensor<1> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [values.len()]), device)
}

/// `-log p_y` from log-probabilities `[N, C]`.
pub fn nll(log_probs: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = log_probs.dims();
    log_probs.gather(1, targets.reshape([n, 1])).reshape([n]).neg()
}

/// Per-sample softmax cross-entropy `[N]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    nll(log_softmax(logits, 1), targets)
}

/// One-hot targets as floats `[N, C]`.
pub fn one_hot(targets: Tensor<1, Int>, num_classes: usize) -> Tensor<2> {
    targets.one_hot(num_classes).float()
}

/// The per-class value of each sample's class `[N]`.
pub fn per_sample(values: &Tensor<1>, targets: Tensor<1, Int>) -> Tensor<1> {
    values.clone().select(0, targets)
}

/// Per-sample losses scaled so that their plain mean is the class-weighted mean
/// `sum_i w_{y_i} l_i / sum_i w_{y_i}` (PyTorch's `cross_entropy(weight=w)` reduction).
pub fn class_weighted(losses: Tensor<1>, weights: &Tensor<1>, targets: Tensor<1, Int>) -> Tensor<1> {
    let w = per_sample(weights, targets);
    let mean_w = w.clone().mean();
    losses * w / mean_w
}
