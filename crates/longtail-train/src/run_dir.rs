//! The run folder: everything a run writes, and what `--resume` and `longtail eval` read back.
//!
//! ```text
//! <run>/config.toml         resolved experiment config
//! <run>/state.json          where the run is (stage, next epoch, best result)
//! <run>/metrics.csv|json    one record per epoch
//! <run>/final.json          final evaluation (all protocol metrics) and summary
//! <run>/log.txt             progress lines
//! <run>/checkpoints/        stage<i>-last.bpk, stage<i>-last.optim.bpk, best.bpk, final.bpk
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

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| TrainError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io("write", path, e))
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
