//! `longtail compare`: one table across runs.

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;
use longtail_train::{FinalReport, RunDir};

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into())
}

/// Reads `final.json` of each run.
pub fn load_reports(runs: &[impl AsRef<Path>]) -> Result<Vec<FinalReport>> {
    runs.iter().map(|r| Ok(RunDir::new(r.as_ref()).read_final()?)).collect()
}

/// A Markdown table: overall, shot groups, rank thirds, ECE, TIE / F_H where present, and the
/// three rarest classes.
pub fn table(reports: &[FinalReport]) -> String {
    let mut out = String::new();
    let shots = reports.first().map(|r| r.metrics.shots.names.clone()).unwrap_or_default();
    let thirds = reports.first().map(|r| r.metrics.thirds.names.clone()).unwrap_or_default();
    let hier = reports.iter().any(|r| r.metrics.hierarchical.is_some());
    let rarest: Vec<String> =
        reports.first().map(|r| r.metrics.rarest.iter().map(|c| format!("{} (n={})", c.name, c.train_count)).collect()).unwrap_or_default();
    let mut header = vec!["run".to_string(), "method".into(), "overall".into()];
    header.extend(shots.iter().map(|n| n.to_string()));
    header.extend(thirds.iter().cloned());
    header.push("ECE".into());
    if hier {
        header.push("TIE".into());
        header.push("F_H".into());
    }
    header.extend(rarest.iter().cloned());
    header.push("best (stage/epoch)".into());
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for r in reports {
        let m = &r.metrics;
        let mut row = vec![r.name.clone(), r.method.clone(), format!("{:.2}", m.accuracy)];
        row.extend(m.shots.accuracy.iter().map(|v| pct(*v)));
        row.extend(m.thirds.accuracy.iter().map(|v| pct(*v)));
        row.push(format!("{:.2}", m.ece));
        if hier {
            row.push(m.hierarchical.as_ref().map(|h| format!("{:.4}", h.tie)).unwrap_or_else(|| "-".into()));
            row.push(m.hierarchical.as_ref().map(|h| format!("{:.2}", h.f_h)).unwrap_or_else(|| "-".into()));
        }
        row.extend(m.rarest.iter().map(|c| format!("{:.1}", c.accuracy)));
        row.push(r.best.as_ref().map(|b| format!("{:.2} ({}/{})", b.accuracy, b.stage, b.epoch + 1)).unwrap_or_else(|| "-".into()));
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}
