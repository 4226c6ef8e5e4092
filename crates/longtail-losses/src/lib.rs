//! Losses for long-tailed recognition.
//!
//! Each loss is a differentiable function of the logits (and, where the method needs them, the
//! second head's logits or the pooled features), the targets, the class counts and the schedule
//! state. [`LossSpec`] names a loss and its hyperparameters with the papers' defaults; [`Loss`]
//! binds it to the training counts and returns per-sample values.

pub mod class_stats;
pub mod functional;
pub mod loss;
pub mod spec;

pub use class_stats::{ClassWeighting, KpsMargins, LevelSplit, SmoothingShape};
pub use loss::{Loss, LossError, LossInputs, LossState, mg_lambda, reweight};
pub use spec::{BranchSchedule, Curriculum, FocalForm, LossSpec};
