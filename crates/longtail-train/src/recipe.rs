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
    /// The per-sample losses, re-weighted by DRW's class weights when on: their mean plus
    /// [`LossContext::batch_term`] is the batch loss.
    pub fn per_sample(&self, inputs: &LossInputs, state: LossState) -> Result<Tensor<1>> {
        let per = self.loss.per_sample(inputs, state)?;
        Ok(match self.drw {
            Some(w) => reweight(per, w, inputs.targets.clone()),
            None => per,
        })
    }

    /// The loss's term over the whole batch (LADE's regulariser); none for most losses.
    pub fn batch_term(&self, inputs: &LossInputs) -> Option<Tensor<1>> {
        self.loss.batch_term(inputs)
    }

    /// The batch loss: the mean of [`LossContext::per_sample`] plus the batch term.
    pub fn mean(&self, inputs: &LossInputs, state: LossState) -> Result<Tensor<1>> {
        let mean = self.per_sample(inputs, state)?.mean();
        Ok(match self.batch_term(inputs) {
            Some(term) => mean + term,
            None => mean,
        })
    }
}

/// What the loss sees of a model output and the batch's labels.
pub fn loss_inputs(out: &ModelOutput, targets: Tensor<1, Int>, coarse: Option<Tensor<1, Int>>) -> LossInputs {
    LossInputs {
        logits: out.logits.clone(),
        aux: out.aux.clone(),
        features: Some(out.features.clone()),
        targets,
        coarse_targets: coarse,
        experts: out.experts.clone(),
    }
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
/// batch, the loss by [`crate::mixup::mixup_criterion`]; with `remix`, Remix's per-pair label
/// weights ([`crate::mixing::remix_weights`]) instead of `lambda`.
pub struct Mixup {
    pub alpha: f64,
    pub remix: Option<Remix>,
}

/// Remix's rule and the training counts it reads.
pub struct Remix {
    pub kappa: f64,
    pub tau: f64,
    pub counts: Vec<f64>,
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
        let value = match &self.remix {
            None => crate::mixup::mixup_criterion(|i, s| loss.mean(i, s), &inputs_a, &inputs_b, lambda, loss.state)?,
            Some(r) => {
                let w = crate::mixing::remix_weights(&r.counts, inputs_a.targets.clone(), inputs_b.targets.clone(), lambda, r.kappa, r.tau);
                remix_criterion(loss, &inputs_a, &inputs_b, w)?
            }
        };
        Ok(StepOutput { loss: value, logits: out.logits, targets: batch.targets })
    }
}

/// `mean_i (w_i L_i(y_a) + (1 - w_i) L_i(y_b))`, the two calls as in mixup's criterion; a loss's
/// batch term enters weighted by the mean `w`.
fn remix_criterion(loss: &LossContext, a: &LossInputs, b: &LossInputs, w: Tensor<1>) -> Result<Tensor<1>> {
    let second = crate::mixup::second_draw(loss.state);
    let (la, lb) = (loss.per_sample(a, loss.state)?, loss.per_sample(b, second)?);
    let value = (la * w.clone() + lb * w.clone().neg().add_scalar(1.0)).mean();
    Ok(match (loss.batch_term(a), loss.batch_term(b)) {
        (Some(ta), Some(tb)) => {
            let w_mean = w.mean();
            value + ta * w_mean.clone() + tb * w_mean.neg().add_scalar(1.0)
        }
        _ => value,
    })
}

/// CMO (Park et al., CVPR 2022): stream 0 is the background batch, stream 1 the foreground
/// (minority-weighted) batch; see [`crate::mixing::cutmix_box`] for the box and
/// [`crate::config::CmoConfig`] for the window. Draws per step as the code's: `r ~ U(0, 1)` always,
/// then (mixing) `lambda`, the box centre's row, then its column.
pub struct Cmo {
    pub config: crate::config::CmoConfig,
}

impl BatchRecipe for Cmo {
    fn paired_samplers(&self) -> Vec<SamplerSpec> {
        vec![self.config.sampler.clone()]
    }

    fn step(&self, network: &Network, batches: Vec<DeviceBatch>, loss: &LossContext, rng: &mut ChaCha8Rng) -> Result<StepOutput> {
        let mut batches = batches.into_iter();
        let (Some(bg), Some(fg)) = (batches.next(), batches.next()) else {
            return Err(TrainError::Run("a CMO step needs a background and a foreground batch".into()));
        };
        let c = &self.config;
        let r: f64 = rand::Rng::random(rng);
        let (epoch, epochs) = (loss.state.epoch, loss.state.total_epochs);
        if !(c.start < epoch && epoch + c.end < epochs && r < c.prob) {
            return Plain.step(network, vec![bg], loss, rng);
        }
        let lambda: f64 = Beta::new(c.beta, c.beta).map_err(|e| TrainError::config("cmo.beta", e.to_string()))?.sample(rng);
        let n = bg.len.min(fg.len);
        let [_, _, rows, cols] = bg.images.dims();
        let (cx, cy) = (rand::Rng::random_range(rng, 0..rows), rand::Rng::random_range(rng, 0..cols));
        let cut = crate::mixing::cutmix_box(lambda, rows, cols, cx, cy);
        let device = bg.images.device();
        let mask = crate::mixing::box_mask(&cut, rows, cols, &device);
        let (bg_images, fg_images) = (bg.images.narrow(0, 0, n), fg.images.narrow(0, 0, n));
        let mixed = bg_images * mask.clone().neg().add_scalar(1.0) + fg_images * mask;
        let out = network.forward(mixed);
        let narrow = |t: Tensor<1, Int>| t.narrow(0, 0, n);
        let inputs_bg = loss_inputs(&out, narrow(bg.targets.clone()), bg.coarse.map(narrow));
        let inputs_fg = LossInputs { targets: narrow(fg.targets), coarse_targets: fg.coarse.map(narrow), ..inputs_bg.clone() };
        let value = crate::mixup::mixup_criterion(|i, s| loss.mean(i, s), &inputs_bg, &inputs_fg, cut.lambda, loss.state)?;
        Ok(StepOutput { loss: value, logits: out.logits, targets: inputs_bg.targets })
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

/// BBN's cumulative learning ([`crate::config::CumulativeConfig`]): stream 0 (instance-sampled)
/// through the conventional branch, stream 1 (reverse-sampled) through the re-balancing branch,
/// `alpha` of the epoch ([`crate::cumulative::alpha`]), the loss `alpha L(z, y_c) + (1 - alpha)
/// L(z, y_r)` (`combiner.py:56-58`); the training accuracy counts `y_c`.
pub struct Cumulative {
    pub sampler: SamplerSpec,
    pub div_epoch: Option<usize>,
}

impl BatchRecipe for Cumulative {
    fn paired_samplers(&self) -> Vec<SamplerSpec> {
        vec![self.sampler.clone()]
    }

    fn step(&self, network: &Network, batches: Vec<DeviceBatch>, loss: &LossContext, _: &mut ChaCha8Rng) -> Result<StepOutput> {
        let mut batches = batches.into_iter();
        let (Some(conv), Some(rebal)) = (batches.next(), batches.next()) else {
            return Err(TrainError::Run("a BBN step needs an instance-sampled and a reverse-sampled batch".into()));
        };
        let div = self.div_epoch.unwrap_or_else(|| crate::cumulative::div_epoch(loss.state.total_epochs));
        let alpha = crate::cumulative::alpha(loss.state.epoch, div);
        let out = network.forward_two_branch(conv.images, rebal.images, alpha).map_err(|e| TrainError::config("cumulative", e.to_string()))?;
        let n = out.logits.dims()[0];
        let narrow = |t: Tensor<1, Int>| t.narrow(0, 0, n);
        let inputs_c = loss_inputs(&out, narrow(conv.targets), conv.coarse.map(narrow));
        let inputs_r = LossInputs { targets: narrow(rebal.targets), coarse_targets: rebal.coarse.map(narrow), ..inputs_c.clone() };
        let value = crate::mixup::mixup_criterion(|i, s| loss.mean(i, s), &inputs_c, &inputs_r, alpha, loss.state)?;
        Ok(StepOutput { loss: value, logits: out.logits, targets: inputs_c.targets })
    }
}

/// The recipe a stage config asks for (`counts`: the training counts per class).
pub fn recipe_of(stage: &StageConfig, counts: &[usize]) -> Box<dyn BatchRecipe> {
    if let Some(c) = &stage.cumulative {
        return Box::new(Cumulative { sampler: c.sampler.clone(), div_epoch: c.div_epoch });
    }
    if let Some(h2t) = &stage.h2t {
        return Box::new(H2tFusion { ratio: h2t.ratio, fusing_sampler: h2t.fusing_sampler.clone() });
    }
    if let Some(cmo) = &stage.cmo {
        return Box::new(Cmo { config: cmo.clone() });
    }
    if let Some(mixup) = &stage.mixup {
        let remix = mixup.remix.as_ref().map(|r| Remix { kappa: r.kappa, tau: r.tau, counts: counts.iter().map(|&n| n as f64).collect() });
        return Box::new(Mixup { alpha: mixup.alpha, remix });
    }
    Box::new(Plain)
}
