//! The training loop: stages, epochs, steps, evaluation, checkpoints and resume.
//!
//! Randomness comes from streams keyed by `(seed, stage, epoch, step)`: the sampler order, the
//! augmentation of every sample, the mixup draws, the H2T channel masks and the device RNG (GCL's
//! clouds) are all re-derived at each epoch, so a run resumed from an epoch checkpoint continues
//! exactly as an uninterrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_data::sampler::mix_seed;
use longtail_data::{HostBatch, Sampler};
use longtail_losses::functional::constant;
use longtail_losses::{Loss, LossInputs, LossState, reweight};
use longtail_models::{Network, Precision, autocast, weights};
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};

use crate::config::{ExperimentConfig, RunSource, StageConfig};
use crate::data::{DeviceBatch, PreparedData, upload};
use crate::data_parallel::{self, Slice, split_batch};
use crate::error::{Result, TrainError};
use crate::evaluate::predict;
use crate::metrics::{self, MetricSettings, Metrics};
use crate::progress::{Progress, format_duration};
use crate::run_dir::{Best, EpochRecord, EvalSummary, FinalReport, RunDir, RunState};
use crate::stage::{change_head, set_trainable};

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
    let network = weights::load(config.model.init(config.seed, device)?, &path)?;
    Ok((network, config))
}

/// A stage-I run: a finished folder, or a config trained into `<run>/sources/<label>`.
fn resolve_source(source: &RunSource, dir: &RunDir, label: &str, opts: &RunOptions, base: &Path) -> Result<PathBuf> {
    match source {
        RunSource::Run { run } => Ok(run.clone()),
        RunSource::Config { config } => {
            let path = if config.is_absolute() { config.clone() } else { base.join(config) };
            let sub = dir.sources().join(label);
            let sub_dir = RunDir::new(&sub);
            if sub_dir.state_path().exists() && sub_dir.read_state()?.finished {
                return Ok(sub);
            }
            let cfg = ExperimentConfig::load(&path, &[])?;
            let opts = RunOptions { run_dir: sub.clone(), resume: sub_dir.state_path().exists(), max_epochs: None, ..opts.clone() };
            let outcome = train(&cfg, &opts)?;
            if !outcome.finished {
                return Err(TrainError::Run(format!("stage-I run {} did not finish", sub.display())));
            }
            Ok(sub)
        }
    }
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

/// The network a run starts from.
fn initial_network(config: &ExperimentConfig, dir: &RunDir, opts: &RunOptions, device: &Device, base: &Path) -> Result<Network> {
    if let Some(fusion) = &config.fusion {
        let first = resolve_source(&fusion.first, dir, "first", opts, base)?;
        let second = resolve_source(&fusion.second, dir, "second", opts, base)?;
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
        return Ok(Network::FeatureFusion(f));
    }
    if let Some(source) = &config.init_from {
        let run = resolve_source(source, dir, "init", opts, base)?;
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

/// Random per-step choices (mixup, H2T channels).
fn step_rng(seed: u64, stage: usize, epoch: usize, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix_seed(seed, ((stage as u64) << 32) | epoch as u64, 0x5e_0000_0000 + step as u64))
}

fn int_tensor(v: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as i64).collect::<Vec<_>>(), [v.len()]), device)
}

/// Everything a step needs that does not change within an epoch.
struct StepContext<'a> {
    stage: &'a StageConfig,
    loss: &'a Loss,
    state: LossState,
    drw: Option<Tensor<1>>,
}

/// Forward pass and loss of one step; returns `(loss, logits, targets)`.
fn step_loss(
    network: &Network,
    batch: DeviceBatch,
    fusing: Option<DeviceBatch>,
    ctx: &StepContext,
    rng: &mut ChaCha8Rng,
) -> Result<(Tensor<1>, Tensor<2>, Tensor<1, Int>)> {
    let device = batch.images.device();
    let loss_of = |inputs: &LossInputs, state: LossState| -> Result<Tensor<1>> {
        let per = ctx.loss.per_sample(inputs, state)?;
        let per = match &ctx.drw {
            Some(w) => reweight(per, w, inputs.targets.clone()),
            None => per,
        };
        Ok(per.mean())
    };
    // H2T: fuse the balanced batch's feature map with the instance batch's (labels of the balanced batch).
    if let (Some(h2t), Some(fusing)) = (&ctx.stage.h2t, fusing) {
        let fused = crate::h2t::fused_forward(network, batch, fusing, h2t.ratio, rng)?;
        let out = fused.output;
        let inputs =
            LossInputs { logits: out.logits.clone(), aux: out.aux, features: Some(out.features), targets: fused.targets.clone(), coarse_targets: fused.coarse };
        return Ok((loss_of(&inputs, ctx.state)?, out.logits, fused.targets));
    }
    if let Some(mixup) = &ctx.stage.mixup {
        let lambda: f64 = Beta::new(mixup.alpha, mixup.alpha).map_err(|e| TrainError::config("mixup.alpha", e.to_string()))?.sample(rng);
        let mut perm: Vec<usize> = (0..batch.len).collect();
        perm.shuffle(rng);
        let perm_t = int_tensor(&perm, &device);
        let mixed = batch.images.clone().mul_scalar(lambda) + batch.images.select(0, perm_t.clone()).mul_scalar(1.0 - lambda);
        let out = network.forward(mixed);
        let inputs_a = LossInputs {
            logits: out.logits.clone(),
            aux: out.aux.clone(),
            features: Some(out.features.clone()),
            targets: batch.targets.clone(),
            coarse_targets: batch.coarse.clone(),
        };
        let inputs_b = LossInputs {
            targets: batch.targets.clone().select(0, perm_t.clone()),
            coarse_targets: batch.coarse.map(|c| c.select(0, perm_t)),
            ..inputs_a.clone()
        };
        let loss = crate::mixup::mixup_criterion(loss_of, &inputs_a, &inputs_b, lambda, ctx.state)?;
        return Ok((loss, out.logits, batch.targets));
    }
    let out = network.forward(batch.images);
    let inputs =
        LossInputs { logits: out.logits.clone(), aux: out.aux, features: Some(out.features), targets: batch.targets.clone(), coarse_targets: batch.coarse };
    Ok((loss_of(&inputs, ctx.state)?, out.logits, batch.targets))
}

/// Trains (or resumes) the experiment into `opts.run_dir`.
pub fn train(config: &ExperimentConfig, opts: &RunOptions) -> Result<RunOutcome> {
    train_with_base(config, opts, Path::new("."))
}

/// [`train`] with relative source configs resolved against `base`. Runs on a worker of the
/// global rayon pool ([`crate::compute_pool`]).
pub fn train_with_base(config: &ExperimentConfig, opts: &RunOptions, base: &Path) -> Result<RunOutcome> {
    crate::compute_pool::run(|| train_in_pool(config, opts, base))
}

fn train_in_pool(config: &ExperimentConfig, opts: &RunOptions, base: &Path) -> Result<RunOutcome> {
    config.validate()?;
    let dir = RunDir::new(&opts.run_dir);
    let data = PreparedData::load(config)?;
    if let Some(RunSource::Run { run }) = &config.init_from
        && !RunDir::new(run).config().exists()
    {
        return Err(TrainError::Run(format!("init_from: {} is not a run folder (no config.toml); train the stage-I run first or fix the path", run.display())));
    }
    let mut state = if opts.resume {
        let state = dir.read_state()?;
        let saved = ExperimentConfig::load(&dir.config(), &[])?;
        if saved != *config {
            return Err(TrainError::Run(format!("{} was started with a different config; resume it without changing the config", dir.root.display())));
        }
        state
    } else {
        dir.create()?;
        std::fs::write(dir.config(), config.to_toml()).map_err(|e| TrainError::io("write", dir.config(), e))?;
        RunState::default()
    };
    if state.finished {
        return Ok(RunOutcome { run_dir: dir.root.clone(), finished: true, final_report: dir.read_final().ok() });
    }
    let plain = opts.device.clone().without_autodiff();
    let device = plain.clone().autodiff();
    let replicas: Vec<Device> = opts.data_parallel.iter().map(|d| d.clone().without_autodiff().autodiff()).collect();
    let msg = format!(
        "{}: {} on {} ({} training images, {} classes, {} test images) -> {}",
        config.name,
        config.method,
        if replicas.is_empty() {
            crate::device::describe(&plain)
        } else {
            let all: Vec<String> = std::iter::once(&plain).chain(&opts.data_parallel).map(crate::device::describe).collect();
            format!("{} devices, data parallel ({})", all.len(), all.join(", "))
        },
        data.train.len(),
        data.counts.len(),
        data.test.len(),
        dir.root.display()
    );
    if !opts.quiet {
        eprintln!("{msg}");
    }
    dir.log(&msg);

    check_precision(config.precision, std::iter::once(&plain).chain(&opts.data_parallel))?;
    // fp16: dynamic loss scaling, carried over from the saved state on resume
    let mut scaler = (config.precision == Precision::F16).then(|| state.loss_scaler.clone().unwrap_or_default());
    let mut network = initial_network(config, &dir, opts, &device, base)?;
    let mut budget = opts.max_epochs.unwrap_or(usize::MAX);
    let seed = config.seed;
    // a run stopped after its last stage, before its final report, resumes with no stage to train
    let every_stage_done = state.stage >= config.stages.len();

    for (s, stage) in config.stages.iter().enumerate() {
        if s < state.stage {
            network = change_head(network, &stage.head, &config.model, &data.counts, seed, s, &device)?;
            continue;
        }
        if s == state.stage && state.next_epoch == 0 && s > 0 && opts.resume && dir.stage_last(s - 1).exists() {
            network = weights::load(network, &dir.stage_last(s - 1))?;
        }
        network = change_head(network, &stage.head, &config.model, &data.counts, seed, s, &device)?;
        network = set_trainable(network, stage);
        let mut optim = sgd(stage);
        if state.next_epoch > 0 {
            network = weights::load(network, &dir.stage_last(s))?;
            optim = optim.load(dir.stage_optim(s)).map_err(|e| TrainError::io("read", dir.stage_optim(s), e))?;
        }
        let loss = Loss::new(&stage.loss, &data.counts, data.coarse_counts.as_deref(), &device)?;
        let sampler = Sampler::new(stage.sampler.clone(), &data.train.labels, data.counts.len())?;
        let deferred = stage.deferred_sampler.as_ref().map(|d| Sampler::new(d.sampler.clone(), &data.train.labels, data.counts.len())).transpose()?;
        let fusing = stage.h2t.as_ref().map(|h| Sampler::new(h.fusing_sampler.clone(), &data.train.labels, data.counts.len())).transpose()?;
        let drw_weights = stage.drw.as_ref().map(|d| constant(&d.weighting.weights(&data.counts), &device));
        // data parallel: each replica device gets its own copy of the loss's constants
        let replica_losses =
            replicas.iter().map(|d| Loss::new(&stage.loss, &data.counts, data.coarse_counts.as_deref(), d)).collect::<std::result::Result<Vec<_>, _>>()?;
        let replica_drw: Vec<Option<Tensor<1>>> =
            replicas.iter().map(|d| stage.drw.as_ref().map(|w| constant(&w.weighting.weights(&data.counts), d))).collect();
        let loader = data.train_loader(config, stage.batch_size)?;
        let steps = loader.num_batches(data.train.len());
        let remaining = stage.epochs.saturating_sub(state.next_epoch);
        let mut progress = Progress::new(opts.quiet, remaining * data.train.len());
        let stream_seed = mix_seed(seed, s as u64, 0x5a);
        if stage.epochs == 0 && state.next_epoch == 0 {
            let m = evaluate_network(&network, config, &data, &device)?;
            dir.log(&progress.print(&format!("[{}] post-hoc classifier: test acc {:.2}%", stage.name, m.accuracy)));
            weights::save(&network, &dir.stage_last(s))?;
        }
        for epoch in state.next_epoch..stage.epochs {
            if budget == 0 {
                dir.write_state(&state)?;
                return Ok(RunOutcome { run_dir: dir.root.clone(), finished: false, final_report: None });
            }
            budget -= 1;
            let t0 = Instant::now();
            device.seed(mix_seed(seed, ((s as u64) << 32) | epoch as u64, 0xd3));
            for (r, d) in replicas.iter().enumerate() {
                d.seed(mix_seed(seed, ((s as u64) << 32) | epoch as u64, 0xd4 + r as u64));
            }
            let active = match (&deferred, &stage.deferred_sampler) {
                (Some(d), Some(ds)) if epoch >= ds.from_epoch => d,
                _ => &sampler,
            };
            let (order, fusing_order) = match &fusing {
                Some(f) => {
                    let (a, b) = crate::h2t::paired_orders(active, f, stream_seed, epoch, stage.epochs);
                    (a, Some(b))
                }
                None => (active.epoch_indices(stream_seed, epoch, stage.epochs, 0), None),
            };
            let mut fusing_batches = fusing_order.map(|o| loader.iter(o, stream_seed, epoch, 1));
            let mut ctx = StepContext {
                stage,
                loss: &loss,
                state: LossState { epoch, total_epochs: stage.epochs, seed: 0 },
                drw: stage.drw.as_ref().filter(|d| epoch >= d.from_epoch).and(drw_weights.clone()),
            };
            let mut loss_sum = Tensor::<1>::zeros([1], &plain);
            let mut correct = Tensor::<1, Int>::zeros([1], &plain);
            let (mut seen, mut lr) = (0usize, 0.0);
            for (step, batch) in loader.iter(order, stream_seed, epoch, 0).enumerate() {
                let batch: HostBatch = batch?;
                let n = batch.len();
                let pair = match fusing_batches.as_mut() {
                    Some(it) => Some(it.next().ok_or_else(|| TrainError::Run("the fusing branch ran out of batches".into()))??),
                    None => None,
                };
                lr = stage.lr.rate(epoch, stage.epochs, step, steps);
                let mut rng = step_rng(seed, s, epoch, step);
                ctx.state.seed = rng.next_u64();
                let loss_scale = scaler.as_ref().map_or(1.0, |s| s.scale);
                let (value, logits, targets, grads) = if replicas.is_empty() {
                    let (value, logits, targets) =
                        autocast(config.precision, || step_loss(&network, upload(batch, &device), pair.map(|p| upload(p, &device)), &ctx, &mut rng))?;
                    let grads = GradientsParams::from_grads(value.clone().mul_scalar(loss_scale).backward(), &network);
                    (value.detach(), logits.detach(), targets, grads)
                } else {
                    let parts = replicas.len() + 1;
                    let mut fusing_parts = pair.map(|p| split_batch(p, parts).into_iter());
                    let slices = split_batch(batch, parts)
                        .into_iter()
                        .zip(std::iter::once(&device).chain(&replicas))
                        .map(|(b, d)| Slice { device: d.clone(), batch: b, fusing: fusing_parts.as_mut().and_then(|f| f.next()) })
                        .collect();
                    let replica_ctx: Vec<StepContext> = replica_losses
                        .iter()
                        .zip(&replica_drw)
                        .map(|(loss, w)| StepContext { stage, loss, state: ctx.state, drw: ctx.drw.as_ref().and(w.clone()) })
                        .collect();
                    let r = data_parallel::step(&network, &device, slices, &mut rng, loss_scale, |i, net, b, f, rng| {
                        autocast(config.precision, || step_loss(net, b, f, if i == 0 { &ctx } else { &replica_ctx[i - 1] }, rng))
                    })?;
                    (r.loss, r.logits, r.targets, r.grads)
                };
                let m = targets.dims()[0];
                loss_sum = loss_sum + value.inner().mul_scalar(m as f64);
                correct = correct + logits.inner().argmax(1).reshape([m]).equal(targets.inner()).int().sum();
                let grads = match scaler.as_mut() {
                    Some(s) => s.unscale(grads, &network),
                    None => Some(grads),
                };
                // an fp16 step whose gradients overflowed is skipped (the scaler backed off)
                if let Some(grads) = grads {
                    network = optim.step(lr, network, grads);
                }
                seen += m;
                progress.advance(n);
                if progress.due() {
                    let l: f32 = loss_sum.clone().into_scalar();
                    let c: i64 = correct.clone().into_scalar();
                    let line = format!(
                        "[{} {}/{}] epoch {}/{} step {}/{} | loss {:.4} | acc {:.2}% | lr {:.5} | {:.1} img/s | ETA {}",
                        stage.name,
                        s + 1,
                        config.stages.len(),
                        epoch + 1,
                        stage.epochs,
                        step + 1,
                        steps,
                        l as f64 / seen as f64,
                        100.0 * c as f64 / seen as f64,
                        lr,
                        progress.rate(),
                        format_duration(progress.eta())
                    );
                    progress.print(&line);
                }
            }
            let l: f32 = loss_sum.into_scalar();
            let c: i64 = correct.into_scalar();
            let seconds = t0.elapsed().as_secs_f64();
            let last = epoch + 1 == stage.epochs;
            let test = if last || (epoch + 1) % config.eval.every == 0 {
                let m = evaluate_network(&network, config, &data, &device)?;
                let summary = EvalSummary::of(&m);
                if state.best.as_ref().is_none_or(|b| summary.accuracy > b.accuracy) {
                    state.best = Some(Best { accuracy: summary.accuracy, stage: s, epoch });
                    weights::save(&network, &dir.best_checkpoint())?;
                }
                Some(summary)
            } else {
                None
            };
            let record = EpochRecord {
                stage: s,
                stage_name: stage.name.clone(),
                epoch,
                lr,
                train_loss: l as f64 / seen.max(1) as f64,
                train_accuracy: 100.0 * c as f64 / seen.max(1) as f64,
                seconds,
                images_per_second: seen as f64 / seconds.max(1e-9),
                test: test.clone(),
            };
            let mut line = format!(
                "[{} {}/{}] epoch {}/{} done in {} | loss {:.4} | train acc {:.2}% | {:.1} img/s",
                stage.name,
                s + 1,
                config.stages.len(),
                epoch + 1,
                stage.epochs,
                format_duration(seconds),
                record.train_loss,
                record.train_accuracy,
                record.images_per_second
            );
            if let Some(s) = &scaler {
                line.push_str(&format!(" | loss scale {} ({} steps skipped)", s.scale, s.skipped));
            }
            if let Some(t) = &test {
                line.push_str(&format!(" | test acc {:.2}%", t.accuracy));
                let names = ["many", "med", "few"];
                for (g, v) in t.shots.iter().enumerate() {
                    if let Some(v) = v {
                        line.push_str(&format!(" {} {:.1}", names[g], v));
                    }
                }
            }
            dir.log(&progress.print(&line));
            state.history.push(record);
            weights::save(&network, &dir.stage_last(s))?;
            optim.save(dir.stage_optim(s)).map_err(|e| TrainError::io("write", dir.stage_optim(s), e))?;
            state.next_epoch = epoch + 1;
            state.loss_scaler = scaler.clone();
            dir.write_state(&state)?;
        }
        state.stage = s + 1;
        state.next_epoch = 0;
        dir.write_state(&state)?;
    }

    if every_stage_done && let Some(last) = config.stages.len().checked_sub(1) {
        // the trained network, not the freshly initialised one the skipped stages left
        network = weights::load(network, &dir.stage_last(last))?;
    }
    let metrics = evaluate_network(&network, config, &data, &device)?;
    weights::save(&network, &dir.final_checkpoint())?;
    let report = FinalReport {
        name: config.name.clone(),
        method: config.method.clone(),
        device: crate::device::describe(&plain),
        train_counts: data.counts.clone(),
        metrics,
        best: state.best.clone(),
        total_seconds: state.history.iter().map(|r| r.seconds).sum::<f64>(),
    };
    dir.write_final(&report)?;
    state.finished = true;
    dir.write_state(&state)?;
    let line = format!("{}: final test accuracy {:.2}% ({})", config.name, report.metrics.accuracy, dir.final_path().display());
    if !opts.quiet {
        eprintln!("{line}");
    }
    dir.log(&line);
    Ok(RunOutcome { run_dir: dir.root.clone(), finished: true, final_report: Some(report) })
}
