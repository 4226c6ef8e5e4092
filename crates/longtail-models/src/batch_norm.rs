//! Batch normalisation with PyTorch's running statistics.
//!
//! Burn's `nn::BatchNorm` (0.22.1) moves `running_var` towards the *biased* batch variance
//! (divided by `n`); PyTorch's `nn.BatchNorm2d` uses the *unbiased* one (divided by `n - 1`,
//! `n = N H W` values per channel), so after training the two keep different statistics (relative
//! 1 / (n - 1): 5.7e-4 at 512 values per channel, e.g. batch 128 on a 2 x 2 map) and evaluate
//! differently. This module is Burn's with that one line changed; normalising a training batch
//! still divides by `n`, as both libraries do. The fields (and so records and checkpoints) are
//! Burn's, and `freeze` / `no_grad` work on it the same way.

use burn::module::{Content, DisplaySettings, Flag, Module, ModuleDisplay, Param, RunningState};
use burn::tensor::{Device, Tensor, assert_shape};

/// Batch norm over `[batch, channels, ...]` with PyTorch's running-variance update.
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct BatchNorm {
    /// The learnable scale gamma.
    pub gamma: Param<Tensor<1>>,
    /// The learnable shift beta.
    pub beta: Param<Tensor<1>>,
    /// Whether the layer uses batch statistics (and updates the running ones) on an autodiff
    /// device; `freeze` turns it off.
    pub training: Param<Flag>,
    pub running_mean: RunningState<Tensor<1>>,
    /// The running estimate of the unbiased per-channel variance.
    pub running_var: RunningState<Tensor<1>>,
    /// PyTorch's momentum: `running = (1 - momentum) running + momentum batch`.
    pub momentum: f64,
    pub epsilon: f64,
}

impl BatchNorm {
    /// PyTorch's defaults: gamma 1, beta 0, running mean 0 and variance 1, momentum 0.1, eps 1e-5.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            training: Param::from_bool(true),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// Normalises with the batch's statistics while training on an autodiff device (and the layer
    /// is not frozen), with the running ones otherwise.
    ///
    /// # Panics
    ///
    /// If the input's second axis is not the layer's channel count (as Burn's).
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let [channels] = self.gamma.shape().dims();
        assert_shape!(input, [_, channels, ..]);
        if input.device().is_autodiff() && self.training.is_enabled() { self.forward_train(input) } else { self.forward_inference(input) }
    }

    fn forward_inference<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let device = input.device();
        let mean = self.running_mean.value().to_device(&device);
        let var = self.running_var.value().to_device(&device);
        burn::tensor::module::batch_norm(input, self.gamma.val(), self.beta.val(), mean, var, self.epsilon)
    }

    fn forward_train<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let dims = input.dims();
        let per_channel: usize = dims.iter().enumerate().filter(|&(axis, _)| axis != 1).map(|(_, n)| n).product();
        let device = input.device();
        let result = burn::tensor::module::batch_norm_train(input, self.gamma.val(), self.beta.val(), self.epsilon);
        // Bessel's correction n / (n - 1), as PyTorch; one value per channel keeps the biased
        // (zero) variance, where PyTorch refuses to train.
        let bessel = if per_channel > 1 { per_channel as f64 / (per_channel - 1) as f64 } else { 1.0 };
        let m = self.momentum;
        let running_mean = self.running_mean.value_sync().to_device(&device);
        let running_var = self.running_var.value_sync().to_device(&device);
        let running_mean = running_mean.mul_scalar(1.0 - m).add(result.mean.detach().mul_scalar(m));
        let running_var = running_var.mul_scalar(1.0 - m).add(result.variance.detach().mul_scalar(m * bessel));
        self.running_mean.update(running_mean.detach());
        self.running_var.update(running_var.detach());
        result.output
    }
}

impl ModuleDisplay for BatchNorm {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new().with_new_line_after_attribute(false).optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let [channels] = self.beta.shape().dims();
        let content = content.add("num_features", &channels).add("momentum", &self.momentum).add("epsilon", &self.epsilon);
        if self.training.is_enabled() { content.optional() } else { content.add("training", &self.training).optional() }
    }
}
