//! A stage's setup, built once before its first epoch: the batch recipe, one sampler per stream
//! (and the deferred sampler), the training loader, and on every device the loss with its
//! constants and the deferred re-weighting weights.

use burn::tensor::{Device, Tensor};
use longtail_core::streams;
use longtail_data::{Loader, Sampler, SamplerSpec};
use longtail_losses::Loss;
use longtail_losses::functional::constant;

use crate::config::{ExperimentConfig, StageConfig};
use crate::data::PreparedData;
use crate::error::Result;
use crate::recipe::{BatchRecipe, recipe_of};

/// The stage's loss on one device.
pub struct DeviceSetup {
    pub device: Device,
    pub loss: Loss,
    /// DRW's class weights (applied from `drw.from_epoch`).
    pub drw: Option<Tensor<1>>,
}

impl DeviceSetup {
    pub fn new(stage: &StageConfig, data: &PreparedData, device: &Device) -> Result<Self> {
        let loss = Loss::new(&stage.loss, &data.counts, data.coarse_counts.as_deref(), device)?;
        let drw = stage.drw.as_ref().map(|d| constant(&d.weighting.weights(&data.counts), device));
        Ok(Self { device: device.clone(), loss, drw })
    }
}

/// Everything a stage's epochs share.
pub struct StageSetup {
    pub recipe: Box<dyn BatchRecipe>,
    /// Stream 0's sampler, then the recipe's paired streams'.
    samplers: Vec<Sampler>,
    /// Stream 0's sampler from an epoch on (deferred re-sampling).
    deferred: Option<(usize, Sampler)>,
    /// The main device first, then the data-parallel replicas.
    pub devices: Vec<DeviceSetup>,
    pub loader: Loader,
    /// Steps per epoch.
    pub steps: usize,
    /// The seed of the stage's data streams ([`streams::stage_seed`]).
    pub stream_seed: u64,
}

impl StageSetup {
    /// The setup of stage `index` on `devices` (main first).
    pub fn new(config: &ExperimentConfig, index: usize, data: &PreparedData, devices: &[Device]) -> Result<Self> {
        let stage = &config.stages[index];
        let recipe = recipe_of(stage, &data.counts);
        let sampler = |spec: &SamplerSpec| Sampler::new(spec.clone(), &data.train.labels, data.counts.len());
        let mut samplers = vec![sampler(&stage.sampler)?];
        let deferred = stage.deferred_sampler.as_ref().map(|d| Ok::<_, crate::TrainError>((d.from_epoch, sampler(&d.sampler)?))).transpose()?;
        for spec in recipe.paired_samplers() {
            samplers.push(sampler(&spec)?);
        }
        let devices = devices.iter().map(|d| DeviceSetup::new(stage, data, d)).collect::<Result<Vec<_>>>()?;
        let loader = data.train_loader(config, stage.batch_size)?;
        let steps = loader.num_batches(data.train.len());
        Ok(Self { recipe, samplers, deferred, devices, loader, steps, stream_seed: streams::stage_seed(config.seed, index) })
    }

    /// Every stream's sample order at `epoch` of `epochs`: stream 0 from the stage's sampler (or
    /// the deferred one once it is on), stream `k` from the `k`-th paired sampler, each with its
    /// own stream key.
    pub fn epoch_orders(&self, epoch: usize, epochs: usize) -> Vec<Vec<usize>> {
        self.samplers
            .iter()
            .enumerate()
            .map(|(k, sampler)| {
                let sampler = match &self.deferred {
                    Some((from, d)) if k == 0 && epoch >= *from => d,
                    _ => sampler,
                };
                sampler.epoch_indices(self.stream_seed, epoch, epochs, k as u64)
            })
            .collect()
    }
}
