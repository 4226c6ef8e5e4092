//! Sampler class histograms and determinism.

use longtail_data::sampler::{cben_weights, effective_number_weights};
use longtail_data::{Sampler, SamplerSpec};

/// Labels of a long-tailed toy set with class sizes `counts`.
fn labels(counts: &[usize]) -> Vec<usize> {
    counts.iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c, n)).collect()
}

fn histogram(indices: &[usize], labels: &[usize], classes: usize) -> Vec<f64> {
    let mut h = vec![0.0; classes];
    for &i in indices {
        h[labels[i]] += 1.0;
    }
    h.iter().map(|v| v / indices.len() as f64).collect()
}

const COUNTS: [usize; 5] = [6000, 2000, 1000, 700, 300];

#[test]
fn instance_sampling_is_a_permutation_following_the_counts() {
    let y = labels(&COUNTS);
    let s = Sampler::new(SamplerSpec::Instance, &y, 5).unwrap();
    let e = s.epoch_indices(1, 0, 10, 0);
    let mut sorted = e.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..y.len()).collect::<Vec<_>>());
    let h = histogram(&e, &y, 5);
    for (c, &n) in COUNTS.iter().enumerate() {
        assert!((h[c] - n as f64 / 10_000.0).abs() < 1e-12);
    }
    assert_ne!(e, s.epoch_indices(1, 1, 10, 0), "each epoch reshuffles");
}

#[test]
fn class_balanced_sampling_is_near_uniform_over_ten_thousand_draws() {
    let y = labels(&COUNTS);
    let s = Sampler::new(SamplerSpec::ClassBalanced, &y, 5).unwrap();
    let e = s.epoch_indices(7, 0, 10, 0);
    assert_eq!(e.len(), 10_000);
    for p in histogram(&e, &y, 5) {
        // binomial std of a share 0.2 over 10,000 draws is 0.004; allow 4 sigma
        assert!((p - 0.2).abs() < 0.016, "share {p}");
    }
}

#[test]
fn class_distributions_of_every_sampler() {
    let y = labels(&[400, 100, 25]);
    let probs = |spec| Sampler::new(spec, &y, 3).unwrap().class_probabilities(5, 10);
    let close = |a: Vec<f64>, b: [f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(close(probs(SamplerSpec::Instance), [400.0 / 525.0, 100.0 / 525.0, 25.0 / 525.0]));
    assert!(close(probs(SamplerSpec::SquareRoot), [20.0 / 35.0, 10.0 / 35.0, 5.0 / 35.0]));
    // reversed: N_max / n = 1, 4, 16
    assert!(close(probs(SamplerSpec::Reversed), [1.0 / 21.0, 4.0 / 21.0, 16.0 / 21.0]));
    // progressive at t/T = 1/2: half instance, half uniform
    let ib = [400.0 / 525.0, 100.0 / 525.0, 25.0 / 525.0];
    assert!(close(probs(SamplerSpec::Progressive), [0.5 * ib[0] + 0.5 / 3.0, 0.5 * ib[1] + 0.5 / 3.0, 0.5 * ib[2] + 0.5 / 3.0]));
    let prog = Sampler::new(SamplerSpec::Progressive, &y, 3).unwrap();
    assert!(close(prog.class_probabilities(0, 10), ib));
    assert!(close(prog.class_probabilities(10, 10), [1.0 / 3.0; 3]));
    // class-weighted: q_j ∝ n_j w_j
    assert!(close(probs(SamplerSpec::ClassWeighted { weights: vec![1.0, 2.0, 8.0] }), [400.0 / 800.0, 200.0 / 800.0, 200.0 / 800.0]));
}

#[test]
fn square_root_histogram_follows_its_distribution() {
    let y = labels(&COUNTS);
    let s = Sampler::new(SamplerSpec::SquareRoot, &y, 5).unwrap();
    let q = s.class_probabilities(0, 1);
    let h = histogram(&s.epoch_indices(3, 0, 1, 0), &y, 5);
    for (p, e) in h.iter().zip(&q) {
        assert!((p - e).abs() < 0.02, "{p} vs {e}");
    }
}

#[test]
fn sampling_is_deterministic_per_seed_epoch_and_stream() {
    let y = labels(&COUNTS);
    let s = Sampler::new(SamplerSpec::ClassBalanced, &y, 5).unwrap();
    assert_eq!(s.epoch_indices(3, 2, 10, 0), s.epoch_indices(3, 2, 10, 0));
    assert_ne!(s.epoch_indices(3, 2, 10, 0), s.epoch_indices(4, 2, 10, 0));
    assert_ne!(s.epoch_indices(3, 2, 10, 0), s.epoch_indices(3, 2, 10, 1));
}

#[test]
fn bad_class_weights_are_rejected() {
    let y = labels(&[3, 3]);
    assert!(Sampler::new(SamplerSpec::ClassWeighted { weights: vec![1.0] }, &y, 2).is_err());
    assert!(Sampler::new(SamplerSpec::ClassWeighted { weights: vec![1.0, -1.0] }, &y, 2).is_err());
    assert!(Sampler::new(SamplerSpec::ClassBalanced, &[], 2).is_err());
}

#[test]
fn effective_number_and_cben_weights_match_numpy() {
    let counts = [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60];
    // NumPy: w = (1-0.9999)/(1-0.9999**n); w/w.sum()*10
    let expected = [
        0.05285949529743872,
        0.07896010302869898,
        0.12297155431179109,
        0.19677381097611574,
        0.3202091221598268,
        0.526010276113854,
        0.8698677875251335,
        1.4486610556969453,
        2.3968718060593157,
        3.986814988830882,
    ];
    for (w, e) in effective_number_weights(&counts, 0.9999).iter().zip(expected) {
        assert!((w - e).abs() < 1e-9, "{w} vs {e}");
    }
    // NumPy: d = log(nmax)-log(n); beta = 0.0009*(d-dmin)/(dmax-dmin)+0.999; g=(1-beta)/(1-beta**n); g/g.sum()
    let expected = [
        0.022323930003959706,
        0.020859630364372793,
        0.021674576698484223,
        0.026181987713673027,
        0.035955378492575456,
        0.053760521807245006,
        0.08461972402529794,
        0.13748448168802588,
        0.2248977689371617,
        0.3722420002692043,
    ];
    for (w, e) in cben_weights(&counts, 0.999, 0.0009).iter().zip(expected) {
        assert!((w - e).abs() < 1e-9, "{w} vs {e}");
    }
}
