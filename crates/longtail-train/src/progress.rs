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
