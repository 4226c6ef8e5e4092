//! Samplers: the order in which one epoch visits the training set.
//!
//! Every sampler yields `N` (the training-set size) indices per epoch. Instance-balanced sampling
//! is a shuffle without replacement; the others first draw a class from a class distribution
//! `q_j` and then a uniform sample of that class, with replacement:
//!
//! | sampler | `q_j` |
//! |---|---|
//! | class-balanced | `1 / C` |
//! | square-root | `n_j^(1/2) / sum_i n_i^(1/2)` |
//! | progressive (Kang et al.) | `(1 - t/T) n_j / N + (t/T) / C` at epoch `t` of `T` |
//! | reversed (BBN) | `(N_max / n_j) / sum_i (N_max / n_i)` |
//! | class-weighted (CBEN, effective number) | `n_j w_j / sum_i n_i w_i` (per-sample weight `w_y`) |
//! | inverse power (CMO's weighted sampler) | `n_j^(1 - alpha) / sum_i n_i^(1 - alpha)` (per-sample weight `n_y^-alpha`) |

use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Which sampler a training stage uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields, from = "SamplerSpecRepr")]
pub enum SamplerSpec {
    Instance,
    ClassBalanced,
    SquareRoot,
    /// Progressively-balanced over the stage's epochs.
    Progressive,
    Reversed,
    /// One weight per class, applied to each of its samples.
    ClassWeighted {
        weights: Vec<f64>,
    },
    /// Per-sample weight `(1 - beta) / (1 - beta^n_y)` (class-balanced effective number).
    EffectiveNumber {
        beta: f64,
    },
    /// Per-sample weight `n_y^-alpha` (CMO's `WeightedRandomSampler`, `--weighted_alpha`): 1 is
    /// class-balanced, 0 instance frequencies, 2 a class probability `∝ 1 / n_j`.
    InversePower {
        alpha: f64,
    },
    /// GCL's class-based effective number (thesis Eqs. 5.13-5.15), `beta_j` in `[a, a + b]`.
    Cben {
        a: f64,
        b: f64,
    },
}

/// [`SamplerSpec`] as read: serde's `deny_unknown_fields` does not reach the unit variants of an
/// internally tagged enum (`{ kind = "instance", beta = 0.9 }` would be read as `instance`, the
/// `beta` dropped), so they are read as empty struct variants, which it does reach.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum SamplerSpecRepr {
    Instance {},
    ClassBalanced {},
    SquareRoot {},
    Progressive {},
    Reversed {},
    ClassWeighted { weights: Vec<f64> },
    EffectiveNumber { beta: f64 },
    InversePower { alpha: f64 },
    Cben { a: f64, b: f64 },
}

impl From<SamplerSpecRepr> for SamplerSpec {
    fn from(r: SamplerSpecRepr) -> Self {
        match r {
            SamplerSpecRepr::Instance {} => SamplerSpec::Instance,
            SamplerSpecRepr::ClassBalanced {} => SamplerSpec::ClassBalanced,
            SamplerSpecRepr::SquareRoot {} => SamplerSpec::SquareRoot,
            SamplerSpecRepr::Progressive {} => SamplerSpec::Progressive,
            SamplerSpecRepr::Reversed {} => SamplerSpec::Reversed,
            SamplerSpecRepr::ClassWeighted { weights } => SamplerSpec::ClassWeighted { weights },
            SamplerSpecRepr::EffectiveNumber { beta } => SamplerSpec::EffectiveNumber { beta },
            SamplerSpecRepr::InversePower { alpha } => SamplerSpec::InversePower { alpha },
            SamplerSpecRepr::Cben { a, b } => SamplerSpec::Cben { a, b },
        }
    }
}

/// Draws epochs of sample indices for one dataset.
#[derive(Debug, Clone)]
pub struct Sampler {
    spec: SamplerSpec,
    by_class: Vec<Vec<usize>>,
    len: usize,
}

pub use longtail_core::class_stats::effective_number_weights;
/// The stream-mixing function, kept here for callers of earlier versions; every stream key is in
/// [`longtail_core::streams`].
pub use longtail_core::streams::mix_seed;

impl Sampler {
    /// A sampler over samples whose labels are `labels` (classes `0..num_classes`).
    pub fn new(spec: SamplerSpec, labels: &[usize], num_classes: usize) -> Result<Self> {
        let mut by_class = vec![Vec::new(); num_classes];
        for (i, &l) in labels.iter().enumerate() {
            by_class[l].push(i);
        }
        let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
        let spec = match spec {
            SamplerSpec::EffectiveNumber { beta } => {
                if !(0.0..1.0).contains(&beta) {
                    return Err(DataError::invalid("sampler.beta", format!("must be in [0, 1), got {beta}")));
                }
                SamplerSpec::ClassWeighted { weights: effective_number_weights(&counts, beta) }
            }
            SamplerSpec::InversePower { alpha } => {
                if !alpha.is_finite() {
                    return Err(DataError::invalid("sampler.alpha", format!("must be finite, got {alpha}")));
                }
                SamplerSpec::ClassWeighted { weights: counts.iter().map(|&n| if n == 0 { 0.0 } else { (n as f64).powf(-alpha) }).collect() }
            }
            SamplerSpec::Cben { a, b } => {
                if !(0.0..1.0).contains(&a) || b < 0.0 || a + b >= 1.0 {
                    return Err(DataError::invalid("sampler", format!("CBEN needs 0 <= a, b and a + b < 1 (got a = {a}, b = {b})")));
                }
                SamplerSpec::ClassWeighted { weights: cben_weights(&counts, a, b) }
            }
            other => other,
        };
        if let SamplerSpec::ClassWeighted { weights } = &spec {
            if weights.len() != num_classes {
                return Err(DataError::invalid("sampler.weights", format!("{} weights for {num_classes} classes", weights.len())));
            }
            if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().all(|w| *w == 0.0) {
                return Err(DataError::invalid("sampler.weights", "weights must be finite, non-negative and not all zero"));
            }
        }
        if labels.is_empty() {
            return Err(DataError::invalid("sampler", "cannot sample from an empty dataset"));
        }
        Ok(Self { spec, by_class, len: labels.len() })
    }

    pub fn spec(&self) -> &SamplerSpec {
        &self.spec
    }

    /// The probability of drawing each class at `epoch` of `total_epochs` (0-based epochs).
    pub fn class_probabilities(&self, epoch: usize, total_epochs: usize) -> Vec<f64> {
        let counts: Vec<f64> = self.by_class.iter().map(|c| c.len() as f64).collect();
        let present = |f: &dyn Fn(f64) -> f64| -> Vec<f64> { counts.iter().map(|&n| if n > 0.0 { f(n) } else { 0.0 }).collect() };
        let raw = match &self.spec {
            SamplerSpec::Instance => counts.clone(),
            SamplerSpec::ClassBalanced => present(&|_| 1.0),
            SamplerSpec::SquareRoot => present(&|n| n.sqrt()),
            SamplerSpec::Reversed => {
                let max = counts.iter().cloned().fold(0.0, f64::max);
                present(&|n| max / n)
            }
            SamplerSpec::ClassWeighted { weights } => counts.iter().zip(weights).map(|(n, w)| n * w).collect(),
            SamplerSpec::EffectiveNumber { .. } | SamplerSpec::Cben { .. } | SamplerSpec::InversePower { .. } => {
                unreachable!("resolved to class weights in Sampler::new")
            }
            SamplerSpec::Progressive => {
                let t = if total_epochs == 0 { 0.0 } else { epoch as f64 / total_epochs as f64 };
                let total: f64 = counts.iter().sum();
                let nonempty = counts.iter().filter(|&&n| n > 0.0).count() as f64;
                counts.iter().map(|&n| if n > 0.0 { (1.0 - t) * n / total + t / nonempty } else { 0.0 }).collect()
            }
        };
        let sum: f64 = raw.iter().sum();
        raw.into_iter().map(|p| p / sum).collect()
    }

    /// The sample indices of `epoch`, deterministic in `(seed, epoch, stream)`. `stream` separates
    /// independent samplers of one run (the two branches of paired sampling).
    pub fn epoch_indices(&self, seed: u64, epoch: usize, total_epochs: usize, stream: u64) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(longtail_core::streams::sampler_seed(seed, epoch, stream));
        if self.spec == SamplerSpec::Instance {
            let mut order: Vec<usize> = (0..self.len).collect();
            order.shuffle(&mut rng);
            return order;
        }
        let q = self.class_probabilities(epoch, total_epochs);
        let mut cumulative = Vec::with_capacity(q.len());
        let mut acc = 0.0;
        for p in &q {
            acc += p;
            cumulative.push(acc);
        }
        (0..self.len)
            .map(|_| {
                let u: f64 = rng.random::<f64>() * acc;
                let mut class = cumulative.partition_point(|&c| c <= u).min(q.len() - 1);
                while self.by_class[class].is_empty() {
                    class = (class + 1) % q.len(); // zero-probability classes are skipped
                }
                let members = &self.by_class[class];
                members[rng.random_range(0..members.len())]
            })
            .collect()
    }
}

/// GCL's class-based effective-number weights (thesis Eqs. 5.13-5.15): cloud sizes
/// `delta_j = log n_max - log n_j`, `beta_j = b (delta_j - delta_min)/(delta_max - delta_min) + a`,
/// `gamma_j = (1 - beta_j) / (1 - beta_j^n_j)`, normalised to sum to 1. Defaults `a = 0.999`,
/// `b = 0.0009` (beta in [0.999, 0.9999]).
pub fn cben_weights(counts: &[usize], a: f64, b: f64) -> Vec<f64> {
    let delta = longtail_core::class_stats::log_gap(counts);
    let (lo, hi) = delta.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let gamma: Vec<f64> = counts
        .iter()
        .zip(&delta)
        .map(|(&n, &d)| {
            let beta = b * (d - lo) / span + a;
            if n == 0 { 0.0 } else { (1.0 - beta) / (1.0 - beta.powi(n as i32)) }
        })
        .collect();
    let sum: f64 = gamma.iter().sum();
    gamma.into_iter().map(|g| g / sum).collect()
}
