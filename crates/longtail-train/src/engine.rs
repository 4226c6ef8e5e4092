//! The training run: it opens (or resumes) a run folder, trains the runs it starts from, then
//! its stages epoch by epoch, and writes the final report.
//!
//! The parts, in the order data flows through them (docs/architecture.md, "The engine"):
//! [`crate::sources`] resolves the stage-I runs before any loop starts; per stage,
//! [`crate::stage`] sets the network up (head surgery, what trains), [`crate::setup`] builds the
//! samplers, loader and per-device losses once, and each step draws one batch per sampler stream
//! and hands them to [`crate::strategy::train_step`], which runs the stage's
//! [`crate::recipe::BatchRecipe`] on one device or data parallel; [`crate::checkpoint`] writes
//! the commit points and [`crate::progress`] the lines.
//!
//! Randomness comes from streams keyed by `(seed, stage, epoch, step)` ([`longtail_core::streams`]):
//! the sampler order, the augmentation of every sample, the mixup draws, the H2T channel masks and
//! the device RNG are all re-derived at each epoch, so a run resumed from an epoch checkpoint
//! continues exactly as an uninterrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor};
use longtail_core::streams;
use longtail_data::HostBatch;
use longtail_losses::LossState;
use longtail_models::{Network, Precision, autocast, weights};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::Checkpointer;
use crate::config::{ExperimentConfig, PretrainedWeights, RunSource, StageConfig};
use crate::data::PreparedData;
use crate::error::{Result, TrainError};
use crate::evaluate::predict;
use crate::loss_scale::LossScaler;
use crate::metrics::{self, MetricSettings, Metrics};
use crate::progress::{Position, Progress, StepNumbers, epoch_line, step_line};
use crate::run_dir::{Best, EpochRecord, EvalSummary, FinalReport, RunDir, RunState};
use crate::setup::StageSetup;
use crate::sources::{self, source_dir};
use crate::stage::{change_head, set_trainable};
use crate::strategy::{StepInputs, train_step};
use longtail_models::weights::{ImportOptions, ImportReport, import_pretrained};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_dir: PathBuf,
    /// The device to train on (plain; the engine adds autodiff).
    pub device: Device,
    /// Continue the run in `run_dir`.
    pub resume: bool,
    /// Stop after this many epochs in this invocation (the run stays resumable).
    pub max_epochs: Option<usize>,
    pub quiet: bool,
    /// More devices for data-parallel training next to `device` (CLI `--devices`): each step's
    /// batch is split across all of them and the gradients are summed on `device`
    /// ([`crate::data_parallel`]). Empty: `device` alone.
    pub data_parallel: Vec<Device>,
}

/// What a finished (or paused) run gives back.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub finished: bool,
    pub final_report: Option<FinalReport>,
}

fn settings(config: &ExperimentConfig) -> MetricSettings {
    MetricSettings { ece_bins: config.eval.ece_bins, many_above: config.eval.many_above, few_below: config.eval.few_below }
}

/// Evaluates `network` on the test split with every protocol metric (on a worker of the global
/// rayon pool, [`crate::compute_pool`]).
pub fn evaluate_network(network: &Network, config: &ExperimentConfig, data: &PreparedData, device: &Device) -> Result<Metrics> {
    let loader = data.eval_loader(config, data.test.clone())?;
    let scale = config.stages.last().map_or(1.0, |stage| stage.loss.eval_logit_scale());
    let plain = device.clone().without_autodiff();
    let preds = crate::compute_pool::run(|| autocast(config.precision, || predict(network, &loader, &data.test, &plain, scale)))?;
    Ok(metrics::compute(&preds, &data.counts, &data.train.class_names, data.test.hierarchy.as_ref(), settings(config)))
}

/// Loads the final network of a finished run, built from its own config.
pub fn load_run_network(run: &Path, device: &Device) -> Result<(Network, ExperimentConfig)> {
    let dir = RunDir::new(run);
    if !dir.config().exists() {
        return Err(TrainError::Run(format!("{} is not a run folder (no config.toml); train that run first or fix the path", run.display())));
    }
    let config = ExperimentConfig::load(&dir.config(), &[])?;
    let path = dir.final_checkpoint();
    if !path.exists() {
        return Err(TrainError::Run(format!("{} has no final checkpoint ({}); has the run finished?", run.display(), path.display())));
    }
    // a finished run records its final network's checksum (runs of earlier versions do not)
    if let Ok(state) = dir.read_state()
        && let Some(sum) = &state.final_checksum
        && crate::checkpoint::checksum(&path)? != *sum
    {
        return Err(TrainError::Run(format!(
            "{} does not match the checksum its run recorded: it was changed or replaced after the run finished",
            path.display()
        )));
    }
    // the stages' classifier changes give the network the head its checkpoint holds (LWS,
    // tau-norm); the values come from the checkpoint
    let mut network = config.model.init(config.seed, device)?;
    let counts = vec![1; config.model.num_classes];
    for (s, stage) in config.stages.iter().enumerate() {
        network = change_head(network, &stage.head, &config.model, &counts, config.seed, s, device)?;
    }
    let network = weights::load(network, &path)?;
    Ok((network, config))
}

/// Checks that a source run's model fits the config's model.
fn check_compatible(source: &ExperimentConfig, config: &ExperimentConfig, run: &Path) -> Result<()> {
    let (a, b) = (&source.model, &config.model);
    if a.arch != b.arch || a.in_channels != b.in_channels || a.num_classes != b.num_classes {
        return Err(TrainError::Run(format!(
            "the checkpoint of {} ({} with {} input channels, {} classes) does not match this config ({} with {}, {})",
            run.display(),
            a.arch.name(),
            a.in_channels,
            a.num_classes,
            b.arch.name(),
            b.in_channels,
            b.num_classes
        )));
    }
    Ok(())
}

/// FFN's network: the two stage-I backbones and the first network's cosine classifier.
fn fused_network(config: &ExperimentConfig, dir: &RunDir, device: &Device) -> Result<Network> {
    let fusion = config.fusion.as_ref().ok_or_else(|| TrainError::config("fusion", "FFN needs a [fusion] section"))?;
    let first = source_dir(&fusion.first, dir, "first");
    let second = source_dir(&fusion.second, dir, "second");
    let (a, ca) = load_run_network(&first, device)?;
    let (b, cb) = load_run_network(&second, device)?;
    check_compatible(&ca, config, &first)?;
    check_compatible(&cb, config, &second)?;
    let (Network::Classifier(a), Network::Classifier(b)) = (a, b) else {
        return Err(TrainError::Run("FFN fuses two single-backbone networks".into()));
    };
    let Network::FeatureFusion(mut f) = config.model.init(config.seed, device)? else {
        return Err(TrainError::config("model.feature_fusion", "a [fusion] section needs the feature-fusion model (set model.feature_fusion)"));
    };
    f.first = a.backbone;
    f.second = b.backbone;
    // FFN's classifier starts from the first (KPS) network's cosine classifier; any other
    // head would leave a random classifier in a classifier-only stage.
    f.head = match a.head {
        longtail_models::Head::Cosine(h) => h,
        other => {
            return Err(TrainError::Run(format!(
                "FFN's classifier starts from the first network's cosine classifier, but {} has a {} head (train it with model.head = {{ kind = \"cosine\" }})",
                first.display(),
                other.kind_name()
            )));
        }
    };
    Ok(Network::FeatureFusion(f))
}

/// The network a run starts from: FFN's fused network, a source run's final network, or a new one.
fn initial_network(config: &ExperimentConfig, dir: &RunDir, device: &Device, quiet: bool) -> Result<Network> {
    if config.fusion.is_some() {
        return fused_network(config, dir, device);
    }
    if let Some(RunSource::Weights(w)) = &config.init_from {
        let (net, report) = pretrained_network(config, w, device)?;
        if !quiet && (!report.missing.is_empty() || !report.unexpected.is_empty()) {
            let line = format!("init_from {}: {}", w.weights.display(), report.summary());
            eprintln!("{line}");
            dir.log(&line);
        }
        return Ok(net);
    }
    if let Some(source) = &config.init_from {
        let run = source_dir(source, dir, "init");
        let (net, source_config) = load_run_network(&run, device)?;
        check_compatible(&source_config, config, &run)?;
        if source_config.model.head != config.model.head {
            return Err(TrainError::Run(format!(
                "the checkpoint of {} has a {:?} head but this config's model.head is {:?}",
                run.display(),
                source_config.model.head,
                config.model.head
            )));
        }
        return Ok(net);
    }
    Ok(config.model.init(config.seed, device)?)
}

/// A new network with a pretrained file's weights (`init_from = { weights, layout }`), and what
/// the import left out.
pub fn pretrained_network(config: &ExperimentConfig, w: &PretrainedWeights, device: &Device) -> Result<(Network, ImportReport)> {
    let net = config.model.init(config.seed, device)?;
    let opts = ImportOptions { layout: w.layout, with_classifier: w.with_classifier, allow_missing: w.allow_missing, allow_unexpected: w.allow_unexpected };
    import_pretrained(net, &w.weights, &opts).map_err(|e| TrainError::config("init_from", e.to_string()))
}

/// A clear error when a device cannot compute in the configured precision.
fn check_precision<'a>(precision: Precision, devices: impl Iterator<Item = &'a Device>) -> Result<()> {
    let Some(dtype) = precision.compute_dtype() else {
        return Ok(());
    };
    for device in devices {
        if !device.supports_dtype(dtype) {
            return Err(TrainError::config(
                "precision",
                format!("{} does not compute in {}; use precision = \"f32\" on it", crate::device::describe(device), precision.name()),
            ));
        }
    }
    Ok(())
}

/// Stops a diverging run at its first non-finite loss, before the epoch is committed (the run
/// folder keeps the last good epoch). Under fp16 loss scaling an overflow is the scaler's to
/// handle (it skips the step and halves the scale); the run stops once the scale is below 1.
fn check_finite(loss: &Tensor<1>, at: &Position, step: usize, lr: f64, scaler: Option<&LossScaler>) -> Result<()> {
    let value: f32 = loss.clone().inner().into_scalar();
    if value.is_finite() || scaler.is_some_and(|s| s.scale >= 1.0) {
        return Ok(());
    }
    let scale = scaler.map(|s| format!(", loss scale {}", s.scale)).unwrap_or_default();
    Err(TrainError::Run(format!(
        "the training loss is {value} at [{} {}/{}] epoch {}/{} step {} (lr {lr}{scale}): the run diverged and stopped; its folder keeps the last finished epoch (resume continues from it). Lower the learning rate (stages.{}.lr.base) or check the data",
        at.stage,
        at.index + 1,
        at.stages,
        at.epoch + 1,
        at.epochs,
        step + 1,
        at.index
    )))
}

/// SGD as PyTorch's: dampening 0, decay added to the gradient.
fn sgd(stage: &StageConfig) -> ModuleOptimizer {
    let o = &stage.optimizer;
    let mut cfg = SgdConfig::new();
    if o.momentum > 0.0 {
        cfg = cfg.with_momentum(Some(MomentumConfig::new().with_momentum(o.momentum).with_dampening(0.0).with_nesterov(o.nesterov)));
    }
    if o.weight_decay > 0.0 {
        cfg = cfg.with_weight_decay(Some(WeightDecayConfig::new(o.weight_decay as f32)));
    }
    cfg.init()
}

/// Trains (or resumes) the experiment into `opts.run_dir`.
pub fn train(config: &ExperimentConfig, opts: &RunOptions) -> Result<RunOutcome> {
    train_with_base(config, opts, Path::new("."))
}

/// [`train`] with relative source configs resolved against `base`. Runs on a worker of the
/// global rayon pool ([`crate::compute_pool`]).
pub fn train_with_base(config: &ExperimentConfig, opts: &RunOptions, base: &Path) -> Result<RunOutcome> {
    crate::compute_pool::run(|| {
        let run = Run::open(config, opts)?;
        if run.state.finished {
            return Ok(run.finished_outcome());
        }
        for source in sources::plan(config, &opts.run_dir, base)? {
            train_source(&source, opts)?;
        }
        run.train()
    })
}

/// Trains a stage-I run into its sub-folder (continuing it if it was started).
fn train_source(source: &sources::SourceRun, opts: &RunOptions) -> Result<()> {
    let dir = RunDir::new(&source.dir);
    let started = dir.state_path().exists();
    if started && dir.read_state()?.finished {
        return Ok(());
    }
    let opts = RunOptions { run_dir: source.dir.clone(), resume: started, max_epochs: None, ..opts.clone() };
    let run = Run::open(&source.config, &opts)?;
    if !run.state.finished && !run.train()?.finished {
        return Err(TrainError::Run(format!("stage-I run {} did not finish", source.dir.display())));
    }
    Ok(())
}

/// A run being trained: its config, folder, data and state.
struct Run<'a> {
    config: &'a ExperimentConfig,
    opts: &'a RunOptions,
    dir: RunDir,
    data: PreparedData,
    state: RunState,
}

/// How a stage ended in this invocation.
#[allow(clippy::large_enum_variant, reason = "one value per stage, moved once")]
enum StageEnd {
    Trained(Network),
    /// The epoch budget (`max_epochs`) ran out; the run is resumable.
    Paused,
}

/// What an epoch's steps add up to.
struct EpochTotals {
    loss_sum: Tensor<1>,
    correct: Tensor<1, Int>,
    seen: usize,
    lr: f64,
}

impl<'a> Run<'a> {
    /// Validates the config and loads the data, then creates the run folder or, resuming, reads
    /// its state (the config must be the one the run started with).
    fn open(config: &'a ExperimentConfig, opts: &'a RunOptions) -> Result<Self> {
        config.validate()?;
        let dir = RunDir::new(&opts.run_dir);
        let data = PreparedData::load(config)?;
        if let Some(RunSource::Run { run }) = &config.init_from
            && !RunDir::new(run).config().exists()
        {
            return Err(TrainError::Run(format!(
                "init_from: {} is not a run folder (no config.toml); train the stage-I run first or fix the path",
                run.display()
            )));
        }
        if let Some(RunSource::Weights(w)) = &config.init_from
            && !opts.resume
            && !w.weights.is_file()
        {
            return Err(TrainError::config(
                "init_from.weights",
                format!(
                    "{} is not a file; fix the path, or download the weights there (torchvision's ImageNet ResNet-152: `longtail fetch resnet152-imagenet`; docs/weights.md)",
                    w.weights.display()
                ),
            ));
        }
        let state = if opts.resume {
            let state = dir.read_state()?;
            dir.remove_leftovers()?;
            // the config the run started with (recorded in its state; older runs: config.toml)
            let started = match &state.started_config {
                Some(text) => ExperimentConfig::from_toml(text, &dir.state_path(), &[])?,
                None => ExperimentConfig::load(&dir.config(), &[])?,
            };
            let changed = crate::config::changed_fields(&started, config);
            if !changed.is_empty() {
                return Err(TrainError::Run(format!(
                    "{} was started with another config ({} changed); resume it with the config it started with, or start a new run",
                    dir.root.display(),
                    changed.join(", ")
                )));
            }
            state
        } else {
            dir.create()?;
            let text = config.to_toml();
            crate::run_dir::write_atomic(&dir.config(), text.as_bytes())?;
            let state = RunState { started_config: Some(text), ..RunState::default() };
            Checkpointer { dir: &dir }.commit_start(&state)?;
            state
        };
        Ok(Self { config, opts, dir, data, state })
    }

    fn finished_outcome(&self) -> RunOutcome {
        RunOutcome { run_dir: self.dir.root.clone(), finished: true, final_report: self.dir.read_final().ok() }
    }

    fn checkpointer(&self) -> Checkpointer<'_> {
        Checkpointer { dir: &self.dir }
    }

    /// The first line of a run: what trains where, on how much data.
    fn announce(&self) {
        let plain = self.opts.device.clone().without_autodiff();
        let devices = if self.opts.data_parallel.is_empty() {
            crate::device::describe(&plain)
        } else {
            let all: Vec<String> = std::iter::once(&plain).chain(&self.opts.data_parallel).map(crate::device::describe).collect();
            format!("{} devices, data parallel ({})", all.len(), all.join(", "))
        };
        let (c, d) = (self.config, &self.data);
        let msg = format!(
            "{}: {} on {devices} ({} training images, {} classes, {} test images) -> {}",
            c.name,
            c.method,
            d.train.len(),
            d.counts.len(),
            d.test.len(),
            self.dir.root.display()
        );
        if !self.opts.quiet {
            eprintln!("{msg}");
        }
        self.dir.log(&msg);
    }

    /// Trains every stage not yet done, then writes the final report.
    fn train(mut self) -> Result<RunOutcome> {
        if self.state.finished {
            return Ok(self.finished_outcome());
        }
        self.announce();
        let plain = self.opts.device.clone().without_autodiff();
        // the main device first, then the data-parallel replicas, all with autodiff
        let devices: Vec<Device> =
            std::iter::once(&self.opts.device).chain(&self.opts.data_parallel).map(|d| d.clone().without_autodiff().autodiff()).collect();
        check_precision(self.config.precision, std::iter::once(&plain).chain(&self.opts.data_parallel))?;
        // fp16: dynamic loss scaling, carried over from the saved state on resume
        let mut scaler = (self.config.precision == Precision::F16).then(|| self.state.loss_scaler.clone().unwrap_or_default());
        // a checkpoint replaces the starting weights: a resumed run does not re-read a pretrained file
        let mut network = if self.state.checkpoint.is_some() && matches!(self.config.init_from, Some(RunSource::Weights(_))) {
            self.config.model.init(self.config.seed, &devices[0])?
        } else {
            initial_network(self.config, &self.dir, &devices[0], self.opts.quiet)?
        };
        let mut budget = self.opts.max_epochs.unwrap_or(usize::MAX);
        // a run stopped after its last stage, before its final report, resumes with no stage to train
        let every_stage_done = self.state.stage >= self.config.stages.len();
        for s in 0..self.config.stages.len() {
            network = match self.run_stage(s, network, &devices, &mut scaler, &mut budget)? {
                StageEnd::Trained(network) => network,
                StageEnd::Paused => return Ok(RunOutcome { run_dir: self.dir.root.clone(), finished: false, final_report: None }),
            };
        }
        if every_stage_done && let Some(last) = self.config.stages.len().checked_sub(1) {
            // the trained network, not the freshly initialised one the skipped stages left
            network = self.checkpointer().load_stage_end(&self.state, network, last)?;
        }
        self.finish(network, &devices[0])
    }

    /// Sets the network up for stage `s` and trains its remaining epochs (within `budget`).
    fn run_stage(&mut self, s: usize, mut network: Network, devices: &[Device], scaler: &mut Option<LossScaler>, budget: &mut usize) -> Result<StageEnd> {
        let (config, stage) = (self.config, &self.config.stages[s]);
        let device = &devices[0];
        if s < self.state.stage {
            // done in an earlier invocation: only the head surgery, so the next stage's load fits
            return Ok(StageEnd::Trained(change_head(network, &stage.head, &config.model, &self.data.counts, config.seed, s, device)?));
        }
        let ckpt = self.checkpointer();
        if s == self.state.stage && self.state.next_epoch == 0 && s > 0 && self.opts.resume && ckpt.has_stage_end(&self.state, s - 1) {
            network = ckpt.load_stage_end(&self.state, network, s - 1)?;
        }
        network = change_head(network, &stage.head, &config.model, &self.data.counts, config.seed, s, device)?;
        network = set_trainable(network, stage)?;
        let mut optim = sgd(stage);
        // a stage without epochs (post-hoc) whose network was committed before a stop
        let post_hoc_done = stage.epochs == 0 && self.state.checkpoint.as_ref().is_some_and(|r| r.stage == s);
        if self.state.next_epoch > 0 {
            (network, optim) = ckpt.load_epoch(&self.state, network, optim, s, device)?;
        } else if post_hoc_done {
            network = ckpt.load_stage_end(&self.state, network, s)?;
        }
        let setup = StageSetup::new(config, s, &self.data, devices)?;
        let remaining = stage.epochs.saturating_sub(self.state.next_epoch);
        let mut progress = Progress::new(self.opts.quiet, remaining * self.data.train.len());
        if stage.epochs == 0 && !post_hoc_done {
            let m = evaluate_network(&network, config, &self.data, device)?;
            self.dir.log(&progress.print(&format!("[{}] post-hoc classifier: test acc {:.2}%", stage.name, m.accuracy)));
            Checkpointer { dir: &self.dir }.commit_stage_network(&network, s, &mut self.state)?;
        }
        for epoch in self.state.next_epoch..stage.epochs {
            if *budget == 0 {
                self.checkpointer().commit_state(&self.state)?;
                return Ok(StageEnd::Paused);
            }
            *budget -= 1;
            let t0 = Instant::now();
            for (i, d) in devices.iter().enumerate() {
                d.seed(streams::device_seed(config.seed, s, epoch, i));
            }
            let totals;
            (network, totals) =
                self.train_epoch(network, &mut optim, &setup, s, epoch, scaler, &mut progress).inspect_err(|e| self.dir.log(&format!("error: {e}")))?;
            self.end_epoch(&network, &optim, s, epoch, totals, t0.elapsed().as_secs_f64(), scaler.as_ref(), &mut progress)?;
        }
        self.state.stage = s + 1;
        self.state.next_epoch = 0;
        self.checkpointer().commit_stage_end(s, &self.state)?;
        Ok(StageEnd::Trained(network))
    }

    /// One epoch's steps: one batch per sampler stream, the step, the optimizer update.
    #[allow(clippy::too_many_arguments, reason = "the epoch's position, its setup and the state it moves")]
    fn train_epoch(
        &self,
        mut network: Network,
        optim: &mut ModuleOptimizer,
        setup: &StageSetup,
        s: usize,
        epoch: usize,
        scaler: &mut Option<LossScaler>,
        progress: &mut Progress,
    ) -> Result<(Network, EpochTotals)> {
        let (config, stage) = (self.config, &self.config.stages[s]);
        let plain = self.opts.device.clone().without_autodiff();
        let mut streams_iter =
            setup.epoch_orders(epoch, stage.epochs).into_iter().enumerate().map(|(k, order)| setup.loader.iter(order, setup.stream_seed, epoch, k as u64));
        let main = streams_iter.next().ok_or_else(|| TrainError::Run("a stage without a sampler stream".into()))?;
        let mut paired: Vec<_> = streams_iter.collect();
        let drw_on = stage.drw.as_ref().is_some_and(|d| epoch >= d.from_epoch);
        let mut totals = EpochTotals { loss_sum: Tensor::zeros([1], &plain), correct: Tensor::zeros([1], &plain), seen: 0, lr: 0.0 };
        let at = Position { stage: &stage.name, index: s, stages: config.stages.len(), epoch, epochs: stage.epochs };
        network = network.at_learning_rate(stage.lr.rate(epoch, stage.epochs, 0, setup.steps));
        for (step, batch) in main.enumerate() {
            let batch: HostBatch = batch?;
            let n = batch.len();
            let mut batches = vec![batch];
            for (k, it) in paired.iter_mut().enumerate() {
                batches.push(it.next().ok_or_else(|| TrainError::Run(format!("sampler stream {} ran out of batches", k + 1)))??);
            }
            totals.lr = stage.lr.rate(epoch, stage.epochs, step, setup.steps);
            let mut rng = ChaCha8Rng::seed_from_u64(streams::step_seed(config.seed, s, epoch, step));
            let state = LossState { epoch, total_epochs: stage.epochs, seed: rng.next_u64() };
            let loss_scale = scaler.as_ref().map_or(1.0, |s| s.scale);
            let inputs = StepInputs { recipe: setup.recipe.as_ref(), devices: &setup.devices, drw_on, state, precision: config.precision, loss_scale };
            let out = train_step(&network, batches, &inputs, &mut rng)?;
            check_finite(&out.loss, &at, step, totals.lr, scaler.as_ref())?;
            let m = out.targets.dims()[0];
            totals.loss_sum = totals.loss_sum + out.loss.inner().mul_scalar(m as f64);
            totals.correct = totals.correct + out.logits.inner().argmax(1).reshape([m]).equal(out.targets.inner()).int().sum();
            let grads = match scaler.as_mut() {
                Some(s) => s.unscale(out.grads, &network),
                None => Some(out.grads),
            };
            // an fp16 step whose gradients overflowed is skipped (the scaler backed off)
            if let Some(grads) = grads {
                network = optim.step(totals.lr, network, grads);
            }
            totals.seen += m;
            progress.advance(n);
            if progress.due() {
                let (l, c): (f32, i64) = (totals.loss_sum.clone().into_scalar(), totals.correct.clone().into_scalar());
                let seen = totals.seen as f64;
                let numbers = StepNumbers {
                    step,
                    steps: setup.steps,
                    loss: l as f64 / seen,
                    accuracy: 100.0 * c as f64 / seen,
                    lr: totals.lr,
                    rate: progress.rate(),
                    eta: progress.eta(),
                };
                progress.step(&step_line(&at, &numbers));
            }
        }
        Ok((network, totals))
    }

    /// An epoch's end: the test evaluation when due (and the best checkpoint), the record, the
    /// line, and the epoch's commit point.
    #[allow(clippy::too_many_arguments, reason = "the epoch's position, its numbers and what it commits")]
    fn end_epoch(
        &mut self,
        network: &Network,
        optim: &ModuleOptimizer,
        s: usize,
        epoch: usize,
        totals: EpochTotals,
        seconds: f64,
        scaler: Option<&LossScaler>,
        progress: &mut Progress,
    ) -> Result<()> {
        let (config, stage) = (self.config, &self.config.stages[s]);
        let (l, c): (f32, i64) = (totals.loss_sum.into_scalar(), totals.correct.into_scalar());
        let seen = totals.seen.max(1) as f64;
        let last = epoch + 1 == stage.epochs;
        let test = if last || (epoch + 1).is_multiple_of(config.eval.every) {
            let summary = EvalSummary::of(&evaluate_network(network, config, &self.data, &self.opts.device.clone().without_autodiff().autodiff())?);
            if self.state.best.as_ref().is_none_or(|b| summary.accuracy > b.accuracy) {
                self.state.best = Some(Best { accuracy: summary.accuracy, stage: s, epoch });
                self.checkpointer().save_best(network)?;
            }
            Some(summary)
        } else {
            None
        };
        let record = EpochRecord {
            stage: s,
            stage_name: stage.name.clone(),
            epoch,
            lr: totals.lr,
            train_loss: l as f64 / seen,
            train_accuracy: 100.0 * c as f64 / seen,
            seconds,
            images_per_second: totals.seen as f64 / seconds.max(1e-9),
            test,
        };
        let at = Position { stage: &stage.name, index: s, stages: config.stages.len(), epoch, epochs: stage.epochs };
        self.dir.log(&progress.print(&epoch_line(&at, &record, scaler)));
        self.state.history.push(record);
        self.state.next_epoch = epoch + 1;
        self.state.loss_scaler = scaler.cloned();
        Checkpointer { dir: &self.dir }.commit_epoch(network, optim, s, &mut self.state)
    }

    /// The final evaluation and report, the run's last commit point.
    fn finish(mut self, network: Network, device: &Device) -> Result<RunOutcome> {
        let config = self.config;
        let metrics = evaluate_network(&network, config, &self.data, device)?;
        let report = FinalReport {
            name: config.name.clone(),
            method: config.method.clone(),
            device: crate::device::describe(&device.clone().without_autodiff()),
            train_counts: self.data.counts.clone(),
            metrics,
            best: self.state.best.clone(),
            total_seconds: self.state.history.iter().map(|r| r.seconds).sum::<f64>(),
        };
        Checkpointer { dir: &self.dir }.commit_final(&network, &report, &mut self.state)?;
        let line = format!("{}: final test accuracy {:.2}% ({})", config.name, report.metrics.accuracy, self.dir.final_path().display());
        if !self.opts.quiet {
            eprintln!("{line}");
        }
        self.dir.log(&line);
        Ok(RunOutcome { run_dir: self.dir.root.clone(), finished: true, final_report: Some(report) })
    }
}
