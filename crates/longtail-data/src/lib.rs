//! The data layer of `longtail`: readers of the benchmarks' on-disk formats, long-tailed subset
//! builders, class hierarchies, samplers, transforms and a prefetching parallel loader.
//!
//! It does not depend on Burn: batches come out as host `f32` buffers ([`loader::HostBatch`]) that
//! the training crate uploads to whichever device it runs on.

pub mod dataset;
pub mod error;
pub mod fetch;
pub mod hierarchy;
pub mod image;
pub mod loader;
pub mod longtail;
pub mod numpy_rng;
pub mod readers;
pub mod sampler;
pub mod shots;
pub mod source;
pub mod synthetic;
pub mod transform;

pub use dataset::{Dataset, ImageStore, Splits};
pub use error::{DataError, Result};
pub use hierarchy::Hierarchy;
pub use loader::{Batches, HostBatch, Loader};
pub use longtail::{LongTailSpec, Profile, Selection, build_long_tail, profile_counts};
pub use sampler::{Sampler, SamplerSpec};
pub use shots::{ClassGroups, GroupKind, rank_thirds, shot_groups};
pub use source::{DataConfig, SourceSpec};
pub use transform::{Pipeline, Recipe, TransformOp};
