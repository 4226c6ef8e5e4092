//! `longtail`: long-tailed visual recognition on Burn.
//!
//! This facade re-exports the toolkit's crates and holds the command-line interface:
//!
//! - [`data`] (`longtail-data`): readers, long-tailed builders, samplers, transforms, loaders;
//! - [`models`] (`longtail-models`): backbones and heads, usable on their own;
//! - [`losses`] (`longtail-losses`): every loss of the papers and baselines;
//! - [`train`] (`longtail-train`): the engine, evaluation protocol, methods and configs.

pub use longtail_data as data;
pub use longtail_losses as losses;
pub use longtail_models as models;
pub use longtail_train as train;

pub mod bench;
pub mod cli;
pub mod compare;
pub mod fetch;
pub mod inspect;
pub mod predict;
pub mod quickstart;
pub mod report;
