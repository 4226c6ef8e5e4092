//! `longtail`: long-tailed visual recognition on Burn.
//!
//! This facade re-exports the toolkit's crates and holds the command-line interface:
//!
//! - [`data`] (`longtail-data`): readers, long-tailed builders, samplers, transforms, loaders;
//! - [`models`] (`longtail-models`): backbones and heads, usable on their own;
//! - [`losses`] (`longtail-losses`): every loss of the papers and baselines;
//! - [`train`] (`longtail-train`): the engine, evaluation protocol, methods and configs.

/// The process allocator of every `longtail` binary (feature `global-allocator`, on by default).
#[cfg(feature = "global-allocator")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tunes the process allocator for training; the `longtail` binaries call it first thing.
///
/// Every training step frees and re-allocates the same multi-megabyte activation and gradient
/// buffers. mimalloc's default hands freed memory back to the OS after 10 ms, so each step
/// page-faults it back in (the kernel zeroes it first: 20% of a ResNet-32 step on the CPU).
/// Keeping it (`purge_delay = -1`) costs little peak memory (ResNet-32 b128: 613 against
/// 598 MiB, docs/benchmarks.md). The environment variable `MIMALLOC_PURGE_DELAY` still wins
/// when set.
pub fn tune_allocator() {
    #[cfg(feature = "global-allocator")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        unsafe extern "C" {
            fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
        }
        /// `mi_option_purge_delay` in mimalloc's `mi_option_t` (v2 and v3 headers).
        const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
        // SAFETY: mimalloc is linked (it is the global allocator) and sets options atomically.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

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
