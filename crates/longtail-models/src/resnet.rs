//! ImageNet ResNets with bottleneck blocks in torchvision's layout (ResNet v1.5: the stride sits
//! on the 3x3 convolution): ResNet-50 `[3, 4, 6, 3]`, ResNet-152 `[3, 8, 36, 3]`, and ResNeXt-50
//! 32x4d (grouped 3x3 convolutions, 32 groups of width 4). Field names follow torchvision's
//! state-dict keys so ImageNet-pretrained weights load with a light remapping. Convolutions use
//! Kaiming-normal fan-out initialisation, batch norms `gamma = 1`, `beta = 0` (torchvision).

use crate::batch_norm::BatchNorm;
use crate::precision::AutocastConv;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::init::{Fan, Init};
use crate::layers::{ConvSpec, batch_norm, conv2d};

/// Configuration of a bottleneck ResNet / ResNeXt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    pub layers: [usize; 4],
    pub groups: usize,
    pub width_per_group: usize,
    pub in_channels: usize,
}

impl ResNetConfig {
    pub fn resnet50(in_channels: usize) -> Self {
        Self { layers: [3, 4, 6, 3], groups: 1, width_per_group: 64, in_channels }
    }

    pub fn resnet152(in_channels: usize) -> Self {
        Self { layers: [3, 8, 36, 3], groups: 1, width_per_group: 64, in_channels }
    }

    pub fn resnext50_32x4d(in_channels: usize) -> Self {
        Self { layers: [3, 4, 6, 3], groups: 32, width_per_group: 4, in_channels }
    }

    /// Width of the pooled feature (2048).
    pub fn feature_dim(&self) -> usize {
        512 * Bottleneck::EXPANSION
    }

    pub fn init(&self, init: &mut Init) -> ResNet {
        let conv1 = conv2d(init, ConvSpec::new(self.in_channels, 64, 7, 2).padding(3), Fan::Out);
        let bn1 = batch_norm(init, 64);
        let maxpool = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init();
        let mut in_planes = 64;
        let mut stages = Vec::new();
        for (i, (&blocks, planes)) in self.layers.iter().zip([64, 128, 256, 512]).enumerate() {
            stages.push(self.stage(init, in_planes, planes, blocks, if i == 0 { 1 } else { 2 }));
            in_planes = planes * Bottleneck::EXPANSION;
        }
        let [layer1, layer2, layer3, layer4]: [Vec<Bottleneck>; 4] = stages.try_into().unwrap();
        ResNet { conv1, bn1, maxpool, layer1, layer2, layer3, layer4 }
    }

    /// One stage of `blocks` bottlenecks of `planes` (output `4 planes`), the first with `stride`.
    pub(crate) fn stage(&self, init: &mut Init, in_planes: usize, planes: usize, blocks: usize, stride: usize) -> Vec<Bottleneck> {
        let out = planes * Bottleneck::EXPANSION;
        (0..blocks)
            .map(|b| {
                let (from, s) = if b == 0 { (in_planes, stride) } else { (out, 1) };
                Bottleneck::init(init, from, planes, s, self.groups, self.width_per_group)
            })
            .collect()
    }
}

/// The 1x1 projection shortcut of the first block of a stage.
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// 1x1 reduce, 3x3 (grouped, strided), 1x1 expand (x4), plus shortcut.
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    pub const EXPANSION: usize = 4;

    pub(crate) fn init(init: &mut Init, in_planes: usize, planes: usize, stride: usize, groups: usize, width_per_group: usize) -> Self {
        let width = planes * width_per_group / 64 * groups;
        let out = planes * Self::EXPANSION;
        let conv1 = conv2d(init, ConvSpec::new(in_planes, width, 1, 1), Fan::Out);
        let bn1 = batch_norm(init, width);
        let conv2 = conv2d(init, ConvSpec::new(width, width, 3, stride).groups(groups), Fan::Out);
        let bn2 = batch_norm(init, width);
        let conv3 = conv2d(init, ConvSpec::new(width, out, 1, 1), Fan::Out);
        let bn3 = batch_norm(init, out);
        let downsample = (stride != 1 || in_planes != out)
            .then(|| Downsample { conv: conv2d(init, ConvSpec::new(in_planes, out, 1, stride), Fan::Out), bn: batch_norm(init, out) });
        Self { conv1, bn1, conv2, bn2, conv3, bn3, downsample }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(self.conv1.forward_autocast(x.clone())));
        let out = relu(self.bn2.forward(self.conv2.forward_autocast(out)));
        let out = self.bn3.forward(self.conv3.forward_autocast(out));
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(d.conv.forward_autocast(x)),
            None => x,
        };
        relu(out + identity)
    }
}

/// A bottleneck ResNet backbone: returns the `[N, 2048, H/32, W/32]` map before pooling.
#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
}

impl ResNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut out = self.maxpool.forward(relu(self.bn1.forward(self.conv1.forward_autocast(x))));
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3).chain(&self.layer4) {
            out = block.forward(out);
        }
        out
    }

    /// The last stage alone (`layer4`), for fine-tuning only the last block on a frozen trunk
    /// (the Places-LT practice).
    pub fn forward_trunk(&self, x: Tensor<4>) -> Tensor<4> {
        let mut out = self.maxpool.forward(relu(self.bn1.forward(self.conv1.forward_autocast(x))));
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3) {
            out = block.forward(out);
        }
        out
    }
}
