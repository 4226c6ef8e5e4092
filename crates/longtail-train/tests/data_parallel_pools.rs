//! Data-parallel steps started on every worker of the global rayon pool at once, as two
//! data-parallel runs in one process on a two-core machine do. Each worker blocks until its
//! other replica finishes; a replica whose CPU ops needed a worker of that pool would wait
//! forever (it did: two such tests running side by side hung `cargo test`). In its own test
//! binary so that a regression fails here, after the time-out, without stalling other tests.

use std::sync::mpsc;
use std::time::Duration;

use burn::tensor::Device;
use longtail_data::HostBatch;
use longtail_losses::functional::cross_entropy;
use longtail_models::{Arch, HeadConfig, ModelConfig, Network};
use longtail_train::Result;
use longtail_train::data::DeviceBatch;
use longtail_train::data_parallel::{Slice, step};
use longtail_train::recipe::StepOutput;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIDE: usize = 16;

fn slice(device: &Device, n: usize, seed: u64) -> Slice {
    let mut s = seed;
    let images = (0..n * SIDE * SIDE)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let batch = HostBatch { images, shape: [n, 1, SIDE, SIDE], labels: (0..n).map(|i| i % 2).collect(), coarse: None, indices: (0..n).collect() };
    Slice { device: device.clone(), batches: vec![batch] }
}

fn ce(_: usize, net: &Network, b: Vec<DeviceBatch>, _: &mut ChaCha8Rng) -> Result<StepOutput> {
    let b = b.into_iter().next().unwrap();
    let out = net.forward(b.images);
    Ok(StepOutput { loss: cross_entropy(out.logits.clone(), b.targets.clone()).mean(), logits: out.logits, targets: b.targets })
}

/// The loss of one two-slice step of a seeded ResNet-8 on a fixed batch.
fn two_device_step() -> f32 {
    let device = Device::flex().autodiff();
    let net = ModelConfig::new(Arch::Resnet8, 1, 2, HeadConfig::Linear).init(0, &device).unwrap();
    let slices = vec![slice(&device, 8, 1), slice(&device, 8, 2)];
    step(&net, &device, slices, &mut ChaCha8Rng::seed_from_u64(0), 1.0, ce).unwrap().loss.into_scalar()
}

#[test]
fn steps_on_every_worker_of_the_global_pool_at_once_finish() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let losses = rayon::broadcast(|_| two_device_step());
        let _ = tx.send(losses);
    });
    let losses = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("data-parallel steps on every pool worker did not finish in 120 s: the replicas wait for the blocked workers");
    assert_eq!(losses.len(), rayon::current_num_threads());
    let alone = two_device_step();
    for l in &losses {
        assert!(l.is_finite() && (l - alone).abs() <= 1e-5 * alone.abs().max(1.0), "{losses:?} vs one step alone {alone}");
    }
}
