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

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;
use longtail_core::capabilities::{AuxHead, Logits, Provides};
use serde::{Deserialize, Serialize};

use crate::init::Init;

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
}

impl HeadConfig {
    /// What the head provides to a loss (`LossSpec::needs` in longtail-losses).
    pub fn provides(&self) -> Provides {
        match self {
            HeadConfig::Linear | HeadConfig::Lws | HeadConfig::TauNorm { .. } => Provides::LINEAR,
            HeadConfig::Cosine => Provides { logits: Logits::Cosine, aux: None },
            HeadConfig::Dual { .. } => Provides { logits: Logits::Linear, aux: Some(AuxHead::Reweighting) },
            HeadConfig::CoarseFine { .. } => Provides { logits: Logits::Linear, aux: Some(AuxHead::Coarse) },
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

/// Any head.
#[derive(Module, Debug)]
pub enum Head {
    Linear(LinearHead),
    Cosine(CosineHead),
    Lws(LwsHead),
    TauNorm(TauNormHead),
    Dual(DualHead),
    CoarseFine(CoarseFineHead),
}

/// What a head gives back during training.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// The main logits: linear/cosine/LWS/tau-norm logits, HRDC's plain branch, MGKT's fine head.
    pub logits: Tensor<2>,
    /// The second head's logits: HRDC's re-weighting branch, MGKT's coarse head.
    pub aux: Option<Tensor<2>>,
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
        }
    }

    pub fn init(config: &HeadConfig, init: &mut Init, d_in: usize, num_classes: usize, how: LinearInit) -> Self {
        match config {
            HeadConfig::Linear => Head::Linear(LinearHead { fc: linear(init, d_in, num_classes, how) }),
            HeadConfig::Cosine => Head::Cosine(CosineHead::init(init, d_in, num_classes)),
            HeadConfig::Lws => Head::Lws(LwsHead { fc: linear(init, d_in, num_classes, how), scales: init.constant([num_classes], 1.0) }),
            HeadConfig::TauNorm { tau } => Head::TauNorm(TauNormHead { fc: linear(init, d_in, num_classes, how), tau: *tau }),
            HeadConfig::Dual { reweight_weight } => Head::Dual(DualHead {
                plain: linear(init, d_in, num_classes, how),
                reweight: linear(init, d_in, num_classes, how),
                reweight_weight: *reweight_weight,
            }),
            HeadConfig::CoarseFine { num_coarse } => {
                Head::CoarseFine(CoarseFineHead { coarse: linear(init, d_in, *num_coarse, how), fine: linear(init, d_in, num_classes, how) })
            }
        }
    }

    /// Training-time outputs.
    pub fn forward(&self, features: Tensor<2>) -> HeadOutput {
        let single = |logits| HeadOutput { logits, aux: None };
        match self {
            Head::Linear(h) => single(h.fc.forward(features)),
            Head::Cosine(h) => single(h.forward(features)),
            Head::Lws(h) => single(h.fc.forward(features) * h.scales.val().unsqueeze_dim(0)),
            Head::TauNorm(h) => single(features.matmul(h.normalized_weight())),
            Head::Dual(h) => HeadOutput { logits: h.plain.forward(features.clone()), aux: Some(h.reweight.forward(features)) },
            Head::CoarseFine(h) => HeadOutput { logits: h.fine.forward(features.clone()), aux: Some(h.coarse.forward(features)) },
        }
    }

    /// Test-time logits over the (fine) classes.
    pub fn predict(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Head::Dual(h) => {
                let l = h.reweight_weight;
                h.plain.forward(features.clone()) * (1.0 - l) + h.reweight.forward(features) * l
            }
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
            Head::Dual(h) => HeadConfig::Dual { reweight_weight: h.reweight_weight },
            Head::CoarseFine(h) => HeadConfig::CoarseFine { num_coarse: h.coarse.weight.dims()[1] },
        }
    }

    /// The linear layer of a linear head (the starting point of LWS and tau-norm).
    pub fn as_linear(&self) -> Option<&Linear> {
        match self {
            Head::Linear(h) => Some(&h.fc),
            Head::Lws(h) => Some(&h.fc),
            Head::TauNorm(h) => Some(&h.fc),
            _ => None,
        }
    }
}
