//! Learning-rate schedules: linear warm-up, then step decay (the CIFAR-LT recipe: x0.01 at 160
//! and x0.0001 at 180 of 200) or cosine decay (the ImageNet-LT / iNaturalist recipes and every
//! stage II).

use serde::{Deserialize, Serialize};

/// How the rate decays after warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Decay {
    /// Constant rate.
    Constant,
    /// From 0-based epoch `at[i]` on, the rate is `base * factors[i]` (factors relative to base).
    Steps { at: Vec<usize>, factors: Vec<f64> },
    /// Per-epoch cosine from `base` to `min` over the epochs after warm-up: at 0-based epoch `e`
    /// of `E` with `w` warm-up epochs, `t = (e - w + offset) / (E - w + offset)`. `offset` 0 is
    /// the usual curve (`base` at the first epoch after warm-up); ResLT's ImageNet code uses 1
    /// (`cos((epoch - warmup + 1) / (epochs - warmup + 1) pi)`), one step down from the start.
    Cosine {
        #[serde(default)]
        min: f64,
        #[serde(default, skip_serializing_if = "is_no_offset")]
        offset: usize,
    },
}

fn is_no_offset(n: &usize) -> bool {
    *n == 0
}

fn default_true() -> bool {
    true
}

/// A learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrConfig {
    pub base: f64,
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Warm up per step (Goyal et al.) rather than per epoch (the LDAM-DRW code's `lr * epoch / 5`).
    #[serde(default = "default_true")]
    pub warmup_per_step: bool,
    /// The warm-up's starting factor `s`: the rate is `base (s (1 - a) + a)` with `a` the
    /// warm-up fraction (BBN's `WarmupMultiStepLR`, `warmup_factor` 1/3); 0 is the plain linear
    /// warm-up `base a`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup_start: f64,
    pub decay: Decay,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl LrConfig {
    /// The CIFAR-LT recipe: 5 warm-up epochs, x0.01 at 160, x0.0001 at 180 (of 200).
    pub fn cifar(base: f64) -> Self {
        Self { base, warmup_epochs: 5, warmup_per_step: false, warmup_start: 0.0, decay: Decay::Steps { at: vec![160, 180], factors: vec![0.01, 0.0001] } }
    }

    /// Cosine to `min` with no warm-up.
    pub fn cosine(base: f64, min: f64) -> Self {
        Self { base, warmup_epochs: 0, warmup_per_step: true, warmup_start: 0.0, decay: Decay::Cosine { min, offset: 0 } }
    }

    /// The rate at 0-based `epoch` of `epochs`, step `step` of `steps_per_epoch`.
    pub fn rate(&self, epoch: usize, epochs: usize, step: usize, steps_per_epoch: usize) -> f64 {
        if epoch < self.warmup_epochs {
            let frac = if self.warmup_per_step {
                (epoch * steps_per_epoch + step + 1) as f64 / (self.warmup_epochs * steps_per_epoch.max(1)) as f64
            } else {
                (epoch + 1) as f64 / self.warmup_epochs as f64
            };
            return self.base * (self.warmup_start * (1.0 - frac) + frac);
        }
        match &self.decay {
            Decay::Constant => self.base,
            Decay::Steps { at, factors } => {
                let mut rate = self.base;
                for (&e, &f) in at.iter().zip(factors) {
                    if epoch >= e {
                        rate = self.base * f;
                    }
                }
                rate
            }
            Decay::Cosine { min, offset } => {
                let span = (epochs.saturating_sub(self.warmup_epochs) + offset).max(1) as f64;
                let t = (epoch - self.warmup_epochs + offset) as f64 / span;
                min + (self.base - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Checks the numbers, naming the field.
    pub fn validate(&self, field: &str) -> Result<(), crate::TrainError> {
        if !(self.base.is_finite() && self.base > 0.0) {
            return Err(crate::TrainError::config(format!("{field}.base"), format!("must be a positive number, got {}", self.base)));
        }
        if !(0.0..=1.0).contains(&self.warmup_start) {
            return Err(crate::TrainError::config(format!("{field}.warmup_start"), format!("must be in [0, 1], got {}", self.warmup_start)));
        }
        if let Decay::Steps { at, factors } = &self.decay {
            if at.len() != factors.len() {
                return Err(crate::TrainError::config(format!("{field}.decay"), "`at` and `factors` need the same length"));
            }
            if at.windows(2).any(|w| w[0] >= w[1]) {
                return Err(crate::TrainError::config(format!("{field}.decay.at"), "milestones must increase"));
            }
            if factors.iter().any(|f| !(f.is_finite() && *f >= 0.0)) {
                return Err(crate::TrainError::config(format!("{field}.decay.factors"), "factors must be >= 0"));
            }
        }
        Ok(())
    }
}
