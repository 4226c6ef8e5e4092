//! Dynamic loss scaling for fp16 training (PyTorch's `torch.amp.GradScaler`, same defaults):
//! the loss is multiplied by `scale` before the backward pass so that small gradients survive
//! fp16; the gradients are divided by it again before the optimizer step. A step whose gradients
//! hold an inf or a NaN is skipped and the scale halved; after `growth_interval` good steps in a
//! row the scale doubles.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Bool, Tensor};
use longtail_models::Network;
use serde::{Deserialize, Serialize};

/// The scaler's settings and state (saved with the run, so a resumed run goes on with its scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: usize,
    /// Good steps since the last change of the scale.
    pub good_steps: usize,
    /// Steps skipped so far (for the log).
    pub skipped: usize,
}

impl Default for LossScaler {
    /// `GradScaler()`'s defaults: scale 2^16, x2 after 2000 good steps, x0.5 on an overflow.
    fn default() -> Self {
        Self { scale: 65536.0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000, good_steps: 0, skipped: 0 }
    }
}

/// Divides every gradient of `network`'s parameters by the scale and records whether any value is
/// not finite.
struct Unscale<'a> {
    grads: &'a mut GradientsParams,
    inverse: f64,
    non_finite: Option<Tensor<1, Bool>>,
}

impl ModuleVisitor for Unscale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let bad = grad.clone().is_finite().bool_not().any();
        self.non_finite = Some(match self.non_finite.take() {
            Some(b) => b.bool_or(bad),
            None => bad,
        });
        self.grads.register(param.id, grad.mul_scalar(self.inverse));
    }
}

impl LossScaler {
    /// Unscales `grads` (gradients of `scale * loss`). Returns them when every value is finite;
    /// otherwise returns `None` (skip this step) and backs the scale off. One device-to-host read.
    pub fn unscale(&mut self, mut grads: GradientsParams, network: &Network) -> Option<GradientsParams> {
        let mut visitor = Unscale { grads: &mut grads, inverse: 1.0 / self.scale, non_finite: None };
        network.visit(&mut visitor);
        let overflow = visitor.non_finite.is_some_and(|b| b.into_scalar());
        if overflow {
            self.scale *= self.backoff_factor;
            self.good_steps = 0;
            self.skipped += 1;
            None
        } else {
            self.good_steps += 1;
            if self.good_steps == self.growth_interval {
                self.scale *= self.growth_factor;
                self.good_steps = 0;
            }
            Some(grads)
        }
    }
}
