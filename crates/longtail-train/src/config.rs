//! Experiment configuration: one TOML file describes the data, the model and every training
//! stage of a run, with the papers' defaults. `--set key=value` overrides any field.

use std::path::{Path, PathBuf};

use longtail_core::capabilities::{Logits, Needs, Provides};
use longtail_data::{DataConfig, SamplerSpec};
use longtail_losses::{ClassWeighting, LossSpec};
use longtail_models::weights::PytorchLayout;
use longtail_models::{HeadConfig, ModelConfig, Precision, RouterConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::schedule::LrConfig;

/// SGD with momentum and weight decay (PyTorch semantics: dampening 0, decay added to the gradient).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    pub weight_decay: f64,
    #[serde(default)]
    pub nesterov: bool,
}

fn default_momentum() -> f64 {
    0.9
}

/// Deferred re-weighting: class weights on the loss from `from_epoch` (0-based, in the stage) on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deferred {
    pub from_epoch: usize,
    pub weighting: ClassWeighting,
}

/// Deferred re-sampling: another sampler from `from_epoch` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferredSampler {
    pub from_epoch: usize,
    pub sampler: SamplerSpec,
}

/// Mixup (Zhang et al. 2018): one `lambda ~ Beta(alpha, alpha)` and one permutation per batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixupConfig {
    pub alpha: f64,
    /// Remix's label rule (Chou et al. 2020) instead of mixup's `lambda` for the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remix: Option<RemixConfig>,
}

/// Remix (Chou et al., ECCV-W 2020, Eq. 10): a pair `(i, j)` mixed with `lambda` takes the label
/// weight `0` when `n_i / n_j >= kappa` and `lambda < tau`, `1` when `n_j / n_i >= kappa` and
/// `1 - lambda < tau`, else `lambda`, per pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemixConfig {
    /// The count ratio from which a pair counts as majority-minority (the paper's 3).
    #[serde(default = "remix_kappa")]
    pub kappa: f64,
    /// The mixing factor below which the majority image loses its label (the paper's 0.5).
    #[serde(default = "half")]
    pub tau: f64,
}

fn remix_kappa() -> f64 {
    3.0
}
fn half() -> f64 {
    0.5
}
fn one_f() -> f64 {
    1.0
}
fn cmo_window() -> usize {
    3
}
fn cmo_sampler() -> SamplerSpec {
    SamplerSpec::InversePower { alpha: 1.0 }
}

impl Default for RemixConfig {
    fn default() -> Self {
        Self { kappa: remix_kappa(), tau: half() }
    }
}

/// BBN's cumulative learning (Zhou et al., CVPR 2020; `lib/core/combiner.py`): each step pairs
/// the stage's (instance-sampled) batch, fed to the conventional branch, with a batch of `sampler`
/// (reversed: class `i` with probability `∝ 1 / n_i`) fed to the re-balancing branch; the head
/// sees `2 [alpha f_c ; (1 - alpha) f_r]` and the loss is `alpha L(z, y_c) + (1 - alpha) L(z, y_r)`,
/// `alpha = 1 - (t / T_max)^2` at the 0-based epoch `t` ([`crate::cumulative::alpha`]). Needs
/// `model.two_branch = true`; evaluation uses both branches on one image (alpha 0.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CumulativeConfig {
    /// The re-balancing branch's sampler.
    #[serde(default = "reversed")]
    pub sampler: SamplerSpec,
    /// `T_max`; default the code's `div_epoch`: the stage's epochs, except 90 -> 100 and
    /// 180 -> 200 ([`crate::cumulative::div_epoch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub div_epoch: Option<usize>,
}

fn reversed() -> SamplerSpec {
    SamplerSpec::Reversed
}

impl Default for CumulativeConfig {
    fn default() -> Self {
        Self { sampler: SamplerSpec::Reversed, div_epoch: None }
    }
}

/// CMO (Park et al., CVPR 2022) as `naver-ai/cmo` does it: each step pairs the stage's batch (the
/// background) with a batch of `sampler` (the minority-weighted foreground); inside the epoch
/// window, with probability `prob`, one CutMix box of area about `1 - lambda`,
/// `lambda ~ Beta(beta, beta)`, is pasted from the foreground onto the background, and the loss is
/// `lambda' L(y_bg) + (1 - lambda') L(y_fg)` with `lambda'` recomputed from the clipped box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmoConfig {
    /// `Beta(beta, beta)` of the box's lambda (the code's `--beta`, 1).
    #[serde(default = "one_f")]
    pub beta: f64,
    /// The probability of mixing a step inside the window (`--mixup_prob`, 0.5).
    #[serde(default = "half")]
    pub prob: f64,
    /// CMO is on in the stage's 0-based epochs `e` with `start < e < epochs - end`
    /// (`--start_data_aug` 3, `--end_data_aug` 3).
    #[serde(default = "cmo_window")]
    pub start: usize,
    #[serde(default = "cmo_window")]
    pub end: usize,
    /// The foreground sampler (the code's weight `n_y^-alpha` per sample, `--weighted_alpha` 1).
    #[serde(default = "cmo_sampler")]
    pub sampler: SamplerSpec,
}

impl Default for CmoConfig {
    fn default() -> Self {
        Self { beta: one_f(), prob: half(), start: cmo_window(), end: cmo_window(), sampler: cmo_sampler() }
    }
}

/// H2T (Li et al. 2024) in a classifier-only stage: each step pairs a batch from the stage's
/// sampler (labels used) with an instance-sampled batch and replaces `floor(ratio * d)` random
/// channels of the first's feature map with the second's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct H2tConfig {
    pub ratio: f64,
    /// Sampler of the fusing (head-rich) branch; instance-balanced in the paper.
    #[serde(default = "instance")]
    pub fusing_sampler: SamplerSpec,
}

fn instance() -> SamplerSpec {
    SamplerSpec::Instance
}

/// Which parameters a stage trains.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trainable {
    /// Backbone and head.
    #[default]
    All,
    /// The head only; batch norms of the frozen backbone in inference mode.
    Classifier,
    /// The head only; batch norms keep re-estimating their statistics ("shift learning on BN").
    ClassifierShiftBn,
    /// The parameters under these path prefixes (`train = { parts = ["backbone.layer4", "head"] }`);
    /// the others get no gradient but their batch norms stay in training mode, as PyTorch's
    /// `requires_grad = False` (the decoupling code's Places-LT fine-tuning).
    Parts(Vec<String>),
}

/// What happens to the classifier at the start of a stage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum HeadChange {
    /// Keep the classifier (fine-tune it, as H2T, GCL and FFN do).
    #[default]
    Keep,
    /// Re-initialise it (cRT, Kang et al. 2020).
    Reinit,
    /// Learnable weight scaling on the frozen linear classifier (LWS).
    Lws,
    /// Tau-normalisation of the linear classifier (no training needed).
    TauNorm { tau: f64 },
    /// Post-hoc logit adjustment `z - tau log pi` folded into the bias (Menon et al. 2021).
    LogitAdjust { tau: f64 },
    /// DisAlign's adaptive calibration function on the frozen linear classifier (Zhang et al.
    /// 2021); only the per-class scale and shift and the confidence layer train.
    #[serde(rename = "disalign")]
    DisAlign,
    /// RIDE-EA's expert-assignment routers added to a multi-expert model (Wang et al. 2021,
    /// stage II): only the routers train (the experts' classifiers stay as stage I left them),
    /// and at test time each sample uses the experts its routers send it to.
    Router(RouterConfig),
}

impl HeadChange {
    /// What the change needs of the model's head: LWS, tau-norm and post-hoc logit adjustment
    /// rewrite a linear classifier.
    pub fn needs(&self) -> Needs {
        match self {
            HeadChange::Keep | HeadChange::Reinit => Needs::default(),
            HeadChange::Lws | HeadChange::TauNorm { .. } | HeadChange::LogitAdjust { .. } | HeadChange::DisAlign => {
                Needs { logits: Some(Logits::Linear), ..Needs::default() }
            }
            HeadChange::Router(_) => Needs { experts: true, ..Needs::default() },
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            HeadChange::Keep => "keep",
            HeadChange::Reinit => "re-initialisation",
            HeadChange::Lws => "LWS",
            HeadChange::TauNorm { .. } => "tau-norm",
            HeadChange::LogitAdjust { .. } => "post-hoc logit adjustment",
            HeadChange::DisAlign => "DisAlign",
            HeadChange::Router(_) => "expert router",
        }
    }
}

/// One training stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub name: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub sampler: SamplerSpec,
    pub loss: LossSpec,
    pub lr: LrConfig,
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub drw: Option<Deferred>,
    #[serde(default)]
    pub deferred_sampler: Option<DeferredSampler>,
    #[serde(default)]
    pub mixup: Option<MixupConfig>,
    #[serde(default)]
    pub train: Trainable,
    #[serde(default)]
    pub head: HeadChange,
    #[serde(default)]
    pub h2t: Option<H2tConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmo: Option<CmoConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative: Option<CumulativeConfig>,
}

/// Where a run's starting weights come from: a stage-I run (stage II on its checkpoint), or,
/// for `init_from` only, a pretrained file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSource", into = "RawSource")]
pub enum RunSource {
    /// A finished run folder: `{ run = "runs/ce" }`.
    Run { run: PathBuf },
    /// A config to train first, into a sub-folder of this run: `{ config = "configs/x/ce.toml" }`.
    Config { config: PathBuf },
    /// A PyTorch `.pth` / safetensors file: `{ weights = "resnet152.pth", layout = "torchvision" }`.
    Weights(PretrainedWeights),
}

/// A pretrained file to start from ([`longtail_models::weights::import_pretrained`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainedWeights {
    pub weights: PathBuf,
    /// torchvision, timm or ldam-cifar: which names the file uses.
    pub layout: PytorchLayout,
    /// Also load the classifier (the same class count); default: the backbone only.
    pub with_classifier: bool,
    /// Accept model parameters the file lacks (they keep their initial values).
    pub allow_missing: bool,
    /// Accept keys of the file no parameter takes.
    pub allow_unexpected: bool,
}

/// The TOML table of a [`RunSource`], checked into one in [`TryFrom`] so a wrong table gets an
/// error that says what is wrong rather than "did not match any variant".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weights: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    with_classifier: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_missing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_unexpected: Option<bool>,
}

impl TryFrom<RawSource> for RunSource {
    type Error = String;

    fn try_from(r: RawSource) -> std::result::Result<Self, String> {
        let weights_only = r.layout.is_some() || r.with_classifier.is_some() || r.allow_missing.is_some() || r.allow_unexpected.is_some();
        match (r.run, r.config, r.weights) {
            (Some(run), None, None) if !weights_only => Ok(RunSource::Run { run }),
            (None, Some(config), None) if !weights_only => Ok(RunSource::Config { config }),
            (None, None, Some(weights)) => {
                let layout = r.layout.ok_or("a `weights` file needs its `layout`: torchvision, timm or ldam-cifar")?;
                let layout = serde_json::from_value(serde_json::Value::String(layout.clone()))
                    .map_err(|_| format!("layout `{layout}`: expected torchvision, timm or ldam-cifar"))?;
                Ok(RunSource::Weights(PretrainedWeights {
                    weights,
                    layout,
                    with_classifier: r.with_classifier.unwrap_or(false),
                    allow_missing: r.allow_missing.unwrap_or(false),
                    allow_unexpected: r.allow_unexpected.unwrap_or(false),
                }))
            }
            (None, None, None) => Err("give one of `run` (a run folder), `config` (a config to train first) or `weights` (a pretrained file)".into()),
            (_, _, None) if weights_only => Err("layout / with_classifier / allow_missing / allow_unexpected belong to a `weights` file".into()),
            _ => Err("give only one of `run`, `config` and `weights`".into()),
        }
    }
}

impl From<RunSource> for RawSource {
    fn from(s: RunSource) -> Self {
        match s {
            RunSource::Run { run } => RawSource { run: Some(run), ..Default::default() },
            RunSource::Config { config } => RawSource { config: Some(config), ..Default::default() },
            RunSource::Weights(w) => RawSource {
                weights: Some(w.weights),
                layout: Some(w.layout.name().to_string()),
                with_classifier: w.with_classifier.then_some(true),
                allow_missing: w.allow_missing.then_some(true),
                allow_unexpected: w.allow_unexpected.then_some(true),
                ..Default::default()
            },
        }
    }
}

/// FFN's two stage-I networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionSources {
    /// The network weighted by `model.feature_fusion` (KPS in the paper).
    pub first: RunSource,
    /// The other network (CE in the paper).
    pub second: RunSource,
}

fn default_eval_every() -> usize {
    1
}
fn default_eval_batch() -> usize {
    256
}
fn default_bins() -> usize {
    15
}
fn default_many() -> usize {
    100
}
fn default_few() -> usize {
    20
}

/// Evaluation protocol settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate on the test split every `every` epochs (and always after the last one).
    #[serde(default = "default_eval_every")]
    pub every: usize,
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    #[serde(default = "default_bins")]
    pub ece_bins: usize,
    #[serde(default = "default_many")]
    pub many_above: usize,
    #[serde(default = "default_few")]
    pub few_below: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { every: 1, batch_size: 256, ece_bins: 15, many_above: 100, few_below: 20 }
    }
}

/// Loader settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Decode/augment threads (0 = all cores).
    #[serde(default)]
    pub threads: usize,
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
}

/// The most calibration bins and prefetched batches a config may ask for.
pub const MAX_ECE_BINS: usize = 10_000;
pub const MAX_PREFETCH: usize = 1024;

fn default_prefetch() -> usize {
    2
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self { threads: 0, prefetch: 2 }
    }
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub name: String,
    /// The method's registry name (`longtail methods`).
    pub method: String,
    #[serde(default)]
    pub seed: u64,
    /// Mixed precision: `f32` (default, the papers'), `bf16` or `f16` convolutions on f32 master
    /// weights (`longtail_models::precision`; fp16 adds dynamic loss scaling). For GPUs: on the
    /// CPU backend the 16-bit convolutions are slower than f32.
    #[serde(default)]
    pub precision: Precision,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub stages: Vec<StageConfig>,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub loader: LoaderConfig,
    /// Start from the final weights of another run (its model config must match).
    #[serde(default)]
    pub init_from: Option<RunSource>,
    /// FFN: the two networks to fuse.
    #[serde(default)]
    pub fusion: Option<FusionSources>,
}

/// Folds a TOML error onto one line (the source snippet lines are dropped).
/// The batch mixing of one stage: mixup / Remix and CMO values, and CMO's window inside the stage.
fn validate_mixing(s: &StageConfig, f: &impl Fn(&str) -> String) -> Result<()> {
    if let Some(c) = &s.cumulative {
        if s.mixup.is_some() || s.h2t.is_some() || s.cmo.is_some() {
            return Err(TrainError::config(f("cumulative"), "BBN's cumulative learning pairs its own batches; remove mixup / h2t / cmo from this stage"));
        }
        if c.div_epoch == Some(0) {
            return Err(TrainError::config(f("cumulative.div_epoch"), "must be >= 1"));
        }
    }
    if let Some(m) = &s.mixup {
        if m.alpha.is_nan() || m.alpha <= 0.0 {
            return Err(TrainError::config(f("mixup.alpha"), format!("must be > 0, got {}", m.alpha)));
        }
        if let Some(r) = &m.remix
            && !(r.kappa >= 1.0 && r.kappa.is_finite() && (0.0..=1.0).contains(&r.tau))
        {
            return Err(TrainError::config(f("mixup.remix"), format!("needs kappa >= 1 (finite) and tau in [0, 1], got kappa = {}, tau = {}", r.kappa, r.tau)));
        }
    }
    if let Some(c) = &s.cmo {
        if s.mixup.is_some() || s.h2t.is_some() {
            return Err(TrainError::config(f("cmo"), "CMO mixes its own pairs; remove mixup / h2t from this stage"));
        }
        if c.beta.is_nan() || c.beta <= 0.0 || !(0.0..=1.0).contains(&c.prob) {
            return Err(TrainError::config(f("cmo"), format!("needs beta > 0 and prob in [0, 1], got beta = {}, prob = {}", c.beta, c.prob)));
        }
        // some epoch e with start < e < epochs - end
        if c.start + c.end + 2 > s.epochs {
            return Err(TrainError::config(
                f("cmo"),
                format!(
                    "the window start = {}, end = {} leaves no epoch of this {}-epoch stage (CMO is on where start < epoch < epochs - end, 0-based): lower start or end",
                    c.start, c.end, s.epochs
                ),
            ));
        }
    }
    Ok(())
}

fn one_line(msg: &str) -> String {
    msg.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains('|')).collect::<Vec<_>>().join(" ")
}

/// Parses `value` of a `--set key=value` as a TOML literal, or as a string if it is not one.
fn parse_value(value: &str) -> toml::Value {
    let doc = format!("v = {value}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t.remove("v").unwrap(),
        Err(_) => toml::Value::String(value.to_string()),
    }
}

/// Sets `path` (dotted, numeric segments index arrays) in a TOML tree.
pub fn set_path(root: &mut toml::Value, path: &str, value: toml::Value) -> Result<()> {
    let keys: Vec<&str> = path.split('.').collect();
    let mut node = root;
    for (i, key) in keys.iter().enumerate() {
        let last = i + 1 == keys.len();
        let here = keys[..=i].join(".");
        node = match node {
            toml::Value::Table(t) => {
                if last {
                    t.insert(key.to_string(), value);
                    return Ok(());
                }
                t.entry(key.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(a) => {
                let idx: usize = key.parse().map_err(|_| TrainError::config(&here, "expects an array index here"))?;
                let len = a.len();
                let slot = a.get_mut(idx).ok_or_else(|| TrainError::config(&here, format!("index {idx} is out of range (length {len})")))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            _ => return Err(TrainError::config(&here, "is not a table or an array")),
        };
    }
    Ok(())
}

impl ExperimentConfig {
    /// Reads a config file and applies `key=value` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io("read config", path, e))?;
        Self::from_toml(&text, path, overrides)
    }

    /// Parses TOML text (`path` names it in errors) with overrides.
    pub fn from_toml(text: &str, path: &Path, overrides: &[String]) -> Result<Self> {
        let file_err = |msg: String| TrainError::ConfigFile { path: path.to_path_buf(), msg };
        let mut tree: toml::Value = toml::from_str(text).map_err(|e| file_err(one_line(&e.to_string())))?;
        for o in overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| TrainError::config(o, "overrides are written key=value"))?;
            set_path(&mut tree, key.trim(), parse_value(value.trim()))?;
        }
        let config: ExperimentConfig = tree.try_into().map_err(|e: toml::de::Error| {
            let msg = one_line(&e.to_string());
            file_err(if overrides.is_empty() { msg } else { format!("{msg} (after --set {})", overrides.join(" ")) })
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Serialises the resolved config (written into every run folder).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configs serialise")
    }

    /// Range checks with messages that name the field and what it accepts.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(TrainError::config("name", "must not be empty"));
        }
        self.model.validate().map_err(|e| TrainError::config("model", e.to_string()))?;
        if self.stages.is_empty() {
            return Err(TrainError::config("stages", "needs at least one stage"));
        }
        if let Some(f) = &self.fusion
            && [&f.first, &f.second].iter().any(|s| matches!(s, RunSource::Weights(_)))
        {
            return Err(TrainError::config("fusion", "fuses two trained runs: give each as { run = ... } or { config = ... }, not a weights file"));
        }

        if !(self.data.long_tail.imbalance_factor.is_finite() && self.data.long_tail.imbalance_factor >= 1.0) {
            return Err(TrainError::config("data.long_tail.imbalance_factor", format!("must be >= 1, got {}", self.data.long_tail.imbalance_factor)));
        }
        if self.eval.every == 0 || self.eval.batch_size == 0 || self.eval.ece_bins == 0 {
            return Err(TrainError::config("eval", "every, batch_size and ece_bins must be >= 1"));
        }
        // upper bounds where a mistyped value would be an allocation abort, not an error
        if self.eval.ece_bins > MAX_ECE_BINS {
            return Err(TrainError::config("eval.ece_bins", format!("must be at most {MAX_ECE_BINS}, got {}", self.eval.ece_bins)));
        }
        if self.loader.prefetch > MAX_PREFETCH {
            return Err(TrainError::config("loader.prefetch", format!("must be at most {MAX_PREFETCH} batches, got {}", self.loader.prefetch)));
        }
        for (i, s) in self.stages.iter().enumerate() {
            self.validate_stage(i, s)?;
        }
        // HRDC's fused prediction weighs the re-weighting branch 0.75 by default: it must be trained
        if matches!(self.model.head, HeadConfig::Dual { .. }) && !self.stages.iter().any(|s| matches!(s.loss, LossSpec::Hrdc { .. })) {
            return Err(TrainError::config(
                "model.head",
                "a dual head is trained by the HRDC loss: set a stage's loss = { kind = \"hrdc\", ... } or use a single head",
            ));
        }
        if self.model.feature_fusion.is_some() != self.fusion.is_some() {
            return Err(TrainError::config("fusion", "FFN needs both model.feature_fusion and a [fusion] section naming its two networks"));
        }
        Ok(())
    }

    /// The checks of stage `i`, its fields named `stages.{i}.<field>`.
    fn validate_stage(&self, i: usize, s: &StageConfig) -> Result<()> {
        let f = |name: &str| format!("stages.{i}.{name}");
        if s.batch_size == 0 {
            return Err(TrainError::config(f("batch_size"), "must be >= 1"));
        }
        if s.epochs == 0 && !matches!(s.head, HeadChange::TauNorm { .. } | HeadChange::LogitAdjust { .. }) {
            return Err(TrainError::config(f("epochs"), "must be >= 1 (0 only for post-hoc tau-norm or logit adjustment)"));
        }
        s.lr.validate(&f("lr"))?;
        if !(0.0..1.0).contains(&s.optimizer.momentum) {
            return Err(TrainError::config(f("optimizer.momentum"), format!("must be in [0, 1), got {}", s.optimizer.momentum)));
        }
        if s.optimizer.weight_decay.is_nan() || s.optimizer.weight_decay < 0.0 {
            return Err(TrainError::config(f("optimizer.weight_decay"), "must be >= 0"));
        }
        validate_mixing(s, &f)?;
        if s.cumulative.is_some() && !self.model.two_branch {
            return Err(TrainError::config(f("cumulative"), "BBN's cumulative learning trains two branches: set model.two_branch = true"));
        }
        if let Some(h) = &s.h2t {
            if !(0.0..=1.0).contains(&h.ratio) {
                return Err(TrainError::config(f("h2t.ratio"), format!("must be in [0, 1], got {}", h.ratio)));
            }
            if !matches!(s.train, Trainable::Classifier | Trainable::ClassifierShiftBn) {
                return Err(TrainError::config(f("h2t"), "H2T fuses frozen feature maps: set train = \"classifier\" or \"classifier-shift-bn\""));
            }
            if s.mixup.is_some() {
                return Err(TrainError::config(f("mixup"), "an H2T stage trains on its own fused pairs; remove mixup from this stage"));
            }
        }
        if self.fusion.is_some() && !matches!(s.train, Trainable::Classifier | Trainable::ClassifierShiftBn) {
            return Err(TrainError::config(f("train"), "FFN keeps both stage-I backbones frozen: set train = \"classifier\""));
        }
        if let LossSpec::Hrdc { reweight_loss: Some(inner), .. } = &s.loss
            && let Some(why) = Provides::LINEAR.unmet(&inner.needs())
        {
            return Err(TrainError::config(f("loss.reweight_loss"), format!("{} cannot train HRDC's linear re-weighting branch: it {why}", inner.name())));
        }
        if let Trainable::Parts(parts) = &s.train
            && (parts.is_empty() || parts.iter().any(|p| p.trim().is_empty()))
        {
            return Err(TrainError::config(f("train.parts"), "name at least one part, each a parameter path prefix such as \"backbone.layer4\" or \"head\""));
        }
        if let Some(d) = &s.drw
            && d.from_epoch >= s.epochs
        {
            return Err(TrainError::config(f("drw.from_epoch"), format!("must be < epochs ({}), got {}", s.epochs, d.from_epoch)));
        }
        if let HeadChange::Router(r) = &s.head {
            let experts = self.model.experts.as_ref().map_or(1, |e| e.count);
            r.validate(experts, self.model.num_classes).map_err(|e| TrainError::config(f("head"), e.to_string()))?;
            if self.model.experts.as_ref().is_some_and(|e| e.shared_classifier) {
                return Err(TrainError::config(f("head"), "an expert router reads each expert's own classifier; this model's experts share one (ResLT)"));
            }
        }
        // what the loss and the classifier change need against what the head provides (with
        // the routers this or an earlier stage adds)
        let mut provides = self.model.provides();
        if self.stages[..=i].iter().any(|s| matches!(s.head, HeadChange::Router(_))) {
            provides.aux = Some(longtail_core::capabilities::AuxHead::Router);
        }
        if let Some(why) = provides.unmet(&s.loss.needs()) {
            return Err(TrainError::config(f("loss"), format!("{} {why}", s.loss.name())));
        }
        if let Some(why) = provides.unmet(&s.head.needs()) {
            return Err(TrainError::config(f("head"), format!("{} {why} (model.head = {{ kind = \"linear\" }})", s.head.name())));
        }
        Ok(())
    }
}

/// The dotted names of the fields whose values differ between two configs (`stages.0.lr.base`),
/// for a message that says what changed.
pub fn changed_fields(a: &ExperimentConfig, b: &ExperimentConfig) -> Vec<String> {
    fn flatten(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, toml::Value>) {
        let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => t.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
            toml::Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| flatten(&key(&i.to_string()), v, out)),
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let tree = |c: &ExperimentConfig| {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(v) = toml::Value::try_from(c) {
            flatten("", &v, &mut out);
        }
        out
    };
    let (ta, tb) = (tree(a), tree(b));
    let mut keys: Vec<String> = ta.keys().chain(tb.keys()).filter(|k| ta.get(*k) != tb.get(*k)).cloned().collect();
    keys.dedup();
    if keys.is_empty() && a != b {
        keys.push("(a value that reads back differently)".into());
    }
    keys
}
