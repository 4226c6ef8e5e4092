//! The arithmetic of the mixing recipes: CMO's CutMix box and Remix's label rule, each as its
//! reference code computes it (the recipes that use them are in [`crate::recipe`]).

use burn::tensor::{Device, Int, Tensor, TensorData};

/// A CutMix box: rows `x1..x2` (dim 2 of NCHW) and columns `y1..y2` (dim 3), and the label weight
/// of the background, `1 - area / (rows * cols)` of the clipped box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutBox {
    pub x1: usize,
    pub y1: usize,
    pub x2: usize,
    pub y2: usize,
    pub lambda: f64,
}

/// `rand_bbox` of CutMix / CMO (`naver-ai/cmo`, cifar_train.py:351-367) for a drawn `lambda` and
/// centre `(cx, cy)`: side `int(rows * sqrt(1 - lambda))` (truncated), the half side `side // 2` on
/// both sides of the centre, clipped to the image; `lambda` recomputed from the clipped area
/// (cifar_train.py:308). The code's `W` is dim 2 of NCHW (rows), its `H` dim 3.
pub fn cutmix_box(lambda: f64, rows: usize, cols: usize, cx: usize, cy: usize) -> CutBox {
    let cut_rat = (1.0 - lambda).sqrt();
    let (cut_w, cut_h) = ((rows as f64 * cut_rat) as i64, (cols as f64 * cut_rat) as i64);
    let clip = |v: i64, hi: usize| v.clamp(0, hi as i64) as usize;
    let (cx, cy) = (cx as i64, cy as i64);
    let (x1, x2) = (clip(cx - cut_w / 2, rows), clip(cx + cut_w / 2, rows));
    let (y1, y2) = (clip(cy - cut_h / 2, cols), clip(cy + cut_h / 2, cols));
    let area = ((x2 - x1) * (y2 - y1)) as f64;
    CutBox { x1, y1, x2, y2, lambda: 1.0 - area / (rows * cols) as f64 }
}

/// A `[1, 1, rows, cols]` mask, 1 inside the box.
pub fn box_mask(b: &CutBox, rows: usize, cols: usize, device: &Device) -> Tensor<4> {
    let mut v = vec![0f32; rows * cols];
    for r in b.x1..b.x2 {
        v[r * cols + b.y1..r * cols + b.y2].fill(1.0);
    }
    Tensor::from_data(TensorData::new(v, [1, 1, rows, cols]), device)
}

/// Remix's label weight of a pair (Chou et al. 2020, Eq. 10): `0` if `n_i / n_j >= kappa` and
/// `lambda < tau`; `1` if `n_i / n_j <= 1 / kappa` (written `n_j / n_i >= kappa`) and
/// `1 - lambda < tau`; else `lambda`.
pub fn remix_label_weight(n_i: f64, n_j: f64, lambda: f64, kappa: f64, tau: f64) -> f64 {
    if n_i / n_j >= kappa && lambda < tau {
        0.0
    } else if n_j / n_i >= kappa && 1.0 - lambda < tau {
        1.0
    } else {
        lambda
    }
}

/// [`remix_label_weight`] of every pair `(a_k, b_k)` of a batch, on the batch's device.
pub fn remix_weights(counts: &[f64], a: Tensor<1, Int>, b: Tensor<1, Int>, lambda: f64, kappa: f64, tau: f64) -> Tensor<1> {
    let device = a.device();
    let n = a.dims()[0];
    let table = Tensor::<1>::from_data(TensorData::new(counts.iter().map(|&c| c as f32).collect::<Vec<_>>(), [counts.len()]), &device);
    let (n_i, n_j) = (table.clone().select(0, a), table.select(0, b));
    let mut w = Tensor::<1>::full([n], lambda, &device);
    if lambda < tau {
        w = w.mask_fill((n_i.clone() / n_j.clone()).greater_equal_elem(kappa), 0.0);
    }
    if 1.0 - lambda < tau {
        w = w.mask_fill((n_j / n_i).greater_equal_elem(kappa), 1.0);
    }
    w
}
