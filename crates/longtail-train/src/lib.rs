//! The training engine, evaluation protocol and methods of `longtail`.

pub mod checkpoint;
pub mod compute_pool;
pub mod config;
pub mod cumulative;
pub mod data;
pub mod data_parallel;
pub mod device;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod h2t;
pub mod loss_scale;
pub mod methods;
pub mod metrics;
pub mod mixing;
pub mod mixup;
pub mod parity;
pub mod presets;
pub mod progress;
pub mod recipe;
pub mod run_dir;
pub mod schedule;
pub mod setup;
pub mod sources;
pub mod stage;
pub mod strategy;

pub use config::{ExperimentConfig, StageConfig};
pub use engine::{RunOptions, RunOutcome, evaluate_network, load_run_network, train};
pub use error::{Result, TrainError};
pub use metrics::Metrics;
pub use run_dir::{FinalReport, RunDir};
