//! `longtail data inspect`: class histogram and many / medium / few membership.

use std::fmt::Write;

use longtail_data::{Splits, rank_thirds, shot_groups};

/// A text report of the training split's class counts and groups.
pub fn describe(splits: &Splits, many_above: usize, few_below: usize) -> String {
    let train = &splits.train;
    let counts = train.class_counts();
    let test = splits.test.class_counts();
    let max = *counts.iter().max().unwrap_or(&1) as f64;
    let shots = shot_groups(&counts, many_above, few_below);
    let thirds = rank_thirds(&counts);
    let shot_of = shots.level_of_class(counts.len());
    let third_of = thirds.level_of_class(counts.len());
    let total: usize = counts.iter().sum();
    let min = counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} classes, {} training images, {} test images, imbalance factor {:.1} (largest/smallest class)",
        train.name,
        counts.len(),
        total,
        splits.test.len(),
        max / min as f64
    );
    let width = train.class_names.iter().map(|n| n.len()).max().unwrap_or(5).clamp(5, 28);
    let _ = writeln!(out, "\n{:>5}  {:<width$}  {:>7}  {:>6}  {:<6}  {:<12}  histogram", "class", "name", "train", "test", "shots", "rank third");
    let shot_names = shots.names();
    let third_names = thirds.names();
    for (c, &n) in counts.iter().enumerate() {
        let bar = "#".repeat(((n as f64 / max) * 40.0).ceil() as usize);
        let name: String = train.class_names[c].chars().take(width).collect();
        let _ = writeln!(out, "{c:>5}  {name:<width$}  {n:>7}  {:>6}  {:<6}  {:<12}  {bar}", test[c], shot_names[shot_of[c]], third_names[third_of[c]]);
    }
    let _ = writeln!(out, "\nshot groups (many > {many_above}, medium {few_below}-{many_above}, few < {few_below} training images):");
    for (name, classes) in shot_names.iter().zip(shots.groups()) {
        let _ = writeln!(out, "  {name:<6} {:>3} classes {:?}", classes.len(), classes);
    }
    if shots.has_empty_group() {
        let _ = writeln!(out, "a shot group is empty on this data; reports also give frequency-rank thirds:");
        for (name, classes) in third_names.iter().zip(thirds.groups()) {
            let _ = writeln!(out, "  {name:<12} {:>3} classes {:?}", classes.len(), classes);
        }
    }
    if let Some(h) = &train.hierarchy {
        let _ = writeln!(out, "\nhierarchy: {} coarse classes", h.num_coarse());
        for (g, children) in h.children().iter().enumerate() {
            let names: Vec<&str> = children.iter().map(|&c| train.class_names[c].as_str()).collect();
            let _ = writeln!(out, "  {:<16} {}", h.coarse_names[g], names.join(", "));
        }
    }
    out
}
