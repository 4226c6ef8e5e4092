//! The mixup criterion calls the loss twice with independent draws, as the authors'
//! `mixup_criterion(criterion, pred, y_a, y_b, lam)` does (GCLLoss `utils.py`): GCL's Gaussian
//! clouds are drawn once per target, not shared.

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_losses::{Loss, LossInputs, LossSpec, LossState};
use longtail_train::mixup::{mixup_criterion, second_draw};

const Z: [f32; 20] = [0.2, -0.5, 0.9, 0.1, -0.3, 0.7, 0.3, -0.2, 0.5, 0.0, -0.6, 0.4, 0.8, -0.1, 0.35, 0.05, 0.6, -0.4, 0.25, -0.7];

fn inputs(targets: [i64; 4], d: &Device) -> LossInputs {
    LossInputs {
        logits: Tensor::from_data(TensorData::new(Z.to_vec(), [4, 5]), d),
        aux: None,
        features: None,
        targets: Tensor::<1, Int>::from_data(TensorData::new(targets.to_vec(), [4]), d),
        coarse_targets: None,
        experts: Vec::new(),
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>() as f64
}

#[test]
fn gcl_under_mixup_draws_a_cloud_per_target() {
    let d = Device::flex();
    let gcl = LossSpec::Gcl { scale: 30.0, noise_mul: 0.5, sigma: 1.0 / 3.0, margin: 0.0, focal_gamma: 0.0 };
    let loss = Loss::new(&gcl, &[500, 200, 50, 20, 5], None, &d).unwrap();
    let loss_of = |i: &LossInputs, s: LossState| -> longtail_train::Result<Tensor<1>> { Ok(loss.forward(i, s)?) };
    let state = LossState { epoch: 3, total_epochs: 10, seed: 42 };
    let (a, b) = (inputs([0, 2, 4, 1], &d), inputs([3, 0, 1, 4], &d));
    let lambda = 0.3;
    let mixed = scalar(mixup_criterion(loss_of, &a, &b, lambda, state).unwrap());
    let expected = lambda * scalar(loss.forward(&a, state).unwrap()) + (1.0 - lambda) * scalar(loss.forward(&b, second_draw(state)).unwrap());
    assert!((mixed - expected).abs() < 1e-5, "{mixed} vs {expected}");
    assert_ne!(second_draw(state).seed, state.seed);
    // the same targets twice: two clouds average, one cloud would give the single loss back
    let same = scalar(mixup_criterion(loss_of, &a, &a, 0.5, state).unwrap());
    let once = scalar(loss.forward(&a, state).unwrap());
    assert!((same - once).abs() > 1e-4, "both terms used one cloud: {same} vs {once}");
    // a loss without draws is the plain mixup criterion
    let ce = Loss::new(&LossSpec::Ce, &[500, 200, 50, 20, 5], None, &d).unwrap();
    let ce_of = |i: &LossInputs, s: LossState| -> longtail_train::Result<Tensor<1>> { Ok(ce.forward(i, s)?) };
    let plain = lambda * scalar(ce.forward(&a, state).unwrap()) + (1.0 - lambda) * scalar(ce.forward(&b, state).unwrap());
    assert!((scalar(mixup_criterion(ce_of, &a, &b, lambda, state).unwrap()) - plain).abs() < 1e-6);
}
