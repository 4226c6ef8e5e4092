//! Data-parallel training steps across several devices (`--devices`).
//!
//! Each step's batch is cut into contiguous slices, one per device, as even as possible. Every
//! device runs the forward and backward pass of its slice on its own replica of the network (the
//! network itself for the first slice, a fork of it for every other slice, on the first device
//! too: [`replica_of`]) in its own thread, with its own copy of the loss's constants; each slice's
//! mean loss is weighted by `slice / batch`, so for a loss that is a mean over samples the
//! gradients summed on the first device equal the whole batch's, and the first device takes the
//! optimizer step as with one device. As in PyTorch's DDP:
//!
//! - batch norm normalises each slice with that slice's statistics (no SyncBatchNorm);
//! - a loss normalised by the batch's total class weight (weighted CE, deferred re-weighting)
//!   is normalised by each slice's own weights;
//! - mixup and H2T draw their mixing per slice.
//!
//! The running statistics are Burn's `RunningState`, shared by the replicas and set after each
//! step to the mean of their updates (with three or more devices the order of that sum, hence its
//! last bits, can vary between runs). A recipe that runs the backbone twice per slice (H2T's
//! paired batches) updates a replica's statistics twice, and `RunningState` folds the second
//! update with whatever the other replicas have registered by then: its running statistics
//! depend on thread timing (the weights and the losses do not; the method fingerprints of
//! `tests/methods.rs` compare only the losses of that run). The first slice runs on the calling thread and its pool;
//! each other replica runs its CPU ops on a thread pool of its own (with the calling pool's
//! thread count divided by the number of slices, at least one thread), never on the calling
//! thread's pool: the caller blocks until they finish, and when every worker of that pool is
//! blocked so (two data-parallel runs at once in one process, or a one-thread pool) a replica
//! needing one of them would wait forever.
//!
//! Across nodes the same step needs an all-reduce of the summed gradients between processes
//! (Burn's `burn-collective` crate, with one process per node); this module only spans the
//! devices of one process. See docs/backends.md.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor};
use longtail_data::HostBatch;
use longtail_models::Network;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{DeviceBatch, upload};
use crate::error::{Result, TrainError, panic_message};
use crate::recipe::StepOutput;

/// What one step leaves behind: the batch's loss and logits (detached, on the first device),
/// its targets, and the summed gradients.
pub struct StepResult {
    pub loss: Tensor<1>,
    pub logits: Tensor<2>,
    pub targets: Tensor<1, Int>,
    pub grads: GradientsParams,
}

/// Splits `batch` into `parts` contiguous slices whose sizes differ by at most one (fewer
/// slices when the batch is smaller than `parts`; none of them empty).
pub fn split_batch(batch: HostBatch, parts: usize) -> Vec<HostBatch> {
    let n = batch.len();
    let parts = parts.clamp(1, n.max(1));
    let per_image: usize = batch.shape[1..].iter().product();
    let bounds: Vec<usize> = (0..=parts).map(|i| i * n / parts).collect();
    bounds
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let mut shape = batch.shape;
            shape[0] = b - a;
            HostBatch {
                images: batch.images[a * per_image..b * per_image].to_vec(),
                shape,
                labels: batch.labels[a..b].to_vec(),
                coarse: batch.coarse.as_ref().map(|c| c[a..b].to_vec()),
                indices: batch.indices[a..b].to_vec(),
            }
        })
        .collect()
}

/// One slice's work: its device and its part of each sampler stream's batch (stream 0 first;
/// H2T's fusing batch is stream 1).
pub struct Slice {
    pub device: Device,
    pub batches: Vec<HostBatch>,
}

/// A replica of `network` on `device` for a slice after the first: the same weights (no copy on
/// the same device) as fresh autodiff leaves, so its forward and backward pass build a graph of
/// their own. Sharing the network's parameter nodes (a plain clone) merges every replica's graph
/// into one that several threads build and consume at once, and Burn 0.22.1's graph bookkeeping
/// is not safe for that: a concurrent `backward()` can remove steps of another thread's graph
/// (tracel-ai/burn#5573), which CI once hit as "graph tape has already been consumed" in a
/// two-slice data-parallel mixup run on one CPU device.
pub fn replica_of(network: &Network, device: &Device) -> Network {
    network.clone().fork(device)
}

/// Runs `loss_of(i, replica, batches, rng)` for every slice `i` on its device (in
/// parallel, one thread per slice), weights each slice's mean loss by its share of the batch,
/// back-propagates `loss_scale` times that (1 without fp16 loss scaling), and sums the gradients
/// on `main` (the device of `network`). `rng` seeds one stream per slice.
pub fn step<F>(network: &Network, main: &Device, slices: Vec<Slice>, rng: &mut ChaCha8Rng, loss_scale: f64, loss_of: F) -> Result<StepResult>
where
    F: Fn(usize, &Network, Vec<DeviceBatch>, &mut ChaCha8Rng) -> Result<StepOutput> + Sync,
{
    let forked = slices.iter().any(|s| s.device != *main);
    let total: usize = slices.iter().map(|s| s.batches.first().map_or(0, HostBatch::len)).sum();
    let seeds: Vec<u64> = slices.iter().map(|_| rng.next_u64()).collect();
    let work = |i: usize, slice: Slice| -> Result<(Tensor<1>, Tensor<2>, Tensor<1, Int>, GradientsParams)> {
        let replica = if i == 0 && slice.device == *main { network.clone() } else { replica_of(network, &slice.device) };
        let share = slice.batches.first().map_or(0, HostBatch::len) as f64 / total as f64;
        let batches = slice.batches.into_iter().map(|b| upload(b, &slice.device)).collect();
        let mut slice_rng = ChaCha8Rng::seed_from_u64(seeds[i]);
        let StepOutput { loss, logits, targets } = loss_of(i, &replica, batches, &mut slice_rng)?;
        let weighted = loss.mul_scalar(share);
        let grads = GradientsParams::from_grads(weighted.clone().mul_scalar(loss_scale).backward(), &replica).to_device(main, &replica);
        Ok((weighted.detach().to_device(main), logits.detach().to_device(main), targets.to_device(main), grads))
    };
    let mut slices = slices.into_iter();
    let first = slices.next().ok_or_else(|| TrainError::Run("a data-parallel step got an empty batch".into()))?;
    let rest: Vec<Slice> = slices.collect();
    // This thread blocks below until the other replicas finish, so they must not need a worker
    // of its pool: if every worker is blocked here (two data-parallel runs in one process on a
    // two-thread pool, or a one-thread pool), they would wait forever. Each gets a pool of its own.
    let replica_threads = (rayon::current_num_threads() / (rest.len() + 1)).max(1);
    let work = &work;
    // the first slice on this thread, the others on their own threads (not pool workers shared
    // with this one: each replica's batch-norm update is keyed by its thread)
    let (first_out, rest_out) = std::thread::scope(|scope| {
        let handles: Vec<_> = rest
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                scope.spawn(move || {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(replica_threads)
                        .stack_size(crate::compute_pool::WORKER_STACK_BYTES)
                        .build()
                        .map_err(|e| TrainError::Run(format!("a replica's thread pool: {e}")))?;
                    pool.install(|| work(i + 1, s))
                })
            })
            .collect();
        let first_out = work(0, first);
        // a replica that panicked ends the step with an error that carries the panic's message (its
        // thread's panic output may have gone to another thread's capture, e.g. under libtest)
        let rest_out: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                h.join().unwrap_or_else(|payload| {
                    Err(TrainError::Run(format!(
                        "data-parallel replica {} panicked: {}",
                        i + 1,
                        panic_message(payload.as_ref()).unwrap_or_else(|| "(no message)".into())
                    )))
                })
            })
            .collect();
        (first_out, rest_out)
    });
    let mut accumulator = GradientsAccumulator::<Network>::new();
    let (mut loss, first_logits, first_targets, grads) = first_out?;
    accumulator.accumulate(network, grads);
    let (mut logits, mut targets) = (vec![first_logits], vec![first_targets]);
    for out in rest_out {
        let (l, lg, t, g) = out?;
        loss = loss + l;
        logits.push(lg);
        targets.push(t);
        accumulator.accumulate(network, g);
    }
    // fold every replica's batch-norm running-statistics update into the shared value (their mean)
    let _ = network.valid();
    if forked {
        // forking moved the shared running statistics to a replica's device: bring them back
        let _ = network.clone().to_device(main);
    }
    Ok(StepResult { loss, logits: Tensor::cat(logits, 0), targets: Tensor::cat(targets, 0), grads: accumulator.grads() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::SgdConfig;
    use longtail_losses::functional::cross_entropy;
    use longtail_models::{Arch, HeadConfig, ModelConfig};

    const SIDE: usize = 16;

    fn image(seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..SIDE * SIDE)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// A batch of the images `x` (label order given) and `y` interleaved as `picks`.
    fn batch(picks: &[(bool, usize)]) -> HostBatch {
        let (x, y) = (image(1), image(2));
        HostBatch {
            images: picks.iter().flat_map(|&(is_x, _)| if is_x { x.clone() } else { y.clone() }).collect(),
            shape: [picks.len(), 1, SIDE, SIDE],
            labels: picks.iter().map(|&(_, l)| l).collect(),
            coarse: None,
            indices: (0..picks.len()).collect(),
        }
    }

    fn ce(_: usize, net: &Network, b: Vec<DeviceBatch>, _: &mut ChaCha8Rng) -> Result<StepOutput> {
        let b = b.into_iter().next().unwrap();
        let out = net.forward(b.images);
        Ok(StepOutput { loss: cross_entropy(out.logits.clone(), b.targets.clone()).mean(), logits: out.logits, targets: b.targets })
    }

    /// Logits of `x` and `y` after one plain SGD step (lr 1) on `slices`, normalised with the
    /// probe batch's own statistics: they depend on the weights alone. (In inference mode they
    /// would also depend on the running variance, which each slice moves towards its own unbiased
    /// estimate, `n / (n - 1)` of its biased one, as PyTorch's replicas do: slices of 2 and 4
    /// images give another average than the 6-image batch.)
    fn after_step(slices: Vec<(Device, HostBatch)>) -> (Vec<f32>, f32) {
        let device = Device::flex().autodiff();
        let net = ModelConfig::new(Arch::Resnet8, 1, 2, HeadConfig::Linear).init(0, &device).unwrap();
        let slices = slices.into_iter().map(|(d, b)| Slice { device: d, batches: vec![b] }).collect();
        let r = step(&net, &device, slices, &mut ChaCha8Rng::seed_from_u64(0), 1.0, ce).unwrap();
        let loss: f32 = r.loss.into_scalar();
        let net = SgdConfig::new().init().step(1.0, net, r.grads);
        let probe = batch(&[(true, 0), (false, 0)]);
        let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(probe.images, probe.shape), &device);
        (net.forward(x).logits.into_data().try_to_vec::<f32>().unwrap(), loss)
    }

    /// A replica on the network's own device shares its weights but none of its autodiff nodes:
    /// the replica's backward pass gives gradients for the replica's parameters and none for the
    /// network's (a plain clone would give the network's too: one graph shared by two threads).
    #[test]
    fn a_replica_on_the_same_device_builds_a_graph_of_its_own() {
        let device = Device::flex().autodiff();
        let net = ModelConfig::new(Arch::Resnet8, 1, 2, HeadConfig::Linear).init(0, &device).unwrap();
        let b = batch(&[(true, 0), (false, 1)]);
        let x = || Tensor::<4>::from_data(burn::tensor::TensorData::new(b.images.clone(), b.shape), &device);
        let targets = Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(vec![0i64, 1], [2]), &device);
        let replica = replica_of(&net, &device);
        let loss = cross_entropy(replica.forward(x()).logits, targets.clone()).mean();
        let grads = loss.backward();
        let own = GradientsParams::from_grads(grads, &replica);
        assert!(!own.is_empty(), "the replica's own parameters get gradients");
        let shared = GradientsParams::from_grads(cross_entropy(replica.forward(x()).logits, targets).mean().backward(), &net);
        assert!(shared.is_empty(), "{} of the network's parameters got gradients from the replica's graph", shared.len());
        let same: Vec<f32> = replica.forward(x()).logits.into_data().try_to_vec().unwrap();
        let want: Vec<f32> = net.forward(x()).logits.into_data().try_to_vec().unwrap();
        assert_eq!(same, want, "the replica computes with the network's weights");
    }

    /// Two slices whose batch-norm statistics equal the whole batch's (each holds x and y in equal
    /// numbers) but whose labels differ: the step must weight them 2/6 and 4/6 to reproduce the
    /// whole batch's gradient.
    #[test]
    fn slices_weighted_by_size_give_the_whole_batch_step() {
        let whole = batch(&[(true, 0), (false, 1), (true, 0), (false, 1), (true, 1), (false, 0)]);
        let first = batch(&[(true, 0), (false, 1)]);
        let second = batch(&[(true, 0), (false, 1), (true, 1), (false, 0)]);
        let d = Device::flex().autodiff();
        let (want, want_loss) = after_step(vec![(d.clone(), whole)]);
        let (got, got_loss) = after_step(vec![(d.clone(), first), (d.clone(), second)]);
        assert!((want_loss - got_loss).abs() < 1e-5, "loss {got_loss} vs {want_loss}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4 * w.abs().max(1.0), "logits {got:?} vs {want:?}");
        }
        // equal weights (the mistake this guards against) would give another step
        let (_, equal_loss) =
            after_step(vec![(d.clone(), batch(&[(true, 0), (false, 1), (true, 0), (false, 1)])), (d, batch(&[(true, 1), (false, 0), (true, 1), (false, 0)]))]);
        assert!((equal_loss - want_loss).abs() > 1e-3, "the check cannot tell the weighting apart");
    }

    /// Inside a one-thread pool (the other replicas must not wait for its only worker): same step, no hang.
    #[test]
    fn one_pool_thread_gives_the_same_step() {
        let d = Device::flex().autodiff();
        let whole = batch(&[(true, 0), (false, 1), (true, 0), (false, 1), (true, 1), (false, 0)]);
        let (want, _) = after_step(vec![(d.clone(), whole)]);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let (got, _) = pool.install(|| {
            assert_eq!(rayon::current_num_threads(), 1);
            after_step(vec![(d.clone(), batch(&[(true, 0), (false, 1)])), (d.clone(), batch(&[(true, 0), (false, 1), (true, 1), (false, 0)]))])
        });
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4 * w.abs().max(1.0), "logits {got:?} vs {want:?}");
        }
    }

    /// A replica (slice 2 of 2) whose loss panics: the step ends with an error that carries the
    /// panic's message, not with the panic re-raised without it.
    #[test]
    fn a_panicking_replica_is_an_error_with_its_message() {
        let d = Device::flex().autodiff();
        let net = ModelConfig::new(Arch::Resnet8, 1, 2, HeadConfig::Linear).init(0, &d).unwrap();
        let slices =
            [batch(&[(true, 0), (false, 1)]), batch(&[(true, 1), (false, 0)])].into_iter().map(|b| Slice { device: d.clone(), batches: vec![b] }).collect();
        let loss_of = |i: usize, net: &Network, b: Vec<DeviceBatch>, rng: &mut ChaCha8Rng| {
            if i == 1 {
                panic!("replica loss exploded");
            }
            ce(i, net, b, rng)
        };
        // (the replica's panic message goes to this test's captured output: its thread inherits it)
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&net, &d, slices, &mut ChaCha8Rng::seed_from_u64(0), 1.0, loss_of)));
        match r {
            Ok(Err(TrainError::Run(msg))) => assert_eq!(msg, "data-parallel replica 1 panicked: replica loss exploded"),
            Ok(Err(e)) => panic!("another error: {e}"),
            Ok(Ok(_)) => panic!("the step succeeded"),
            Err(_) => panic!("the step panicked instead of returning an error"),
        }
    }

    #[test]
    fn split_batch_keeps_every_sample_in_order() {
        let b = batch(&[(true, 0), (false, 1), (true, 1), (false, 0), (true, 1)]);
        let parts = split_batch(b.clone(), 3);
        assert_eq!(parts.iter().map(HostBatch::len).collect::<Vec<_>>(), [1, 2, 2]);
        assert_eq!(parts.iter().flat_map(|p| p.labels.clone()).collect::<Vec<_>>(), b.labels);
        assert_eq!(parts.iter().flat_map(|p| p.images.clone()).collect::<Vec<_>>(), b.images);
        assert_eq!(parts[2].shape, [2, 1, SIDE, SIDE]);
        // fewer samples than devices: one slice per sample, none empty
        assert_eq!(split_batch(batch(&[(true, 0), (false, 1)]), 3).len(), 2);
    }
}
