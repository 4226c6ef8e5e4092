//! Protocol metrics against hand-computed values.

use longtail_data::Hierarchy;
use longtail_train::metrics::{MetricSettings, Predictions, calibration, compute, hierarchical};

fn settings() -> MetricSettings {
    MetricSettings { ece_bins: 15, many_above: 100, few_below: 20 }
}

/// Four classes with train counts 500, 60, 25, 5 (many, medium, medium, few).
fn fixture() -> (Predictions, Vec<usize>, Vec<String>) {
    // class 0: 4 test samples, 3 right; class 1: 2 of 4; class 2: 1 of 2; class 3: 0 of 2
    let labels = vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3];
    let predicted = vec![0, 0, 0, 1, 1, 1, 0, 0, 2, 0, 0, 2];
    let confidence = vec![0.9, 0.8, 0.95, 0.6, 0.7, 0.55, 0.9, 0.85, 0.5, 0.65, 0.99, 0.4];
    (Predictions { labels, predicted, confidence, experts: Vec::new(), routing: None }, vec![500, 60, 25, 5], (0..4).map(|c| format!("c{c}")).collect())
}

#[test]
fn accuracy_per_class_groups_and_confusion() {
    let (p, counts, names) = fixture();
    let m = compute(&p, &counts, &names, None, settings());
    assert!((m.accuracy - 100.0 * 6.0 / 12.0).abs() < 1e-9);
    let per: Vec<f64> = m.per_class.iter().map(|c| c.accuracy).collect();
    assert_eq!(per, vec![75.0, 50.0, 50.0, 0.0]);
    assert_eq!(m.confusion[0], vec![3, 1, 0, 0]);
    assert_eq!(m.confusion[3], vec![1, 0, 1, 0]);
    // many = {0}: 3/4; medium = {1, 2}: 3/6; few = {3}: 0/2
    assert_eq!(m.shots.accuracy, [Some(75.0), Some(50.0), Some(0.0)]);
    assert_eq!(m.shots.classes, [1, 2, 1]);
    // rank thirds of 4 classes: head {0}, middle {1, 2}, tail {3}
    assert_eq!(m.thirds.accuracy, [Some(75.0), Some(50.0), Some(0.0)]);
    let rarest: Vec<usize> = m.rarest.iter().map(|c| c.class).collect();
    assert_eq!(rarest, vec![3, 2, 1]);
}

#[test]
fn expected_calibration_error_by_hand() {
    let (p, _, _) = fixture();
    // 15 bins of width 1/15; each sample's bin: ceil(conf * 15) - 1
    let (ece, bins) = calibration(&p, 15);
    let mut by_bin: std::collections::BTreeMap<usize, (f64, f64, f64)> = Default::default();
    for i in 0..12 {
        let b = ((p.confidence[i] as f64) * 15.0).ceil() as usize - 1;
        let e = by_bin.entry(b).or_default();
        e.0 += 1.0;
        e.1 += (p.labels[i] == p.predicted[i]) as u8 as f64;
        e.2 += p.confidence[i] as f64;
    }
    let expected: f64 = by_bin.values().map(|(n, hits, conf)| n / 12.0 * (hits / n - conf / n).abs()).sum::<f64>() * 100.0;
    assert!((ece - expected).abs() < 1e-4, "{ece} vs {expected}");
    // a hand check of one bin: 0.9 and 0.9 fall in bin 13 ((0.8667, 0.9333]) with 0.8 -> bin 11
    assert_eq!(bins[13].count, 2);
    assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 12);
    // perfectly calibrated: confidence 1 and always right -> 0
    let perfect = Predictions { labels: vec![1, 2], predicted: vec![1, 2], confidence: vec![1.0, 1.0], experts: Vec::new(), routing: None };
    assert_eq!(calibration(&perfect, 15).0, 0.0);
}

#[test]
fn tie_and_hierarchical_f1_on_a_hand_made_tree() {
    // coarse A = {0, 1}, coarse B = {2, 3}
    let h = Hierarchy::new(vec!["A".into(), "B".into()], vec![0, 0, 1, 1]).unwrap();
    // correct, sibling error, cross error, correct
    let p = Predictions { labels: vec![0, 0, 0, 3], predicted: vec![0, 1, 2, 3], confidence: vec![0.5; 4], experts: Vec::new(), routing: None };
    let m = hierarchical(&p, &h);
    assert!((m.tie - (0.0 + 2.0 + 4.0 + 0.0) / 4.0).abs() < 1e-12);
    assert!((m.f_h - 100.0 * (1.0 + 2.0 / 3.0 + 1.0 / 3.0 + 1.0) / 4.0).abs() < 1e-9);
    assert!((m.coarse_accuracy - 75.0).abs() < 1e-12);
}
