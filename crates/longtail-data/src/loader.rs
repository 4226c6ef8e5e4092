//! Batch assembly: decode and augment the samples of a batch in parallel (rayon), on a
//! background thread that keeps the next batches ready while the model trains.
//!
//! Each sample's augmentation RNG is seeded from `(seed, epoch, stream, position)`, so the same
//! seed yields the same batches whatever the number of threads.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::transform::Pipeline;

/// A batch in host memory: normalised `f32` images `[n, c, h, w]` and their labels.
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub images: Vec<f32>,
    pub shape: [usize; 4],
    pub labels: Vec<usize>,
    /// Coarse labels, for datasets with a hierarchy.
    pub coarse: Option<Vec<usize>>,
    /// The dataset indices of the samples.
    pub indices: Vec<usize>,
}

impl HostBatch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Builds batches of one dataset with one transform pipeline.
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<Dataset>,
    pipeline: Arc<Pipeline>,
    image_shape: [usize; 3],
    batch_size: usize,
    pool: Arc<rayon::ThreadPool>,
    prefetch: usize,
}

impl Loader {
    /// `image_shape` is the `[channels, height, width]` the pipeline produces; `threads` the
    /// decode/augment worker count (0 = all cores).
    pub fn new(dataset: Arc<Dataset>, pipeline: Pipeline, image_shape: [usize; 3], batch_size: usize, threads: usize) -> Result<Self> {
        pipeline.validate()?;
        if batch_size == 0 {
            return Err(DataError::invalid("batch_size", "must be at least 1"));
        }
        if pipeline.mean.len() != image_shape[0] {
            return Err(DataError::invalid("transform", format!("normalisation has {} channels but the model takes {}", pipeline.mean.len(), image_shape[0])));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("longtail-loader-{i}"))
            .build()
            .map_err(|e| DataError::invalid("threads", e.to_string()))?;
        Ok(Self { dataset, pipeline: Arc::new(pipeline), image_shape, batch_size, pool: Arc::new(pool), prefetch: 2 })
    }

    /// Batches kept ready ahead of the consumer (default 2).
    pub fn with_prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn image_shape(&self) -> [usize; 3] {
        self.image_shape
    }

    /// Number of batches an epoch of `num_samples` indices gives (the last one may be short).
    pub fn num_batches(&self, num_samples: usize) -> usize {
        num_samples.div_ceil(self.batch_size)
    }

    /// Builds one batch from dataset indices; `offset` is the position of `indices[0]` in the
    /// epoch (it seeds the per-sample augmentation).
    pub fn batch(&self, indices: &[usize], seed: u64, epoch: usize, stream: u64, offset: usize) -> Result<HostBatch> {
        let [c, h, w] = self.image_shape;
        let size = c * h * w;
        let mut images = vec![0f32; indices.len() * size];
        self.pool.install(|| {
            images.par_chunks_mut(size).zip(indices.par_iter()).enumerate().try_for_each(|(k, (out, &i))| {
                let img = self.dataset.image(i)?;
                let mut rng = ChaCha8Rng::seed_from_u64(longtail_core::streams::augmentation_seed(seed, epoch, stream, offset + k));
                self.pipeline.process_into(img, &mut rng, out).map_err(|e| match e {
                    DataError::Invalid { field, msg } => {
                        DataError::Invalid { field, msg: format!("{msg} (image {})", self.dataset.store.describe(self.dataset.items[i])) }
                    }
                    other => other,
                })
            })
        })?;
        let labels = indices.iter().map(|&i| self.dataset.labels[i]).collect();
        let coarse = self.dataset.hierarchy.as_ref().map(|_| indices.iter().map(|&i| self.dataset.coarse_label(i).unwrap()).collect());
        Ok(HostBatch { images, shape: [indices.len(), c, h, w], labels, coarse, indices: indices.to_vec() })
    }

    /// Iterates the batches of one epoch in `order`, prefetching on a background thread.
    pub fn iter(&self, order: Vec<usize>, seed: u64, epoch: usize, stream: u64) -> Batches {
        let (tx, rx) = sync_channel(self.prefetch);
        let loader = self.clone();
        let num_batches = self.num_batches(order.len());
        let handle = std::thread::Builder::new()
            .name("longtail-prefetch".into())
            .spawn(move || {
                for (b, chunk) in order.chunks(loader.batch_size).enumerate() {
                    let batch = loader.batch(chunk, seed, epoch, stream, b * loader.batch_size);
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        break;
                    }
                }
            })
            .expect("spawn the prefetch thread");
        Batches { rx, handle: Some(handle), remaining: num_batches }
    }
}

/// The batches of one epoch, produced ahead by a background thread.
pub struct Batches {
    rx: Receiver<Result<HostBatch>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Batches {
    /// Batches not yet yielded.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

impl Iterator for Batches {
    type Item = Result<HostBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(batch) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(batch)
            }
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                None
            }
        }
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Unblock the producer: dropping the receiver makes its next send fail.
        let (_, dummy) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, dummy));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
