//! Terminal progress: epoch, step, loss, accuracy, images/s and ETA, mirrored into the run's log.
//!
//! On a terminal a live bar (indicatif) carries the running numbers of the epoch, refreshed every
//! second, and the epoch lines print above it; in logs and pipes (or with `LONGTAIL_PROGRESS=lines`)
//! the step lines are printed at most every few seconds, as plain lines.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Prints progress lines for one stage.
pub struct Progress {
    pub quiet: bool,
    start: Instant,
    last: Instant,
    interval: Duration,
    /// Images of the whole stage still to go, for the ETA.
    total_images: usize,
    done_images: usize,
    /// The live bar on a terminal.
    bar: Option<ProgressBar>,
}

/// Whether long work draws a live bar: stderr is a terminal and `LONGTAIL_PROGRESS` is not `lines`.
pub fn draws_bar() -> bool {
    std::io::stderr().is_terminal() && std::env::var("LONGTAIL_PROGRESS").map_or(true, |v| v != "lines")
}

/// A bar over `total` units (`B`: bytes) drawn to `target`, its message the latest progress line.
pub fn bar(total: u64, unit: &str, target: ProgressDrawTarget) -> ProgressBar {
    let template = if unit == "B" {
        "{msg}\n[{bar:40}] {percent:>3}% {bytes}/{total_bytes} | {bytes_per_sec} | ETA {eta}".to_string()
    } else {
        format!("{{msg}}\n[{{bar:40}}] {{percent:>3}}% {{human_pos}}/{{human_len}} {unit} | {{per_sec}} | ETA {{eta}}")
    };
    let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
    ProgressBar::with_draw_target(Some(total), target).with_style(style)
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
        let target = (!quiet && draws_bar()).then(ProgressDrawTarget::stderr);
        Self::with_target(quiet, total_images, target)
    }

    /// A progress with a bar drawn to `target` (none: plain lines).
    pub fn with_target(quiet: bool, total_images: usize, target: Option<ProgressDrawTarget>) -> Self {
        let now = Instant::now();
        let bar = target.map(|t| bar(total_images as u64, "img", t));
        // the bar's message is refreshed every second (each refresh reads the loss off the device)
        let interval = Duration::from_secs(if bar.is_some() { 1 } else { 5 });
        Self { quiet, start: now, last: now - Duration::from_secs(60), interval, total_images, done_images: 0, bar }
    }

    /// Counts `images` as processed.
    pub fn advance(&mut self, images: usize) {
        self.done_images += images;
        if let Some(b) = &self.bar {
            b.inc(images as u64);
        }
    }

    /// Shows a step line: the bar's message on a terminal, a printed line otherwise.
    pub fn step(&mut self, line: &str) {
        match &self.bar {
            Some(b) => {
                self.last = Instant::now();
                b.set_message(line.to_string());
            }
            None => {
                self.print(line);
            }
        }
    }

    /// The bar's current message and position (tests).
    pub fn bar_state(&self) -> Option<(String, u64)> {
        self.bar.as_ref().map(|b| (b.message(), b.position()))
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

    /// Prints a line (to stderr, above the bar if there is one) and returns it.
    pub fn print(&mut self, line: &str) -> String {
        self.last = Instant::now();
        if let Some(b) = &self.bar {
            b.println(line);
        } else if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
        line.to_string()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_carries_the_step_line_and_counts_images() {
        let mut p = Progress::with_target(false, 1000, Some(ProgressDrawTarget::hidden()));
        p.advance(128);
        p.advance(128);
        p.step("[ce 1/1] epoch 1/2 step 2/8 | loss 2.3026");
        assert_eq!(p.bar_state(), Some(("[ce 1/1] epoch 1/2 step 2/8 | loss 2.3026".to_string(), 256)));
        assert_eq!(p.print("epoch done"), "epoch done");
    }

    #[test]
    fn without_a_terminal_there_is_no_bar() {
        let p = Progress::with_target(false, 10, None);
        assert_eq!(p.bar_state(), None);
        // test harnesses capture stderr: not a terminal
        if !std::io::stderr().is_terminal() {
            assert_eq!(Progress::new(false, 10).bar_state(), None);
        }
    }
}
