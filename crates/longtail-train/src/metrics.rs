//! The evaluation protocol shared by every method: top-1 accuracy, per-class accuracy,
//! many / medium / few-shot accuracy (and frequency-rank thirds where a shot group is empty),
//! expected calibration error with reliability-diagram data, the confusion matrix and, for data
//! with a class hierarchy, the tree-induced error (TIE) and hierarchical F1 (F_H) of the MGKT paper.

use longtail_data::{ClassGroups, Hierarchy, rank_thirds, shot_groups};
use serde::{Deserialize, Serialize};

/// Predictions on an evaluation split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    pub labels: Vec<usize>,
    pub predicted: Vec<usize>,
    /// Softmax probability of the predicted class.
    pub confidence: Vec<f32>,
    /// Each expert's own predictions (a multi-expert model; empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experts: Vec<Vec<usize>>,
    /// What a model with expert routers (RIDE-EA) decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingPredictions>,
}

/// A routed model's decisions on every sample, enough to re-route at any threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingPredictions {
    /// `prefix[k][i]`: the prediction of the mean of experts `0..=k` on sample `i`.
    pub prefix: Vec<Vec<usize>>,
    /// `probs[r][i]`: router `r`'s `sigmoid` on sample `i` (asked or not).
    pub probs: Vec<Vec<f32>>,
    /// The model's threshold (a sample goes on while `probs > threshold`).
    pub threshold: f64,
    /// Multiply-accumulates per image of each part, where the model can count them.
    pub macs: Option<longtail_models::macs::ExpertMacs>,
}

impl RoutingPredictions {
    /// How many experts sample `i` uses at `threshold`.
    pub fn used(&self, i: usize, threshold: f64) -> usize {
        1 + self.probs.iter().take_while(|p| f64::from(p[i]) > threshold).count()
    }
}

/// The computation-versus-accuracy numbers of a routed model at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingPoint {
    pub threshold: f64,
    /// Top-1 accuracy (%).
    pub accuracy: f64,
    /// Experts per sample, on average.
    pub mean_experts: f64,
    /// Multiply-accumulates per image, on average (GMACs).
    pub gmacs: Option<f64>,
}

/// What RIDE-EA's routers did: experts per sample, and computation against accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingResult {
    /// At the model's threshold.
    pub at_threshold: RoutingPoint,
    /// `experts_used[k]`: test samples that used `k + 1` experts.
    pub experts_used: Vec<usize>,
    /// Every expert on every sample (the model without its routers).
    pub all_experts: RoutingPoint,
    /// The same at thresholds 0.1 to 0.9.
    pub curve: Vec<RoutingPoint>,
}

fn routing_result(p: &Predictions, r: &RoutingPredictions) -> RoutingResult {
    let n = p.labels.len();
    let experts = r.prefix.len();
    let pct = |right: usize| if n > 0 { 100.0 * right as f64 / n as f64 } else { 0.0 };
    let point = |threshold: f64| {
        let (mut right, mut used, mut macs) = (0usize, 0usize, 0u64);
        for i in 0..n {
            let u = r.used(i, threshold);
            right += usize::from(r.prefix[u - 1][i] == p.labels[i]);
            used += u;
            macs += r.macs.as_ref().map_or(0, |m| m.using(u));
        }
        let per = |v: f64| if n > 0 { v / n as f64 } else { 0.0 };
        RoutingPoint { threshold, accuracy: pct(right), mean_experts: per(used as f64), gmacs: r.macs.as_ref().map(|_| per(macs as f64) * 1e-9) }
    };
    let mut experts_used = vec![0usize; experts];
    for i in 0..n {
        experts_used[r.used(i, r.threshold) - 1] += 1;
    }
    let right_all = (0..n).filter(|&i| r.prefix[experts - 1][i] == p.labels[i]).count();
    let all_experts =
        RoutingPoint { threshold: 0.0, accuracy: pct(right_all), mean_experts: experts as f64, gmacs: r.macs.as_ref().map(|m| m.all_experts() as f64 * 1e-9) };
    RoutingResult { at_threshold: point(r.threshold), experts_used, all_experts, curve: (1..10).map(|t| point(t as f64 / 10.0)).collect() }
}

/// One expert of a multi-expert model on its own: what each expert learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertResult {
    pub expert: usize,
    pub accuracy: f64,
    pub shots: GroupAccuracy,
}

/// Accuracy of three class groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAccuracy {
    pub names: [String; 3],
    /// Classes per group.
    pub classes: [usize; 3],
    /// Accuracy (%) over the test samples of each group's classes; `None` for an empty group.
    pub accuracy: [Option<f64>; 3],
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Accuracy (fraction) of the bin's samples; 0 when empty.
    pub accuracy: f64,
    /// Mean confidence of the bin's samples; 0 when empty.
    pub confidence: f64,
}

/// Hierarchical metrics on a two-level tree (root -> coarse -> fine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HierarchicalMetrics {
    /// Mean tree-induced error: edges between true and predicted fine node (0, 2 or 4).
    pub tie: f64,
    /// Mean per-sample hierarchical F1 (%) with ancestors (root included) added to both labels.
    pub f_h: f64,
    /// Accuracy (%) of the coarse class implied by the fine prediction.
    pub coarse_accuracy: f64,
}

/// A class's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: usize,
    pub name: String,
    pub train_count: usize,
    pub test_count: usize,
    pub accuracy: f64,
}

/// Everything the protocol reports for one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub samples: usize,
    pub accuracy: f64,
    pub per_class: Vec<ClassResult>,
    pub shots: GroupAccuracy,
    pub thirds: GroupAccuracy,
    pub ece: f64,
    pub reliability: Vec<ReliabilityBin>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    pub hierarchical: Option<HierarchicalMetrics>,
    /// The three classes with the fewest training images, rarest first.
    pub rarest: Vec<ClassResult>,
    /// Each expert alone (multi-expert models).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experts: Vec<ExpertResult>,
    /// RIDE-EA's routing (a model with expert routers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingResult>,
}

/// Settings of [`compute`].
#[derive(Debug, Clone, Copy)]
pub struct MetricSettings {
    pub ece_bins: usize,
    pub many_above: usize,
    pub few_below: usize,
}

fn group_accuracy(groups: &ClassGroups, correct: &[usize], total: &[usize]) -> GroupAccuracy {
    let names = groups.names().map(String::from);
    let g = groups.groups();
    let accuracy = g.map(|classes| {
        let n: usize = classes.iter().map(|&c| total[c]).sum();
        (n > 0).then(|| 100.0 * classes.iter().map(|&c| correct[c]).sum::<usize>() as f64 / n as f64)
    });
    GroupAccuracy { names, classes: g.map(|c| c.len()), accuracy }
}

/// Expected calibration error over `bins` equal-width confidence bins `(l, u]` (Guo et al. 2017).
pub fn calibration(p: &Predictions, bins: usize) -> (f64, Vec<ReliabilityBin>) {
    let mut count = vec![0usize; bins];
    let mut hits = vec![0usize; bins];
    let mut conf = vec![0f64; bins];
    for i in 0..p.labels.len() {
        let c = p.confidence[i] as f64;
        let b = ((c * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        count[b] += 1;
        conf[b] += c;
        hits[b] += (p.predicted[i] == p.labels[i]) as usize;
    }
    let n = p.labels.len().max(1) as f64;
    let mut ece = 0.0;
    let table = (0..bins)
        .map(|b| {
            let (acc, cf) = if count[b] > 0 { (hits[b] as f64 / count[b] as f64, conf[b] / count[b] as f64) } else { (0.0, 0.0) };
            ece += count[b] as f64 / n * (acc - cf).abs();
            ReliabilityBin { lower: b as f64 / bins as f64, upper: (b + 1) as f64 / bins as f64, count: count[b], accuracy: acc, confidence: cf }
        })
        .collect();
    (100.0 * ece, table)
}

/// TIE, F_H and coarse accuracy on a two-level hierarchy.
pub fn hierarchical(p: &Predictions, h: &Hierarchy) -> HierarchicalMetrics {
    let n = p.labels.len().max(1) as f64;
    let (mut tie, mut fh, mut coarse) = (0.0, 0.0, 0.0);
    for (&y, &q) in p.labels.iter().zip(&p.predicted) {
        let same_parent = h.parent[y] == h.parent[q];
        // augmented label sets {root, coarse, fine}: overlap 3 (correct), 2 (sibling) or 1
        let (edges, overlap) = if y == q {
            (0.0, 3.0)
        } else if same_parent {
            (2.0, 2.0)
        } else {
            (4.0, 1.0)
        };
        tie += edges;
        fh += overlap / 3.0; // P_H = R_H = overlap / 3, so F_H = overlap / 3
        coarse += same_parent as u8 as f64;
    }
    HierarchicalMetrics { tie: tie / n, f_h: 100.0 * fh / n, coarse_accuracy: 100.0 * coarse / n }
}

/// Computes every metric. `train_counts` define the shot groups; `class_names` label classes.
pub fn compute(p: &Predictions, train_counts: &[usize], class_names: &[String], hierarchy: Option<&Hierarchy>, s: MetricSettings) -> Metrics {
    let k = train_counts.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&y, &q) in p.labels.iter().zip(&p.predicted) {
        confusion[y][q] += 1;
    }
    let total: Vec<usize> = confusion.iter().map(|row| row.iter().sum()).collect();
    let correct: Vec<usize> = (0..k).map(|c| confusion[c][c]).collect();
    let per_class: Vec<ClassResult> = (0..k)
        .map(|c| ClassResult {
            class: c,
            name: class_names.get(c).cloned().unwrap_or_else(|| format!("class_{c}")),
            train_count: train_counts[c],
            test_count: total[c],
            accuracy: if total[c] > 0 { 100.0 * correct[c] as f64 / total[c] as f64 } else { 0.0 },
        })
        .collect();
    let n = p.labels.len();
    let accuracy = if n > 0 { 100.0 * correct.iter().sum::<usize>() as f64 / n as f64 } else { 0.0 };
    let (ece, reliability) = calibration(p, s.ece_bins);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| train_counts[a].cmp(&train_counts[b]).then(b.cmp(&a)));
    let rarest = order.iter().take(3).map(|&c| per_class[c].clone()).collect();
    let shots = shot_groups(train_counts, s.many_above, s.few_below);
    let experts = p
        .experts
        .iter()
        .enumerate()
        .map(|(e, predicted)| {
            let mut right = vec![0usize; k];
            for (&y, &q) in p.labels.iter().zip(predicted) {
                right[y] += usize::from(y == q);
            }
            let accuracy = if n > 0 { 100.0 * right.iter().sum::<usize>() as f64 / n as f64 } else { 0.0 };
            ExpertResult { expert: e, accuracy, shots: group_accuracy(&shots, &right, &total) }
        })
        .collect();
    Metrics {
        samples: n,
        accuracy,
        shots: group_accuracy(&shots, &correct, &total),
        thirds: group_accuracy(&rank_thirds(train_counts), &correct, &total),
        per_class,
        ece,
        reliability,
        confusion,
        hierarchical: hierarchy.map(|h| hierarchical(p, h)),
        rarest,
        experts,
        routing: p.routing.as_ref().map(|r| routing_result(p, r)),
    }
}
