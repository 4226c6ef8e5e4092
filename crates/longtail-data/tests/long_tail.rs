//! Long-tailed subset construction: the standard counts, selections and bad input.

use std::sync::Arc;

use longtail_data::longtail::{LongTailSpec, Profile, Selection, build_long_tail, profile_counts};
use longtail_data::numpy_rng::NumpyRandomState;
use longtail_data::{DataError, Dataset, ImageStore, rank_thirds, shot_groups};

#[test]
fn cifar10_lt_if100_counts_match_the_papers() {
    let c = profile_counts(Profile::Exp, 100.0, 5000, 10).unwrap();
    assert_eq!(c, vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    assert_eq!(c.iter().sum::<usize>(), 12_406);
}

#[test]
fn cifar100_lt_totals_match_the_papers() {
    for (imb, total) in [(100.0, 10_847), (50.0, 12_608), (10.0, 19_573), (200.0, 9_502)] {
        let c = profile_counts(Profile::Exp, imb, 500, 100).unwrap();
        assert_eq!(c.iter().sum::<usize>(), total, "IF {imb}");
    }
}

#[test]
fn fashion_mnist_lt_if100_counts() {
    let c = profile_counts(Profile::Exp, 100.0, 6000, 10).unwrap();
    assert_eq!(c, vec![6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]);
    assert_eq!(c.iter().sum::<usize>(), 14_886);
}

#[test]
fn step_profile_reduces_the_minority_half() {
    let c = profile_counts(Profile::Step { minority_fraction: 0.5 }, 10.0, 500, 10).unwrap();
    assert_eq!(c, vec![500, 500, 500, 500, 500, 50, 50, 50, 50, 50]);
    let c = profile_counts(Profile::Step { minority_fraction: 0.2 }, 100.0, 500, 10).unwrap();
    assert_eq!(c, vec![500, 500, 500, 500, 500, 500, 500, 500, 5, 5]);
}

#[test]
fn imbalance_factor_below_one_is_rejected() {
    for bad in [0.5, 0.0, -3.0, f64::NAN] {
        let err = profile_counts(Profile::Exp, bad, 100, 10).unwrap_err();
        assert!(matches!(err, DataError::ImbalanceFactor(_)), "{err}");
    }
    assert!(profile_counts(Profile::Exp, 1.0, 100, 10).unwrap().iter().all(|&n| n == 100));
}

/// A balanced in-memory dataset of 1x1 images whose pixel is the sample index.
fn balanced(per_class: usize, classes: usize) -> Dataset {
    let labels: Vec<usize> = (0..per_class * classes).map(|i| i % classes).collect();
    let pixels: Vec<u8> = (0..labels.len()).map(|i| i as u8).collect();
    let store = ImageStore::Memory { height: 1, width: 1, channels: 1, pixels: Arc::new(pixels) };
    Dataset::new("toy", (0..classes).map(|c| format!("c{c}")).collect(), store, labels).unwrap()
}

#[test]
fn first_selection_keeps_the_first_images_in_file_order() {
    let data = balanced(10, 3);
    let lt = build_long_tail(&data, &LongTailSpec::exp(10.0)).unwrap();
    assert_eq!(lt.class_counts(), vec![10, 3, 1]);
    // class 1's samples are 1, 4, 7, ...; the first three are kept
    let pix: Vec<u8> = (0..lt.len()).map(|i| lt.image(i).unwrap().data[0]).collect();
    assert_eq!(&pix[10..], &[1, 4, 7, 2]);
}

#[test]
fn numpy_shuffle_matches_numpy_legacy_random_state() {
    // Expected values printed by NumPy: np.random.seed(0); a = np.arange(10); np.random.shuffle(a)
    let mut rng = NumpyRandomState::new(0);
    let mut a: Vec<usize> = (0..10).collect();
    rng.shuffle(&mut a);
    assert_eq!(a, vec![2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
    // ... followed by b = np.arange(5000); np.random.shuffle(b); b[:8]
    let mut b: Vec<usize> = (0..5000).collect();
    rng.shuffle(&mut b);
    assert_eq!(&b[..8], &[405, 4224, 491, 3118, 1529, 3375, 463, 138]);
    let mut rng = NumpyRandomState::new(12345);
    let mut c: Vec<usize> = (0..37).collect();
    rng.shuffle(&mut c);
    assert_eq!(
        c,
        vec![25, 26, 2, 19, 5, 12, 3, 0, 4, 15, 32, 20, 8, 28, 24, 21, 7, 6, 30, 10, 13, 11, 33, 18, 16, 31, 23, 9, 14, 27, 17, 22, 36, 35, 1, 29, 34]
    );
}

#[test]
fn numpy_selection_reproduces_the_ldam_subset() {
    let data = balanced(10, 2); // class 0: samples 0,2,...,18; class 1: 1,3,...,19
    let spec = LongTailSpec { profile: Profile::Exp, imbalance_factor: 5.0, max_per_class: None, selection: Selection::NumpyShuffle { seed: 0 } };
    let lt = build_long_tail(&data, &spec).unwrap();
    assert_eq!(lt.class_counts(), vec![10, 2]);
    // class 0 shuffled by the first np.random.shuffle of 10 items: [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
    let pix: Vec<u8> = (0..lt.len()).map(|i| lt.image(i).unwrap().data[0]).collect();
    assert_eq!(&pix[..10], &[4, 16, 8, 18, 2, 12, 14, 6, 0, 10]);
}

#[test]
fn asking_for_more_images_than_exist_is_an_error() {
    let data = balanced(10, 3);
    let spec = LongTailSpec { max_per_class: Some(11), ..LongTailSpec::exp(10.0) };
    let err = build_long_tail(&data, &spec).unwrap_err();
    assert!(matches!(err, DataError::NotEnoughImages { class: 0, available: 10, requested: 11, .. }), "{err}");
}

#[test]
fn an_empty_class_is_an_error() {
    let store = ImageStore::Memory { height: 1, width: 1, channels: 1, pixels: Arc::new(vec![0, 1, 2]) };
    let data = Dataset::new("toy", vec!["a".into(), "b".into(), "c".into()], store, vec![0, 0, 2]).unwrap();
    let err = build_long_tail(&data, &LongTailSpec::exp(2.0)).unwrap_err();
    assert!(matches!(err, DataError::EmptyClass { class: 1, .. }), "{err}");
    // ... and an imbalance so extreme that a class rounds down to zero images
    let data = balanced(3, 3);
    // (its own message: the factor, not the data, leaves the class empty)
    let err = build_long_tail(&data, &LongTailSpec::exp(1000.0)).unwrap_err().to_string();
    assert!(err.contains("imbalance_factor") && err.contains("class 1") && err.contains("at most 3"), "{err}");
}

#[test]
fn labels_outside_the_class_range_are_rejected() {
    let store = ImageStore::Memory { height: 1, width: 1, channels: 1, pixels: Arc::new(vec![0, 1]) };
    let err = Dataset::new("toy", vec!["a".into()], store, vec![0, 3]).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { label: 3, num_classes: 1, .. }), "{err}");
}

#[test]
fn shot_groups_follow_the_100_20_thresholds() {
    let counts = [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60];
    let g = shot_groups(&counts, 100, 20);
    assert_eq!(g.many, (0..8).collect::<Vec<_>>());
    assert_eq!(g.medium, vec![8, 9]);
    assert!(g.few.is_empty() && g.has_empty_group());
    let g = shot_groups(&[500, 101, 100, 20, 19, 2], 100, 20);
    assert_eq!((g.many, g.medium, g.few), (vec![0, 1], vec![2, 3], vec![4, 5]));
}

#[test]
fn rank_thirds_split_ten_classes_three_four_three() {
    let counts = [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60];
    let g = rank_thirds(&counts);
    assert_eq!((g.many.clone(), g.medium.clone(), g.few.clone()), (vec![0, 1, 2], vec![3, 4, 5, 6], vec![7, 8, 9]));
    assert_eq!(g.names(), ["head-third", "middle-third", "tail-third"]);
    // unsorted counts: groups follow frequency, not index
    let g = rank_thirds(&[1, 50, 7, 900, 3, 20]);
    assert_eq!((g.many, g.medium, g.few), (vec![1, 3], vec![2, 5], vec![0, 4]));
}
