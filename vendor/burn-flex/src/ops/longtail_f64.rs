//! `f64` versions of the operations that `longtail_kernels` routes (a patch on burn-flex
//! 0.22.1; see PATCHES.md): convolution input and weight gradients and the three batch norms,
//! as direct loops in `f64`.
//!
//! The `f32` kernels would compute an `f64` tensor in `f32` and round it back (silently losing
//! the precision the caller asked for), and upstream's versions of these operations are private
//! to burn-backend. `f64` is the precision of reference computations (gradient checks against
//! the `f32` kernels), where plain loops are fast enough.

use alloc::vec;
use alloc::vec::Vec;

use burn_backend::ops::ConvOptions;
use burn_backend::{DType, TensorMetadata};
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// The `f64` values of an `f64` tensor, contiguous.
fn values(t: &FlexTensor) -> Vec<f64> {
    t.to_contiguous().as_slice::<f64>().expect("an f64 tensor").to_vec()
}

/// A contiguous `f64` tensor of `shape`.
fn tensor(values: Vec<f64>, shape: &[usize]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(shape.to_vec())), DType::F64)
}

/// A 2-D convolution's geometry: input `[n, c, h, w]`, weight `[o, c / groups, kh, kw]`, output
/// `[n, o, oh, ow]`.
struct Conv {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    options: ConvOptions<2>,
}

impl Conv {
    fn new(x: &Shape, weight: &Shape, output: &Shape, options: &ConvOptions<2>) -> Self {
        let [n, c, h, w]: [usize; 4] = x.dims();
        let [o, _, kh, kw]: [usize; 4] = weight.dims();
        let [_, _, oh, ow]: [usize; 4] = output.dims();
        Self { n, c, h, w, o, kh, kw, oh, ow, options: options.clone() }
    }

    /// Calls `f(x index, weight index, output index)` for every multiply of the convolution.
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (cg, og) = (self.c / self.options.groups, self.o / self.options.groups);
        let at = |pos: usize, k: usize, axis: usize, size: usize| {
            let o = &self.options;
            let i = (pos * o.stride[axis] + k * o.dilation[axis]) as isize - o.padding[axis].0 as isize;
            (i >= 0 && (i as usize) < size).then_some(i as usize)
        };
        for n in 0..self.n {
            for oc in 0..self.o {
                let group = oc / og;
                for ci in 0..cg {
                    let ic = group * cg + ci;
                    for ky in 0..self.kh {
                        for kx in 0..self.kw {
                            let wi = ((oc * cg + ci) * self.kh + ky) * self.kw + kx;
                            for oy in 0..self.oh {
                                let Some(iy) = at(oy, ky, 0, self.h) else { continue };
                                for ox in 0..self.ow {
                                    let Some(ix) = at(ox, kx, 1, self.w) else { continue };
                                    let xi = ((n * self.c + ic) * self.h + iy) * self.w + ix;
                                    f(xi, wi, ((n * self.o + oc) * self.oh + oy) * self.ow + ox);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dx[x] = Σ w[wi] dy[y]` over the taps that read `x`.
pub fn conv2d_x_backward(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: &ConvOptions<2>) -> FlexTensor {
    let g = Conv::new(&x.shape(), &weight.shape(), &output_grad.shape(), options);
    let (wv, dy) = (values(&weight), values(&output_grad));
    let mut dx = vec![0f64; g.n * g.c * g.h * g.w];
    g.for_each_tap(|xi, wi, yi| dx[xi] += wv[wi] * dy[yi]);
    tensor(dx, &[g.n, g.c, g.h, g.w])
}

/// `dw[w] = Σ x[xi] dy[y]` over the taps of weight `w`.
pub fn conv2d_weight_backward(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: &ConvOptions<2>) -> FlexTensor {
    let g = Conv::new(&x.shape(), &weight.shape(), &output_grad.shape(), options);
    let (xv, dy) = (values(&x), values(&output_grad));
    let mut dw = vec![0f64; weight.shape().num_elements()];
    g.for_each_tap(|xi, wi, yi| dw[wi] += xv[xi] * dy[yi]);
    tensor(dw, weight.shape().as_slice())
}

/// `(samples, channels, spatial)` of a `[N, C, ...]` tensor.
fn planes(shape: &Shape) -> (usize, usize, usize) {
    let dims = shape.as_slice();
    (dims[0], dims[1], dims[2..].iter().product::<usize>().max(1))
}

/// The flat indices of channel `ch` of `[N, C, S]` data.
fn channel((n, c, s): (usize, usize, usize), ch: usize) -> impl Iterator<Item = usize> {
    (0..n).flat_map(move |i| ((i * c + ch) * s)..((i * c + ch) * s + s))
}

/// `out = (x - μ) / sqrt(σ² + ε) γ + β` with given statistics.
pub fn batch_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, mean: FlexTensor, variance: FlexTensor, epsilon: f64) -> FlexTensor {
    let shape = x.shape();
    let dims = planes(&shape);
    let (xv, gv, bv, mv, vv) = (values(&x), values(&gamma), values(&beta), values(&mean), values(&variance));
    let mut out = vec![0f64; xv.len()];
    for ch in 0..dims.1 {
        let inv = 1.0 / (vv[ch] + epsilon).sqrt();
        for j in channel(dims, ch) {
            out[j] = (xv[j] - mv[ch]) * inv * gv[ch] + bv[ch];
        }
    }
    tensor(out, shape.as_slice())
}

/// Training batch norm: `(output, batch mean, biased batch variance)`.
pub fn batch_norm_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dims = planes(&x.shape());
    let xv = values(&x);
    let m = (dims.0 * dims.2) as f64;
    let mean: Vec<f64> = (0..dims.1).map(|ch| channel(dims, ch).map(|j| xv[j]).sum::<f64>() / m).collect();
    let var: Vec<f64> = (0..dims.1).map(|ch| channel(dims, ch).map(|j| (xv[j] - mean[ch]).powi(2)).sum::<f64>() / m).collect();
    let (mt, vt) = (tensor(mean, &[dims.1]), tensor(var, &[dims.1]));
    (batch_norm(x, gamma, beta, mt.clone(), vt.clone(), epsilon), mt, vt)
}

/// Training batch norm backward: `(dx, dγ, dβ)` with `x̂ = (x - μ)/σ`, `dβ = Σ dy`,
/// `dγ = Σ dy x̂`, `dx = γ/σ (dy - dβ/M - x̂ dγ/M)`.
pub fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let dims = planes(&shape);
    let (xv, gv, mv, vv, dy) = (values(&x), values(&gamma), values(&mean), values(&variance), values(&output_grad));
    let m = (dims.0 * dims.2) as f64;
    let (mut dx, mut dgamma, mut dbeta) = (vec![0f64; xv.len()], vec![0f64; dims.1], vec![0f64; dims.1]);
    for ch in 0..dims.1 {
        let inv = 1.0 / (vv[ch] + epsilon).sqrt();
        let xhat = |j: usize| (xv[j] - mv[ch]) * inv;
        dbeta[ch] = channel(dims, ch).map(|j| dy[j]).sum();
        dgamma[ch] = channel(dims, ch).map(|j| dy[j] * xhat(j)).sum();
        for j in channel(dims, ch) {
            dx[j] = gv[ch] * inv * (dy[j] - dbeta[ch] / m - xhat(j) * dgamma[ch] / m);
        }
    }
    (tensor(dx, shape.as_slice()), tensor(dgamma, &[dims.1]), tensor(dbeta, &[dims.1]))
}
