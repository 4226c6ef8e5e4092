//! The CPU kernels longtail carries for burn-flex (`vendor/burn-flex`, see its PATCHES.md):
//! convolution forward / input gradient / weight gradient and batch norm (inference, training,
//! training backward), checked against direct f64 loops written here from the definitions.
//! Cases cover stride, symmetric and asymmetric padding, dilation, groups (incl. depthwise),
//! non-square kernels, 1x1 kernels, stride-1 "same" layouts (im2col's shifted-plane path),
//! the direct 3x3 kernels (rows a multiple of 16 wide), batch 1 and batches larger than the kernels' sample blocks; ReLU forward and backward are
//! checked against their definition; f32 <-> bf16 / f16 casts (parallel chunks) against rounding
//! written out here.

use burn::tensor::module::{batch_norm, batch_norm_train, conv2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};

/// Deterministic values in [-1, 1) (a 64-bit LCG; independent of Burn's RNG).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D], d: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), d)
}

fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `got` (f32 or f64 results) against the f64 reference, relative to `1 + |want|`.
fn assert_close<T: Copy + Into<f64> + std::fmt::Display>(what: &str, got: &[T], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g.into() - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    /// (top, bottom), (left, right)
    pad: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

impl Case {
    fn out(&self) -> (usize, usize) {
        let oh = (self.h + self.pad[0].0 + self.pad[0].1 - self.dilation[0] * (self.kh - 1) - 1) / self.stride[0] + 1;
        let ow = (self.w + self.pad[1].0 + self.pad[1].1 - self.dilation[1] * (self.kw - 1) - 1) / self.stride[1] + 1;
        (oh, ow)
    }

    /// The input pixel read by output (oy, ox) at kernel tap (ky, kx), if inside the image.
    fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride[0] + ky * self.dilation[0]) as isize - self.pad[0].0 as isize;
        let x = (ox * self.stride[1] + kx * self.dilation[1]) as isize - self.pad[1].0 as isize;
        (y >= 0 && x >= 0 && (y as usize) < self.h && (x as usize) < self.w).then_some((y as usize, x as usize))
    }

    /// Reference `(y, dx, dw, db)` for the loss `sum(y * r)`.
    fn reference(&self, x: &[f32], wt: &[f32], b: &[f32], r: &[f32]) -> [Vec<f64>; 4] {
        let (oh, ow) = self.out();
        let (cg, og) = (self.c / self.groups, self.o / self.groups);
        let mut y = vec![0f64; self.n * self.o * oh * ow];
        let mut dx = vec![0f64; x.len()];
        let mut dw = vec![0f64; wt.len()];
        let mut db = vec![0f64; self.o];
        for n in 0..self.n {
            for o in 0..self.o {
                let g = o / og;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let yi = ((n * self.o + o) * oh + oy) * ow + ox;
                        let mut acc = if self.bias { b[o] as f64 } else { 0.0 };
                        let dy = r[yi] as f64;
                        db[o] += dy;
                        for ci in 0..cg {
                            let c = g * cg + ci;
                            for ky in 0..self.kh {
                                for kx in 0..self.kw {
                                    if let Some((iy, ix)) = self.tap(oy, ox, ky, kx) {
                                        let xi = ((n * self.c + c) * self.h + iy) * self.w + ix;
                                        let wi = ((o * cg + ci) * self.kh + ky) * self.kw + kx;
                                        acc += x[xi] as f64 * wt[wi] as f64;
                                        dx[xi] += wt[wi] as f64 * dy;
                                        dw[wi] += x[xi] as f64 * dy;
                                    }
                                }
                            }
                        }
                        y[yi] = acc;
                    }
                }
            }
        }
        [y, dx, dw, db]
    }
}

fn check_conv(case: Case) {
    let d = Device::flex().autodiff();
    let (oh, ow) = case.out();
    let x = values(case.n * case.c * case.h * case.w, 1);
    let wt = values(case.o * (case.c / case.groups) * case.kh * case.kw, 2);
    let b = values(case.o, 3);
    let r = values(case.n * case.o * oh * ow, 4);
    let [y_ref, dx_ref, dw_ref, db_ref] = case.reference(&x, &wt, &b, &r);

    let xt = tensor(&x, [case.n, case.c, case.h, case.w], &d).require_grad();
    let wtt = tensor(&wt, [case.o, case.c / case.groups, case.kh, case.kw], &d).require_grad();
    let bt = tensor(&b, [case.o], &d).require_grad();
    let options = ConvOptions::new_with_padding(case.stride, case.pad, case.dilation, case.groups);
    let y = conv2d(xt.clone(), wtt.clone(), case.bias.then(|| bt.clone()), options);
    assert_eq!(y.dims(), [case.n, case.o, oh, ow], "{case:?}");
    let loss = (y.clone() * tensor(&r, [case.n, case.o, oh, ow], &d)).sum();
    let grads = loss.backward();

    let tol = 1e-5;
    assert_close(&format!("y {case:?}"), &vec(y), &y_ref, tol);
    assert_close(&format!("dx {case:?}"), &vec(xt.grad(&grads).unwrap()), &dx_ref, tol);
    assert_close(&format!("dw {case:?}"), &vec(wtt.grad(&grads).unwrap()), &dw_ref, tol);
    if case.bias {
        assert_close(&format!("db {case:?}"), &vec(bt.grad(&grads).unwrap()), &db_ref, tol);
    }
}

const BASE: Case = Case { n: 2, c: 3, h: 7, w: 6, o: 4, kh: 3, kw: 3, stride: [1, 1], pad: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1, bias: true };

#[test]
fn conv_3x3_same_padding() {
    check_conv(BASE);
    check_conv(Case { bias: false, ..BASE });
}

#[test]
fn conv_stride_two_and_no_padding() {
    check_conv(Case { n: 3, c: 4, h: 9, w: 9, o: 6, stride: [2, 2], ..BASE });
    check_conv(Case { n: 3, c: 4, h: 8, w: 10, o: 6, stride: [2, 2], pad: [(0, 0), (0, 0)], ..BASE });
}

#[test]
fn conv_1x1_downsample_batch_one() {
    check_conv(Case { n: 1, c: 4, h: 8, w: 8, o: 8, kh: 1, kw: 1, stride: [2, 2], pad: [(0, 0), (0, 0)], bias: false, ..BASE });
}

#[test]
fn conv_dilation_groups_and_depthwise() {
    check_conv(Case { c: 4, h: 10, w: 9, o: 6, pad: [(2, 2), (2, 2)], dilation: [2, 2], groups: 2, ..BASE });
    check_conv(Case { c: 4, o: 4, groups: 4, ..BASE });
}

#[test]
fn conv_non_square_kernel_asymmetric_padding() {
    check_conv(Case { c: 2, h: 6, w: 7, o: 3, kh: 2, kw: 3, pad: [(1, 0), (2, 1)], stride: [1, 2], ..BASE });
}

/// Stride-1 convolutions whose output rows are as wide as the input's take im2col's
/// shifted-plane path: asymmetric "same" padding, output shorter than the input (no row
/// padding), a kernel taller than the image (whole rows outside it) and a dilated 5x5.
#[test]
fn conv_stride_one_same_width_layouts() {
    check_conv(Case { c: 2, h: 5, w: 6, o: 3, kh: 2, kw: 2, pad: [(1, 0), (0, 1)], ..BASE });
    check_conv(Case { h: 6, w: 5, pad: [(0, 0), (1, 1)], ..BASE });
    check_conv(Case { h: 2, w: 4, kh: 5, kw: 5, pad: [(2, 2), (2, 2)], ..BASE });
    check_conv(Case { h: 9, w: 7, kh: 5, kw: 5, pad: [(4, 4), (4, 4)], dilation: [2, 2], ..BASE });
    check_conv(Case { h: 3, w: 3, pad: [(0, 3), (2, 0)], ..BASE });
}

/// 3x3, stride-1 convolutions padded by 1 whose rows are a multiple of 16 wide (or 8 wide, in
/// pairs of rows, with an even height) take the direct
/// AVX-512 kernels (`longtail_direct_conv`, when the CPU has AVX-512F): every remainder of their
/// 4-channel x 4-row blocks and 3-channel weight-gradient blocks, batches split unevenly across
/// workers, one-row and one-channel images, and near misses that must stay on im2col.
#[test]
fn conv_direct_3x3_rows_of_16() {
    check_conv(Case { n: 3, c: 5, h: 7, w: 16, o: 6, ..BASE });
    check_conv(Case { n: 2, c: 2, h: 4, w: 32, o: 9, bias: false, ..BASE });
    check_conv(Case { n: 5, c: 1, h: 1, w: 48, o: 1, ..BASE });
    check_conv(Case { n: 1, c: 7, h: 6, w: 16, o: 3, ..BASE });
    // the weight gradient sums 4 samples at a time per worker (11 = 6 + 5: chunks of 4 and 2 / 1)
    check_conv(Case { n: 11, c: 2, h: 3, w: 16, o: 8, ..BASE });
    // 8-wide planes, two rows per vector: every block remainder, heights 2 to 10, a long batch
    check_conv(Case { n: 3, c: 5, h: 8, w: 8, o: 6, ..BASE });
    check_conv(Case { n: 2, c: 2, h: 10, w: 8, o: 9, bias: false, ..BASE });
    check_conv(Case { n: 37, c: 1, h: 2, w: 8, o: 2, ..BASE });
    check_conv(Case { n: 2, c: 3, h: 7, w: 8, o: 4, ..BASE });
    check_conv(Case { n: 2, c: 3, h: 5, w: 16, o: 4, pad: [(1, 1), (1, 0)], ..BASE });
    check_conv(Case { n: 2, c: 3, h: 5, w: 16, o: 4, dilation: [1, 2], pad: [(1, 1), (2, 2)], ..BASE });
}

/// ReLU and its gradient on the CPU backend run in parallel, in place, above 64K elements:
/// checked on a large tensor (with a NaN, which PyTorch propagates in the output and whose
/// gradient it keeps; owned and shared), on a small one, and on a transposed (non-contiguous) one.
#[test]
fn relu_forward_and_backward_in_parallel() {
    use burn::tensor::activation::relu;
    let d = Device::flex().autodiff();
    // (shape, transposed input, uniquely owned input: the in-place path; else a new buffer)
    for (shape, transpose, unique) in [([3, 50_000], false, true), ([3, 50_000], false, false), ([7, 9], false, false), ([300, 400], true, false)] {
        let len = shape[0] * shape[1];
        let mut x = values(len, 5);
        x[len / 2] = f32::NAN;
        let r = values(len, 6);
        let xt = tensor(&x, shape, &d).require_grad();
        let input = if transpose {
            xt.clone().transpose()
        } else if unique {
            xt.clone() * 1.0
        } else {
            xt.clone()
        };
        let rr = if transpose { tensor(&r, [shape[1], shape[0]], &d) } else { tensor(&r, shape, &d) };
        let y = relu(input);
        let grads = (y.clone() * rr).sum().backward();
        let (y, dx) = (vec(y), vec(xt.grad(&grads).unwrap()));
        // element (i, j) of the input; for the transposed case y is [cols, rows]
        for i in 0..shape[0] {
            for j in 0..shape[1] {
                let k = i * shape[1] + j;
                let (yk, rk) = if transpose { (j * shape[0] + i, j * shape[0] + i) } else { (k, k) };
                let v = x[k];
                if v.is_nan() {
                    assert!(y[yk].is_nan(), "{shape:?}: NaN must propagate");
                    continue;
                }
                assert_eq!(y[yk], v.max(0.0), "{shape:?} y[{i},{j}]");
                let want = if v > 0.0 { r[rk] } else { 0.0 };
                assert_eq!(dx[k], want, "{shape:?} dx[{i},{j}]");
            }
        }
    }
}

#[test]
fn conv_batches_larger_than_a_sample_block() {
    // the weight gradient accumulates blocks of 8 samples per worker
    check_conv(Case { n: 19, c: 3, h: 5, w: 5, o: 5, ..BASE });
}

/// Reference training batch norm: `(out, mean, var, dx, dgamma, dbeta)` for loss `sum(out * r)`.
#[allow(clippy::type_complexity)]
fn bn_reference(n: usize, c: usize, s: usize, x: &[f32], gamma: &[f32], beta: &[f32], r: &[f32], eps: f64) -> [Vec<f64>; 6] {
    let m = (n * s) as f64;
    let at = |i: usize, ch: usize, k: usize| (i * c + ch) * s + k;
    let mut out = vec![0f64; x.len()];
    let mut dx = vec![0f64; x.len()];
    let (mut means, mut vars, mut dg, mut dbt) = (vec![0f64; c], vec![0f64; c], vec![0f64; c], vec![0f64; c]);
    for ch in 0..c {
        let idx: Vec<usize> = (0..n).flat_map(|i| (0..s).map(move |k| at(i, ch, k))).collect();
        let mean = idx.iter().map(|&j| x[j] as f64).sum::<f64>() / m;
        let var = idx.iter().map(|&j| (x[j] as f64 - mean).powi(2)).sum::<f64>() / m;
        let inv = 1.0 / (var + eps).sqrt();
        let xhat = |j: usize| (x[j] as f64 - mean) * inv;
        let sum_dy = idx.iter().map(|&j| r[j] as f64).sum::<f64>();
        let sum_dy_xhat = idx.iter().map(|&j| r[j] as f64 * xhat(j)).sum::<f64>();
        for &j in &idx {
            out[j] = xhat(j) * gamma[ch] as f64 + beta[ch] as f64;
            dx[j] = gamma[ch] as f64 * inv / m * (m * r[j] as f64 - sum_dy - xhat(j) * sum_dy_xhat);
        }
        (means[ch], vars[ch], dg[ch], dbt[ch]) = (mean, var, sum_dy_xhat, sum_dy);
    }
    [out, means, vars, dx, dg, dbt]
}

#[test]
fn batch_norm_training_forward_and_backward() {
    let d = Device::flex().autodiff();
    // planes of 30, 9, 4, 64 and 35 values: the 16-lane reductions with and without a remainder
    for (n, c, h, w) in [(4, 3, 5, 6), (1, 2, 3, 3), (9, 5, 2, 2), (3, 4, 8, 8), (2, 3, 5, 7)] {
        let s = h * w;
        // an offset makes the variance computation sensitive to cancellation
        let x: Vec<f32> = values(n * c * s, 5).iter().map(|v| v * 3.0 + 10.0).collect();
        let (gamma, beta, r) = (values(c, 6), values(c, 7), values(n * c * s, 8));
        let eps = 1e-5;
        let [out_ref, mean_ref, var_ref, dx_ref, dg_ref, db_ref] = bn_reference(n, c, s, &x, &gamma, &beta, &r, eps);

        let xt = tensor(&x, [n, c, h, w], &d).require_grad();
        let gt = tensor(&gamma, [c], &d).require_grad();
        let bt = tensor(&beta, [c], &d).require_grad();
        let res = batch_norm_train(xt.clone(), gt.clone(), bt.clone(), eps);
        let loss = (res.output.clone() * tensor(&r, [n, c, h, w], &d)).sum();
        let grads = loss.backward();
        let what = format!("[{n},{c},{h},{w}]");
        assert_close(&format!("out {what}"), &vec(res.output), &out_ref, 2e-5);
        assert_close(&format!("mean {what}"), &vec(res.mean), &mean_ref, 1e-6);
        assert_close(&format!("var {what}"), &vec(res.variance), &var_ref, 1e-5);
        assert_close(&format!("dx {what}"), &vec(xt.grad(&grads).unwrap()), &dx_ref, 1e-4);
        assert_close(&format!("dgamma {what}"), &vec(gt.grad(&grads).unwrap()), &dg_ref, 1e-5);
        assert_close(&format!("dbeta {what}"), &vec(bt.grad(&grads).unwrap()), &db_ref, 1e-5);
    }
}

/// An `f64` tensor of `f32` values (exact), and its values back as `f64` (checking the dtype).
fn tensor64<const D: usize>(v: &[f32], shape: [usize; D], d: &Device) -> Tensor<D> {
    tensor(v, shape, d).cast(FloatDType::F64)
}

fn vec64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    assert_eq!(t.dtype(), DType::F64, "an f64 result");
    t.into_data().try_to_vec::<f64>().unwrap()
}

/// `f64` tensors are computed in `f64` by the routed operations (convolution gradients, batch
/// norm): they used to go through the `f32` kernels and back, errors of 1e-7 where f64 gives 1e-15.
#[test]
fn f64_tensors_keep_f64_precision() {
    let d = Device::flex().autodiff();
    for case in [BASE, Case { stride: [2, 1], pad: [(0, 2), (1, 0)], n: 3, ..BASE }, Case { groups: 2, c: 4, o: 2, kh: 1, kw: 2, dilation: [1, 2], ..BASE }] {
        let (oh, ow) = case.out();
        let x = values(case.n * case.c * case.h * case.w, 21);
        let wt = values(case.o * (case.c / case.groups) * case.kh * case.kw, 22);
        let r = values(case.n * case.o * oh * ow, 23);
        let [y_ref, dx_ref, dw_ref, _] = Case { bias: false, ..case }.reference(&x, &wt, &[], &r);
        let xt = tensor64(&x, [case.n, case.c, case.h, case.w], &d).require_grad();
        let wtt = tensor64(&wt, [case.o, case.c / case.groups, case.kh, case.kw], &d).require_grad();
        let options = ConvOptions::new_with_padding(case.stride, case.pad, case.dilation, case.groups);
        let y = conv2d(xt.clone(), wtt.clone(), None, options);
        let grads = (y.clone() * tensor64(&r, [case.n, case.o, oh, ow], &d)).sum().backward();
        assert_close(&format!("f64 y {case:?}"), &vec64(y), &y_ref, 1e-12);
        assert_close(&format!("f64 dx {case:?}"), &vec64(xt.grad(&grads).unwrap()), &dx_ref, 1e-12);
        assert_close(&format!("f64 dw {case:?}"), &vec64(wtt.grad(&grads).unwrap()), &dw_ref, 1e-12);
    }
    let (n, c, h, w) = (3, 4, 5, 7);
    let s = h * w;
    let x: Vec<f32> = values(n * c * s, 24).iter().map(|v| v * 3.0 + 10.0).collect();
    let (gamma, beta, r) = (values(c, 25), values(c, 26), values(n * c * s, 27));
    let eps = 1e-5;
    let [out_ref, mean_ref, var_ref, dx_ref, dg_ref, db_ref] = bn_reference(n, c, s, &x, &gamma, &beta, &r, eps);
    let xt = tensor64(&x, [n, c, h, w], &d).require_grad();
    let gt = tensor64(&gamma, [c], &d).require_grad();
    let bt = tensor64(&beta, [c], &d).require_grad();
    let res = batch_norm_train(xt.clone(), gt.clone(), bt.clone(), eps);
    let grads = (res.output.clone() * tensor64(&r, [n, c, h, w], &d)).sum().backward();
    assert_close("f64 bn out", &vec64(res.output), &out_ref, 1e-12);
    assert_close("f64 bn mean", &vec64(res.mean.clone()), &mean_ref, 1e-12);
    assert_close("f64 bn var", &vec64(res.variance.clone()), &var_ref, 1e-12);
    assert_close("f64 bn dx", &vec64(xt.grad(&grads).unwrap()), &dx_ref, 1e-12);
    assert_close("f64 bn dgamma", &vec64(gt.grad(&grads).unwrap()), &dg_ref, 1e-12);
    assert_close("f64 bn dbeta", &vec64(bt.grad(&grads).unwrap()), &db_ref, 1e-12);
    // inference with the batch's statistics gives the training output
    let inference = batch_norm(tensor64(&x, [n, c, h, w], &d), tensor64(&gamma, [c], &d), tensor64(&beta, [c], &d), res.mean, res.variance, eps);
    assert_close("f64 bn inference", &vec64(inference), &out_ref, 1e-12);
}

#[test]
fn batch_norm_inference_with_given_statistics() {
    let d = Device::flex();
    let (n, c, s) = (3, 4, 5);
    let x = values(n * c * s, 9);
    let (gamma, beta, mean) = (values(c, 10), values(c, 11), values(c, 12));
    let var: Vec<f32> = values(c, 13).iter().map(|v| v.abs() + 0.1).collect();
    let eps = 1e-5;
    let want: Vec<f64> = (0..x.len())
        .map(|j| {
            let ch = (j / s) % c;
            (x[j] as f64 - mean[ch] as f64) / (var[ch] as f64 + eps).sqrt() * gamma[ch] as f64 + beta[ch] as f64
        })
        .collect();
    let out = batch_norm(tensor(&x, [n, c, s], &d), tensor(&gamma, [c], &d), tensor(&beta, [c], &d), tensor(&mean, [c], &d), tensor(&var, [c], &d), eps);
    assert_close("inference batch norm", &vec(out), &want, 1e-5);
}

/// `x` rounded to the nearest value with `mantissa` stored bits and exponents down to
/// `min_exp` (gradual underflow below it), ties to even; infinite at `overflow` and above.
/// Computed in f64 from the definition, independently of the kernels' bit tricks.
fn round_to_format(x: f32, mantissa: i32, min_exp: i32, overflow: f64) -> f32 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let v = x as f64;
    let e = (v.abs().log2().floor() as i32).max(min_exp);
    let ulp = 2f64.powi(e - mantissa);
    let out = (v / ulp).round_ties_even().copysign(v) * ulp;
    if out.abs() >= overflow { f32::INFINITY.copysign(x) } else { out as f32 }
}

#[test]
fn casts_to_bf16_and_f16_round_to_nearest_even_in_parallel_chunks() {
    use burn::tensor::{DType, FloatDType};
    let d = Device::flex();
    // 200,003 values: several 65,536-value chunks and a remainder; the specials at both ends
    let mut v: Vec<f32> = values(200_003, 21).iter().enumerate().map(|(i, x)| x * 2f32.powi((i % 40) as i32 - 20)).collect();
    let specials = [
        0.0,
        -0.0,
        1.0,
        -2.5,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN_POSITIVE,
        1.0 + 2f32.powi(-8),
        1.0 + 3.0 * 2f32.powi(-8), // bf16 ties: to 1.0 and to 1 + 2^-6
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11), // f16 ties: to 1.0 and to 1 + 2^-9
        65504.0,
        65519.0,
        65520.0,
        1e5, // f16's largest, below and at the overflow point, beyond
        6e-8,
        3e-5,
        -1e-6, // f16 subnormals
        2f32.powi(-25),
        -2f32.powi(-25),
        3.0 * 2f32.powi(-25), // f16 ties at the smallest subnormal: to +-0 and to 2^-23
        1e-40,
        -f32::from_bits(1),
        3.0 * 2f32.powi(-134), // f32 (and bf16) subnormals, a bf16 tie among them
    ];
    v[..specials.len()].copy_from_slice(&specials);
    let n = v.len();
    v[n - specials.len()..].copy_from_slice(&specials);
    v[1000] = f32::NAN;
    let x = tensor(&v, [n], &d);
    // a transposed (non-contiguous) view of the same values: [200003] = [7, 28571.857..] does not
    // divide, so transpose a [1000, 200] block instead and compare with its row-major copy
    let block: Vec<f32> = v[..200_000].to_vec();
    let transposed = tensor(&block, [1000, 200], &d).transpose();
    let transposed_values: Vec<f32> = (0..200).flat_map(|j| (0..1000).map(move |i| (i, j))).map(|(i, j)| block[i * 200 + j]).collect();
    let formats = [(DType::BF16, FloatDType::BF16, 7, -126, f64::INFINITY), (DType::F16, FloatDType::F16, 10, -14, 65520.0)];
    for (dtype, float_dtype, mantissa, min_exp, overflow) in formats {
        let half = x.clone().cast(float_dtype);
        assert_eq!(half.dtype(), dtype);
        let back = vec(half.cast(FloatDType::F32));
        for (i, (&g, &x)) in back.iter().zip(&v).enumerate() {
            let want = round_to_format(x, mantissa, min_exp, overflow);
            let same = g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan());
            assert!(same, "{dtype:?}[{i}]: {x:e} -> {g:e}, want {want:e}");
        }
        let back = vec(transposed.clone().cast(float_dtype).cast(FloatDType::F32));
        for (i, (&g, &x)) in back.iter().zip(&transposed_values).enumerate() {
            let want = round_to_format(x, mantissa, min_exp, overflow);
            assert!(g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()), "{dtype:?} transposed[{i}]: {x:e} -> {g:e}, want {want:e}");
        }
    }
}
