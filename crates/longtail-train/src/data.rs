//! Data preparation for a run: the long-tailed splits, their loaders and the checks that the
//! data fits the model config.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_data::{Dataset, HostBatch, Loader};
use longtail_models::HeadConfig;

use crate::config::ExperimentConfig;
use crate::error::{Result, TrainError};

/// The datasets and class statistics of a run.
#[derive(Clone)]
pub struct PreparedData {
    pub train: Arc<Dataset>,
    pub test: Arc<Dataset>,
    pub counts: Vec<usize>,
    pub coarse_counts: Option<Vec<usize>>,
    pub image_shape: [usize; 3],
}

impl PreparedData {
    /// Loads the data of `config` and checks it against the model config.
    pub fn load(config: &ExperimentConfig) -> Result<Self> {
        let splits = config.data.load()?;
        let train = splits.train;
        train.check_no_empty_class()?;
        // a missing image ends the run now, not after a training epoch
        train.check_files()?;
        splits.test.check_files()?;
        let classes = train.num_classes();
        if config.model.num_classes != classes {
            return Err(TrainError::config(
                "model.num_classes",
                format!("is {} but the data ({}) has {classes} classes", config.model.num_classes, train.name),
            ));
        }
        if let HeadConfig::CoarseFine { num_coarse } = config.model.head {
            let h = train.hierarchy.as_ref().ok_or_else(|| {
                TrainError::config("data.hierarchy", "a coarse + fine head needs a class hierarchy (e.g. hierarchy = \"builtin:fashion-mnist\")")
            })?;
            if h.num_coarse() != num_coarse {
                return Err(TrainError::config("model.head.num_coarse", format!("is {num_coarse} but the hierarchy has {} coarse classes", h.num_coarse())));
            }
        }
        let counts = train.class_counts();
        let coarse_counts = train.hierarchy.as_ref().map(|h| longtail_core::class_stats::coarse_counts(&counts, &h.parent, h.num_coarse()));
        let size = config.data.recipe.image_size();
        Ok(Self { train: Arc::new(train), test: Arc::new(splits.test), counts, coarse_counts, image_shape: [config.model.in_channels, size, size] })
    }

    /// A training loader with the recipe's augmentation.
    pub fn train_loader(&self, config: &ExperimentConfig, batch_size: usize) -> Result<Loader> {
        let pipeline = config.data.train_pipeline(self.image_shape[0]);
        Ok(Loader::new(self.train.clone(), pipeline, self.image_shape, batch_size, config.loader.threads)?.with_prefetch(config.loader.prefetch))
    }

    /// The evaluation loader of a split.
    pub fn eval_loader(&self, config: &ExperimentConfig, data: Arc<Dataset>) -> Result<Loader> {
        let pipeline = config.data.test_pipeline(self.image_shape[0]);
        Ok(Loader::new(data, pipeline, self.image_shape, config.eval.batch_size, config.loader.threads)?.with_prefetch(config.loader.prefetch))
    }
}

/// A batch on a device.
pub struct DeviceBatch {
    pub images: Tensor<4>,
    pub targets: Tensor<1, Int>,
    pub coarse: Option<Tensor<1, Int>>,
    pub len: usize,
}

fn ints(v: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = v.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(data, [v.len()]), device)
}

/// Uploads a host batch.
pub fn upload(batch: HostBatch, device: &Device) -> DeviceBatch {
    let len = batch.len();
    DeviceBatch {
        images: Tensor::from_data(TensorData::new(batch.images, batch.shape), device),
        targets: ints(&batch.labels, device),
        coarse: batch.coarse.as_deref().map(|c| ints(c, device)),
        len,
    }
}
