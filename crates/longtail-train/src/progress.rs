//! Terminal progress: epoch, step, loss, accuracy, images/s and ETA, printed at most every few
//! seconds (and always at the end of an epoch), mirrored into the run's log.

use std::io::Write;
use std::time::{Duration, Instant};

/// Prints progress lines for one stage.
pub struct Progress {
    pub quiet: bool,
    start: Instant,
    last: Instant,
    interval: Duration,
    /// Images of the whole stage still to go, for the ETA.
    total_images: usize,
    done_images: usize,
}

/// Formats seconds as `1h02m03s` / `2m03s` / `3s`.
pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

impl Progress {
    pub fn new(quiet: bool, total_images: usize) -> Self {
        let now = Instant::now();
        Self { quiet, start: now, last: now - Duration::from_secs(60), interval: Duration::from_secs(5), total_images, done_images: 0 }
    }

    /// Counts `images` as processed.
    pub fn advance(&mut self, images: usize) {
        self.done_images += images;
    }

    /// Whether a line is due.
    pub fn due(&self) -> bool {
        !self.quiet && self.last.elapsed() >= self.interval
    }

    /// Images per second since the stage started in this process.
    pub fn rate(&self) -> f64 {
        self.done_images as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }

    /// The remaining time at the current rate.
    pub fn eta(&self) -> f64 {
        let rate = self.rate();
        if rate > 0.0 { self.total_images.saturating_sub(self.done_images) as f64 / rate } else { 0.0 }
    }

    /// Prints a line (to stderr) and returns it.
    pub fn print(&mut self, line: &str) -> String {
        self.last = Instant::now();
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
        line.to_string()
    }
}

/// Where a progress line is in the run.
pub struct Position<'a> {
    pub stage: &'a str,
    /// 0-based stage index, of `stages`.
    pub index: usize,
    pub stages: usize,
    /// 0-based epoch of the stage, of `epochs`.
    pub epoch: usize,
    pub epochs: usize,
}

impl Position<'_> {
    fn prefix(&self) -> String {
        format!("[{} {}/{}] epoch {}/{}", self.stage, self.index + 1, self.stages, self.epoch + 1, self.epochs)
    }
}

/// The running numbers of an epoch so far.
pub struct StepNumbers {
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub lr: f64,
    pub rate: f64,
    pub eta: f64,
}

/// A line during an epoch.
pub fn step_line(at: &Position, n: &StepNumbers) -> String {
    format!(
        "{} step {}/{} | loss {:.4} | acc {:.2}% | lr {:.5} | {:.1} img/s | ETA {}",
        at.prefix(),
        n.step + 1,
        n.steps,
        n.loss,
        n.accuracy,
        n.lr,
        n.rate,
        format_duration(n.eta)
    )
}

/// The line at an epoch's end: its training numbers, the fp16 loss scale, the test accuracy and
/// the many / medium / few-shot accuracies when it was evaluated.
pub fn epoch_line(at: &Position, record: &crate::run_dir::EpochRecord, scaler: Option<&crate::loss_scale::LossScaler>) -> String {
    let mut line = format!(
        "{} done in {} | loss {:.4} | train acc {:.2}% | {:.1} img/s",
        at.prefix(),
        format_duration(record.seconds),
        record.train_loss,
        record.train_accuracy,
        record.images_per_second
    );
    if let Some(s) = scaler {
        line.push_str(&format!(" | loss scale {} ({} steps skipped)", s.scale, s.skipped));
    }
    if let Some(t) = &record.test {
        line.push_str(&format!(" | test acc {:.2}%", t.accuracy));
        let names = ["many", "med", "few"];
        for (g, v) in t.shots.iter().enumerate() {
            if let Some(v) = v {
                line.push_str(&format!(" {} {:.1}", names[g], v));
            }
        }
    }
    line
}
