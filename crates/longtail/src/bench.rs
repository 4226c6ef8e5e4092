//! Throughput benchmarks (not timed tests): training and inference images/s and peak memory of a
//! model on one backend, and the loader's images/s with augmentation. `cargo xtask bench` drives
//! these and, with `--vs-pytorch`, the equivalent PyTorch script in `bench/`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use longtail_data::{Loader, Recipe};
use longtail_losses::functional::cross_entropy;
use longtail_models::{Arch, HeadConfig, ModelConfig, Precision, autocast};
use longtail_train::loss_scale::LossScaler;
use serde::Serialize;

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub bench: String,
    pub backend: String,
    pub batch: usize,
    pub steps: usize,
    pub images_per_second: f64,
    /// Peak resident memory of the process (CPU) or reserved device memory (GPU), in MiB.
    pub peak_mib: f64,
}

/// Peak resident set size of this process (Linux `VmHWM`), MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn peak_mib(sampled_device_peak: u64) -> f64 {
    if sampled_device_peak > 0 { sampled_device_peak as f64 / (1024.0 * 1024.0) } else { peak_rss_mib() }
}

fn device_reserved(device: &Device) -> u64 {
    device.memory_pool_usage().map(|u| u.bytes_reserved).unwrap_or(0)
}

/// One model benchmark.
#[derive(Debug, Clone)]
pub struct ModelBench {
    pub arch: Arch,
    /// Training steps (forward, CE loss, backward, SGD step) or inference.
    pub train: bool,
    pub batch: usize,
    pub image: usize,
    pub channels: usize,
    pub classes: usize,
    pub steps: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Convolutions under `autocast` (training in f16 adds the loss scaler, as `train` does).
    pub precision: Precision,
}

/// Training or inference throughput of a model on random data; warm-up steps are not timed; the
/// device is synchronised before and after timing.
pub fn model(b: &ModelBench, device: &Device) -> Result<BenchResult> {
    let ModelBench { arch, train, batch, image, channels, classes, steps, warmup, precision } = b.clone();
    let config = ModelConfig::new(arch, channels, classes, HeadConfig::Linear);
    let ad = device.clone().autodiff();
    let x = Tensor::<4>::random([batch, channels, image, image], Distribution::Normal(0.0, 1.0), if train { &ad } else { device });
    let y: Vec<i64> = (0..batch as i64).map(|i| i % classes as i64).collect();
    let mut peak = 0u64;
    let elapsed;
    if train {
        let mut net = config.init(0, &ad)?;
        let targets = Tensor::<1, Int>::from_data(TensorData::new(y, [batch]), &ad);
        let mut optim =
            SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_dampening(0.0))).with_weight_decay(Some(WeightDecayConfig::new(5e-4))).init();
        let mut scaler = (precision == Precision::F16).then(LossScaler::default);
        let mut last = None;
        let mut t0 = Instant::now();
        for step in 0..warmup + steps {
            if step == warmup {
                if let Some(l) = last.take() {
                    let _: f32 = Tensor::<1>::into_scalar(l);
                }
                let _ = ad.sync();
                t0 = Instant::now();
            }
            let out = autocast(precision, || net.forward(x.clone()));
            let loss = cross_entropy(out.logits, targets.clone()).mean();
            let scale = scaler.as_ref().map_or(1.0, |s| s.scale);
            let grads = GradientsParams::from_grads(loss.clone().mul_scalar(scale).backward(), &net);
            let grads = match scaler.as_mut() {
                Some(s) => s.unscale(grads, &net),
                None => Some(grads),
            };
            if let Some(grads) = grads {
                net = optim.step(0.1, net, grads);
            }
            last = Some(loss.detach());
            peak = peak.max(device_reserved(device));
        }
        if let Some(l) = last {
            let _: f32 = Tensor::<1>::into_scalar(l);
        }
        let _ = ad.sync();
        elapsed = t0.elapsed().as_secs_f64();
    } else {
        let net = config.init(0, device)?.valid();
        let mut t0 = Instant::now();
        let mut last = None;
        for step in 0..warmup + steps {
            if step == warmup {
                if let Some(l) = last.take() {
                    let _ = Tensor::<2>::into_data(l);
                }
                let _ = device.sync();
                t0 = Instant::now();
            }
            last = Some(autocast(precision, || net.predict(x.clone())));
            peak = peak.max(device_reserved(device));
        }
        if let Some(l) = last {
            let _ = Tensor::<2>::into_data(l);
        }
        let _ = device.sync();
        elapsed = t0.elapsed().as_secs_f64();
    }
    Ok(BenchResult {
        bench: format!(
            "{} {} b{batch} {image}x{image}{}",
            arch.name(),
            if train { "train" } else { "infer" },
            if precision == Precision::F32 { String::new() } else { format!(" {}", precision.name()) }
        ),
        backend: longtail_train::device::describe(device),
        batch,
        steps,
        images_per_second: (steps * batch) as f64 / elapsed,
        peak_mib: peak_mib(peak),
    })
}

/// Loader throughput with the training augmentation: `cifar` = 32x32 in-memory images with the
/// CIFAR recipe; `jpeg` = decoding 256x256 JPEG files with the ImageNet recipe.
pub fn loader(format: &str, threads: usize, batch: usize, images: usize, scratch: &Path) -> Result<BenchResult> {
    use longtail_data::{Dataset, ImageStore};
    let (dataset, pipeline, shape) = match format {
        "cifar" => {
            let pixels: Vec<u8> = (0..images * 3072).map(|i| (i * 31 % 251) as u8).collect();
            let store = ImageStore::Memory { height: 32, width: 32, channels: 3, pixels: Arc::new(pixels) };
            let labels = (0..images).map(|i| i % 10).collect();
            (Dataset::new("bench", (0..10).map(|c| c.to_string()).collect(), store, labels)?, Recipe::Cifar.train(3), [3, 32, 32])
        }
        "jpeg" => {
            std::fs::create_dir_all(scratch)?;
            let mut paths: Vec<std::path::PathBuf> = Vec::new();
            for i in 0..64.min(images) {
                let p = scratch.join(format!("{i}.jpg"));
                if !p.exists() {
                    let img = image::RgbImage::from_fn(256, 256, |x, y| image::Rgb([(x * 7 + i as u32) as u8, (y * 3) as u8, ((x ^ y) as u8)]));
                    img.save(&p)?;
                }
                paths.push(p.file_name().unwrap().into());
            }
            let paths: Vec<std::path::PathBuf> = (0..images).map(|i| paths[i % paths.len()].clone()).collect();
            let store = ImageStore::Files { root: scratch.to_path_buf(), paths: Arc::new(paths), grayscale: false };
            let labels = (0..images).map(|i| i % 10).collect();
            (Dataset::new("bench", (0..10).map(|c| c.to_string()).collect(), store, labels)?, Recipe::Imagenet.train(3), [3, 224, 224])
        }
        other => anyhow::bail!("unknown loader format `{other}` (cifar or jpeg)"),
    };
    let loader = Loader::new(Arc::new(dataset), pipeline, shape, batch, threads)?;
    let t0 = Instant::now();
    let mut n = 0;
    for b in loader.iter((0..images).collect(), 0, 0, 0) {
        n += b?.len();
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(BenchResult {
        bench: format!("loader {format} {} threads", if threads == 0 { "all".to_string() } else { threads.to_string() }),
        backend: "host".into(),
        batch,
        steps: images.div_ceil(batch),
        images_per_second: n as f64 / secs,
        peak_mib: peak_rss_mib(),
    })
}
