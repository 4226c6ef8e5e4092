//! Whole models: a backbone and a head ([`Classifier`]), or FFN's two backbones with one cosine
//! head ([`FeatureFusion`]), behind one [`Network`] type that every method trains and every
//! application embeds.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::csms::{CsmsResNet, CsmsResNetConfig, FusionWeight, WeightedPath};
use crate::error::ModelError;
use crate::experts::{ExpertSplit, ExpertsConfig, MultiExpert};
use crate::heads::{CosineHead, ExpertPrediction, Head, HeadConfig, HeadOutput, LinearInit, l2_normalize};
use crate::init::Init;
use crate::layers::global_avg_pool;
use crate::resnet::{ResNet, ResNetConfig};
use crate::resnet_cifar::{ResNetCifar, ResNetCifarConfig};
use crate::two_branch::TwoBranch;

/// Backbone architectures of the zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// A CIFAR ResNet with one block per stage: for tests and quick demos.
    Resnet8,
    Resnet20,
    Resnet32,
    Resnet44,
    Resnet56,
    Resnet110,
    Resnet50,
    Resnet152,
    #[serde(rename = "resnext50-32x4d")]
    Resnext50_32x4d,
    CsmsResnet,
}

impl Arch {
    pub const ALL: [Arch; 10] = [
        Arch::Resnet8,
        Arch::Resnet20,
        Arch::Resnet32,
        Arch::Resnet44,
        Arch::Resnet56,
        Arch::Resnet110,
        Arch::Resnet50,
        Arch::Resnet152,
        Arch::Resnext50_32x4d,
        Arch::CsmsResnet,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet8 => "resnet8",
            Arch::Resnet20 => "resnet20",
            Arch::Resnet32 => "resnet32",
            Arch::Resnet44 => "resnet44",
            Arch::Resnet56 => "resnet56",
            Arch::Resnet110 => "resnet110",
            Arch::Resnet50 => "resnet50",
            Arch::Resnet152 => "resnet152",
            Arch::Resnext50_32x4d => "resnext50-32x4d",
            Arch::CsmsResnet => "csms-resnet",
        }
    }

    fn cifar_blocks(self) -> Option<usize> {
        match self {
            Arch::Resnet8 => Some(1),
            Arch::Resnet20 => Some(3),
            Arch::Resnet32 => Some(5),
            Arch::Resnet44 => Some(7),
            Arch::Resnet56 => Some(9),
            Arch::Resnet110 => Some(18),
            _ => None,
        }
    }
}

/// Options of the CSMS module (MGKT-MFF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsmsOptions {
    #[serde(default = "default_reduction")]
    pub reduction: usize,
    #[serde(default)]
    pub fusion_weight: FusionWeight,
    #[serde(default)]
    pub weighted_path: WeightedPath,
}

fn default_reduction() -> usize {
    4
}

impl Default for CsmsOptions {
    fn default() -> Self {
        Self { reduction: 4, fusion_weight: FusionWeight::default(), weighted_path: WeightedPath::default() }
    }
}

fn default_in_channels() -> usize {
    3
}

/// Everything needed to build a model (and to rebuild it before loading weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub arch: Arch,
    #[serde(default = "default_in_channels")]
    pub in_channels: usize,
    pub num_classes: usize,
    pub head: HeadConfig,
    #[serde(default)]
    pub csms: CsmsOptions,
    /// FFN: two backbones of `arch` whose L2-normalised features are mixed as
    /// `w * f_first + (1 - w) * f_second` before one cosine head; this is `w`.
    #[serde(default)]
    pub feature_fusion: Option<f64>,
    /// BBN: the backbone's last residual block duplicated into a conventional and a
    /// re-balancing branch ([`crate::two_branch::TwoBranch`]); the pooled feature doubles.
    #[serde(default, skip_serializing_if = "is_false")]
    pub two_branch: bool,
    /// RIDE: the backbone's last two stages and the classifier copied per expert
    /// ([`crate::experts::MultiExpert`]); the logits are the experts' mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<ExpertsConfig>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ModelConfig {
    pub fn new(arch: Arch, in_channels: usize, num_classes: usize, head: HeadConfig) -> Self {
        Self { arch, in_channels, num_classes, head, csms: CsmsOptions::default(), feature_fusion: None, two_branch: false, experts: None }
    }

    /// Checks the numbers, naming the field at fault.
    pub fn validate(&self) -> Result<(), ModelError> {
        let err = |m: String| Err(ModelError::Config(m));
        if self.num_classes < 2 {
            return err(format!("num_classes must be at least 2, got {}", self.num_classes));
        }
        if self.in_channels == 0 {
            return err("in_channels must be at least 1".into());
        }
        match &self.head {
            HeadConfig::Dual { reweight_weight } if !(0.0..=1.0).contains(reweight_weight) => {
                return err(format!("head.reweight_weight must be in [0, 1], got {reweight_weight}"));
            }
            HeadConfig::CoarseFine { num_coarse } if *num_coarse < 2 => {
                return err(format!("head.num_coarse must be at least 2, got {num_coarse}"));
            }
            HeadConfig::TauNorm { tau } if !tau.is_finite() || *tau < 0.0 => return err(format!("head.tau must be >= 0, got {tau}")),
            HeadConfig::CausalNorm(c) => c.validate(self.feature_dim()).map_err(ModelError::Config)?,
            _ => {}
        }
        if let Some(w) = self.feature_fusion {
            if !(0.0..=1.0).contains(&w) {
                return err(format!("feature_fusion must be in [0, 1], got {w}"));
            }
            if self.head != HeadConfig::Cosine {
                return err("feature_fusion (FFN) needs head = { kind = \"cosine\" }".into());
            }
        }
        if self.csms.reduction == 0 {
            return err("csms.reduction must be at least 1".into());
        }
        if let Some(e) = &self.experts {
            self.validate_experts(e)?;
        }
        if self.two_branch {
            if self.feature_fusion.is_some() {
                return err("two_branch (BBN) and feature_fusion (FFN) are different models; set one".into());
            }
            if matches!(self.arch, Arch::CsmsResnet | Arch::Resnext50_32x4d) {
                return err(format!("two_branch (BBN) needs a CIFAR ResNet or resnet50 / resnet152, not {}", self.arch.name()));
            }
            if self.arch.cifar_blocks().is_some_and(|n| n < 2) {
                return err(format!(
                    "two_branch (BBN) duplicates the last residual block, and {} has one block per stage: the shared stage would be empty; use resnet20 or deeper",
                    self.arch.name()
                ));
            }
        }
        Ok(())
    }

    fn validate_experts(&self, e: &ExpertsConfig) -> Result<(), ModelError> {
        let err = |m: String| Err(ModelError::Config(m));
        e.validate()?;
        if self.two_branch || self.feature_fusion.is_some() {
            return err("model.experts (RIDE) is its own model; it does not combine with two_branch (BBN) or feature_fusion (FFN)".into());
        }
        if self.arch == Arch::CsmsResnet {
            return err("model.experts (RIDE) needs a CIFAR ResNet or resnet50 / resnet152 / resnext50-32x4d, not csms-resnet".into());
        }
        let test_tau_norm = matches!(self.head, HeadConfig::TestTauNorm { .. });
        if !(matches!(self.head, HeadConfig::Linear | HeadConfig::Cosine) || test_tau_norm) {
            return err(format!("model.experts gives each expert a linear or a cosine classifier (RIDE's use_norm), not {:?}", self.head));
        }
        if test_tau_norm && e.split != ExpertSplit::Conv {
            return err("head = { kind = \"test-tau-norm\" } is ResLT's ImageNet classifier: it goes with model.experts.split = \"conv\"".into());
        }
        Ok(())
    }

    /// Width of the pooled feature (every expert's, side by side, on a multi-expert model).
    pub fn feature_dim(&self) -> usize {
        if let Some(e) = &self.experts {
            return e.count * self.expert_dim(e);
        }
        self.single_dim()
    }

    fn single_dim(&self) -> usize {
        let one = match self.arch {
            Arch::Resnet50 | Arch::Resnet152 | Arch::Resnext50_32x4d => 2048,
            Arch::CsmsResnet => 640,
            _ => 64,
        };
        if self.two_branch { 2 * one } else { one }
    }

    /// One expert's pooled width.
    fn expert_dim(&self, e: &ExpertsConfig) -> usize {
        match (e.split, self.arch.cifar_blocks().is_some()) {
            (ExpertSplit::BatchNorm | ExpertSplit::Conv, _) => self.single_dim(),
            (ExpertSplit::Stages, true) => e.cifar_feature_dim(),
            (ExpertSplit::Stages, false) => e.resnet_feature_dim(),
        }
    }

    /// What the model provides to a loss: its head's outputs, and per-expert logits on a
    /// multi-expert model.
    pub fn provides(&self) -> longtail_core::capabilities::Provides {
        longtail_core::capabilities::Provides { experts: self.experts.as_ref().map_or(0, |e| e.count), ..self.head.provides() }
    }

    /// The classifier: one head, or one per expert.
    fn head(&self, init: &mut Init) -> Head {
        match &self.experts {
            Some(e) => Head::experts(&self.head, init, e.count, e.shared_classifier, self.expert_dim(e), self.num_classes, self.linear_init()),
            None => Head::init(&self.head, init, self.feature_dim(), self.num_classes, self.linear_init()),
        }
    }

    /// The LDAM code's Kaiming-normal classifier for CIFAR ResNets; BBN builds its classifier
    /// outside the backbone with PyTorch's default `nn.Linear` init (`lib/net/network.py`).
    fn linear_init(&self) -> LinearInit {
        // ResLT's shared classifier is outside the backbone's `_weights_init` too
        let outside = self.two_branch || self.experts.as_ref().is_some_and(|e| e.split != ExpertSplit::Stages);
        if self.arch.cifar_blocks().is_some() && !outside { LinearInit::KaimingNormal } else { LinearInit::Default }
    }

    fn backbone(&self, init: &mut Init) -> Result<Backbone, ModelError> {
        let single = self.single_backbone(init);
        if let Some(e) = &self.experts {
            use crate::two_branch::Trunk;
            let channels = self.single_dim();
            return Ok(Backbone::Experts(match (e.split, single) {
                (ExpertSplit::BatchNorm, Backbone::ResNetCifar(b)) => MultiExpert::batch_norm(Trunk::Cifar(b), channels, e, init)?,
                (ExpertSplit::BatchNorm, Backbone::ResNet(b)) => MultiExpert::batch_norm(Trunk::ResNet(b), channels, e, init)?,
                (ExpertSplit::Conv, Backbone::ResNetCifar(b)) => MultiExpert::conv_branches(Trunk::Cifar(b), channels, e, init)?,
                (ExpertSplit::Conv, Backbone::ResNet(b)) => MultiExpert::conv_branches(Trunk::ResNet(b), channels, e, init)?,
                (ExpertSplit::Stages, Backbone::ResNetCifar(b)) => MultiExpert::cifar(b, e, init)?,
                (ExpertSplit::Stages, Backbone::ResNet(b)) => MultiExpert::resnet(b, &self.resnet_config().expect("a bottleneck arch"), e, init)?,
                _ => return Err(ModelError::Config(format!("model.experts needs a CIFAR ResNet or a bottleneck ResNet, not {}", self.arch.name()))),
            }));
        }
        if !self.two_branch {
            return Ok(single);
        }
        match single {
            Backbone::ResNetCifar(b) => Ok(Backbone::TwoBranch(TwoBranch::split_cifar(b, init)?)),
            Backbone::ResNet(b) => Ok(Backbone::TwoBranch(TwoBranch::split_resnet(b, init)?)),
            _ => Err(ModelError::Config(format!("two_branch (BBN) needs a CIFAR ResNet or resnet50 / resnet152, not {}", self.arch.name()))),
        }
    }

    fn resnet_config(&self) -> Option<ResNetConfig> {
        match self.arch {
            Arch::Resnet50 => Some(ResNetConfig::resnet50(self.in_channels)),
            Arch::Resnet152 => Some(ResNetConfig::resnet152(self.in_channels)),
            Arch::Resnext50_32x4d => Some(ResNetConfig::resnext50_32x4d(self.in_channels)),
            _ => None,
        }
    }

    fn single_backbone(&self, init: &mut Init) -> Backbone {
        if let Some(r) = self.resnet_config() {
            return Backbone::ResNet(r.init(init));
        }
        match self.arch {
            a if a.cifar_blocks().is_some() => {
                Backbone::ResNetCifar(ResNetCifarConfig { blocks_per_stage: a.cifar_blocks().unwrap(), in_channels: self.in_channels }.init(init))
            }
            _ => Backbone::Csms(
                CsmsResNetConfig {
                    reduction: self.csms.reduction,
                    fusion_weight: self.csms.fusion_weight,
                    weighted_path: self.csms.weighted_path,
                    ..CsmsResNetConfig::new(self.in_channels)
                }
                .init(init),
            ),
        }
    }

    /// Builds the model; the same seed gives the same weights on every device.
    pub fn init(&self, seed: u64, device: &Device) -> Result<Network, ModelError> {
        self.validate()?;
        let mut init = Init::new(seed, device);
        let d = self.feature_dim();
        Ok(match self.feature_fusion {
            None => {
                let backbone = self.backbone(&mut init)?;
                let head = self.head(&mut init);
                Network::Classifier(Classifier { backbone, head })
            }
            Some(w) => {
                let first = self.backbone(&mut init)?;
                let second = self.backbone(&mut init)?;
                let head = CosineHead::init(&mut init, d, self.num_classes);
                Network::FeatureFusion(FeatureFusion { first, second, head, first_weight: w })
            }
        })
    }

    /// A fresh head of this config's kind (cRT re-initialises the classifier).
    pub fn init_head(&self, seed: u64, device: &Device) -> Head {
        let mut init = Init::new(seed, device);
        self.head(&mut init)
    }
}

/// Any backbone: image batch `[N, C, H, W]` to feature map before pooling.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant, reason = "a network holds one or two backbones; boxing would only add indirection")]
pub enum Backbone {
    ResNetCifar(ResNetCifar),
    ResNet(ResNet),
    Csms(CsmsResNet),
    /// BBN's shared trunk and two branches.
    TwoBranch(TwoBranch),
    /// RIDE's shared trunk and experts (their maps concatenated).
    Experts(MultiExpert),
}

impl Backbone {
    /// The map(s) H2T fuses: the last map, or the shared map before ResLT's batch-norm branches.
    pub fn fusion_map(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Backbone::Experts(b) => b.fusion_maps(x),
            other => other.forward(x),
        }
    }

    /// The last map from a (fused) [`Backbone::fusion_map`].
    pub fn after_fusion(&self, map: Tensor<4>) -> Tensor<4> {
        match self {
            Backbone::Experts(b) => b.from_fusion_maps(map),
            _ => map,
        }
    }

    /// The pooled test-time feature: the pooled map, except where a model pools at another point
    /// at test (ResLT's ImageNet branches).
    pub fn test_features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Backbone::Experts(b) => b.test_features(x),
            other => global_avg_pool(other.forward(x)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Backbone::ResNetCifar(b) => b.forward(x),
            Backbone::ResNet(b) => b.forward(x),
            Backbone::Csms(b) => b.forward(x),
            Backbone::TwoBranch(b) => b.forward(x),
            Backbone::Experts(b) => b.forward(x),
        }
    }
}

/// One backbone and one head.
#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: Backbone,
    pub head: Head,
}

/// FFN: two backbones, their L2-normalised pooled features mixed with fixed weights, one cosine
/// head on the mix (spec 004 §1.3: `z = W_hat^T (w f_hat_1 + (1 - w) f_hat_2)`, not re-normalised).
#[derive(Module, Debug)]
pub struct FeatureFusion {
    pub first: Backbone,
    pub second: Backbone,
    pub head: CosineHead,
    pub first_weight: f64,
}

impl FeatureFusion {
    /// The fused feature `w f_hat_1 + (1 - w) f_hat_2`.
    pub fn fused_feature(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        let map = self.first.forward(x.clone());
        let f1 = l2_normalize(global_avg_pool(map.clone()), 1);
        let f2 = l2_normalize(global_avg_pool(self.second.forward(x)), 1);
        (map, f1 * self.first_weight + f2 * (1.0 - self.first_weight))
    }
}

/// Everything a forward pass gives back.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// The last feature map before global pooling (H2T fuses these).
    pub feature_map: Tensor<4>,
    /// The pooled feature.
    pub features: Tensor<2>,
    pub logits: Tensor<2>,
    pub aux: Option<Tensor<2>>,
    /// Each expert's logits (multi-expert models; empty otherwise).
    pub experts: Vec<Tensor<2>>,
}

/// The model type every method trains.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant, reason = "a run holds one or two networks; boxing would only add indirection")]
pub enum Network {
    Classifier(Classifier),
    FeatureFusion(FeatureFusion),
}

impl Network {
    /// Training-time forward pass.
    pub fn forward(&self, x: Tensor<4>) -> ModelOutput {
        match self {
            Network::Classifier(m) => {
                let feature_map = m.backbone.forward(x);
                let features = global_avg_pool(feature_map.clone());
                let HeadOutput { logits, aux, experts } = m.head.forward(features.clone());
                ModelOutput { feature_map, features, logits, aux, experts }
            }
            Network::FeatureFusion(m) => {
                let (feature_map, features) = m.fused_feature(x);
                let logits = m.head.forward_unnormalized_input(features.clone());
                ModelOutput { feature_map, features, logits, aux: None, experts: Vec::new() }
            }
        }
    }

    /// Training forward pass over two batches whose last feature maps `combine` merges (H2T's
    /// channel fusion, Eq. 2): pooling and the head then run on the merged map as in
    /// [`Network::forward`]. Single-backbone models only: the feature-fusion model's features
    /// are already a mix of two backbones and have no one map to merge.
    pub fn forward_combined(&self, x: Tensor<4>, other: Tensor<4>, combine: impl FnOnce(Tensor<4>, Tensor<4>) -> Tensor<4>) -> Result<ModelOutput, ModelError> {
        let Network::Classifier(m) = self else {
            return Err(ModelError::Config("merging two batches' feature maps (H2T) needs a single-backbone model, not the feature-fusion model".into()));
        };
        let feature_map = m.backbone.after_fusion(combine(m.backbone.fusion_map(x), m.backbone.fusion_map(other)));
        let features = global_avg_pool(feature_map.clone());
        let HeadOutput { logits, aux, experts } = m.head.forward(features.clone());
        Ok(ModelOutput { feature_map, features, logits, aux, experts })
    }

    /// BBN's training forward pass (`lib/core/combiner.py:48-58`): the conventional branch on
    /// `x_c`, the re-balancing branch on `x_r` (two passes through the shared trunk), each pooled,
    /// and the head on `2 [alpha f_c ; (1 - alpha) f_r]`. At `alpha = 0.5` this is the test-time
    /// forward of one image through both branches. Batches of different sizes are cut to the
    /// smaller one. The output's feature map is the conventional branch's.
    pub fn forward_two_branch(&self, x_c: Tensor<4>, x_r: Tensor<4>, alpha: f64) -> Result<ModelOutput, ModelError> {
        let Network::Classifier(Classifier { backbone: Backbone::TwoBranch(b), head }) = self else {
            return Err(ModelError::Config("a two-branch step (BBN's cumulative learning) needs model.two_branch = true".into()));
        };
        let n = x_c.dims()[0].min(x_r.dims()[0]);
        let map_c = b.conventional(b.trunk(x_c.narrow(0, 0, n)));
        let map_r = b.rebalancing(b.trunk(x_r.narrow(0, 0, n)));
        let features = Tensor::cat(vec![global_avg_pool(map_c.clone()).mul_scalar(2.0 * alpha), global_avg_pool(map_r).mul_scalar(2.0 * (1.0 - alpha))], 1);
        let HeadOutput { logits, aux, experts } = head.forward(features.clone());
        Ok(ModelOutput { feature_map: map_c, features, logits, aux, experts })
    }

    /// Test-time logits (HRDC's fused branches, MGKT's fine head, plain logits otherwise).
    pub fn predict(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Network::Classifier(m) => m.head.predict(m.backbone.test_features(x)),
            Network::FeatureFusion(_) => self.forward(x).logits,
        }
    }

    /// Experts of a multi-expert model (RIDE, ResLT's branches), 1 otherwise.
    pub fn num_experts(&self) -> usize {
        match self {
            Network::Classifier(Classifier { backbone: Backbone::Experts(b), .. }) => b.num_experts(),
            _ => 1,
        }
    }

    /// The equal channel blocks of [`Backbone::fusion_map`] that H2T masks independently: every
    /// expert's own map (RIDE), else one.
    pub fn fusion_blocks(&self) -> usize {
        match self {
            Network::Classifier(Classifier { backbone: Backbone::Experts(b), .. }) => b.fusion_blocks(),
            _ => 1,
        }
    }

    /// Test-time logits and, on a multi-expert model, each expert's and the router's decisions
    /// (empty and `None` otherwise).
    pub fn predict_with_experts(&self, x: Tensor<4>) -> ExpertPrediction {
        match self {
            Network::Classifier(Classifier { backbone, head: Head::Experts(h) }) => h.predict(&backbone.test_features(x)),
            other => ExpertPrediction { logits: other.predict(x), each: Vec::new(), routing: None },
        }
    }

    /// RIDE-EA's early exit (`ea_resnet_cifar.py:235-250`): expert 0 runs on every sample, and
    /// expert `i` only on the samples whose router `i - 1` said "go on" (read back to select
    /// them); the logits are the mean of the experts each sample used, and the second output
    /// how many it used. The same numbers as [`Network::predict_with_experts`], without
    /// computing the experts a sample skips. `None` on a model without a router.
    pub fn predict_routed(&self, x: Tensor<4>) -> Option<(Tensor<2>, Vec<usize>)> {
        let Network::Classifier(Classifier { backbone: Backbone::Experts(b), head: Head::Experts(h) }) = self else {
            return None;
        };
        let router = h.router.as_ref()?;
        let trunk = b.trunk(x);
        let n = trunk.dims()[0];
        let device = trunk.device();
        let indices = |rows: &[usize]| Tensor::<1, Int>::from_data(TensorData::new(rows.iter().map(|&i| i as i64).collect(), [rows.len()]), &device);
        let run = |k: usize, input: Tensor<4>| {
            let feature = global_avg_pool(b.expert_map(k, input));
            (feature.clone(), h.expert_head(k).predict(feature))
        };
        let (mut feature, mut sum) = run(0, trunk.clone());
        // the running sum of every sample's used experts; `sum` and `feature` hold the rows of `active`
        let mut out = sum.clone();
        let mut active: Vec<usize> = (0..n).collect();
        let mut used = vec![1usize; n];
        for k in 1..b.num_experts() {
            let go = sigmoid(router.decide(k - 1, feature, sum.clone().div_scalar(k as f64))).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            let keep: Vec<usize> = (0..active.len()).filter(|&i| f64::from(go[i]) > router.threshold).collect();
            if keep.is_empty() {
                break;
            }
            active = keep.iter().map(|&i| active[i]).collect();
            let rows = indices(&active);
            let (f, z) = run(k, trunk.clone().select(0, rows.clone()));
            out = out.select_assign(0, rows, z.clone(), IndexingUpdateOp::Add);
            (feature, sum) = (f, sum.select(0, indices(&keep)) + z);
            active.iter().for_each(|&i| used[i] += 1);
        }
        let counts = Tensor::<1>::from_data(TensorData::new(used.iter().map(|&u| u as f32).collect(), [n]), &device);
        Some((out / counts.unsqueeze_dim(1), used))
    }

    /// The threshold of a model's expert routers (`None` without routers).
    pub fn router_threshold(&self) -> Option<f64> {
        match self {
            Network::Classifier(Classifier { head: Head::Experts(h), .. }) => h.router.as_ref().map(|r| r.threshold),
            _ => None,
        }
    }

    /// Multiply-accumulates per `input`-sized image of each part of a multi-expert model with its
    /// own experts' stages (RIDE); `None` otherwise.
    pub fn expert_macs(&self, input: crate::macs::Size) -> Option<crate::macs::ExpertMacs> {
        let Network::Classifier(Classifier { backbone: Backbone::Experts(b), head: Head::Experts(h) }) = self else {
            return None;
        };
        let heads: Vec<&Head> = h.heads.iter().collect();
        crate::macs::multi_expert(b, &heads, h.router.as_ref(), input)
    }

    /// Adds RIDE-EA's routers to a multi-expert model with a classifier per expert (stage II);
    /// the routers are fresh, from `seed`.
    pub fn with_router(self, config: &crate::router::RouterConfig, seed: u64, device: &Device) -> Result<Self, ModelError> {
        let err = |m: &str| Err(ModelError::Config(m.into()));
        let Network::Classifier(Classifier { backbone, head: Head::Experts(h) }) = self else {
            return err("an expert router (RIDE-EA) needs a multi-expert model: model.experts = { count = 3 }");
        };
        if h.heads.len() != h.experts {
            return err("an expert router (RIDE-EA) needs a classifier per expert; this model's experts share one (ResLT's branches)");
        }
        if h.router.is_some() {
            return err("this model has an expert router already");
        }
        let Some((d, classes)) = h.heads.first().and_then(Head::classifier_dims) else {
            return err("an expert router (RIDE-EA) needs linear or cosine expert classifiers");
        };
        let router = config.init(&mut Init::new(seed, device), h.experts, d, classes)?;
        Ok(Network::Classifier(Classifier { backbone, head: Head::Experts(crate::heads::ExpertHeads { router: Some(router), ..h }) }))
    }

    /// The backbone of a single-backbone model.
    pub fn backbone(&self) -> Option<&Backbone> {
        match self {
            Network::Classifier(m) => Some(&m.backbone),
            Network::FeatureFusion(_) => None,
        }
    }

    pub fn head(&self) -> Option<&Head> {
        match self {
            Network::Classifier(m) => Some(&m.head),
            Network::FeatureFusion(_) => None,
        }
    }

    /// Replaces the classifier: any head on a single-backbone model, a cosine head on the
    /// feature-fusion model (the only classifier it has); anything else is an error, not a
    /// model left as it was.
    pub fn with_head(self, head: Head) -> Result<Self, ModelError> {
        match (self, head) {
            (Network::Classifier(m), head) => Ok(Network::Classifier(Classifier { backbone: m.backbone, head })),
            (Network::FeatureFusion(f), Head::Cosine(head)) => Ok(Network::FeatureFusion(FeatureFusion { head, ..f })),
            (Network::FeatureFusion(_), other) => Err(ModelError::Config(format!(
                "the feature-fusion model's classifier is a cosine classifier over the fused features; it cannot take a {} head",
                other.kind_name()
            ))),
        }
    }

    /// The network for an epoch trained at learning rate `lr` (TDE's moving average may follow
    /// it); every other model is returned as it is.
    pub fn at_learning_rate(self, lr: f64) -> Self {
        match self {
            Network::Classifier(m) => Network::Classifier(Classifier { backbone: m.backbone, head: m.head.at_learning_rate(lr) }),
            other => other,
        }
    }

    /// Freezes every backbone: no gradients, and batch norms in inference mode unless
    /// `shift_bn` (MiSLAS / H2T's "shift learning on BN": running statistics keep adapting).
    /// ResLT's batch-norm (and ImageNet convolution) branches count as its classifier and keep training (the H2T code's
    /// `ResClassifier` holds `BNH` / `BNM` / `BNT`); only the backbone under them is frozen.
    pub fn freeze_backbones(self, shift_bn: bool) -> Self {
        let freeze = |b: Backbone| match b {
            Backbone::Experts(MultiExpert::BatchNorm(m)) => Backbone::Experts(MultiExpert::BatchNorm(crate::experts::BatchNormBranches {
                base: if shift_bn { m.base.no_grad() } else { m.base.freeze() },
                branches: m.branches,
            })),
            Backbone::Experts(MultiExpert::Conv(m)) => {
                Backbone::Experts(MultiExpert::Conv(crate::experts::ConvBranches { base: if shift_bn { m.base.no_grad() } else { m.base.freeze() }, ..m }))
            }
            b if shift_bn => b.no_grad(),
            b => b.freeze(),
        };
        match self {
            Network::Classifier(m) => Network::Classifier(Classifier { backbone: freeze(m.backbone), head: m.head }),
            Network::FeatureFusion(m) => {
                Network::FeatureFusion(FeatureFusion { first: freeze(m.first), second: freeze(m.second), head: m.head, first_weight: m.first_weight })
            }
        }
    }

    /// Number of learnable parameters (batch-norm running statistics excluded).
    pub fn num_trainable_params(&self) -> usize {
        count_learnable(self)
    }
}

/// Counts parameters of any module, leaving out batch-norm running statistics.
pub fn count_learnable<M: Module>(module: &M) -> usize {
    struct Counter {
        path: Vec<String>,
        total: usize,
    }
    impl ModuleVisitor for Counter {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let last = self.path.last().map(String::as_str).unwrap_or("");
            if last != "running_mean" && last != "running_var" {
                self.total += param.lazy_shape().num_elements();
            }
        }
    }
    let mut counter = Counter { path: Vec::new(), total: 0 };
    module.visit(&mut counter);
    counter.total
}
