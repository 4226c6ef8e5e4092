//! The run folder: everything a run writes, and what `--resume` and `longtail eval` read back.
//!
//! ```text
//! <run>/config.toml         resolved experiment config
//! <run>/state.json          where the run is (stage, next epoch, best result)
//! <run>/metrics.csv|json    one record per epoch
//! <run>/final.json          final evaluation (all protocol metrics) and summary
//! <run>/log.txt             progress lines
//! <run>/checkpoints/        stage<i>-epoch<e>.bpk and .optim.bpk (the last committed epoch, named
//!                           with its checksums in state.json), stage<i>-last.bpk (the network
//!                           stage i ended with), best.bpk, final.bpk
//! <run>/sources/            stage-I runs trained for this one (FFN, stage-II configs)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::metrics::Metrics;

/// Test-set summary of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub accuracy: f64,
    pub shots: [Option<f64>; 3],
    pub thirds: [Option<f64>; 3],
    pub ece: f64,
    #[serde(default)]
    pub tie: Option<f64>,
    #[serde(default)]
    pub f_h: Option<f64>,
}

impl EvalSummary {
    pub fn of(m: &Metrics) -> Self {
        Self {
            accuracy: m.accuracy,
            shots: m.shots.accuracy,
            thirds: m.thirds.accuracy,
            ece: m.ece,
            tie: m.hierarchical.as_ref().map(|h| h.tie),
            f_h: m.hierarchical.as_ref().map(|h| h.f_h),
        }
    }
}

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub stage: usize,
    pub stage_name: String,
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    pub test: Option<EvalSummary>,
}

/// The best evaluation so far (test-set selection, reported beside the final result as the
/// papers' code does; the final epoch is the primary number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub accuracy: f64,
    pub stage: usize,
    pub epoch: usize,
}

/// Resume state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunState {
    /// Stage in progress (or the number of stages when finished).
    pub stage: usize,
    /// First epoch of `stage` still to run.
    pub next_epoch: usize,
    pub finished: bool,
    pub best: Option<Best>,
    pub history: Vec<EpochRecord>,
    /// fp16 runs: the loss scaler's state at the last epoch end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<crate::loss_scale::LossScaler>,
    /// The network (and optimizer) of the last commit point, with their checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointRef>,
    /// The final network's checksum, once the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_checksum: Option<String>,
    /// The config the run started with (a resume must use the same one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_config: Option<String>,
}

/// Checkpoint files of a commit point (names under `checkpoints/`) and their FNV-1a checksums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRef {
    pub stage: usize,
    /// The epoch it ends (none: a stage that trains no epoch).
    pub epoch: Option<usize>,
    pub weights: String,
    pub weights_checksum: String,
    #[serde(default)]
    pub optimizer: Option<String>,
    #[serde(default)]
    pub optimizer_checksum: Option<String>,
}

/// The final evaluation and summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReport {
    pub name: String,
    pub method: String,
    pub device: String,
    pub train_counts: Vec<usize>,
    pub metrics: Metrics,
    pub best: Option<Best>,
    pub total_seconds: f64,
}

/// Paths and writers of one run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

/// Writes `bytes` to `path` through a `.tmp` file that is flushed to disk and renamed into place,
/// then flushes the folder: after a crash the file holds the old or the new bytes, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| TrainError::io("write", &tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| TrainError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io("write", path, e))?;
    sync_dir(path)
}

/// `<path>.tmp` (the extension appended, not replaced).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Flushes a written file to disk.
pub fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| TrainError::io("write", path, e))
}

/// Flushes the folder holding `path` (its renames and new names).
pub fn sync_dir(path: &Path) -> Result<()> {
    match path.parent() {
        // a folder cannot be opened for sync on every platform; where it can, failing is an error
        Some(dir) => match std::fs::File::open(dir) {
            Ok(d) => d
                .sync_all()
                .or_else(|e| if e.kind() == std::io::ErrorKind::InvalidInput { Ok(()) } else { Err(e) })
                .map_err(|e| TrainError::io("write", dir, e)),
            Err(_) => Ok(()),
        },
        None => Ok(()),
    }
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn final_path(&self) -> PathBuf {
        self.root.join("final.json")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn stage_last(&self, stage: usize) -> PathBuf {
        self.checkpoints().join(format!("stage{stage}-last.bpk"))
    }
    pub fn stage_optim(&self, stage: usize) -> PathBuf {
        self.checkpoints().join(format!("stage{stage}-last.optim.bpk"))
    }
    pub fn best_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("best.bpk")
    }
    pub fn final_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("final.bpk")
    }
    pub fn sources(&self) -> PathBuf {
        self.root.join("sources")
    }
    /// A checkpoint file named in the state.
    pub fn checkpoint_file(&self, name: &str) -> PathBuf {
        self.checkpoints().join(name)
    }

    /// Removes the `.tmp` files a killed run left (in the folder and under `checkpoints/`).
    pub fn remove_leftovers(&self) -> Result<()> {
        for dir in [self.root.clone(), self.checkpoints()] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "tmp") && path.is_file() {
                    std::fs::remove_file(&path).map_err(|e| TrainError::io("remove", &path, e))?;
                }
            }
        }
        Ok(())
    }

    /// Creates the folder for a new run (an existing finished or started run is not overwritten).
    pub fn create(&self) -> Result<()> {
        if self.state_path().exists() {
            return Err(TrainError::Run(format!(
                "{} already holds a run; continue it with --resume {}, or pick another --out",
                self.root.display(),
                self.root.display()
            )));
        }
        std::fs::create_dir_all(self.checkpoints()).map_err(|e| TrainError::io("create", self.checkpoints(), e))
    }

    pub fn read_state(&self) -> Result<RunState> {
        let path = self.state_path();
        if !path.exists() && self.config().exists() {
            return Err(TrainError::Run(format!(
                "{} has a config.toml but no state.json: the run stopped before its first commit point (a version before 2026-12 wrote none until the first epoch ended); start it again with its original command, into a new --out or after removing the folder",
                self.root.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io("read", &path, format!("{e} (is this a run folder?)")))?;
        serde_json::from_str(&text).map_err(|e| TrainError::io("parse", &path, e))
    }

    /// Writes the state and the per-epoch metrics files that follow from it.
    pub fn write_state(&self, state: &RunState) -> Result<()> {
        write_atomic(&self.state_path(), serde_json::to_string_pretty(state).unwrap().as_bytes())?;
        write_atomic(&self.root.join("metrics.json"), serde_json::to_string_pretty(&state.history).unwrap().as_bytes())?;
        write_atomic(&self.root.join("metrics.csv"), metrics_csv(&state.history).as_bytes())
    }

    pub fn write_final(&self, report: &FinalReport) -> Result<()> {
        write_atomic(&self.final_path(), serde_json::to_string_pretty(report).unwrap().as_bytes())
    }

    pub fn read_final(&self) -> Result<FinalReport> {
        let path = self.final_path();
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io("read", &path, format!("{e} (has the run finished?)")))?;
        serde_json::from_str(&text).map_err(|e| TrainError::io("parse", &path, e))
    }

    /// Appends a line to `log.txt`.
    pub fn log(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(self.root.join("log.txt")) {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_default()
}

/// CSV with one row per epoch.
pub fn metrics_csv(history: &[EpochRecord]) -> String {
    let mut out = String::from(
        "stage,stage_name,epoch,lr,train_loss,train_accuracy,seconds,images_per_second,test_accuracy,many,medium,few,head_third,middle_third,tail_third,ece,tie,f_h\n",
    );
    for r in history {
        let t = r.test.as_ref();
        let g = |f: fn(&EvalSummary) -> Option<f64>| opt(t.and_then(f));
        out.push_str(&format!(
            "{},{},{},{:.6},{:.5},{:.3},{:.2},{:.1},{},{},{},{},{},{},{},{},{},{}\n",
            r.stage,
            r.stage_name,
            r.epoch,
            r.lr,
            r.train_loss,
            r.train_accuracy,
            r.seconds,
            r.images_per_second,
            g(|t| Some(t.accuracy)),
            g(|t| t.shots[0]),
            g(|t| t.shots[1]),
            g(|t| t.shots[2]),
            g(|t| t.thirds[0]),
            g(|t| t.thirds[1]),
            g(|t| t.thirds[2]),
            g(|t| Some(t.ece)),
            g(|t| t.tie),
            g(|t| t.f_h),
        ));
    }
    out
}
