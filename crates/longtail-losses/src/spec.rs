//! Serializable loss specifications with the papers' defaults.

use longtail_core::capabilities::{AuxHead, Logits, Needs};
use serde::{Deserialize, Serialize};

use crate::class_stats::{ClassWeighting, KpsMargins, LevelSplit, SmoothingShape};

/// FBL's curriculum `alpha(t)` (thesis Table 4.4). `t` runs over `[0, end_fraction * T]`;
/// `end_fraction = 0.95` reproduces the authors' `(epoch / (T - 10))^2` at `T = 200`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Curriculum {
    /// `(t/T)^2` (Eq. 4.7, the thesis's choice).
    #[default]
    Parabolic,
    Linear,
    Sine,
    Cosine,
    LinearDecrease,
    Constant,
}

impl Curriculum {
    /// `alpha(t)` for progress `x = t / (end_fraction T)`.
    pub fn value(self, x: f64) -> f64 {
        use std::f64::consts::FRAC_PI_2;
        match self {
            Curriculum::Parabolic => x * x,
            Curriculum::Linear => x,
            Curriculum::Sine => (x * FRAC_PI_2).sin(),
            Curriculum::Cosine => 1.0 - (x * FRAC_PI_2).cos(),
            Curriculum::LinearDecrease => 1.0 - x,
            Curriculum::Constant => 1.0,
        }
    }
}

/// Which code's focal loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FocalForm {
    /// Softmax: `l = (1 - p)^gamma w_y CE` with `p = exp(-w_y CE)` (so `p_y^(w_y)` when weighted),
    /// the batch mean; LDAM-DRW's and the thesis authors' `FocalLoss(weight=)` (their tables'
    /// focal and CB-focal baselines).
    #[default]
    Softmax,
    /// Cui et al.'s CB-focal (class-balanced-loss `focal_loss`): a sigmoid per class,
    /// `w_y sum_j m_j BCE(z_j, [j = y])`, `m_j = exp(-gamma ([j = y] z_j + log(1 + e^(-z_j))))`
    /// (`(1 - sigma(z_j))^gamma` for the target, `sigma(z_j)^gamma` for the others), summed over
    /// classes and divided by the batch size: the CB-focal rows of Cui et al.'s tables.
    Sigmoid,
}

/// HRDC's weight `alpha` between the plain and the re-weighting branch (Table 6 strategies).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BranchSchedule {
    /// `alpha = (1 - T/T_max)^2`, `T = 1..T_max` (Eq. 6, the paper's choice).
    #[default]
    Quadratic,
    /// `alpha = 0.5`.
    Equal,
    /// `alpha = 1` up to `T = switch_fraction * T_max`, then 0 (BBN's code switches at 120/200).
    Segmented { switch_fraction: f64 },
    /// `alpha = cos(pi/2 * T/T_max)`.
    Cosine,
}

impl BranchSchedule {
    /// `alpha` at 0-based `epoch` of `total` (the paper's `T = epoch + 1`).
    pub fn alpha(self, epoch: usize, total: usize) -> f64 {
        let t = (epoch + 1) as f64 / total as f64;
        match self {
            BranchSchedule::Quadratic => (1.0 - t).powi(2),
            BranchSchedule::Equal => 0.5,
            BranchSchedule::Segmented { switch_fraction } => {
                if t <= switch_fraction {
                    1.0
                } else {
                    0.0
                }
            }
            BranchSchedule::Cosine => (t * std::f64::consts::FRAC_PI_2).cos(),
        }
    }
}

fn ldam_max_margin() -> f64 {
    0.5
}
fn ldam_scale() -> f64 {
    30.0
}
fn one() -> f64 {
    1.0
}
fn ride_diversity() -> f64 {
    -0.2
}
fn ride_reweight_factor() -> f64 {
    0.05
}
fn lade_alpha() -> f64 {
    0.1
}
fn lade_lambda() -> f64 {
    0.1
}
fn kps_n_base() -> f64 {
    50.0
}
fn kps_base_scale() -> f64 {
    15.0
}
fn fbl_end() -> f64 {
    0.95
}
fn gcl_sigma() -> f64 {
    1.0 / 3.0
}
fn gcl_noise_mul() -> f64 {
    0.5
}
fn kps_scale_cap() -> f64 {
    50.0
}
fn hrdc_split() -> LevelSplit {
    LevelSplit::Thresholds { many_above: 100, few_below: 20 }
}

/// A loss and its hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LossSpec {
    /// Softmax cross-entropy.
    Ce,
    /// Class-weighted cross-entropy (weighted mean, as PyTorch's `weight=`).
    WeightedCe { weighting: ClassWeighting },
    /// Focal loss `-(1 - p_y)^gamma log p_y` (Lin et al. 2017); with `weighting`, CB-focal
    /// (Cui et al. 2019). `form` chooses whose code: the softmax form of LDAM-DRW and the thesis
    /// authors, or Cui et al.'s per-class sigmoids.
    Focal {
        gamma: f64,
        #[serde(default)]
        weighting: Option<ClassWeighting>,
        #[serde(default)]
        form: FocalForm,
        /// `(1 - p)^gamma` as a constant in the gradient (the thesis authors' `focal_loss`:
        /// `(1 - p.detach()) ** gamma`, which the `focal` method's configs set); LDAM-DRW's and
        /// Cui et al.'s code differentiate it (the default when the key is absent).
        #[serde(default)]
        detach: bool,
    },
    /// Cross-entropy against `(1 - epsilon) onehot + epsilon / C`.
    LabelSmoothing { epsilon: f64 },
    /// LDAM (Cao et al. 2019): `CE(s (z - Delta_y e_y))`, `Delta_j ∝ n_j^(-1/4)`, largest 0.5, s = 30,
    /// on a cosine classifier.
    Ldam {
        #[serde(default = "ldam_max_margin")]
        max_margin: f64,
        #[serde(default = "ldam_scale")]
        scale: f64,
    },
    /// Balanced softmax (Ren et al. 2020): `CE(z + log n)`.
    BalancedSoftmax,
    /// LADE (Hong et al., CVPR 2021) as the authors' `LADELoss.py` + `PriorCELoss.py` compute it:
    /// the PriorCE term `CE(z + log(pi_s + 1e-9))` (LADE-CE, Eqs. 18-19) plus `alpha` times the
    /// LADER regulariser (Eq. 16) `sum_c pi_s(c) [-A_c + S_c + lambda S_c^2]` over every class of
    /// the batch's logits. Inference uses the raw logits (a uniform test prior) or, given a test
    /// prior, `z + log pi_t` (`longtail eval --test-prior`).
    Lade {
        /// The regulariser's weight (the code's `--alpha`, 0.1 for CIFAR-100-LT).
        #[serde(default = "lade_alpha")]
        alpha: f64,
        /// The weight of `S_c^2` (the code's `remine_lambda`: 0.1 in its yaml files; its README
        /// runs CIFAR-100-LT IF 100 with 0.01 and ImageNet-LT with 0.5).
        #[serde(default = "lade_lambda")]
        lambda: f64,
    },
    /// Logit-adjusted loss (Menon et al. 2021): `CE(z + tau log pi)`.
    LogitAdjusted {
        #[serde(default = "one")]
        tau: f64,
    },
    /// Class-dependent temperatures (Ye et al. 2020): `CE(z / a)`, `a_j = (n_max/n_j)^gamma`.
    Cdt { gamma: f64 },
    /// MiSLAS label-aware smoothing (Zhong et al. 2021).
    LabelAwareSmoothing {
        head: f64,
        tail: f64,
        #[serde(default)]
        shape: SmoothingShape,
    },
    /// KPS (thesis Ch. 3, Eq. 3.16) with gradient adjustment (Eq. 3.26) from `ga_epoch` on.
    Kps {
        #[serde(default = "kps_n_base")]
        n_base: f64,
        max_margin: f64,
        #[serde(default = "kps_base_scale")]
        base_scale: f64,
        /// First 0-based epoch of the GA phase (the authors' code: 120 of 200); none = plain KPS.
        #[serde(default)]
        ga_epoch: Option<usize>,
        /// Upper clamp of the per-class GA scale (the authors' code: 50; the thesis has none:
        /// `inf`).
        #[serde(default = "kps_scale_cap")]
        scale_cap: f64,
        /// Margins and GA scales from the reversed radii list (the authors' code) or Eq. 3.28.
        #[serde(default)]
        margins: KpsMargins,
    },
    /// Feature-balanced loss (thesis Ch. 4, Eq. 4.8): `CE(z - alpha(t) A lambda_hat / ‖f‖)`.
    Fbl {
        /// `A`: 60 for CIFAR, 150 for the large-scale datasets (authors' code).
        strength: f64,
        #[serde(default)]
        curriculum: Curriculum,
        #[serde(default = "fbl_end")]
        end_fraction: f64,
    },
    /// Gaussian clouded logit (thesis Ch. 5, Eq. 5.11-5.12) on a cosine classifier.
    Gcl {
        scale: f64,
        #[serde(default = "gcl_noise_mul")]
        noise_mul: f64,
        #[serde(default = "gcl_sigma")]
        sigma: f64,
        /// Target margin (the code's stage II: 0.1; thesis: 0).
        #[serde(default)]
        margin: f64,
        /// Focal factor `(1 - p)^gamma` on each term (the code's stage II: 1; thesis: 0).
        #[serde(default)]
        focal_gamma: f64,
    },
    /// HRDC (Zhang et al.): `alpha CE(z_C) + (1 - alpha) L_R(z_R)` on a dual head, `L_R` the
    /// hierarchical rebalancing loss `CE(z_R / a^H)` (Eqs. 5-9) unless `reweight_loss` replaces
    /// it (Table 5 ablation).
    Hrdc {
        gamma: f64,
        #[serde(default = "hrdc_split")]
        levels: LevelSplit,
        #[serde(default)]
        schedule: BranchSchedule,
        #[serde(default)]
        reweight_loss: Option<Box<LossSpec>>,
    },
    /// MGKT's multi-granularity loss `lambda CE_coarse + (1 - lambda) CE_fine` (Eq. 12) with the
    /// three-phase schedule (coarse only before `coarse_epochs`, fine only in the last
    /// `fine_epochs`), on a coarse + fine head.
    MultiGranularity {
        coarse_epochs: usize,
        fine_epochs: usize,
        /// The authors' code rescales the fine loss to the coarse loss's power of ten in the
        /// joint phase; the paper does not.
        #[serde(default)]
        magnitude_scaling: bool,
        /// Hierarchical DRW (inverse-frequency weights on both heads) from this 0-based epoch.
        #[serde(default)]
        drw_epoch: Option<usize>,
    },
    /// RIDE's loss (Wang et al., ICLR 2021; the authors' `RIDELoss`, `model/loss.py`) on a
    /// multi-expert model with cosine classifiers, `x_k = s cos_k` and `x̄ = mean_k x_k`:
    /// `sum_k [ f_b CE_w(x_k - s m_y 1_y, y) + lambda T̄^2 KL(softmax(x̄ / T) ‖ softmax(x_k / T)) ]`
    /// with LDAM's margins `m`, the mean detached, `KL` per sample (the code's `batchmean`). From
    /// `reweight_epoch` on, `CE_w` weights classes by effective numbers (beta 0.9999) and `T` is the
    /// per-class temperature `T_j = t (C n_j / N * gamma + 1 - gamma) / max_j (..)` with `T̄` its
    /// mean; before, no weights and `T = T̄ = t`. With `diversity = 0` the code's base loss is on
    /// `x̄` instead of each `x_k` (still once per expert).
    Ride {
        #[serde(default = "ldam_max_margin")]
        max_margin: f64,
        #[serde(default = "ldam_scale")]
        scale: f64,
        /// `lambda`: the code's `additional_diversity_factor` (-0.2; the CIFAR-100 config -0.45).
        #[serde(default = "ride_diversity")]
        diversity: f64,
        /// `t`: `base_diversity_temperature` (1).
        #[serde(default = "one")]
        temperature: f64,
        /// The first 0-based epoch of the re-weighting and the per-class temperature (the code's
        /// `epoch > reweight_epoch` with 1-based epochs); none: never (`reweight = False`).
        #[serde(default)]
        reweight_epoch: Option<usize>,
        /// `gamma`: `reweight_factor` (0.05; ImageNet-LT 0.02, iNaturalist 0.015).
        #[serde(default = "ride_reweight_factor")]
        reweight_factor: f64,
        /// `f_b`: `base_loss_factor` (1).
        #[serde(default = "one")]
        base_factor: f64,
    },
    /// ResLT's loss (Cui et al., TPAMI 2022; jiequancui/ResLT `cifarTrain_reslt_cifar100.py:
    /// 61-64, 146-155`) on three branches `z_H, z_M, z_T` (a model with three experts):
    /// `beta ICE + (1 - beta) CE(z_H + z_M + z_T, y)`, where ICE sums `-log(softmax(z_b)_y + 1e-7)`
    /// over the branches whose classes hold `y` (H all, M the classes from frequency rank
    /// `medium_from` on, T from `tail_from` on) and divides by the number of those (sample, branch)
    /// pairs in the batch.
    #[serde(rename = "reslt")]
    ResLt {
        beta: f64,
        /// First frequency rank (0 = most images) of branch M (CIFAR-100: 35, CIFAR-10: 2).
        medium_from: usize,
        /// First frequency rank of branch T (CIFAR-100: 70, CIFAR-10: 4); none: two branches, H
        /// and M (ResLT's iNaturalist script, `logitH, logitM, _ = model(images)`).
        #[serde(default)]
        tail_from: Option<usize>,
    },
    /// RIDE-EA's router loss (Wang et al., ICLR 2021; `ea_resnet_cifar.py:213-234`) on a
    /// multi-expert model with routers: with `c_k` whether the mean of experts `0..=k` is right,
    /// router `i`'s target is `t_i = !c_i && (c_{i+1} || ... || c_{E-1})` ("the ensemble so far
    /// is wrong and a later one is right"), and the loss the mean over the `E - 1` routers of
    /// `BCE-with-logits(r_i, t_i)` with `pos_weight` (`-[p t log sigma(r) + (1 - t) log(1 - sigma(r))]`,
    /// batch mean). The experts' logits only set the targets: no gradient reaches them.
    #[serde(rename = "ride-router")]
    RideRouter {
        /// `pos_weight`: 100 in every config of the authors (the constructor's default 20).
        #[serde(default = "ride_router_pos_weight")]
        pos_weight: f64,
    },
}

/// ResLT's branches: H, M and T, or H and M without a tail split.
fn reslt_branches(tail_from: Option<usize>) -> usize {
    if tail_from.is_some() { 3 } else { 2 }
}

fn ride_router_pos_weight() -> f64 {
    100.0
}

impl LossSpec {
    /// LDAM with Cao et al.'s defaults (largest margin 0.5, s = 30; LDAM-DRW's code).
    pub fn ldam() -> Self {
        LossSpec::Ldam { max_margin: ldam_max_margin(), scale: ldam_scale() }
    }

    /// LADE with the authors' defaults (`--alpha 0.1`, `remine_lambda` 0.1 of their yaml files).
    pub fn lade() -> Self {
        LossSpec::Lade { alpha: lade_alpha(), lambda: lade_lambda() }
    }

    /// RIDE's loss with the code's defaults and the given diversity factor and re-weighting start.
    pub fn ride(diversity: f64, reweight_epoch: Option<usize>, reweight_factor: f64) -> Self {
        LossSpec::Ride {
            max_margin: ldam_max_margin(),
            scale: ldam_scale(),
            diversity,
            temperature: one(),
            reweight_epoch,
            reweight_factor,
            base_factor: one(),
        }
    }

    /// The logit-adjusted loss with Menon et al.'s tau = 1.
    pub fn logit_adjusted() -> Self {
        LossSpec::LogitAdjusted { tau: one() }
    }

    /// KPS with the authors' code's constants (n_base 50, s_base 15, the scale clamped at 50,
    /// the reversed radii list) and the given largest margin and GA start.
    pub fn kps(max_margin: f64, ga_epoch: Option<usize>) -> Self {
        LossSpec::Kps { n_base: kps_n_base(), max_margin, base_scale: kps_base_scale(), ga_epoch, scale_cap: kps_scale_cap(), margins: KpsMargins::default() }
    }

    /// FBL with strength `A`, the thesis's parabolic curriculum ending at 95% of the schedule.
    pub fn fbl(strength: f64) -> Self {
        LossSpec::Fbl { strength, curriculum: Curriculum::default(), end_fraction: fbl_end() }
    }

    /// GCL's stage I as in the thesis and the code: s = 30, noise 0.5, sigma 1/3, no margin, no
    /// focal factor.
    pub fn gcl() -> Self {
        LossSpec::Gcl { scale: 30.0, noise_mul: gcl_noise_mul(), sigma: gcl_sigma(), margin: 0.0, focal_gamma: 0.0 }
    }

    /// The factor the loss applies to the network's logits before its softmax, used for the
    /// probabilities that calibration (ECE, confidences) reports: LDAM's and GCL's `s`, KPS's base
    /// scale (its per-class scales are a training device); 1 for every other loss. Accuracy
    /// does not depend on it. Without it a cosine classifier's probabilities would be the
    /// softmax of values in [-1, 1], nearly uniform, and its ECE meaningless.
    pub fn eval_logit_scale(&self) -> f64 {
        match self {
            LossSpec::Ldam { scale, .. } | LossSpec::Gcl { scale, .. } | LossSpec::Ride { scale, .. } => *scale,
            // the model's logits are the branches' mean; the code's are their sum
            LossSpec::ResLt { tail_from, .. } => reslt_branches(*tail_from) as f64,
            LossSpec::Kps { base_scale, .. } => *base_scale,
            // the routed logits are RIDE's cosine experts' (s = 30)
            LossSpec::RideRouter { .. } => 30.0,
            _ => 1.0,
        }
    }

    /// What the loss needs from the model and the data (validation follows from it: a config
    /// whose head does not provide it is refused, `HeadConfig::provides`).
    pub fn needs(&self) -> Needs {
        match self {
            // cosine logits scaled by the loss (LDAM's s, KPS's per-class scales, GCL's s)
            LossSpec::Ldam { .. } | LossSpec::Kps { .. } | LossSpec::Gcl { .. } => Needs { logits: Some(Logits::Cosine), ..Needs::default() },
            LossSpec::Fbl { .. } => Needs { features: true, ..Needs::default() },
            LossSpec::Ride { .. } => Needs { logits: Some(Logits::Cosine), experts: true, ..Needs::default() },
            LossSpec::ResLt { tail_from, .. } => {
                Needs { logits: Some(Logits::Linear), experts: true, expert_count: Some(reslt_branches(*tail_from)), ..Needs::default() }
            }
            LossSpec::Hrdc { .. } => Needs { aux: Some(AuxHead::Reweighting), ..Needs::default() },
            LossSpec::RideRouter { .. } => Needs { aux: Some(AuxHead::Router), experts: true, ..Needs::default() },
            LossSpec::MultiGranularity { .. } => Needs { aux: Some(AuxHead::Coarse), coarse_labels: true, ..Needs::default() },
            _ => Needs::default(),
        }
    }

    /// Whether the loss expects cosine logits (a cosine classifier).
    pub fn wants_cosine_head(&self) -> bool {
        self.needs().logits == Some(Logits::Cosine)
    }

    /// Whether the loss needs a second head (HRDC's dual or MGKT's coarse+fine).
    pub fn needs_aux_head(&self) -> bool {
        self.needs().aux.is_some()
    }

    /// Short human-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            LossSpec::Ce => "CE",
            LossSpec::WeightedCe { .. } => "weighted CE",
            LossSpec::Focal { weighting: None, .. } => "focal",
            LossSpec::Focal { .. } => "CB-focal",
            LossSpec::LabelSmoothing { .. } => "label smoothing",
            LossSpec::Ldam { .. } => "LDAM",
            LossSpec::BalancedSoftmax => "balanced softmax",
            LossSpec::Lade { .. } => "LADE",
            LossSpec::LogitAdjusted { .. } => "logit-adjusted",
            LossSpec::Cdt { .. } => "CDT",
            LossSpec::LabelAwareSmoothing { .. } => "label-aware smoothing",
            LossSpec::Kps { .. } => "KPS",
            LossSpec::Fbl { .. } => "FBL",
            LossSpec::Gcl { .. } => "GCL",
            LossSpec::Hrdc { .. } => "HRDC",
            LossSpec::MultiGranularity { .. } => "multi-granularity",
            LossSpec::Ride { .. } => "RIDE",
            LossSpec::ResLt { .. } => "ResLT",
            LossSpec::RideRouter { .. } => "RIDE-EA router",
        }
    }
}
