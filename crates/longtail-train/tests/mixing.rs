//! CMO's box, area-mixed label and foreground sampler, and Remix's label rule, against numbers
//! computed independently from the reference code (tests/fixtures/mix_ref.py -> mix_ref.json:
//! naver-ai/cmo's `rand_bbox` and weighted sampler; Remix by the paper, cross-checked with
//! BagofTricks-LT and imbalanced-DL); a CMO step end to end; the bad-input errors.

use burn::tensor::{Device, Int, Tensor, TensorData};
use longtail_data::{Sampler, SamplerSpec};
use longtail_train::mixing::{box_mask, cutmix_box, remix_label_weight, remix_weights};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/mix_ref.json")).unwrap()
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap()
}
fn u(v: &Value, k: &str) -> usize {
    v[k].as_u64().unwrap() as usize
}

#[test]
fn cmo_boxes_and_area_labels_match_rand_bbox() {
    let r = reference();
    let cases = r["b_cmo_boxes"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let b = cutmix_box(f(c, "lam"), u(c, "W"), u(c, "H"), u(c, "cx"), u(c, "cy"));
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (u(c, "bbx1"), u(c, "bby1"), u(c, "bbx2"), u(c, "bby2")), "{c}");
        assert_eq!(b.lambda, f(c, "lam_recomputed"), "{c}");
        // the mask covers exactly the box
        let m = box_mask(&b, u(c, "W"), u(c, "H"), &Device::flex()).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(m.iter().sum::<f32>() as usize, u(c, "area"), "{c}");
    }
}

#[test]
fn cmo_sampler_draws_classes_as_the_weighted_random_sampler() {
    let r = reference();
    let a = &r["a_cmo_sampler"];
    let counts: Vec<usize> = a["class_counts"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let labels: Vec<usize> = counts.iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c, n)).collect();
    let mut cases = vec![a["at_default"].clone()];
    cases.extend(a["other_alphas"].as_array().unwrap().iter().cloned());
    for case in cases {
        let alpha = f(&case, "weighted_alpha");
        let sampler = Sampler::new(SamplerSpec::InversePower { alpha }, &labels, counts.len()).unwrap();
        let got = sampler.class_probabilities(0, 1);
        let want: Vec<f64> = case["class_draw_prob"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "alpha {alpha}: {got:?} vs {want:?}");
        }
        // and the draws of an epoch follow them (658 draws per epoch, with replacement)
        let mut seen = vec![0usize; counts.len()];
        for e in 0..30 {
            for i in sampler.epoch_indices(5, e, 30, 1) {
                seen[labels[i]] += 1;
            }
        }
        let total = seen.iter().sum::<usize>() as f64;
        assert_eq!(total as usize, 30 * labels.len());
        for (s, w) in seen.iter().zip(&want) {
            assert!((*s as f64 / total - w).abs() < 0.01, "alpha {alpha}: frequencies {seen:?} vs {want:?}");
        }
    }
}

#[test]
fn remix_label_rule_at_its_boundaries() {
    let r = reference();
    let (kappa, tau) = (f(&r["c_remix"], "kappa"), f(&r["c_remix"], "tau"));
    let table = r["c_remix"]["table"].as_array().unwrap();
    assert!(table.len() >= 20);
    let d = Device::flex();
    for c in table {
        let (ni, nj, lam) = (f(c, "n_i"), f(c, "n_j"), f(c, "lam"));
        let want = f(c, "lam_y_paper");
        assert_eq!(remix_label_weight(ni, nj, lam, kappa, tau), want, "{c}");
        // the batched form on a device: class 0 has n_i images, class 1 n_j
        let ints = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [1]), &d);
        let w = remix_weights(&[ni, nj], ints(vec![0]), ints(vec![1]), lam, kappa, tau).into_data().try_to_vec::<f32>().unwrap()[0];
        assert!((w as f64 - want).abs() < 1e-7, "{c}: batched {w}");
    }
}
