//! The checkpointer over a run folder: every write a resume reads back goes through here, at the
//! run's commit points.
//!
//! A commit point writes new files under new names (`stage<i>-epoch<e>.bpk` and its optimizer),
//! flushes them to disk, then replaces `state.json` atomically with a state that names them and
//! their checksums, and only then removes the files of the previous commit point. A crash or a
//! failed write anywhere leaves a `state.json` that names a complete, matching set of files: the
//! run resumes to a state an uninterrupted run passes through. Commit points: the run's creation,
//! each epoch's end, a post-hoc stage's network, each stage's end, and the final report (final
//! network, `final.json`, then the finished state). Loading checks the checksums, so a flipped
//! byte or a checkpoint copied in from another run is an error, not a silently different model.

use std::path::Path;
use std::sync::Mutex;

use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use longtail_models::{Network, weights};

use crate::error::{Result, TrainError};
use crate::run_dir::{CheckpointRef, FinalReport, RunDir, RunState, sync_dir, sync_file, tmp_path};

/// FNV-1a (64-bit) of a file's bytes, as 16 hex digits.
pub fn checksum(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io("read", path, e))?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{h:016x}"))
}

fn verify(path: &Path, want: &str) -> Result<()> {
    let got = checksum(path)?;
    if got != want {
        return Err(TrainError::Run(format!(
            "{} does not match the checksum the run recorded ({got}, recorded {want}): it was changed or replaced after it was written; restore it or start the run again",
            path.display()
        )));
    }
    Ok(())
}

/// Test hook standing in for a crash: [`arm`] makes the `n`-th pass through a named point fail
/// with an error before anything after it is written.
pub mod failpoint {
    use super::*;

    static ARMED: Mutex<Option<(String, usize)>> = Mutex::new(None);

    /// Fails the `nth` (1-based) pass through `point` from now on.
    pub fn arm(point: &str, nth: usize) {
        *ARMED.lock().unwrap_or_else(|e| e.into_inner()) = Some((point.to_string(), nth));
    }

    pub fn disarm() {
        *ARMED.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Every commit point's name, in the order a run passes them.
    pub const POINTS: &[&str] = &[
        "create",
        "epoch:weights",
        "epoch:optimizer",
        "epoch:state",
        "best",
        "stage:network",
        "stage:network-state",
        "stage:state",
        "final:weights",
        "final:report",
        "final:state",
    ];

    pub(crate) fn hit(point: &str) -> Result<()> {
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((name, n)) = armed.as_mut()
            && name == point
        {
            *n -= 1;
            if *n == 0 {
                *armed = None;
                return Err(TrainError::Run(format!("failpoint {point}")));
            }
        }
        Ok(())
    }
}

use failpoint::hit;

/// Saves `network` to `path` through a flushed `.tmp` file renamed into place.
fn save_network(network: &Network, path: &Path) -> Result<()> {
    let tmp = tmp_path(path);
    weights::save(network, &tmp)?;
    sync_file(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io("write", path, e))?;
    sync_dir(path)
}

/// Reads and writes a run's checkpoints and state.
pub struct Checkpointer<'a> {
    pub dir: &'a RunDir,
}

impl Checkpointer<'_> {
    /// The first commit point: the state of a run that has not trained yet (so a run killed in
    /// its first epoch resumes).
    pub fn commit_start(&self, state: &RunState) -> Result<()> {
        hit("create")?;
        self.dir.write_state(state)
    }

    /// The network (and optimizer) of the last commit point, if it belongs to stage `stage`,
    /// checksums checked. Runs written before checkpoints were named in the state fall back to
    /// `stage<i>-last.bpk`.
    fn load_ref(&self, state: &RunState, stage: usize) -> Result<(std::path::PathBuf, Option<std::path::PathBuf>)> {
        match &state.checkpoint {
            Some(r) if r.stage == stage => {
                let w = self.dir.checkpoint_file(&r.weights);
                verify(&w, &r.weights_checksum)?;
                let o = match (&r.optimizer, &r.optimizer_checksum) {
                    (Some(o), Some(sum)) => {
                        let o = self.dir.checkpoint_file(o);
                        verify(&o, sum)?;
                        Some(o)
                    }
                    _ => None,
                };
                Ok((w, o))
            }
            Some(r) => Err(TrainError::Run(format!(
                "{}: the state's last checkpoint is of stage {} but stage {stage} is resumed; the run folder is inconsistent",
                self.dir.root.display(),
                r.stage
            ))),
            None => Ok((self.dir.stage_last(stage), Some(self.dir.stage_optim(stage)))),
        }
    }

    /// The network and optimizer where stage `stage`'s last committed epoch left them, the
    /// optimizer's state on `device` (the run's: Burn's own `load` would use the default device,
    /// the first GPU backend compiled in; vendor/burn-optim/PATCHES.md).
    pub fn load_epoch(&self, state: &RunState, network: Network, optim: ModuleOptimizer, stage: usize, device: &Device) -> Result<(Network, ModuleOptimizer)> {
        let (w, o) = self.load_ref(state, stage)?;
        let o = o.ok_or_else(|| TrainError::Run(format!("{}: the last checkpoint of stage {stage} has no optimizer state", self.dir.root.display())))?;
        let network = weights::load(network, &w)?;
        let optim = optim.load_on(&o, &device.clone().without_autodiff()).map_err(|e| TrainError::io("read", &o, e))?;
        Ok((network, optim))
    }

    /// The network a finished stage left.
    pub fn load_stage_end(&self, state: &RunState, network: Network, stage: usize) -> Result<Network> {
        let (w, _) = self.load_ref(state, stage)?;
        Ok(weights::load(network, &w)?)
    }

    /// Whether a finished stage left its network.
    pub fn has_stage_end(&self, state: &RunState, stage: usize) -> bool {
        match &state.checkpoint {
            Some(r) => r.stage == stage,
            None => self.dir.stage_last(stage).exists(),
        }
    }

    /// Records `next` as the last commit point: the state that names it replaces the old one,
    /// then the previous point's files are removed.
    fn commit(&self, state: &mut RunState, next: CheckpointRef, point: &str) -> Result<()> {
        let previous = state.checkpoint.replace(next);
        self.dir.write_state(state)?;
        hit(point)?;
        if let Some(p) = previous {
            let current = state.checkpoint.as_ref();
            for name in std::iter::once(&p.weights).chain(p.optimizer.as_ref()) {
                if current.is_none_or(|c| &c.weights != name && c.optimizer.as_ref() != Some(name)) {
                    let _ = std::fs::remove_file(self.dir.checkpoint_file(name));
                }
            }
        }
        Ok(())
    }

    /// The network of a stage that trains no epoch (a post-hoc classifier), committed.
    pub fn commit_stage_network(&self, network: &Network, stage: usize, state: &mut RunState) -> Result<()> {
        let name = format!("stage{stage}-posthoc.bpk");
        let path = self.dir.checkpoint_file(&name);
        save_network(network, &path)?;
        hit("stage:network")?;
        let next = CheckpointRef { stage, epoch: None, weights: name, weights_checksum: checksum(&path)?, optimizer: None, optimizer_checksum: None };
        self.commit(state, next, "stage:network-state")
    }

    /// A new best test accuracy's network.
    pub fn save_best(&self, network: &Network) -> Result<()> {
        save_network(network, &self.dir.best_checkpoint())?;
        hit("best")
    }

    /// An epoch's commit point: the network and the optimizer under new names, then the state
    /// (`state.next_epoch` already past the epoch) that names them.
    pub fn commit_epoch(&self, network: &Network, optim: &ModuleOptimizer, stage: usize, state: &mut RunState) -> Result<()> {
        let epoch = state.next_epoch.saturating_sub(1);
        let stem = format!("stage{stage}-epoch{epoch}");
        let (w, o) = (format!("{stem}.bpk"), format!("{stem}.optim.bpk"));
        let (wp, op) = (self.dir.checkpoint_file(&w), self.dir.checkpoint_file(&o));
        save_network(network, &wp)?;
        hit("epoch:weights")?;
        let tmp = tmp_path(&op);
        optim.save(&tmp).map_err(|e| TrainError::io("write", &tmp, e))?;
        sync_file(&tmp)?;
        std::fs::rename(&tmp, &op).map_err(|e| TrainError::io("write", &op, e))?;
        sync_dir(&op)?;
        hit("epoch:optimizer")?;
        let next = CheckpointRef {
            stage,
            epoch: Some(epoch),
            weights: w,
            weights_checksum: checksum(&wp)?,
            optimizer: Some(o),
            optimizer_checksum: Some(checksum(&op)?),
        };
        self.commit(state, next, "epoch:state")
    }

    /// A stage's end: the network it ended with is kept as `stage<i>-last.bpk` (a copy of the
    /// last commit point's, for users and reports; resume reads the commit point), then the state.
    pub fn commit_stage_end(&self, stage: usize, state: &RunState) -> Result<()> {
        if let Some(r) = state.checkpoint.as_ref().filter(|r| r.stage == stage) {
            let (from, to) = (self.dir.checkpoint_file(&r.weights), self.dir.stage_last(stage));
            let tmp = tmp_path(&to);
            std::fs::copy(&from, &tmp).map_err(|e| TrainError::io("write", &tmp, e))?;
            sync_file(&tmp)?;
            std::fs::rename(&tmp, &to).map_err(|e| TrainError::io("write", &to, e))?;
        }
        hit("stage:state")?;
        self.dir.write_state(state)
    }

    /// The state alone (a pause).
    pub fn commit_state(&self, state: &RunState) -> Result<()> {
        self.dir.write_state(state)
    }

    /// The final commit point: the final network, the report, then the finished state.
    pub fn commit_final(&self, network: &Network, report: &FinalReport, state: &mut RunState) -> Result<()> {
        let path = self.dir.final_checkpoint();
        save_network(network, &path)?;
        hit("final:weights")?;
        self.dir.write_final(report)?;
        hit("final:report")?;
        state.final_checksum = Some(checksum(&path)?);
        state.finished = true;
        self.dir.write_state(state)?;
        hit("final:state")
    }
}
