//! The checkpointer over a run folder: every write a resume reads back goes through here, at the
//! run's commit points (an epoch's end, a stage's end, the final report).

use burn::optim::ModuleOptimizer;
use longtail_models::{Network, weights};

use crate::error::{Result, TrainError};
use crate::run_dir::{FinalReport, RunDir, RunState};

/// Reads and writes a run's checkpoints and state.
pub struct Checkpointer<'a> {
    pub dir: &'a RunDir,
}

impl Checkpointer<'_> {
    /// The network and optimizer where stage `stage`'s last finished epoch left them.
    pub fn load_epoch(&self, network: Network, optim: ModuleOptimizer, stage: usize) -> Result<(Network, ModuleOptimizer)> {
        let network = weights::load(network, &self.dir.stage_last(stage))?;
        let optim = optim.load(self.dir.stage_optim(stage)).map_err(|e| TrainError::io("read", self.dir.stage_optim(stage), e))?;
        Ok((network, optim))
    }

    /// The network a finished stage left.
    pub fn load_stage_end(&self, network: Network, stage: usize) -> Result<Network> {
        Ok(weights::load(network, &self.dir.stage_last(stage))?)
    }

    /// Whether a finished stage left its network.
    pub fn has_stage_end(&self, stage: usize) -> bool {
        self.dir.stage_last(stage).exists()
    }

    /// The network of a stage that trains no epoch (a post-hoc classifier).
    pub fn save_stage_network(&self, network: &Network, stage: usize) -> Result<()> {
        Ok(weights::save(network, &self.dir.stage_last(stage))?)
    }

    /// A new best test accuracy's network.
    pub fn save_best(&self, network: &Network) -> Result<()> {
        Ok(weights::save(network, &self.dir.best_checkpoint())?)
    }

    /// An epoch's commit point: the network, the optimizer, then the state that records the epoch.
    pub fn commit_epoch(&self, network: &Network, optim: &ModuleOptimizer, stage: usize, state: &RunState) -> Result<()> {
        weights::save(network, &self.dir.stage_last(stage))?;
        optim.save(self.dir.stage_optim(stage)).map_err(|e| TrainError::io("write", self.dir.stage_optim(stage), e))?;
        self.dir.write_state(state)
    }

    /// The state alone (a stage's end, a pause).
    pub fn commit_state(&self, state: &RunState) -> Result<()> {
        self.dir.write_state(state)
    }

    /// The final commit point: the final network, the report, then the finished state.
    pub fn commit_final(&self, network: &Network, report: &FinalReport, state: &RunState) -> Result<()> {
        weights::save(network, &self.dir.final_checkpoint())?;
        self.dir.write_final(report)?;
        self.dir.write_state(state)
    }
}
