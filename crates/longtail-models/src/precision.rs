//! Mixed precision, the equivalent of PyTorch's `torch.autocast`: inside [`autocast`], every
//! convolution of the backbones casts its input and its (f32) weight to a 16-bit type, runs in
//! that type, and gives back f32. Everything else stays f32: the master weights and the optimizer
//! (the cast is differentiable, so gradients arrive in f32 on the f32 weights), batch norm, the
//! heads and the losses. This is autocast's split for these networks, where convolutions are all
//! but a fraction of a percent of the FLOPs; the heads' matrix products, which autocast would also
//! run in 16 bits, stay f32 here (they are small, and the cosine heads divide by norms).
//!
//! fp16 needs loss scaling against gradient underflow (the training engine's `LossScaler`);
//! bf16 has f32's range and does not.
//!
//! The setting is per thread, like autocast's: enter it on the thread that runs the forward pass.
//! Inference under autocast is allowed and is what `longtail` does when a run was trained with it.

use std::cell::Cell;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// The precision of the convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32 (the papers' setting).
    #[default]
    F32,
    /// Convolutions in bfloat16.
    Bf16,
    /// Convolutions in IEEE half precision, with dynamic loss scaling in training.
    F16,
}

impl Precision {
    /// The 16-bit type convolutions run in, `None` for f32.
    pub fn compute_dtype(self) -> Option<FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(FloatDType::BF16),
            Precision::F16 => Some(FloatDType::F16),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// Parses `f32`, `bf16` or `f16` (also `fp32`, `fp16`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            "f16" | "fp16" => Some(Precision::F16),
            _ => None,
        }
    }
}

thread_local! {
    static CURRENT: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// The precision convolutions use on this thread now.
pub fn current() -> Precision {
    CURRENT.with(Cell::get)
}

/// Runs `f` with convolutions in `precision` on this thread (restored afterwards, also on a panic).
pub fn autocast<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    struct Restore(Precision);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(precision)));
    f()
}

/// A convolution that honours [`autocast`].
pub trait AutocastConv {
    /// `Conv2d::forward` in f32; in the autocast type (input, weight and bias cast, output cast
    /// back to f32) inside [`autocast`].
    fn forward_autocast(&self, x: Tensor<4>) -> Tensor<4>;
}

impl AutocastConv for Conv2d {
    fn forward_autocast(&self, x: Tensor<4>) -> Tensor<4> {
        let Some(dtype) = current().compute_dtype() else {
            return self.forward(x);
        };
        let [_, _, h, w] = x.dims();
        let pads = match self.padding {
            PaddingConfig2d::Valid => [(0, 0), (0, 0)],
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
            PaddingConfig2d::Same => [same_padding(self.kernel_size[0], self.stride[0], h), same_padding(self.kernel_size[1], self.stride[1], w)],
        };
        let options = ConvOptions::new_with_padding(self.stride, pads, self.dilation, self.groups);
        let bias = self.bias.as_ref().map(|b| b.val().cast(dtype));
        conv2d(x.cast(dtype), self.weight.val().cast(dtype), bias, options).cast(FloatDType::F32)
    }
}

/// `PaddingConfig2d::Same`'s split of the padding (burn-nn's rule: output `ceil(size / stride)`).
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = if out > 0 { ((out - 1) * stride + kernel).saturating_sub(size) } else { 0 };
    (total / 2, total - total / 2)
}
