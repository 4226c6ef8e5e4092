//! RIDE's multi-expert backbone (Wang et al., ICLR 2021; the authors' `ride_resnet_cifar.ResNet_s`
//! and `RIDEResNet` / `RIDEResNeXt`): the stem and the early stages are shared, the **last two
//! stages** are copied once per expert (CIFAR ResNets: `layer2` and `layer3`; bottleneck ResNets:
//! `layer3` and `layer4`), optionally at 3/4 of the width (`reduce_dimension`: 24/48 channels on
//! CIFAR, 192/384 planes on ImageNet). [`MultiExpert::forward`] concatenates the experts' maps
//! along channels, so pooling gives every expert's feature side by side and the per-expert heads
//! ([`crate::heads::ExpertHeads`]) read their own slice.
//!
//! ResLT's CIFAR model (Cui et al., TPAMI 2022; jiequancui/ResLT `CIFAR/networks/resnet_cifar.py:
//! 137-158`) is the other split ([`ExpertSplit::BatchNorm`]): one whole backbone, and each
//! branch only a `BatchNorm2d` on its last map (`BNH`, `BNM`, `BNT`), read by one shared classifier.
//! Its ImageNet model ([`ExpertSplit::Conv`], `ImageNetLT/networks/reslt_imagenet.py`) puts one 1x1
//! convolution block on the last map and splits its channels into the branches.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::batch_norm::BatchNorm;
use crate::error::ModelError;
use crate::init::Init;
use crate::precision::AutocastConv;
use crate::resnet::{Bottleneck, ResNet, ResNetConfig};
use crate::resnet_cifar::{BasicBlock, ResNetCifar, stage};

/// What each expert owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpertSplit {
    /// The backbone's last two stages (RIDE).
    #[default]
    Stages,
    /// A batch norm on the whole backbone's last map (ResLT's CIFAR branches).
    BatchNorm,
    /// One 1x1 convolution (C -> E C, no bias) + batch norm + ReLU on the whole backbone's last
    /// map, its channels split into E equal branches (ResLT's ImageNet-LT / iNaturalist
    /// `finalBlock`, `reslt_imagenet.py:142-147, 196-231`).
    Conv,
}

/// `model.experts`: how many experts, what each owns, how wide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertsConfig {
    /// Number of experts (RIDE's `num_experts`, 3 in every config of the authors).
    #[serde(default = "default_count")]
    pub count: usize,
    /// Each expert's stages at 3/4 of the backbone's width (RIDE's `reduce_dimension`, on in every
    /// config of the authors); off: full width (the H2T code's RIDE trunk).
    #[serde(default)]
    pub reduced_width: bool,
    #[serde(default, skip_serializing_if = "is_stages")]
    pub split: ExpertSplit,
    /// One classifier read by every expert (ResLT's shared `linear`) instead of one each (RIDE).
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared_classifier: bool,
    /// Convolution branches (`split = "conv"`): at test, pool before the branch block's ReLU
    /// (the ResLT code's `after_1x1conv`, on in every script but ResNet-10's; see
    /// [`ConvBranches`]). Off: the training path at test too.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub relu_after_pool_at_test: bool,
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_stages(s: &ExpertSplit) -> bool {
    *s == ExpertSplit::Stages
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_count() -> usize {
    3
}

impl Default for ExpertsConfig {
    fn default() -> Self {
        Self { count: 3, reduced_width: true, split: ExpertSplit::Stages, shared_classifier: false, relu_after_pool_at_test: true }
    }
}

impl ExpertsConfig {
    /// RIDE: `count` experts owning the last two stages at 3/4 width.
    pub fn ride(count: usize) -> Self {
        Self { count, ..Self::default() }
    }

    /// ResLT's CIFAR branches: three batch norms on the last map, one shared classifier.
    pub fn reslt() -> Self {
        Self { count: 3, reduced_width: false, split: ExpertSplit::BatchNorm, shared_classifier: true, relu_after_pool_at_test: true }
    }

    /// ResLT's ImageNet-LT / iNaturalist branches: a 1x1 convolution block on the last map, its
    /// channels split in three, one shared classifier.
    pub fn reslt_imagenet() -> Self {
        Self { split: ExpertSplit::Conv, ..Self::reslt() }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        if self.count == 0 {
            return Err(ModelError::Config("model.experts.count must be at least 1 (RIDE and ResLT use 3); 0 experts leave no classifier".into()));
        }
        if self.split != ExpertSplit::Stages && self.reduced_width {
            return Err(ModelError::Config(
                "model.experts.reduced_width applies to experts that own stages (split = \"stages\"), not batch-norm or convolution branches".into(),
            ));
        }
        Ok(())
    }

    /// `planes * 3 / 4` when reduced (RIDE's 24 / 48 of 32 / 64, 192 / 384 of 256 / 512).
    fn width(&self, planes: usize) -> usize {
        if self.reduced_width { planes * 3 / 4 } else { planes }
    }

    /// One expert's pooled feature width on a CIFAR ResNet (64, or 48 reduced).
    pub fn cifar_feature_dim(&self) -> usize {
        self.width(64)
    }

    /// One expert's pooled feature width on a bottleneck ResNet (2048, or 1536 reduced).
    pub fn resnet_feature_dim(&self) -> usize {
        self.width(512) * Bottleneck::EXPANSION
    }
}

/// The shared part of a CIFAR ResNet: the stem and `layer1`.
#[derive(Module, Debug)]
pub struct CifarTrunk {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub layer1: Vec<BasicBlock>,
}

/// One CIFAR expert: its own `layer2` and `layer3`.
#[derive(Module, Debug)]
pub struct CifarExpert {
    pub layer2: Vec<BasicBlock>,
    pub layer3: Vec<BasicBlock>,
}

/// The shared part of a bottleneck ResNet: the stem, `layer1` and `layer2`.
#[derive(Module, Debug)]
pub struct ResNetTrunk {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
}

/// One bottleneck expert: its own `layer3` and `layer4`.
#[derive(Module, Debug)]
pub struct ResNetExpert {
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
}

/// A shared trunk and its experts.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant, reason = "a network holds one; boxing would only add indirection")]
pub enum MultiExpert {
    Cifar(CifarMultiExpert),
    ResNet(ResNetMultiExpert),
    BatchNorm(BatchNormBranches),
    Conv(ConvBranches),
}

/// ResLT's ImageNet branches: a whole backbone, then `relu(bn(conv1x1(map)))` with `E` times the
/// channels, branch `k` the `k`-th block of them. With `relu_after_pool_at_test` (the code's
/// `after_1x1conv`, on in every script but ResNet-10's), training pools after the block but test
/// pools first (`avgpool` then `finalBlock`): the convolution and the inference-mode batch norm
/// commute with pooling, the ReLU does not, so at test the ReLU acts on the pooled branch features.
#[derive(Module, Debug)]
pub struct ConvBranches {
    pub base: crate::two_branch::Trunk,
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub relu_after_pool_at_test: bool,
}

impl ConvBranches {
    /// The branches: the block's output width over its input width.
    pub fn branches(&self) -> usize {
        let [out, input, ..] = self.conv.weight.dims();
        out / input
    }

    /// The branch block before its ReLU.
    fn pre_relu(&self, map: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward_autocast(map))
    }

    /// The test-time pooled features of every branch side by side (`[N, E C]`).
    pub fn test_features(&self, x: Tensor<4>) -> Tensor<2> {
        let map = self.pre_relu(self.base.forward(x));
        if self.relu_after_pool_at_test { relu(crate::layers::global_avg_pool(map)) } else { crate::layers::global_avg_pool(relu(map)) }
    }
}

/// ResLT's branches: a whole backbone and one batch norm per branch on its last map.
#[derive(Module, Debug)]
pub struct BatchNormBranches {
    pub base: crate::two_branch::Trunk,
    pub branches: Vec<BatchNorm>,
}

#[derive(Module, Debug)]
pub struct CifarMultiExpert {
    pub trunk: CifarTrunk,
    pub experts: Vec<CifarExpert>,
}

#[derive(Module, Debug)]
pub struct ResNetMultiExpert {
    pub trunk: ResNetTrunk,
    pub experts: Vec<ResNetExpert>,
}

impl MultiExpert {
    /// Keeps a CIFAR ResNet's stem and `layer1` and builds `config.count` experts of its depth;
    /// the base's `layer2` / `layer3` are dropped (RIDE builds every expert afresh).
    pub fn cifar(base: ResNetCifar, config: &ExpertsConfig, init: &mut Init) -> Result<Self, ModelError> {
        config.validate()?;
        let blocks = base.layer1.len();
        let (w2, w3) = (config.width(32), config.width(64));
        let experts = (0..config.count).map(|_| CifarExpert { layer2: stage(init, 16, w2, blocks, 2), layer3: stage(init, w2, w3, blocks, 2) }).collect();
        Ok(Self::Cifar(CifarMultiExpert { trunk: CifarTrunk { conv1: base.conv1, bn1: base.bn1, layer1: base.layer1 }, experts }))
    }

    /// Keeps a bottleneck ResNet's stem, `layer1` and `layer2` and builds `config.count` experts.
    pub fn resnet(base: ResNet, resnet: &ResNetConfig, config: &ExpertsConfig, init: &mut Init) -> Result<Self, ModelError> {
        config.validate()?;
        let (p3, p4) = (config.width(256), config.width(512));
        let in3 = 128 * Bottleneck::EXPANSION;
        let experts = (0..config.count)
            .map(|_| ResNetExpert {
                layer3: resnet.stage(init, in3, p3, resnet.layers[2], 2),
                layer4: resnet.stage(init, p3 * Bottleneck::EXPANSION, p4, resnet.layers[3], 2),
            })
            .collect();
        let trunk = ResNetTrunk { conv1: base.conv1, bn1: base.bn1, maxpool: base.maxpool, layer1: base.layer1, layer2: base.layer2 };
        Ok(Self::ResNet(ResNetMultiExpert { trunk, experts }))
    }

    /// Batch-norm branches (`BNH`, `BNM`, `BNT`) on a whole backbone's last map.
    pub fn batch_norm(base: crate::two_branch::Trunk, channels: usize, config: &ExpertsConfig, init: &mut Init) -> Result<Self, ModelError> {
        config.validate()?;
        let branches = (0..config.count).map(|_| crate::layers::batch_norm(init, channels)).collect();
        Ok(Self::BatchNorm(BatchNormBranches { base, branches }))
    }

    /// ResLT's ImageNet branches (`finalBlock`) on a whole backbone's `channels`-wide last map:
    /// Kaiming-normal (fan-out) weights, the batch norm at 1 / 0 (the code's init loop).
    pub fn conv_branches(base: crate::two_branch::Trunk, channels: usize, config: &ExpertsConfig, init: &mut Init) -> Result<Self, ModelError> {
        config.validate()?;
        let conv = crate::layers::conv2d(init, crate::layers::ConvSpec::new(channels, channels * config.count, 1, 1), crate::init::Fan::Out);
        let bn = crate::layers::batch_norm(init, channels * config.count);
        Ok(Self::Conv(ConvBranches { base, conv, bn, relu_after_pool_at_test: config.relu_after_pool_at_test }))
    }

    pub fn num_experts(&self) -> usize {
        match self {
            MultiExpert::Cifar(m) => m.experts.len(),
            MultiExpert::ResNet(m) => m.experts.len(),
            MultiExpert::BatchNorm(m) => m.branches.len(),
            MultiExpert::Conv(m) => m.branches(),
        }
    }

    /// How many blocks of equal channels H2T fuses separately: one per expert's own map, one for
    /// batch-norm branches (the H2T code fuses the map before `BNH` / `BNM` / `BNT`).
    pub fn fusion_blocks(&self) -> usize {
        match self {
            MultiExpert::BatchNorm(_) | MultiExpert::Conv(_) => 1,
            other => other.num_experts(),
        }
    }

    /// The maps H2T fuses, one per block of [`MultiExpert::fusion_blocks`]: every expert's own
    /// map, or the shared map before the batch-norm branches.
    pub fn fusion_maps(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            MultiExpert::BatchNorm(_) | MultiExpert::Conv(_) => self.trunk(x),
            other => other.forward(x),
        }
    }

    /// The experts' concatenated maps from [`MultiExpert::fusion_maps`] (after a fusion).
    pub fn from_fusion_maps(&self, maps: Tensor<4>) -> Tensor<4> {
        match self {
            MultiExpert::BatchNorm(m) => Tensor::cat(m.branches.iter().map(|bn| bn.forward(maps.clone())).collect(), 1),
            MultiExpert::Conv(m) => relu(m.pre_relu(maps)),
            _ => maps,
        }
    }

    /// The shared trunk's map (the whole backbone's for batch-norm branches).
    pub fn trunk(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            MultiExpert::BatchNorm(m) => m.base.forward(x),
            MultiExpert::Conv(m) => m.base.forward(x),
            MultiExpert::Cifar(m) => {
                let t = &m.trunk;
                t.layer1.iter().fold(relu(t.bn1.forward(t.conv1.forward_autocast(x))), |out, b| b.forward(out))
            }
            MultiExpert::ResNet(m) => {
                let t = &m.trunk;
                let out = t.maxpool.forward(relu(t.bn1.forward(t.conv1.forward_autocast(x))));
                t.layer1.iter().chain(&t.layer2).fold(out, |out, b| b.forward(out))
            }
        }
    }

    /// Every expert's last map on one trunk map, in expert order.
    pub fn expert_maps(&self, trunk: Tensor<4>) -> Vec<Tensor<4>> {
        (0..self.num_experts()).map(|k| self.expert_map(k, trunk.clone())).collect()
    }

    /// Expert `k`'s last map on a trunk map.
    pub fn expert_map(&self, k: usize, trunk: Tensor<4>) -> Tensor<4> {
        match self {
            MultiExpert::Cifar(m) => m.experts[k].layer2.iter().chain(&m.experts[k].layer3).fold(trunk, |out, b| b.forward(out)),
            MultiExpert::ResNet(m) => m.experts[k].layer3.iter().chain(&m.experts[k].layer4).fold(trunk, |out, b| b.forward(out)),
            MultiExpert::BatchNorm(m) => m.branches[k].forward(trunk),
            MultiExpert::Conv(m) => {
                let c = m.conv.weight.dims()[1];
                relu(m.pre_relu(trunk)).narrow(1, k * c, c)
            }
        }
    }

    /// The experts' maps concatenated along channels (`[N, E * C, H, W]`).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            MultiExpert::Conv(m) => relu(m.pre_relu(m.base.forward(x))),
            other => Tensor::cat(other.expert_maps(other.trunk(x)), 1),
        }
    }

    /// The pooled test-time features of every expert side by side: the pooled [`MultiExpert::forward`],
    /// except for ResLT's ImageNet branches (see [`ConvBranches`]).
    pub fn test_features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            MultiExpert::Conv(m) => m.test_features(x),
            other => crate::layers::global_avg_pool(other.forward(x)),
        }
    }
}
