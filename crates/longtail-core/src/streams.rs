//! Every random stream of a run, keyed so that a run resumed at `(seed, stage, epoch, step)`
//! draws exactly what an uninterrupted run draws there.
//!
//! Each stream's seed is [`mix_seed`] of the run's seed with the stream's coordinates and a
//! constant naming the stream. The constants below are part of the checkpoint format: changing
//! one changes every run's numbers (the method fingerprints of longtail-train's tests catch it).
//!
//! | stream | seed | used by |
//! |---|---|---|
//! | stage | [`stage_seed`] (`seed`, stage, [`STAGE`]) | the samplers and the augmentation of that stage |
//! | sampler | [`sampler_seed`] (stage seed, epoch, [`SAMPLER`] + stream) | one epoch's sample order per sampler stream |
//! | augmentation | [`augmentation_seed`] (stage seed, epoch, stream << 40 \| sample) | one sample's random crop / flip / ... |
//! | device | [`device_seed`] (`seed`, stage << 32 \| epoch, [`DEVICE`] + device) | the backend RNG (GCL's clouds) per device |
//! | step | [`step_seed`] (`seed`, stage << 32 \| epoch, [`STEP`] + step) | mixup, H2T's channels, the loss's seed, data-parallel slices |
//! | head | [`head_seed`] (`seed`, stage, [`HEAD`]) | a classifier re-initialised at a stage's start (cRT) |
//! | second loss call | [`second_call_seed`] (loss seed, 1, [`SECOND_CALL`]) | mixup's second criterion call |

/// Mixes a seed with stream coordinates into one 64-bit seed (SplitMix64 finaliser).
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stage's data streams (samplers, augmentation).
pub const STAGE: u64 = 0x5a;
/// One epoch's order of a sampler stream (stream 0: the stage's sampler; 1: a second, paired one).
pub const SAMPLER: u64 = 0x5a4d_0000;
/// The backend RNG of device `i` (0: the main device; data-parallel replicas from 1).
pub const DEVICE: u64 = 0xd3;
/// The per-step draws.
pub const STEP: u64 = 0x5e_0000_0000;
/// A re-initialised classifier.
pub const HEAD: u64 = 0x4ead;
/// The second call of a loss in one step (mixup's criterion).
pub const SECOND_CALL: u64 = 0x6d_1c;

/// The seed of stage `stage`'s data streams.
pub fn stage_seed(seed: u64, stage: usize) -> u64 {
    mix_seed(seed, stage as u64, STAGE)
}

/// The seed of sampler stream `stream` at `epoch`, under a stage seed.
pub fn sampler_seed(stage_seed: u64, epoch: usize, stream: u64) -> u64 {
    mix_seed(stage_seed, epoch as u64, SAMPLER + stream)
}

/// The seed of the augmentation of the sample at position `position` of sampler stream
/// `stream`'s epoch order, under a stage seed.
pub fn augmentation_seed(stage_seed: u64, epoch: usize, stream: u64, position: usize) -> u64 {
    mix_seed(stage_seed, epoch as u64, (stream << 40) | position as u64)
}

fn stage_epoch(stage: usize, epoch: usize) -> u64 {
    ((stage as u64) << 32) | epoch as u64
}

/// The backend RNG seed of device `device` (0 = main) for one epoch.
pub fn device_seed(seed: u64, stage: usize, epoch: usize, device: usize) -> u64 {
    mix_seed(seed, stage_epoch(stage, epoch), DEVICE + device as u64)
}

/// The seed of one step's draws.
pub fn step_seed(seed: u64, stage: usize, epoch: usize, step: usize) -> u64 {
    mix_seed(seed, stage_epoch(stage, epoch), STEP + step as u64)
}

/// The seed of a classifier re-initialised at the start of `stage`.
pub fn head_seed(seed: u64, stage: usize) -> u64 {
    mix_seed(seed, stage as u64, HEAD)
}

/// The seed of a loss's second call in one step, from the first call's.
pub fn second_call_seed(loss_seed: u64) -> u64 {
    mix_seed(loss_seed, 1, SECOND_CALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed independently (Python, 64-bit wrapping arithmetic, the same formula).
    #[test]
    fn mix_seed_matches_an_independent_computation() {
        assert_eq!(mix_seed(0, 0, 0), 0);
        assert_eq!(mix_seed(1, 0, 0), 6238072747940578789);
        assert_eq!(mix_seed(42, 3, 0x5a), 16760077149313568567);
        assert_eq!(mix_seed(0, 1, 1), 11496643363199102978);
    }

    /// The named streams are the formulas the checkpoints of earlier runs were made with.
    #[test]
    fn stream_keys_are_stable() {
        assert_eq!(stage_seed(3, 1), mix_seed(3, 1, 0x5a));
        assert_eq!(sampler_seed(9, 2, 1), mix_seed(9, 2, 0x5a4d_0001));
        assert_eq!(augmentation_seed(9, 2, 1, 5), mix_seed(9, 2, (1 << 40) | 5));
        assert_eq!(device_seed(3, 1, 2, 0), mix_seed(3, (1 << 32) | 2, 0xd3));
        assert_eq!(device_seed(3, 1, 2, 2), mix_seed(3, (1 << 32) | 2, 0xd5));
        assert_eq!(step_seed(3, 1, 2, 4), mix_seed(3, (1 << 32) | 2, 0x5e_0000_0004));
        assert_eq!(head_seed(3, 1), mix_seed(3, 1, 0x4ead));
        assert_eq!(second_call_seed(11), mix_seed(11, 1, 0x6d_1c));
    }
}
