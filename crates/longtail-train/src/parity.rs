//! Cross-backend parity: a GPU backend must give the CPU backend's numbers on a fixed batch
//! (training-mode loss, the loss after one SGD step, evaluation logits) within a relative
//! tolerance (see [`compare`]). Used by the `backend_parity` test and `longtail bench parity`.

use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::functional::cross_entropy;
use longtail_models::{Arch, HeadConfig, ModelConfig};
use serde::Serialize;

/// The tolerance of the comparison (float32 on both sides, different summation orders).
pub const TOLERANCE: f32 = 1e-3;

/// The numbers compared across backends.
#[derive(Debug, Clone, Serialize)]
pub struct ParityNumbers {
    pub train_loss: f32,
    pub loss_after_step: f32,
    pub eval_logits: Vec<f32>,
}

fn batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let shape = [8, 3, 32, 32];
    let x: Vec<f32> = (0..shape.iter().product::<usize>()).map(|i| (0.01 * i as f64).sin() as f32).collect();
    let y: Vec<i64> = (0..8).map(|i| i % 10).collect();
    (Tensor::from_data(TensorData::new(x, shape), device), Tensor::from_data(TensorData::new(y, [8]), device))
}

/// ResNet-20 (seeded, so identical on every backend) on a fixed batch.
pub fn numbers(device: &Device) -> ParityNumbers {
    let ad = device.clone().autodiff();
    let net = ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Linear).init(1, &ad).expect("valid config");
    let (x, y) = batch(&ad);
    let loss = cross_entropy(net.forward(x.clone()).logits, y.clone()).mean();
    let train_loss: f32 = loss.clone().into_scalar();
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let mut optim = SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_dampening(0.0))).init();
    let net = optim.step(0.1, net, grads);
    let loss_after_step: f32 = cross_entropy(net.forward(x).logits, y).mean().into_scalar();
    let eval_logits = net.valid().predict(batch(device).0).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 logits");
    ParityNumbers { train_loss, loss_after_step, eval_logits }
}

fn close(a: f32, b: f32, scale: f32) -> bool {
    (a - b).abs() <= TOLERANCE * scale
}

/// Compares two backends' numbers; the error names the first quantity out of tolerance.
///
/// The two losses compare relative to their own size (at least 1). The evaluation logits compare
/// as one vector, relative to its largest magnitude (at least 1): after one SGD step at lr 0.1 a
/// fresh ResNet-20's evaluation (running statistics that have seen one batch) amplifies the
/// backends' different summation orders, and a logit near 0 next to logits of 30 carries the
/// absolute error of its neighbours (lavapipe on an AMD EPYC: largest difference 0.0099, 3.3e-4
/// of the largest logit 29.8, but 1.1e-2 of the logit -0.87 it lands on). A non-finite number on
/// either side is an error.
pub fn compare(cpu: &ParityNumbers, other: &ParityNumbers) -> Result<f32, String> {
    let mut worst = 0f32;
    let mut check = |what: String, a: f32, b: f32, scale: f32| {
        if !(a.is_finite() && b.is_finite()) {
            return Err(format!("{what}: {b} vs cpu {a} (not finite)"));
        }
        worst = worst.max((a - b).abs() / scale);
        if close(a, b, scale) { Ok(()) } else { Err(format!("{what}: {b} vs cpu {a} (tolerance {TOLERANCE} of {scale})")) }
    };
    let own = |a: f32, b: f32| a.abs().max(b.abs()).max(1.0);
    check("training loss".into(), cpu.train_loss, other.train_loss, own(cpu.train_loss, other.train_loss))?;
    check("loss after one step".into(), cpu.loss_after_step, other.loss_after_step, own(cpu.loss_after_step, other.loss_after_step))?;
    if cpu.eval_logits.len() != other.eval_logits.len() {
        return Err(format!("{} evaluation logits vs cpu {}", other.eval_logits.len(), cpu.eval_logits.len()));
    }
    let scale = cpu.eval_logits.iter().chain(&other.eval_logits).fold(1f32, |m, x| m.max(x.abs()));
    if !scale.is_finite() {
        return Err("a non-finite evaluation logit".into());
    }
    for (i, (a, b)) in cpu.eval_logits.iter().zip(&other.eval_logits).enumerate() {
        check(format!("logit {i}"), *a, *b, scale)?;
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(train_loss: f32, eval_logits: Vec<f32>) -> ParityNumbers {
        ParityNumbers { train_loss, loss_after_step: 2.0, eval_logits }
    }

    #[test]
    fn logits_compare_relative_to_the_largest_and_non_finite_numbers_fail() {
        let cpu = numbers(4.6, vec![29.8, -0.87, 3.0]);
        // 0.0099 on the logit -0.87: 3.3e-4 of the largest logit, within 1e-3
        let worst = compare(&cpu, &numbers(4.6, vec![29.8, -0.87 + 0.0099, 3.0])).unwrap();
        assert!((worst - 0.0099 / 29.8).abs() < 1e-6, "{worst}");
        // 0.05 is 1.7e-3 of it: out
        assert!(compare(&cpu, &numbers(4.6, vec![29.8, -0.82, 3.0])).unwrap_err().contains("logit 1"));
        // an infinite loss on either side fails (inf <= 1e-3 * inf would pass a relative test)
        assert!(compare(&cpu, &numbers(f32::INFINITY, cpu.eval_logits.clone())).unwrap_err().contains("not finite"));
        assert!(compare(&numbers(f32::NAN, cpu.eval_logits.clone()), &cpu).is_err());
        assert!(compare(&cpu, &numbers(4.6, vec![29.8, f32::INFINITY, 3.0])).is_err());
        assert!(compare(&cpu, &numbers(4.6, vec![29.8, -0.87])).unwrap_err().contains("evaluation logits"));
    }
}
