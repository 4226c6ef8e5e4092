//! Class-dependent constants computed from the training counts `n_j`.

use serde::{Deserialize, Serialize};

/// How a class-level group split (head / medium / tail) is formed, for HRDC's hierarchical
/// factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LevelSplit {
    /// head `n > many_above`, tail `n < few_below`, medium otherwise (100 / 20).
    Thresholds { many_above: usize, few_below: usize },
    /// The `head` most frequent classes, then `medium`, the rest tail (3 / 4 / 3 on CIFAR-10-LT).
    Rank { head: usize, medium: usize },
    /// Frequency-rank thirds.
    RankThirds,
}

/// Class weighting schemes (for re-weighting and deferred re-weighting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClassWeighting {
    /// `w_j ∝ 1 / n_j`, normalised to sum to `C`.
    InverseFrequency,
    /// `w_j ∝ (1 - beta) / (1 - beta^n_j)` (Cui et al. 2019), normalised to sum to `C`.
    EffectiveNumber { beta: f64 },
    /// `w_j ∝ (n_j / N)^-p` (DisAlign's generalised re-weighting, Eq. 6), normalised to sum to
    /// `C`; the authors' ImageNet-LT config: `p` = 1.2.
    Generalized { p: f64 },
}

impl ClassWeighting {
    /// Effective-number weights with Cui et al.'s beta = 0.9999 (their CIFAR setting, which
    /// LDAM-DRW's deferred re-weighting uses too).
    pub const EFFECTIVE_NUMBER: ClassWeighting = ClassWeighting::EffectiveNumber { beta: 0.9999 };

    /// The weights for `counts`.
    pub fn weights(&self, counts: &[usize]) -> Vec<f64> {
        match self {
            ClassWeighting::InverseFrequency => longtail_core::class_stats::inverse_frequency_weights(counts),
            ClassWeighting::EffectiveNumber { beta } => longtail_core::class_stats::effective_number_weights(counts, *beta),
            ClassWeighting::Generalized { p } => longtail_core::class_stats::generalized_reweighting_weights(counts, *p),
        }
    }
}

/// Level (0 head, 1 medium, 2 tail) of every class.
pub fn levels(counts: &[usize], split: &LevelSplit) -> Vec<usize> {
    let c = counts.len();
    let order = longtail_core::class_stats::frequency_order(counts);
    let mut level = vec![0; c];
    match split {
        LevelSplit::Thresholds { many_above, few_below } => {
            for (j, &n) in counts.iter().enumerate() {
                level[j] = if n > *many_above {
                    0
                } else if n < *few_below {
                    2
                } else {
                    1
                };
            }
        }
        LevelSplit::Rank { head, medium } => {
            for (rank, &j) in order.iter().enumerate() {
                level[j] = if rank < *head {
                    0
                } else if rank < head + medium {
                    1
                } else {
                    2
                };
            }
        }
        LevelSplit::RankThirds => {
            let k = c / 3;
            for (rank, &j) in order.iter().enumerate() {
                level[j] = if rank < k {
                    0
                } else if rank < c - k {
                    1
                } else {
                    2
                };
            }
        }
    }
    level
}

/// CDT factors `a_j = (n_max / n_j)^gamma` (Ye et al. 2020).
pub fn cdt_factors(counts: &[usize], gamma: f64) -> Vec<f64> {
    let n_max = *counts.iter().max().unwrap() as f64;
    counts.iter().map(|&n| (n_max / n as f64).powf(gamma)).collect()
}

/// HRDC's hierarchical factors (Eq. 8): each CDT factor capped at the unweighted mean factor of
/// its level, `a_j^H = min(a_j, mean_{k in level(j)} a_k)`.
pub fn hierarchical_factors(counts: &[usize], gamma: f64, split: &LevelSplit) -> Vec<f64> {
    let a = cdt_factors(counts, gamma);
    let level = levels(counts, split);
    let mut sums = [0.0; 3];
    let mut sizes = [0usize; 3];
    for (j, &l) in level.iter().enumerate() {
        sums[l] += a[j];
        sizes[l] += 1;
    }
    a.iter().zip(&level).map(|(&a, &l)| a.min(sums[l] / sizes[l] as f64)).collect()
}

/// LDAM margins `Delta_j = C / n_j^(1/4)` with `C` chosen so the largest margin is `max_margin`.
pub fn ldam_margins(counts: &[usize], max_margin: f64) -> Vec<f64> {
    let inv: Vec<f64> = counts.iter().map(|&n| (n as f64).powf(-0.25)).collect();
    let max = inv.iter().cloned().fold(0.0, f64::max);
    inv.iter().map(|v| v * max_margin / max).collect()
}

/// How KPS turns its radii into per-class margins and GA scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KpsMargins {
    /// The authors' code (Keke921/KPSLoss `losses.py`): `m' = flip(r)`, the radii list reversed
    /// along the class index. It equals Eq. 3.28 when the classes are sorted by count with evenly
    /// spaced log-counts (CIFAR-LT's exponential profile); otherwise each class gets the margin of
    /// its mirror-image class in index order.
    #[default]
    Reversed,
    /// Thesis Eq. 3.28: `m'_i = r_max + 1 - r_i`, per class whatever the order.
    Thesis,
}

/// KPS radii, margins and per-class scales (thesis §3.4, Eqs. 3.27-3.30):
/// `r'_i = log(n_i n_base / n_min)`, `r = r' / r'_min`, `m'` by `margins` (Eq. 3.28 or the code's
/// `flip(r)`), `m = m' m_max / m'_max`, `s = s_base m'` (uncapped; the code clamps it at 50).
pub fn kps_constants(counts: &[usize], n_base: f64, max_margin: f64, base_scale: f64, margins: KpsMargins) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n_min = *counts.iter().min().unwrap() as f64;
    let r_prime: Vec<f64> = counts.iter().map(|&n| (n as f64 * n_base / n_min).ln()).collect();
    let r_prime_min = r_prime.iter().cloned().fold(f64::INFINITY, f64::min);
    let r: Vec<f64> = r_prime.iter().map(|v| v / r_prime_min).collect();
    let r_max = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let m_prime: Vec<f64> = match margins {
        KpsMargins::Reversed => r.iter().rev().copied().collect(),
        KpsMargins::Thesis => r.iter().map(|ri| r_max + 1.0 - ri).collect(),
    };
    let m_prime_max = m_prime.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let m = m_prime.iter().map(|v| v * max_margin / m_prime_max).collect();
    let s = m_prime.iter().map(|v| v * base_scale).collect();
    (r, m, s)
}

/// Normalised log-frequency gaps `(log n_max - log n_j) / max_k(...)` in [0, 1]: FBL's stimulus
/// intensity (Eq. 4.4, normalised as in the authors' code) and GCL's cloud size (Eq. 5.9).
pub fn normalized_log_gap(counts: &[usize]) -> Vec<f64> {
    let gap = longtail_core::class_stats::log_gap(counts);
    let max = gap.iter().cloned().fold(0.0, f64::max);
    if max == 0.0 { vec![0.0; counts.len()] } else { gap.iter().map(|g| g / max).collect() }
}

/// Shape of MiSLAS's label-aware smoothing curve between tail and head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmoothingShape {
    #[default]
    Concave,
    Linear,
    Convex,
}

/// MiSLAS label-aware smoothing factors `epsilon_j` from `tail` (rarest) to `head` (most frequent).
pub fn label_aware_smoothing(counts: &[usize], head: f64, tail: f64, shape: SmoothingShape) -> Vec<f64> {
    let n1 = *counts.iter().max().unwrap() as f64;
    let nk = *counts.iter().min().unwrap() as f64;
    let span = if n1 > nk { n1 - nk } else { 1.0 };
    counts
        .iter()
        .map(|&n| {
            let x = (n as f64 - nk) / span;
            match shape {
                SmoothingShape::Concave => tail + (head - tail) * (x * std::f64::consts::FRAC_PI_2).sin(),
                SmoothingShape::Linear => tail + (head - tail) * x,
                SmoothingShape::Convex => head + (head - tail) * (1.5 * std::f64::consts::PI + x * std::f64::consts::FRAC_PI_2).sin(),
            }
        })
        .collect()
}
