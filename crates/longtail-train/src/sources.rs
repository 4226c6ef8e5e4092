//! The runs a run starts from (stage I of a two-stage method, FFN's two networks), resolved
//! before any training loop starts: a finished run folder is used as it is, a config is trained
//! first into `<run>/sources/<label>` (its own sources first, depth first).

use std::path::{Path, PathBuf};

use crate::config::{ExperimentConfig, RunSource};
use crate::error::{Result, TrainError};
use crate::run_dir::RunDir;

/// How deep sources may nest (a config that names itself would otherwise never end).
pub const MAX_DEPTH: usize = 8;

/// A source run trained before the run that needs it.
#[derive(Debug, Clone)]
pub struct SourceRun {
    pub config: ExperimentConfig,
    pub dir: PathBuf,
}

/// The sources of a config with their labels (the sub-folder names under `sources/`).
pub fn sources_of(config: &ExperimentConfig) -> Vec<(&'static str, &RunSource)> {
    let mut out = Vec::new();
    if let Some(f) = &config.fusion {
        out.push(("first", &f.first));
        out.push(("second", &f.second));
    }
    if let Some(s) = &config.init_from {
        out.push(("init", s));
    }
    out
}

/// Where the run of a source is: the folder it names, or `<run>/sources/<label>`.
pub fn source_dir(source: &RunSource, dir: &RunDir, label: &str) -> PathBuf {
    match source {
        RunSource::Run { run } => run.clone(),
        RunSource::Config { .. } => dir.sources().join(label),
        // not a run: the file itself (callers load it with `engine::pretrained_network`)
        RunSource::Weights(w) => w.weights.clone(),
    }
}

/// Every source of `config` (run into `dir`) that has to be trained from a config, its own
/// sources before it. Relative config paths of `config` are resolved against `base`, those of
/// the sources' own configs against the working folder.
pub fn plan(config: &ExperimentConfig, dir: &Path, base: &Path) -> Result<Vec<SourceRun>> {
    let mut out = Vec::new();
    plan_into(config, &RunDir::new(dir), base, 0, &mut out)?;
    Ok(out)
}

fn plan_into(config: &ExperimentConfig, dir: &RunDir, base: &Path, depth: usize, out: &mut Vec<SourceRun>) -> Result<()> {
    for (label, source) in sources_of(config) {
        let RunSource::Config { config: path } = source else { continue };
        if depth >= MAX_DEPTH {
            return Err(TrainError::Run(format!("stage-I sources nest deeper than {MAX_DEPTH} runs at {}; does a config name itself?", path.display())));
        }
        let path = if path.is_absolute() { path.clone() } else { base.join(path) };
        let source_config = ExperimentConfig::load(&path, &[])?;
        let sub = dir.sources().join(label);
        plan_into(&source_config, &RunDir::new(&sub), Path::new("."), depth + 1, out)?;
        out.push(SourceRun { config: source_config, dir: sub });
    }
    Ok(())
}
