//! The training step on one device or across several (Burn's burn-train calls this the
//! training strategy): a step's host batches, one per sampler stream, go through the stage's
//! batch recipe and come back as the loss, the logits and the gradients on the main device.

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};
use longtail_data::HostBatch;
use longtail_models::{Network, Precision, autocast};
use rand_chacha::ChaCha8Rng;

use crate::data::upload;
use crate::data_parallel::{self, Slice, split_batch};
use crate::error::Result;
use crate::recipe::{BatchRecipe, LossContext};
use crate::setup::DeviceSetup;

/// A step's outcome on the main device: the loss and logits (detached), the targets, the
/// (loss-scaled) gradients.
pub struct TrainedStep {
    pub loss: Tensor<1>,
    pub logits: Tensor<2>,
    pub targets: Tensor<1, Int>,
    pub grads: GradientsParams,
}

/// What one step needs besides its batches.
pub struct StepInputs<'a> {
    pub recipe: &'a dyn BatchRecipe,
    /// The main device first, then the data-parallel replicas.
    pub devices: &'a [DeviceSetup],
    /// Whether deferred re-weighting is on at this epoch.
    pub drw_on: bool,
    pub state: longtail_losses::LossState,
    pub precision: Precision,
    /// The fp16 loss scale (1 without loss scaling).
    pub loss_scale: f64,
}

impl StepInputs<'_> {
    fn context(&self, device: usize) -> LossContext<'_> {
        let d = &self.devices[device];
        LossContext { loss: &d.loss, drw: d.drw.as_ref().filter(|_| self.drw_on), state: self.state }
    }
}

/// One training step: on the main device alone, or data parallel with the batches split across
/// every device ([`crate::data_parallel`]).
pub fn train_step(network: &Network, batches: Vec<HostBatch>, inputs: &StepInputs, rng: &mut ChaCha8Rng) -> Result<TrainedStep> {
    if inputs.devices.len() == 1 {
        return single_device(network, batches, inputs, rng);
    }
    let parts = inputs.devices.len();
    // slice i takes the i-th part of every stream's batch
    let mut streams: Vec<std::vec::IntoIter<HostBatch>> = batches.into_iter().map(|b| split_batch(b, parts).into_iter()).collect();
    let mut slices = Vec::new();
    for setup in inputs.devices {
        let parts: Vec<HostBatch> = streams.iter_mut().filter_map(Iterator::next).collect();
        if parts.is_empty() {
            break;
        }
        slices.push(Slice { device: setup.device.clone(), batches: parts });
    }
    let main = &inputs.devices[0].device;
    let r = data_parallel::step(network, main, slices, rng, inputs.loss_scale, |i, net, batches, rng| {
        autocast(inputs.precision, || inputs.recipe.step(net, batches, &inputs.context(i), rng))
    })?;
    Ok(TrainedStep { loss: r.loss, logits: r.logits, targets: r.targets, grads: r.grads })
}

fn single_device(network: &Network, batches: Vec<HostBatch>, inputs: &StepInputs, rng: &mut ChaCha8Rng) -> Result<TrainedStep> {
    let device = &inputs.devices[0].device;
    let out = autocast(inputs.precision, || {
        let batches = batches.into_iter().map(|b| upload(b, device)).collect();
        inputs.recipe.step(network, batches, &inputs.context(0), rng)
    })?;
    let grads = GradientsParams::from_grads(out.loss.clone().mul_scalar(inputs.loss_scale).backward(), network);
    Ok(TrainedStep { loss: out.loss.detach(), logits: out.logits.detach(), targets: out.targets, grads })
}
