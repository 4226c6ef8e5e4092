//! The CIFAR ResNets of He et al. (2016), in the form every long-tailed CIFAR paper trains:
//! a 3x3 stem with 16 channels, three stages of `n` basic blocks (16/32/64 channels, strides
//! 1/2/2), option-A shortcuts (stride-2 subsampling plus zero channel padding) and Kaiming-normal
//! (fan-in) weights, as in the LDAM-DRW reference code. ResNet-32 is `n = 5` (0.46M parameters).

use crate::batch_norm::BatchNorm;
use crate::precision::AutocastConv;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, s};
use serde::{Deserialize, Serialize};

use crate::init::{Fan, Init};
use crate::layers::{ConvSpec, batch_norm, conv2d};

/// Configuration of a CIFAR ResNet (depth `6n + 2`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResNetCifarConfig {
    /// Basic blocks per stage (`5` for ResNet-32).
    pub blocks_per_stage: usize,
    /// Input channels (3 for RGB, 1 for grayscale IDX data).
    pub in_channels: usize,
}

impl ResNetCifarConfig {
    /// ResNet-32: three stages of five basic blocks.
    pub fn resnet32(in_channels: usize) -> Self {
        Self { blocks_per_stage: 5, in_channels }
    }

    /// Width of the pooled feature (64).
    pub fn feature_dim(&self) -> usize {
        64
    }

    pub fn init(&self, init: &mut Init) -> ResNetCifar {
        let conv1 = conv2d(init, ConvSpec::new(self.in_channels, 16, 3, 1), Fan::In);
        let bn1 = batch_norm(init, 16);
        let layer1 = stage(init, 16, 16, self.blocks_per_stage, 1);
        let layer2 = stage(init, 16, 32, self.blocks_per_stage, 2);
        let layer3 = stage(init, 32, 64, self.blocks_per_stage, 2);
        ResNetCifar { conv1, bn1, layer1, layer2, layer3 }
    }
}

/// One stage of `blocks` basic blocks from `in_planes` to `planes` channels, the first with `stride`.
pub(crate) fn stage(init: &mut Init, in_planes: usize, planes: usize, blocks: usize, stride: usize) -> Vec<BasicBlock> {
    (0..blocks).map(|b| if b == 0 { BasicBlock::init(init, in_planes, planes, stride) } else { BasicBlock::init(init, planes, planes, 1) }).collect()
}

/// Two 3x3 convolutions with an option-A (parameter-free) shortcut.
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    /// Channels added by zero padding on each side of the shortcut (0 when shapes match).
    pub pad_channels: usize,
    pub stride: usize,
}

impl BasicBlock {
    pub(crate) fn init(init: &mut Init, in_planes: usize, planes: usize, stride: usize) -> Self {
        let conv1 = conv2d(init, ConvSpec::new(in_planes, planes, 3, stride), Fan::In);
        let bn1 = batch_norm(init, planes);
        let conv2 = conv2d(init, ConvSpec::new(planes, planes, 3, 1), Fan::In);
        let bn2 = batch_norm(init, planes);
        // `(planes - in_planes) // 2` per side (RIDE's code; `planes // 4` of LDAM's when widths double)
        let pad_channels = planes.saturating_sub(in_planes) / 2;
        Self { conv1, bn1, conv2, bn2, pad_channels, stride }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(self.conv1.forward_autocast(x.clone())));
        let out = self.bn2.forward(self.conv2.forward_autocast(out));
        relu(out + self.shortcut(x))
    }

    /// `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))`.
    fn shortcut(&self, x: Tensor<4>) -> Tensor<4> {
        if self.pad_channels == 0 && self.stride == 1 {
            return x;
        }
        let x = if self.stride == 2 { x.slice(s![.., .., 0..;2, 0..;2]) } else { x };
        let [n, _, h, w] = x.dims();
        if self.pad_channels == 0 {
            return x;
        }
        let zeros = Tensor::<4>::zeros([n, self.pad_channels, h, w], &x.device());
        Tensor::cat(vec![zeros.clone(), x, zeros], 1)
    }
}

/// A CIFAR ResNet backbone: returns the `[N, 64, H/4, W/4]` feature map before pooling. Field
/// names follow the LDAM-DRW code (`conv1`, `bn1`, `layer1..3`), so its checkpoints import.
#[derive(Module, Debug)]
pub struct ResNetCifar {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub layer1: Vec<BasicBlock>,
    pub layer2: Vec<BasicBlock>,
    pub layer3: Vec<BasicBlock>,
}

impl ResNetCifar {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut out = relu(self.bn1.forward(self.conv1.forward_autocast(x)));
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3) {
            out = block.forward(out);
        }
        out
    }
}
