//! H2T's feature-map fusion (Li et al., AAAI 2024, Eq. 2): `floor(p d)` whole channels of each
//! class-balanced sample's last feature map are replaced by the same channels of its
//! instance-sampled partner; one random channel subset per batch (the authors' code); the
//! balanced batch's labels are kept.

use burn::tensor::{Int, Tensor, TensorData};
use longtail_data::Sampler;
use longtail_models::{ModelError, ModelOutput, Network};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::data::DeviceBatch;

/// Channels taken from the fusing (instance-sampled) map: `int(p * d)`, as the code rounds.
pub fn fused_channels(ratio: f64, channels: usize) -> usize {
    ((ratio * channels as f64).floor() as usize).min(channels)
}

/// A random subset of exactly `fused_channels(ratio, channels)` channels.
pub fn channel_mask<R: Rng>(ratio: f64, channels: usize, rng: &mut R) -> Vec<bool> {
    let mut order: Vec<usize> = (0..channels).collect();
    order.shuffle(rng);
    let mut mask = vec![false; channels];
    for &c in &order[..fused_channels(ratio, channels)] {
        mask[c] = true;
    }
    mask
}

/// `F = M ⊙ F_fusing + (1 - M) ⊙ F_balanced` over whole channels `[N, C, H, W]`.
pub fn fuse(balanced: Tensor<4>, fusing: Tensor<4>, mask: &[bool]) -> Tensor<4> {
    let device = balanced.device();
    let m: Vec<f32> = mask.iter().map(|&b| b as u8 as f32).collect();
    let m = Tensor::<1>::from_data(TensorData::new(m, [mask.len()]), &device).reshape([1, mask.len(), 1, 1]);
    balanced.clone() + (fusing - balanced) * m
}

/// The model's outputs on the fused maps of a balanced batch and its fusing partner (the shorter
/// batch sets the size), with the balanced batch's labels.
pub struct Fused {
    pub output: ModelOutput,
    pub targets: Tensor<1, Int>,
    pub coarse: Option<Tensor<1, Int>>,
}

/// The mask over a map of `experts` equal channel blocks (a multi-expert model's concatenated
/// maps): an independent [`channel_mask`] per expert, in expert order, as the H2T code's
/// multi-expert branch draws a fresh `randperm` for every expert's map (`methods.py` @ 5b366e2).
/// One expert is the single-model rule.
pub fn expert_channel_mask<R: Rng>(ratio: f64, channels: usize, experts: usize, rng: &mut R) -> Result<Vec<bool>, ModelError> {
    if experts == 0 || !channels.is_multiple_of(experts) {
        return Err(ModelError::Config(format!(
            "H2T: {channels} channels do not split into {experts} equal expert maps; the experts' maps must have one shape"
        )));
    }
    Ok((0..experts).flat_map(|_| channel_mask(ratio, channels / experts, rng)).collect())
}

/// Runs the (frozen) backbone on both batches through [`Network::forward_combined`], fusing their
/// maps (detached: the stage trains the classifier); on a multi-expert model each expert's map
/// with its own mask ([`expert_channel_mask`]) and the same paired image.
pub fn fused_forward<R: Rng>(network: &Network, balanced: DeviceBatch, fusing: DeviceBatch, ratio: f64, rng: &mut R) -> Result<Fused, ModelError> {
    let n = balanced.len.min(fusing.len);
    let experts = network.fusion_blocks();
    let mut failure = None;
    let output = network.forward_combined(balanced.images.narrow(0, 0, n), fusing.images.narrow(0, 0, n), |map_b, map_i| {
        match expert_channel_mask(ratio, map_b.dims()[1], experts, rng) {
            Ok(mask) => fuse(map_b.detach(), map_i.detach(), &mask),
            Err(e) => {
                failure = Some(e);
                map_b
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Fused { output, targets: balanced.targets.narrow(0, 0, n), coarse: balanced.coarse.map(|c| c.narrow(0, 0, n)) })
}

/// One epoch of paired sampling: the balanced branch from `primary` (stream 0), the fusing branch
/// from `fusing` (stream 1), drawn independently.
pub fn paired_orders(primary: &Sampler, fusing: &Sampler, seed: u64, epoch: usize, epochs: usize) -> (Vec<usize>, Vec<usize>) {
    (primary.epoch_indices(seed, epoch, epochs, 0), fusing.epoch_indices(seed, epoch, epochs, 1))
}
