//! Small building blocks shared by the backbones: seeded convolutions, batch norms, pooling.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::Tensor;

use crate::batch_norm::BatchNorm;
use crate::init::{Fan, Init};

/// Geometry of one 2-D convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
}

impl ConvSpec {
    /// A bias-free `k x k` convolution with "same" padding for odd `k`.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, stride: usize) -> Self {
        Self { in_channels, out_channels, kernel, stride, padding: kernel / 2, groups: 1, bias: false }
    }

    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }

    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

/// Builds a convolution with Kaiming-normal weights (zero bias when it has one).
pub fn conv2d(init: &mut Init, spec: ConvSpec, fan: Fan) -> Conv2d {
    let k = spec.kernel;
    let p = spec.padding;
    let mut conv = Conv2dConfig::new([spec.in_channels, spec.out_channels], [k, k])
        .with_stride([spec.stride, spec.stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(spec.groups)
        .with_bias(spec.bias)
        .with_initializer(Initializer::Zeros)
        .init(init.device());
    let fan = match fan {
        Fan::In => spec.in_channels / spec.groups * k * k,
        Fan::Out => spec.out_channels / spec.groups * k * k,
    };
    conv.weight = init.kaiming_normal([spec.out_channels, spec.in_channels / spec.groups, k, k], fan);
    if spec.bias {
        conv.bias = Some(init.constant([spec.out_channels], 0.0));
    }
    conv
}

/// Batch norm with PyTorch's defaults (momentum 0.1, eps 1e-5, gamma 1, beta 0) and its
/// unbiased running variance ([`BatchNorm`]).
pub fn batch_norm(init: &Init, channels: usize) -> BatchNorm {
    BatchNorm::new(channels, init.device())
}

/// Global average pooling `[N, C, H, W] -> [N, C]`.
pub fn global_avg_pool(map: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = map.dims();
    map.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}
