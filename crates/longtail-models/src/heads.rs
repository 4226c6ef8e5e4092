//! Classifier heads on the pooled feature `f` (`[N, D]`).
//!
//! | head | logits | used by |
//! |---|---|---|
//! | linear | `W^T f + b` | CE and most baselines |
//! | cosine (normed) | `(f/‖f‖)^T (w_j/‖w_j‖)`; the loss applies its scale | LDAM, KPS, GCL, FFN |
//! | LWS | `s_j (w_j^T f + b_j)`, only `s` learned | decoupled LWS (Kang et al. 2020) |
//! | tau-norm | `(w_j / ‖w_j‖^tau)^T f` (no bias, as in Kang et al.'s code) | decoupled tau-norm |
//! | dual | a plain and a re-weighting linear head; prediction `(1-l) z_C + l z_R` | HRDC |
//! | coarse + fine | two linear heads (coarse and fine classes); prediction = fine | MGKT-MFF |
//! | causal norm | multi-head normalised `tau/K sum_k (x^k/‖x^k‖)^T w^k_j/(‖w^k_j‖+gamma)`; test: TDE | De-confound-TDE |
//! | DisAlign | frozen linear `z`, gate `sigma(v^T f + c)`: `(1 + sigma s) z + sigma b` | DisAlign stage II |

use burn::module::{Module, Param, RunningState};
use burn::nn::Linear;
use burn::tensor::{Int, Tensor};
use longtail_core::capabilities::{AuxHead, Logits, Provides};
use serde::{Deserialize, Serialize};

use crate::init::Init;
use crate::router::ExpertRouter;

/// How a linear head's weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinearInit {
    /// PyTorch's `nn.Linear` default: weight and bias from `U(±1/sqrt(D))`.
    Default,
    /// Kaiming-normal weight (fan-in), default bias: the LDAM-DRW ResNet-32's `_weights_init`.
    KaimingNormal,
}

/// Which head a model has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum HeadConfig {
    Linear,
    Cosine,
    Lws,
    TauNorm {
        tau: f64,
    },
    /// HRDC: `reweight_weight` is the re-weighting branch's share in the fused prediction
    /// (tail fusion 0.75, average 0.5, head 0.25).
    Dual {
        reweight_weight: f64,
    },
    CoarseFine {
        num_coarse: usize,
    },
    /// De-confound-TDE's causal normalised classifier (Tang et al. 2020, `CausalNormClassifier.py`).
    CausalNorm(CausalNormConfig),
    /// DisAlign's adaptive calibration on a linear classifier (Zhang et al. 2021, Eq. 3).
    #[serde(rename = "disalign")]
    DisAlign,
    /// ResLT's ImageNet-LT / iNaturalist classifier (`reslt_imagenet.py:222-227`, `gamma`):
    /// linear with its bias in training, `f^T (w_j / ‖w_j‖^tau)` without the bias at test.
    TestTauNorm {
        tau: f64,
    },
}

/// The causal normalised classifier's settings; defaults are the authors' yaml files'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CausalNormConfig {
    /// `K`: the feature and every class weight are cut into `K` equal parts (`num_head`, 2).
    #[serde(default = "default_causal_heads")]
    pub heads: usize,
    /// `tau` (16): the logits are `tau / K` times a sum of `K` cosines.
    #[serde(default = "default_causal_tau")]
    pub tau: f64,
    /// `gamma` (1/32): the weight norm's offset, `w / (‖w‖ + gamma)`.
    #[serde(default = "default_causal_gamma")]
    pub gamma: f64,
    /// `alpha`: how much of the head direction TDE removes at test time (0: none, plain causal
    /// norm). CIFAR-10-LT 1.0, CIFAR-100-LT 1.5, ImageNet-LT and Places-LT 3.0 in the authors'
    /// configs. Not used in training: it can be changed on a trained model.
    pub alpha: f64,
    /// `mu` (0.9): the moving feature sum `x̄ <- mu x̄ + mean(batch features)`.
    #[serde(default = "default_causal_momentum")]
    pub momentum: f64,
    /// The authors' `run_networks.py` outside CIFAR: each epoch,
    /// `mu = 1 - (1 - momentum) min(50 lr, 1)` (the moving sum slows down as the lr decays).
    #[serde(default)]
    pub momentum_follows_lr: bool,
}

fn default_causal_heads() -> usize {
    2
}
fn default_causal_tau() -> f64 {
    16.0
}
fn default_causal_gamma() -> f64 {
    1.0 / 32.0
}
fn default_causal_momentum() -> f64 {
    0.9
}

impl CausalNormConfig {
    /// The authors' defaults with the given `alpha`.
    pub fn with_alpha(alpha: f64) -> Self {
        Self { heads: 2, tau: 16.0, gamma: 1.0 / 32.0, alpha, momentum: 0.9, momentum_follows_lr: false }
    }

    /// Checks the numbers against the feature width `d`, naming the field at fault.
    pub fn validate(&self, d: usize) -> Result<(), String> {
        if self.heads == 0 || !d.is_multiple_of(self.heads) {
            return Err(format!("head.heads must divide the feature width {d}, got {}", self.heads));
        }
        let positive = [("tau", self.tau), ("gamma", self.gamma)];
        if let Some((k, v)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("head.{k} must be > 0, got {v}"));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(format!("head.alpha must be >= 0, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(format!("head.momentum must be in [0, 1), got {}", self.momentum));
        }
        Ok(())
    }
}

impl HeadConfig {
    /// What the head provides to a loss (`LossSpec::needs` in longtail-losses).
    pub fn provides(&self) -> Provides {
        match self {
            HeadConfig::Linear
            | HeadConfig::Lws
            | HeadConfig::TauNorm { .. }
            | HeadConfig::TestTauNorm { .. }
            | HeadConfig::CausalNorm(_)
            | HeadConfig::DisAlign => Provides::LINEAR,
            HeadConfig::Cosine => Provides::single(Logits::Cosine),
            HeadConfig::Dual { .. } => Provides { logits: Logits::Linear, aux: Some(AuxHead::Reweighting), experts: 0 },
            HeadConfig::CoarseFine { .. } => Provides { logits: Logits::Linear, aux: Some(AuxHead::Coarse), experts: 0 },
        }
    }
}

/// `x / max(‖x‖_2, 1e-12)` along `dim` (PyTorch's `F.normalize`), with its gradient at a zero
/// row too: the norm of an all-zero row is 0 with gradient 0 (as `torch.norm`'s), not the
/// `0 * inf = NaN` of `sqrt'(0)` that a ReLU feature pooled to exactly zero would spread to every
/// weight. The zero rows' squares are replaced before the square root and their norms after it.
pub fn l2_normalize<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let squares = x.clone().powi_scalar(2).sum_dim(dim);
    let zero = squares.clone().equal_elem(0.0);
    let norm = squares.mask_fill(zero.clone(), 1.0).sqrt().mask_fill(zero, 0.0).clamp_min(1e-12);
    x / norm
}

pub(crate) fn linear(init: &mut Init, d_in: usize, d_out: usize, how: LinearInit) -> Linear {
    let (mut weight, bias) = init.linear_default(d_in, d_out);
    if how == LinearInit::KaimingNormal {
        weight = init.kaiming_normal([d_in, d_out], d_in);
    }
    Linear { weight, bias: Some(bias) }
}

/// `‖x‖_2` along `dim` (kept), with gradient 0 at an all-zero row (see [`l2_normalize`]).
fn safe_norm<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let squares = x.powi_scalar(2).sum_dim(dim);
    let zero = squares.clone().equal_elem(0.0);
    squares.mask_fill(zero.clone(), 1.0).sqrt().mask_fill(zero, 0.0)
}

/// A plain linear classifier.
#[derive(Module, Debug)]
pub struct LinearHead {
    pub fc: Linear,
}

/// A cosine classifier without bias; weight `[D, C]`.
#[derive(Module, Debug)]
pub struct CosineHead {
    pub weight: Param<Tensor<2>>,
}

impl CosineHead {
    pub fn init(init: &mut Init, d_in: usize, num_classes: usize) -> Self {
        Self { weight: init.unit_columns(d_in, num_classes) }
    }

    /// Cosine similarities `cos(theta_j)` between `f` and each class anchor.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.forward_unnormalized_input(l2_normalize(features, 1))
    }

    /// `g^T (w_j / ‖w_j‖)` without normalising `g` (FFN's fused feature, spec 004 §1.3).
    pub fn forward_unnormalized_input(&self, g: Tensor<2>) -> Tensor<2> {
        g.matmul(l2_normalize(self.weight.val(), 0))
    }
}

/// Learnable weight scaling on a (frozen) linear classifier.
#[derive(Module, Debug)]
pub struct LwsHead {
    pub fc: Linear,
    pub scales: Param<Tensor<1>>,
}

/// Tau-normalised linear classifier.
#[derive(Module, Debug)]
pub struct TauNormHead {
    pub fc: Linear,
    pub tau: f64,
}

impl TauNormHead {
    /// `w_j / ‖w_j‖^tau` for every class column.
    pub fn normalized_weight(&self) -> Tensor<2> {
        let w = self.fc.weight.val();
        let norm = w.clone().powi_scalar(2).sum_dim(0).sqrt().clamp_min(1e-12);
        w / norm.powf_scalar(self.tau)
    }
}

/// HRDC's two linear classifiers on one feature.
#[derive(Module, Debug)]
pub struct DualHead {
    pub plain: Linear,
    pub reweight: Linear,
    pub reweight_weight: f64,
}

/// MGKT's coarse and fine classifiers on one feature.
#[derive(Module, Debug)]
pub struct CoarseFineHead {
    pub coarse: Linear,
    pub fine: Linear,
}

/// De-confound-TDE's causal normalised classifier (Tang et al., NeurIPS 2020, Eqs. 6-7 and the
/// authors' `CausalNormClassifier.py`); weight `[D, C]`, no bias.
///
/// Training logits: `tau/K sum_k (x^k/‖x^k‖)^T w^k_j / (‖w^k_j‖ + gamma)` over the `K` equal parts
/// of the feature `x` and of each class weight `w_j`; every training forward (on an autodiff
/// device) also moves the feature sum `x̄ <- mu x̄ + mean_batch(x)` (detached; the code keeps no
/// `1 - mu` factor, and only its direction is used). Test logits (TDE, Eq. 7): the same with each
/// part `x̂^k = x^k/‖x^k‖` replaced by `x̂^k - alpha cos(x̂^k, x̄^k) x̄^k/‖x̄^k‖`.
#[derive(Module, Debug)]
pub struct CausalNormHead {
    pub weight: Param<Tensor<2>>,
    /// The moving feature sum `x̄` (the code's `embed_mean`), saved with the weights.
    pub running_mean: RunningState<Tensor<1>>,
    pub heads: usize,
    pub tau: f64,
    pub gamma: f64,
    pub alpha: f64,
    pub momentum: f64,
    pub momentum_follows_lr: bool,
    /// The `mu` in use this epoch (`momentum`, or its learning-rate-scaled value).
    pub mu: f64,
}

impl CausalNormHead {
    pub fn init(config: &CausalNormConfig, init: &mut Init, d_in: usize, num_classes: usize) -> Self {
        // the code's reset_parameters: U(-1/sqrt(D), 1/sqrt(D))
        let bound = 1.0 / (d_in as f64).sqrt();
        Self {
            weight: init.uniform([d_in, num_classes], -bound, bound),
            running_mean: RunningState::new(Tensor::zeros([d_in], init.device())),
            heads: config.heads,
            tau: config.tau,
            gamma: config.gamma,
            alpha: config.alpha,
            momentum: config.momentum,
            momentum_follows_lr: config.momentum_follows_lr,
            mu: config.momentum,
        }
    }

    pub fn config(&self) -> CausalNormConfig {
        CausalNormConfig {
            heads: self.heads,
            tau: self.tau,
            gamma: self.gamma,
            alpha: self.alpha,
            momentum: self.momentum,
            momentum_follows_lr: self.momentum_follows_lr,
        }
    }

    /// The `K` parts of each row of `x` (`[N, D]` to `K` times `[N, D/K]`), L2-normalised.
    fn normalized_parts(&self, x: Tensor<2>) -> Vec<Tensor<2>> {
        let width = x.dims()[1] / self.heads;
        (0..self.heads).map(|k| l2_normalize(x.clone().narrow(1, k * width, width), 1)).collect()
    }

    /// The `K` parts of the weight, each class column divided by `‖w^k_j‖ + gamma`.
    fn weight_parts(&self) -> Vec<Tensor<2>> {
        let w = self.weight.val();
        let width = w.dims()[0] / self.heads;
        (0..self.heads)
            .map(|k| {
                let part = w.clone().narrow(0, k * width, width);
                part.clone() / safe_norm(part, 0).add_scalar(self.gamma)
            })
            .collect()
    }

    fn logits_of(&self, parts: Vec<Tensor<2>>) -> Tensor<2> {
        let scale = self.tau / self.heads as f64;
        let terms = parts.into_iter().zip(self.weight_parts()).map(|(x, w)| x.matmul(w));
        terms.reduce(|a, b| a + b).expect("at least one part").mul_scalar(scale)
    }

    /// Training logits; on an autodiff device the feature sum moves too.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        if features.device().is_autodiff() {
            let batch_mean = features.clone().detach().mean_dim(0).squeeze_dim::<1>(0);
            let sum = self.running_mean.value_sync().to_device(&features.device());
            self.running_mean.update((sum.mul_scalar(self.mu) + batch_mean).detach());
        }
        self.logits_of(self.normalized_parts(features))
    }

    /// Test logits: the total direct effect (Eq. 7), or the training logits when `alpha` is 0.
    pub fn predict(&self, features: Tensor<2>) -> Tensor<2> {
        if self.alpha == 0.0 {
            return self.logits_of(self.normalized_parts(features));
        }
        let device = features.device();
        let mean = self.running_mean.value_sync().to_device(&device).unsqueeze_dim::<2>(0);
        let parts = self.normalized_parts(features).into_iter().zip(self.normalized_parts(mean));
        let removed = parts.map(|(x, c)| {
            let cos = (x.clone() * c.clone()).sum_dim(1);
            x - cos.mul_scalar(self.alpha) * c
        });
        self.logits_of(removed.collect())
    }

    /// Sets this epoch's `mu` from its learning rate (when `momentum_follows_lr`).
    pub fn at_learning_rate(mut self, lr: f64) -> Self {
        if self.momentum_follows_lr {
            self.mu = 1.0 - (1.0 - self.momentum) * (lr * 50.0).min(1.0);
        }
        self
    }
}

/// DisAlign's adaptive calibration function on a frozen linear classifier (Zhang et al., CVPR
/// 2021), as the authors' `DisAlignLinear` (cvpods) computes it: `z = W^T f + b`, the confidence
/// `sigma = sigmoid(v^T f + c)`, logits `(1 + sigma s) z + sigma t` with per-class `s` (init 1)
/// and `t` (init 0). The paper writes `sigma (s z + t) + (1 - sigma) z` (identity at `s` = 1, `t`
/// = 0); the two are the same family of functions (code `s` = paper `s` - 1) started at
/// different points: the code starts at `(1 + sigma) z`.
#[derive(Module, Debug)]
pub struct DisAlignHead {
    pub fc: Linear,
    /// The confidence layer `v, c` (`Linear(D, 1)`: weight 0.1, PyTorch's default bias).
    pub confidence: Linear,
    pub scale: Param<Tensor<1>>,
    pub shift: Param<Tensor<1>>,
}

impl DisAlignHead {
    /// The calibration on `fc` as the code starts it.
    pub fn on(fc: Linear, init: &mut Init) -> Self {
        let (d, c) = (fc.weight.dims()[0], fc.weight.dims()[1]);
        let (_, bias) = init.linear_default(d, 1);
        let confidence = Linear { weight: init.constant([d, 1], 0.1), bias: Some(bias) };
        Self { fc, confidence, scale: init.constant([c], 1.0), shift: init.constant([c], 0.0) }
    }

    /// The confidence `sigmoid(v^T f + c)`, `[N, 1]`.
    pub fn confidence(&self, features: Tensor<2>) -> Tensor<2> {
        burn::tensor::activation::sigmoid(self.confidence.forward(features))
    }

    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let z = self.fc.forward(features.clone());
        let sigma = self.confidence(features);
        let gain = (sigma.clone() * self.scale.val().unsqueeze_dim(0)).add_scalar(1.0);
        gain * z + sigma * self.shift.val().unsqueeze_dim(0)
    }
}

/// Any head.
#[derive(Module, Debug)]
pub enum Head {
    Linear(LinearHead),
    Cosine(CosineHead),
    Lws(LwsHead),
    TauNorm(TauNormHead),
    Dual(DualHead),
    CoarseFine(CoarseFineHead),
    CausalNorm(CausalNormHead),
    DisAlign(DisAlignHead),
    /// Linear in training, tau-normalised without bias at test (ResLT's ImageNet code).
    TestTauNorm(TauNormHead),
    /// One head per expert of a multi-expert model (RIDE).
    Experts(ExpertHeads),
}

/// RIDE's per-expert classifiers (`self.linears`): expert `k`'s head reads the `k`-th of
/// `experts` equal slices of the concatenated pooled feature, and the logits are the experts'
/// mean (`torch.stack(outs, dim=1).mean(dim=1)`). One head shared by every slice is ResLT's
/// (`self.linear` on `cat(BNH, BNM, BNT)`).
#[derive(Module, Debug)]
pub struct ExpertHeads {
    pub heads: Vec<Head>,
    pub experts: usize,
    /// RIDE-EA's expert-assignment router (stage II), which decides per sample how many experts run.
    pub router: Option<ExpertRouter>,
}

impl ExpertHeads {
    /// Expert `k`'s slice of the concatenated feature and its head.
    fn slice(&self, features: &Tensor<2>, k: usize) -> (Tensor<2>, &Head) {
        let d = features.dims()[1] / self.experts;
        (features.clone().narrow(1, k * d, d), self.expert_head(k))
    }

    /// Expert `k`'s classifier.
    pub fn expert_head(&self, k: usize) -> &Head {
        &self.heads[if self.heads.len() == 1 { 0 } else { k }]
    }

    /// Each expert's pooled feature.
    pub fn expert_features(&self, features: &Tensor<2>) -> Vec<Tensor<2>> {
        (0..self.experts).map(|k| self.slice(features, k).0).collect()
    }

    /// Each expert's training logits.
    pub fn expert_logits(&self, features: &Tensor<2>) -> Vec<Tensor<2>> {
        (0..self.experts)
            .map(|k| {
                let (f, h) = self.slice(features, k);
                h.forward(f).logits
            })
            .collect()
    }

    /// Each expert's test-time logits.
    pub fn expert_predictions(&self, features: &Tensor<2>) -> Vec<Tensor<2>> {
        (0..self.experts)
            .map(|k| {
                let (f, h) = self.slice(features, k);
                h.predict(f)
            })
            .collect()
    }
}

/// A multi-expert model's test-time outputs.
#[derive(Debug, Clone)]
pub struct ExpertPrediction {
    /// The experts' mean, or with a router the mean of the experts each sample uses.
    pub logits: Tensor<2>,
    /// Each expert's own logits.
    pub each: Vec<Tensor<2>>,
    /// With a router: every router's logit `[N, E - 1]` and the experts each sample uses `[N]`.
    pub routing: Option<(Tensor<2>, Tensor<1, Int>)>,
}

impl ExpertHeads {
    /// Test-time logits of every expert and their (routed) combination.
    pub fn predict(&self, features: &Tensor<2>) -> ExpertPrediction {
        let each = self.expert_predictions(features);
        match &self.router {
            None => ExpertPrediction { logits: mean_logits(&each), each, routing: None },
            Some(r) => {
                let decisions = r.logits(&self.expert_features(features), &each);
                let (logits, used) = r.route(&each, decisions.clone());
                ExpertPrediction { logits, each, routing: Some((decisions, used)) }
            }
        }
    }
}

/// The mean of equally shaped logits.
pub fn mean_logits(logits: &[Tensor<2>]) -> Tensor<2> {
    let sum = logits.iter().cloned().reduce(|a, b| a + b).expect("at least one expert");
    sum.div_scalar(logits.len() as f64)
}

/// What a head gives back during training.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// The main logits: linear/cosine/LWS/tau-norm logits, HRDC's plain branch, MGKT's fine head,
    /// the experts' mean.
    pub logits: Tensor<2>,
    /// The second head's logits: HRDC's re-weighting branch, MGKT's coarse head.
    pub aux: Option<Tensor<2>>,
    /// Each expert's logits (multi-expert models; empty otherwise).
    pub experts: Vec<Tensor<2>>,
}

impl Head {
    /// The head's kind in words, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Head::Linear(_) => "linear",
            Head::Cosine(_) => "cosine",
            Head::Lws(_) => "LWS",
            Head::TauNorm(_) => "tau-norm",
            Head::Dual(_) => "dual",
            Head::CoarseFine(_) => "coarse + fine",
            Head::CausalNorm(_) => "causal norm",
            Head::DisAlign(_) => "DisAlign",
            Head::TestTauNorm(_) => "linear (tau-normalised at test)",
            Head::Experts(_) => "per-expert",
        }
    }

    /// Heads of `config` for `count` experts, each on a `d_expert`-wide slice: one per expert,
    /// or one `shared` by all.
    pub fn experts(config: &HeadConfig, init: &mut Init, count: usize, shared: bool, d_expert: usize, num_classes: usize, how: LinearInit) -> Self {
        let heads = (0..if shared { 1 } else { count }).map(|_| Head::init(config, init, d_expert, num_classes, how)).collect();
        Head::Experts(ExpertHeads { heads, experts: count, router: None })
    }

    pub fn init(config: &HeadConfig, init: &mut Init, d_in: usize, num_classes: usize, how: LinearInit) -> Self {
        match config {
            HeadConfig::Linear => Head::Linear(LinearHead { fc: linear(init, d_in, num_classes, how) }),
            HeadConfig::Cosine => Head::Cosine(CosineHead::init(init, d_in, num_classes)),
            HeadConfig::Lws => Head::Lws(LwsHead { fc: linear(init, d_in, num_classes, how), scales: init.constant([num_classes], 1.0) }),
            HeadConfig::TauNorm { tau } => Head::TauNorm(TauNormHead { fc: linear(init, d_in, num_classes, how), tau: *tau }),
            HeadConfig::TestTauNorm { tau } => Head::TestTauNorm(TauNormHead { fc: linear(init, d_in, num_classes, how), tau: *tau }),
            HeadConfig::Dual { reweight_weight } => Head::Dual(DualHead {
                plain: linear(init, d_in, num_classes, how),
                reweight: linear(init, d_in, num_classes, how),
                reweight_weight: *reweight_weight,
            }),
            HeadConfig::CoarseFine { num_coarse } => {
                Head::CoarseFine(CoarseFineHead { coarse: linear(init, d_in, *num_coarse, how), fine: linear(init, d_in, num_classes, how) })
            }
            HeadConfig::CausalNorm(c) => Head::CausalNorm(CausalNormHead::init(c, init, d_in, num_classes)),
            HeadConfig::DisAlign => {
                let fc = linear(init, d_in, num_classes, how);
                Head::DisAlign(DisAlignHead::on(fc, init))
            }
        }
    }

    /// Training-time outputs.
    pub fn forward(&self, features: Tensor<2>) -> HeadOutput {
        let single = |logits| HeadOutput { logits, aux: None, experts: Vec::new() };
        match self {
            Head::Linear(h) => single(h.fc.forward(features)),
            Head::Cosine(h) => single(h.forward(features)),
            Head::Lws(h) => single(h.fc.forward(features) * h.scales.val().unsqueeze_dim(0)),
            Head::TauNorm(h) => single(features.matmul(h.normalized_weight())),
            Head::TestTauNorm(h) => single(h.fc.forward(features)),
            Head::Dual(h) => HeadOutput { logits: h.plain.forward(features.clone()), aux: Some(h.reweight.forward(features)), experts: Vec::new() },
            Head::CoarseFine(h) => HeadOutput { logits: h.fine.forward(features.clone()), aux: Some(h.coarse.forward(features)), experts: Vec::new() },
            Head::CausalNorm(h) => single(h.forward(features)),
            Head::DisAlign(h) => single(h.forward(features)),
            Head::Experts(h) => {
                let experts = h.expert_logits(&features);
                let aux = h.router.as_ref().map(|r| r.logits(&h.expert_features(&features), &experts));
                HeadOutput { logits: mean_logits(&experts), aux, experts }
            }
        }
    }

    /// Test-time logits over the (fine) classes.
    pub fn predict(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Head::Dual(h) => {
                let l = h.reweight_weight;
                h.plain.forward(features.clone()) * (1.0 - l) + h.reweight.forward(features) * l
            }
            Head::CausalNorm(h) => h.predict(features),
            Head::TestTauNorm(h) => features.matmul(h.normalized_weight()),
            Head::Experts(h) => h.predict(&features).logits,
            other => other.forward(features).logits,
        }
    }

    /// The config that rebuilds this head.
    pub fn config(&self) -> HeadConfig {
        match self {
            Head::Linear(_) => HeadConfig::Linear,
            Head::Cosine(_) => HeadConfig::Cosine,
            Head::Lws(_) => HeadConfig::Lws,
            Head::TauNorm(h) => HeadConfig::TauNorm { tau: h.tau },
            Head::TestTauNorm(h) => HeadConfig::TestTauNorm { tau: h.tau },
            Head::Dual(h) => HeadConfig::Dual { reweight_weight: h.reweight_weight },
            Head::CoarseFine(h) => HeadConfig::CoarseFine { num_coarse: h.coarse.weight.dims()[1] },
            Head::CausalNorm(h) => HeadConfig::CausalNorm(h.config()),
            Head::DisAlign(_) => HeadConfig::DisAlign,
            // every expert's head is of one kind (`model.head`)
            Head::Experts(h) => h.heads[0].config(),
        }
    }

    /// The head for this epoch's learning rate (TDE's learning-rate-scaled moving average).
    pub fn at_learning_rate(self, lr: f64) -> Self {
        match self {
            Head::CausalNorm(h) => Head::CausalNorm(h.at_learning_rate(lr)),
            Head::Experts(h) => Head::Experts(ExpertHeads { heads: h.heads.into_iter().map(|e| e.at_learning_rate(lr)).collect(), ..h }),
            other => other,
        }
    }

    /// `(feature width, classes)` of a linear-weight or cosine classifier.
    pub fn classifier_dims(&self) -> Option<(usize, usize)> {
        let [d, c] = match self {
            Head::Cosine(h) => h.weight.dims(),
            other => other.as_linear()?.weight.dims(),
        };
        Some((d, c))
    }

    /// The linear layer of a linear head (the starting point of LWS and tau-norm).
    pub fn as_linear(&self) -> Option<&Linear> {
        match self {
            Head::Linear(h) => Some(&h.fc),
            Head::Lws(h) => Some(&h.fc),
            Head::TauNorm(h) | Head::TestTauNorm(h) => Some(&h.fc),
            _ => None,
        }
    }
}
