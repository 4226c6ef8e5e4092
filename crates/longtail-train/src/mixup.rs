//! The mixup criterion (Zhang et al., ICLR 2018): `lambda L(z, y_a) + (1 - lambda) L(z, y_b)` on
//! the logits of the mixed images.

use burn::tensor::Tensor;
use longtail_losses::{LossInputs, LossState};

use crate::error::Result;

/// The state of the criterion's second call: its own seed, so a loss with random draws (GCL's
/// clouds) draws them afresh, as the authors' code does by calling the loss twice.
pub fn second_draw(state: LossState) -> LossState {
    LossState { seed: longtail_core::streams::second_call_seed(state.seed), ..state }
}

/// `lambda loss_of(a, state) + (1 - lambda) loss_of(b, second_draw(state))`: the authors'
/// `mixup_criterion(criterion, pred, y_a, y_b, lam)` (GCLLoss, LDAM-DRW, MiSLAS), two calls of
/// the loss with independent draws.
pub fn mixup_criterion(
    loss_of: impl Fn(&LossInputs, LossState) -> Result<Tensor<1>>,
    a: &LossInputs,
    b: &LossInputs,
    lambda: f64,
    state: LossState,
) -> Result<Tensor<1>> {
    Ok(loss_of(a, state)?.mul_scalar(lambda) + loss_of(b, second_draw(state))?.mul_scalar(1.0 - lambda))
}
