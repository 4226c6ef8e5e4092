//! A tiny synthetic dataset written as real IDX files, for tests and quick demos: class `c` of
//! `C` is a 28x28 image whose brightness is centred on `40 + 170 c / (C - 1)` with uniform noise
//! and a few random dark strokes, so crops and flips keep it learnable.

use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn write_gz(path: &Path, bytes: &[u8]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    enc.write_all(bytes).and_then(|_| enc.finish().map(|_| ())).map_err(|e| DataError::io(path, e))
}

fn images(labels: &[u8], classes: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(labels.len() * 784);
    for &c in labels {
        let level = 40.0 + 170.0 * c as f64 / (classes.max(2) - 1) as f64;
        let mut img: Vec<u8> = (0..784).map(|_| (level + rng.random_range(-25.0..25.0)).clamp(0.0, 255.0) as u8).collect();
        for _ in 0..3 {
            let (y, x) = (rng.random_range(0..28), rng.random_range(0..20));
            for dx in 0..8 {
                img[y * 28 + x + dx] /= 3;
            }
        }
        pixels.extend(img);
    }
    pixels
}

/// Writes `train-*` / `t10k-*` IDX files (gzipped) under `dir`: `train_counts[c]` training images
/// of class `c` (class by class) and `test_per_class` test images per class (interleaved).
pub fn write_idx_dataset(dir: &Path, train_counts: &[usize], test_per_class: usize, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let classes = train_counts.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let train: Vec<u8> = train_counts.iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c as u8, n)).collect();
    let test: Vec<u8> = (0..test_per_class * classes).map(|i| (i % classes) as u8).collect();
    for (prefix, labels) in [("train", &train), ("t10k", &test)] {
        let pixels = images(labels, classes, &mut rng);
        let n = labels.len() as u32;
        write_gz(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")), &idx(&[n, 28, 28], &pixels))?;
        write_gz(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), &idx(&[n], labels))?;
    }
    Ok(())
}
