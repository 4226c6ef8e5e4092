//! Batch recipes: how a stage turns one step's batches into a loss.
//!
//! A recipe says which sampler streams it draws (stream 0 is the stage's own sampler; a recipe
//! may pair it with more streams, as H2T pairs a class-balanced batch with an instance-sampled
//! one) and how the batches of those streams, already on a device, become the model's outputs and
//! the loss. The engine composes a recipe with a stage's samplers and loss ([`crate::setup`]) and
//! runs it on one device or on every slice of a data-parallel step ([`crate::strategy`]), so a new
//! recipe works with data parallelism, mixed precision and exact resume without plumbing of its
//! own. Adding one: a type implementing [`BatchRecipe`] and one arm in [`recipe_of`]
//! (docs/architecture.md, "Adding a batch recipe").

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_data::SamplerSpec;
use longtail_losses::{Loss, LossInputs, LossState, reweight};
use longtail_models::{ModelOutput, Network};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};

use crate::config::StageConfig;
use crate::data::DeviceBatch;
use crate::error::{Result, TrainError};

/// A step's outcome on one device: the mean loss (differentiable), the logits and targets the
/// training accuracy is counted on.
pub struct StepOutput {
    pub loss: Tensor<1>,
    pub logits: Tensor<2>,
    pub targets: Tensor<1, Int>,
}

/// The stage's loss on one device: the loss with its constants there, the deferred class
/// weights when they are on, and where training is.
pub struct LossContext<'a> {
    pub loss: &'a Loss,
    pub drw: Option<&'a Tensor<1>>,
    pub state: LossState,
}

impl LossContext<'_> {
    /// The batch mean of the per-sample losses, re-weighted by DRW's class weights when on.
    pub fn mean(&self, inputs: &LossInputs, state: LossState) -> Result<Tensor<1>> {
        let per = self.loss.per_sample(inputs, state)?;
        let per = match self.drw {
            Some(w) => reweight(per, w, inputs.targets.clone()),
            None => per,
        };
        Ok(per.mean())
    }
}

/// What the loss sees of a model output and the batch's labels.
pub fn loss_inputs(out: &ModelOutput, targets: Tensor<1, Int>, coarse: Option<Tensor<1, Int>>) -> LossInputs {
    LossInputs { logits: out.logits.clone(), aux: out.aux.clone(), features: Some(out.features.clone()), targets, coarse_targets: coarse }
}

/// How a stage turns one step's batches into a loss.
pub trait BatchRecipe: Send + Sync {
    /// The samplers of the streams drawn next to the stage's own (stream 0): stream `k` for
    /// `k >= 1` is `paired_samplers()[k - 1]`, drawn independently with its own stream key.
    fn paired_samplers(&self) -> Vec<SamplerSpec> {
        Vec::new()
    }

    /// The loss of one step on one device; `batches[k]` is stream `k`'s batch. `rng` is this
    /// step's (or this slice's) stream of random draws.
    fn step(&self, network: &Network, batches: Vec<DeviceBatch>, loss: &LossContext, rng: &mut ChaCha8Rng) -> Result<StepOutput>;
}

fn first(batches: Vec<DeviceBatch>) -> Result<DeviceBatch> {
    batches.into_iter().next().ok_or_else(|| TrainError::Run("a step got no batch".into()))
}

/// One batch, one forward pass.
pub struct Plain;

impl BatchRecipe for Plain {
    fn step(&self, network: &Network, batches: Vec<DeviceBatch>, loss: &LossContext, _: &mut ChaCha8Rng) -> Result<StepOutput> {
        let batch = first(batches)?;
        let out = network.forward(batch.images);
        let inputs = loss_inputs(&out, batch.targets.clone(), batch.coarse);
        Ok(StepOutput { loss: loss.mean(&inputs, loss.state)?, logits: out.logits, targets: batch.targets })
    }
}

/// Mixup (Zhang et al., ICLR 2018): one `lambda ~ Beta(alpha, alpha)` and one permutation per
/// batch, the loss by [`crate::mixup::mixup_criterion`].
pub struct Mixup {
    pub alpha: f64,
}

fn int_tensor(v: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as i64).collect::<Vec<_>>(), [v.len()]), device)
}

impl BatchRecipe for Mixup {
    fn step(&self, network: &Network, batches: Vec<DeviceBatch>, loss: &LossContext, rng: &mut ChaCha8Rng) -> Result<StepOutput> {
        let batch = first(batches)?;
        let device = batch.images.device();
        let lambda: f64 = Beta::new(self.alpha, self.alpha).map_err(|e| TrainError::config("mixup.alpha", e.to_string()))?.sample(rng);
        let mut perm: Vec<usize> = (0..batch.len).collect();
        perm.shuffle(rng);
        let perm_t = int_tensor(&perm, &device);
        let mixed = batch.images.clone().mul_scalar(lambda) + batch.images.select(0, perm_t.clone()).mul_scalar(1.0 - lambda);
        let out = network.forward(mixed);
        let inputs_a = loss_inputs(&out, batch.targets.clone(), batch.coarse.clone());
        let inputs_b = LossInputs {
            targets: batch.targets.clone().select(0, perm_t.clone()),
            coarse_targets: batch.coarse.map(|c| c.select(0, perm_t)),
            ..inputs_a.clone()
        };
        let value = crate::mixup::mixup_criterion(|i, s| loss.mean(i, s), &inputs_a, &inputs_b, lambda, loss.state)?;
        Ok(StepOutput { loss: value, logits: out.logits, targets: batch.targets })
    }
}

/// H2T (Li et al., AAAI 2024): stream 0's (class-balanced) feature maps fused with stream 1's
/// (instance-sampled) by [`crate::h2t::fused_forward`], stream 0's labels.
pub struct H2tFusion {
    pub ratio: f64,
    pub fusing_sampler: SamplerSpec,
}

impl BatchRecipe for H2tFusion {
    fn paired_samplers(&self) -> Vec<SamplerSpec> {
        vec![self.fusing_sampler.clone()]
    }

    fn step(&self, network: &Network, batches: Vec<DeviceBatch>, loss: &LossContext, rng: &mut ChaCha8Rng) -> Result<StepOutput> {
        let mut batches = batches.into_iter();
        let (Some(balanced), Some(fusing)) = (batches.next(), batches.next()) else {
            return Err(TrainError::Run("an H2T step needs a balanced and a fusing batch".into()));
        };
        let fused = crate::h2t::fused_forward(network, balanced, fusing, self.ratio, rng)?;
        let inputs = loss_inputs(&fused.output, fused.targets.clone(), fused.coarse);
        Ok(StepOutput { loss: loss.mean(&inputs, loss.state)?, logits: fused.output.logits, targets: fused.targets })
    }
}

/// The recipe a stage config asks for.
pub fn recipe_of(stage: &StageConfig) -> Box<dyn BatchRecipe> {
    if let Some(h2t) = &stage.h2t {
        return Box::new(H2tFusion { ratio: h2t.ratio, fusing_sampler: h2t.fusing_sampler.clone() });
    }
    if let Some(mixup) = &stage.mixup {
        return Box::new(Mixup { alpha: mixup.alpha });
    }
    Box::new(Plain)
}
