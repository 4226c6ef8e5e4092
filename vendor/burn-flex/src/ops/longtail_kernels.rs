//! longtail's CPU kernels for the hot operations of convolutional training (a patch on
//! burn-flex 0.22.1; see PATCHES.md at the crate root).
//!
//! Burn's defaults express the convolution input gradient as a transposed convolution, the
//! weight gradient as a convolution over batch-transposed tensors, and batch norm as chains of
//! reshapes and reductions. On ResNet-32 at batch 128 these dominated a training step. Here:
//!
//! - convolution forward, input gradient and weight gradient are per-sample `im2col` /
//!   `col2im` passes around one `gemm` call each, parallel across samples (a thread-local
//!   column buffer, single-threaded gemm per sample; one parallel gemm when the batch is smaller
//!   than the thread pool), for any stride, padding (symmetric or not), dilation and groups;
//!   3x3 stride-1 convolutions padded by 1 on rows a multiple of 16 wide (or 8 wide, with an
//!   even height) go to the direct AVX-512 kernels of `longtail_direct_conv` instead when the
//!   CPU has them;
//! - batch norm (inference, training, training backward) are per-channel passes: statistics in
//!   f64 in parallel over channels, then one fused elementwise pass in parallel over samples;
//! - ReLU and its gradient run in parallel over 32K-element chunks, in place when an operand is
//!   uniquely owned (burn-flex ran them on one thread).
//!
//! Only `f32` runs natively; bf16 and f16 go through `f32` and back. `module.rs` sends `f64`
//! tensors to `longtail_f64` instead (computing them here would round them to `f32`).

use alloc::vec;
use alloc::vec::Vec;

use burn_backend::{DType, TensorMetadata};
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape, bf16, f16};
use half::slice::HalfFloatSliceExt;

use crate::{FlexTensor, Layout};

#[cfg(all(feature = "std", target_arch = "x86_64"))]
use super::longtail_direct_conv as direct_conv;

#[cfg(feature = "rayon")]
use rayon::prelude::*;

// ============================================================================
// Tensor helpers
// ============================================================================

/// The `f32` values of a tensor: its own storage when it is contiguous `f32` (no copy),
/// otherwise a contiguous `f32` copy.
enum Values {
    Shared(FlexTensor),
    Owned(Vec<f32>),
}

impl core::ops::Deref for Values {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Values::Shared(t) => t.as_slice::<f32>().expect("contiguous f32"),
            Values::Owned(v) => v,
        }
    }
}

fn values(t: &FlexTensor) -> Values {
    let t = t.to_contiguous();
    match t.dtype() {
        DType::F32 => Values::Shared(t),
        DType::BF16 | DType::F16 => Values::Owned(half_values(&t)),
        _ => Values::Owned(t.into_data().convert::<f32>().try_into_vec::<f32>().expect("convertible to f32")),
    }
}

/// A contiguous tensor of `shape` in `dtype` from `f32` values.
fn tensor(values: Vec<f32>, shape: Vec<usize>, dtype: DType) -> FlexTensor {
    let shape = Shape::from(shape);
    match dtype {
        DType::F32 => FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), DType::F32),
        DType::BF16 | DType::F16 => half_tensor(&values, shape, dtype),
        _ => FlexTensor::from_data(FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), DType::F32).into_data().convert_dtype(dtype)),
    }
}

// ============================================================================
// 16-bit floats <-> f32 (mixed precision: every 16-bit convolution computes in f32)
// ============================================================================

/// Values per parallel task of a conversion.
const CONVERT_GRAIN: usize = 1 << 16;

/// `half`'s slice conversions (F16C instructions for f16 where the CPU has them), in parallel
/// over chunks.
fn half_to_f32<H: Sync>(src: &[H]) -> Vec<f32>
where
    [H]: HalfFloatSliceExt,
{
    let mut out = uninit_f32(src.len());
    #[cfg(feature = "rayon")]
    out.par_chunks_mut(CONVERT_GRAIN).zip(src.par_chunks(CONVERT_GRAIN)).for_each(|(o, i)| i.convert_to_f32_slice(o));
    #[cfg(not(feature = "rayon"))]
    src.convert_to_f32_slice(&mut out);
    out
}

/// f32 to a 16-bit type, rounding to nearest even.
fn f32_to_half<H: Send + Default + Clone>(src: &[f32]) -> Vec<H>
where
    [H]: HalfFloatSliceExt,
{
    let mut out = vec![H::default(); src.len()];
    #[cfg(feature = "rayon")]
    out.par_chunks_mut(CONVERT_GRAIN).zip(src.par_chunks(CONVERT_GRAIN)).for_each(|(o, i)| o.convert_from_f32_slice(i));
    #[cfg(not(feature = "rayon"))]
    out.convert_from_f32_slice(src);
    out
}

/// The values of a contiguous bf16 / f16 tensor as f32.
fn half_values(t: &FlexTensor) -> Vec<f32> {
    match t.dtype() {
        DType::BF16 => half_to_f32::<bf16>(t.storage()),
        DType::F16 => half_to_f32::<f16>(t.storage()),
        other => unreachable!("half_values of {other:?}"),
    }
}

/// A contiguous bf16 / f16 (`dtype`) tensor of `shape` from f32 values.
fn half_tensor(values: &[f32], shape: Shape, dtype: DType) -> FlexTensor {
    let bytes = match dtype {
        DType::BF16 => Bytes::from_elems(f32_to_half::<bf16>(values)),
        DType::F16 => Bytes::from_elems(f32_to_half::<f16>(values)),
        other => unreachable!("half_tensor in {other:?}"),
    };
    FlexTensor::new(bytes, Layout::contiguous(shape), dtype)
}

/// `float_cast` between f32 and bf16 / f16 with the conversions above; `None` for other pairs.
pub fn cast_half(t: &FlexTensor, target: DType) -> Option<FlexTensor> {
    let to_half = match (t.dtype(), target) {
        (DType::F32, DType::BF16 | DType::F16) => true,
        (DType::BF16 | DType::F16, DType::F32) => false,
        _ => return None,
    };
    let shape = t.layout().shape().clone();
    let t = t.to_contiguous();
    Some(if to_half {
        half_tensor(t.storage(), shape, target)
    } else {
        FlexTensor::new(Bytes::from_elems(half_values(&t)), Layout::contiguous(shape), DType::F32)
    })
}

/// A vector of `len` values that the caller overwrites completely before reading (skips the
/// zero fill: a calloc of reused memory is a memset, a few percent of a training step).
#[allow(clippy::uninit_vec)]
fn uninit_f32(len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: f32 has no invalid bit patterns, and every caller writes every element it reads
    // first (a GEMM with `accumulate = false`, im2col, a row copy, or an elementwise pass over
    // the whole buffer).
    unsafe { v.set_len(len) };
    v
}

fn threads() -> usize {
    #[cfg(feature = "rayon")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "rayon"))]
    return 1;
}

/// Runs `f(index, chunk, scratch)` over `chunk_len`-sized chunks of `out`, in parallel when
/// rayon is enabled, with one `scratch` buffer per worker (uninitialised: `f` writes what it reads).
fn for_each_chunk<F>(out: &mut [f32], chunk_len: usize, scratch_len: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>) + Send + Sync,
{
    #[cfg(feature = "rayon")]
    out.par_chunks_mut(chunk_len).enumerate().for_each_init(|| uninit_f32(scratch_len), |scratch, (i, chunk)| f(i, chunk, scratch));
    #[cfg(not(feature = "rayon"))]
    {
        let mut scratch = uninit_f32(scratch_len);
        for (i, chunk) in out.chunks_mut(chunk_len).enumerate() {
            f(i, chunk, &mut scratch);
        }
    }
}

// ============================================================================
// Elementwise passes (ReLU and its gradient)
// ============================================================================

/// Elements below which an elementwise pass stays on one thread, and the size of each parallel
/// task above it (PyTorch's grain is 32768).
const ELEMENTWISE_GRAIN: usize = 1 << 15;

/// `a[i] = f(a[i])`, in parallel over chunks when the slice is large.
fn map_inplace(a: &mut [f32], f: impl Fn(f32) -> f32 + Send + Sync) {
    #[cfg(feature = "rayon")]
    if a.len() >= 2 * ELEMENTWISE_GRAIN && threads() > 1 {
        a.par_chunks_mut(ELEMENTWISE_GRAIN).for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
        return;
    }
    a.iter_mut().for_each(|v| *v = f(*v));
}

/// `a[i] = f(a[i], b[i])`, in parallel over chunks when the slices are large.
fn zip_inplace(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Send + Sync) {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(feature = "rayon")]
    if a.len() >= 2 * ELEMENTWISE_GRAIN && threads() > 1 {
        a.par_chunks_mut(ELEMENTWISE_GRAIN)
            .zip(b.par_chunks(ELEMENTWISE_GRAIN))
            .for_each(|(x, y)| x.iter_mut().zip(y).for_each(|(u, &v)| *u = f(*u, v)));
        return;
    }
    a.iter_mut().zip(b).for_each(|(u, &v)| *u = f(*u, v));
}

/// `f(a[i], b[i])` into a new vector (one pass), in parallel over chunks when large.
fn zip_to_vec(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Send + Sync) -> Vec<f32> {
    debug_assert_eq!(a.len(), b.len());
    let mut out = uninit_f32(a.len());
    let pass = |o: &mut [f32], x: &[f32], y: &[f32]| o.iter_mut().zip(x).zip(y).for_each(|((o, &u), &v)| *o = f(u, v));
    #[cfg(feature = "rayon")]
    if a.len() >= 2 * ELEMENTWISE_GRAIN && threads() > 1 {
        out.par_chunks_mut(ELEMENTWISE_GRAIN)
            .zip(a.par_chunks(ELEMENTWISE_GRAIN).zip(b.par_chunks(ELEMENTWISE_GRAIN)))
            .for_each(|(o, (x, y))| pass(o, x, y));
        return out;
    }
    pass(&mut out, a, b);
    out
}

/// `max(x, 0)` keeping NaN (as PyTorch does).
#[inline(always)]
fn relu_value(x: f32) -> f32 {
    if x.is_nan() || x > 0.0 { x } else { 0.0 }
}

/// ReLU of a contiguous `f32` tensor, in place when it is uniquely owned, else into a new
/// buffer, in parallel when large; `Err` gives other dtypes and layouts back for the generic pass.
pub fn relu(mut t: FlexTensor) -> Result<FlexTensor, FlexTensor> {
    if t.dtype() != DType::F32 {
        return Err(t);
    }
    match t.layout().contiguous_offsets() {
        Some((0, end)) if t.is_unique() => {
            map_inplace(&mut t.storage_mut::<f32>()[..end], relu_value);
            Ok(t)
        }
        Some((start, end)) => {
            let x = &t.storage::<f32>()[start..end];
            let out = zip_to_vec(x, x, |v, _| relu_value(v));
            Ok(FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(t.layout().shape().clone()), DType::F32))
        }
        None => Err(t),
    }
}

/// ReLU's gradient `grad * (output > 0)` (NaN outputs keep the gradient) for contiguous `f32`
/// operands of one shape, written into whichever operand is uniquely owned, in parallel when
/// large (into a new buffer when neither is); `Err` gives the operands back for the generic pass.
pub fn relu_backward(mut output: FlexTensor, mut grad: FlexTensor) -> Result<FlexTensor, (FlexTensor, FlexTensor)> {
    if output.dtype() != DType::F32 || grad.dtype() != DType::F32 || output.shape() != grad.shape() {
        return Err((output, grad));
    }
    let (Some((os, oe)), Some((gs, ge))) = (output.layout().contiguous_offsets(), grad.layout().contiguous_offsets()) else {
        return Err((output, grad));
    };
    let keep = |g: f32, out: f32| if out.is_nan() || out > 0.0 { g } else { 0.0 };
    if gs == 0 && grad.is_unique() {
        let o: &[f32] = &output.storage::<f32>()[os..oe];
        zip_inplace(&mut grad.storage_mut::<f32>()[..ge], o, keep);
        return Ok(grad);
    }
    if os == 0 && output.is_unique() {
        let g: &[f32] = &grad.storage::<f32>()[gs..ge];
        zip_inplace(&mut output.storage_mut::<f32>()[..oe], g, |out, g| keep(g, out));
        return Ok(output);
    }
    let out = zip_to_vec(&grad.storage::<f32>()[gs..ge], &output.storage::<f32>()[os..oe], keep);
    Ok(FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(grad.layout().shape().clone()), DType::F32))
}

// ============================================================================
// GEMM
// ============================================================================

/// A strided matrix operand: `at(i, j) = ptr[i * row + j * col]`.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    row: isize,
    col: isize,
}

/// `dst (m x n) = [dst +] lhs (m x k) * rhs (k x n)`, all operands strided.
#[allow(clippy::too_many_arguments)]
fn gemm(m: usize, n: usize, k: usize, dst: *mut f32, dst_strides: (isize, isize), accumulate: bool, lhs: Mat, rhs: Mat, parallel: bool) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: (i, j) is inside the m x n destination the caller sized.
                    unsafe { *dst.offset(i as isize * dst_strides.0 + j as isize * dst_strides.1) = 0.0 };
                }
            }
        }
        return;
    }
    let par = if parallel && threads() > 1 {
        #[cfg(feature = "rayon")]
        {
            gemm::Parallelism::Rayon(0)
        }
        #[cfg(not(feature = "rayon"))]
        {
            gemm::Parallelism::None
        }
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index reached by (m, n, k) and the strides lies inside the buffers the
    // callers pass: each caller derives them from the same shapes it sized its buffers with.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_strides.1,
            dst_strides.0,
            accumulate,
            lhs.ptr,
            lhs.col,
            lhs.row,
            rhs.ptr,
            rhs.col,
            rhs.row,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

// ============================================================================
// Convolution
// ============================================================================

/// The geometry of a 2-D convolution (one group: `cg` input, `og` output channels).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Geometry {
    fn new(x: &Shape, weight: &Shape, options: &ConvOptions<2>) -> Self {
        let [n, c, h, w]: [usize; 4] = x.dims();
        let [o, _, kh, kw]: [usize; 4] = weight.dims();
        let span = |size: usize, k: usize, d: usize, (b, e): (usize, usize), s: usize| (size + b + e - d * (k - 1) - 1) / s + 1;
        Self {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            oh: span(h, kh, options.dilation[0], options.padding[0], options.stride[0]),
            ow: span(w, kw, options.dilation[1], options.padding[1], options.stride[1]),
            stride: options.stride,
            pad: [options.padding[0].0, options.padding[1].0],
            dilation: options.dilation,
            groups: options.groups,
        }
    }
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Rows of a group's column matrix: `cg * kh * kw`.
    fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    fn positions(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1x1, stride-1, unpadded convolution needs no im2col: the input is the column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0] && self.oh == self.h && self.ow == self.w
    }
    #[inline]
    fn in_y(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize - self.pad[0] as isize;
        (iy >= 0 && (iy as usize) < self.h).then_some(iy as usize)
    }
    /// The range of output columns whose input column (kernel column `kx`) is inside the image:
    /// `ox` in `lo..hi` maps to `ix = ox * stride + off`, every other `ox` reads padding.
    #[inline]
    fn column_range(&self, kx: usize) -> (usize, usize, isize) {
        let s = self.stride[1] as isize;
        let off = (kx * self.dilation[1]) as isize - self.pad[1] as isize;
        let lo = if off >= 0 { 0 } else { ((-off + s - 1) / s) as usize };
        let room = self.w as isize - off;
        let hi = if room <= 0 { 0 } else { (((room + s - 1) / s) as usize).min(self.ow) };
        (lo.min(hi), hi, off)
    }
}

/// `col [cg*kh*kw, oh*ow]` of one group of one sample (`x` = that sample's `[C, H, W]`),
/// written with row stride `ld` from column `offset` (so several samples can share one matrix).
fn im2col(g: &Geometry, x: &[f32], group: usize, col: &mut [f32], ld: usize, offset: usize) {
    let p = g.positions();
    for ci in 0..g.cg() {
        let plane = &x[(group * g.cg() + ci) * g.h * g.w..][..g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut col[((ci * g.kh + ky) * g.kw + kx) * ld + offset..][..p];
                if g.stride == [1, 1] && g.ow == g.w {
                    shifted_plane(g, plane, ky, kx, row);
                    continue;
                }
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    let Some(iy) = g.in_y(oy, ky) else {
                        out.fill(0.0);
                        continue;
                    };
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    let (lo, hi, off) = g.column_range(kx);
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    if hi > lo {
                        let start = (lo as isize * g.stride[1] as isize + off) as usize;
                        if g.stride[1] == 1 {
                            out[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                        } else {
                            out[lo..hi].iter_mut().zip(src[start..].iter().step_by(g.stride[1])).for_each(|(v, &x)| *v = x);
                        }
                    }
                }
            }
        }
    }
}

/// One kernel tap `(ky, kx)` of a stride-1 convolution whose output rows are as wide as its
/// input rows (a "same" convolution): its im2col row is the input plane shifted by
/// `dy * w + dx`, so the valid output positions `a..b` read the input positions
/// `src..src + (b - a)` in one contiguous run. Inside that run the border columns (`ox < lo` or
/// `ox >= hi`, at most the padding wide) wrap around to the neighbouring input row; rows outside
/// `ylo..yhi` read padding. `None` when the tap reads only padding.
struct ShiftedTap {
    w: usize,
    ylo: usize,
    yhi: usize,
    lo: usize,
    hi: usize,
    a: usize,
    b: usize,
    src: usize,
}

impl ShiftedTap {
    fn new(g: &Geometry, ky: usize, kx: usize) -> Option<Self> {
        let w = g.w;
        let dy = (ky * g.dilation[0]) as isize - g.pad[0] as isize;
        let ylo = ((-dy).max(0) as usize).min(g.oh);
        let yhi = ((g.h as isize - dy).max(0) as usize).min(g.oh).max(ylo);
        let (lo, hi, dx) = g.column_range(kx);
        if yhi == ylo || hi == lo {
            return None;
        }
        // the first valid position is (ylo, lo), reading (ylo + dy, lo + dx); the last is
        // (yhi - 1, hi - 1), reading (yhi - 1 + dy, hi - 1 + dx): both inside the plane
        let (a, b) = (ylo * w + lo, (yhi - 1) * w + hi);
        let src = (a as isize + dy * w as isize + dx) as usize;
        Some(Self { w, ylo, yhi, lo, hi, a, b, src })
    }

    /// Zeroes the border columns of the valid rows: one strided pass per column.
    fn zero_borders(&self, row: &mut [f32]) {
        let w = self.w;
        for c in (0..self.lo).chain(self.hi..w) {
            row[self.ylo * w + c..self.yhi * w].iter_mut().step_by(w).for_each(|v| *v = 0.0);
        }
    }
}

/// im2col row of tap `(ky, kx)` (see [`ShiftedTap`]): one `memcpy` of the valid run, then the
/// padding entries zeroed, instead of one `memcpy` per output row (8-32 values in a CIFAR
/// ResNet). Equal to the per-row loop of `im2col`.
fn shifted_plane(g: &Geometry, plane: &[f32], ky: usize, kx: usize, row: &mut [f32]) {
    let Some(t) = ShiftedTap::new(g, ky, kx) else {
        row.fill(0.0);
        return;
    };
    row[..t.ylo * t.w].fill(0.0);
    row[t.yhi * t.w..].fill(0.0);
    row[t.a..t.b].copy_from_slice(&plane[t.src..t.src + (t.b - t.a)]);
    t.zero_borders(row);
}

/// The transpose of `shifted_plane` for col2im: zeroes the row's border entries (they read
/// padding, and in the contiguous pass they would land on the neighbouring input row), then adds
/// the valid run into the input plane in one pass.
fn add_shifted_plane(g: &Geometry, row: &mut [f32], ky: usize, kx: usize, plane: &mut [f32]) {
    let Some(t) = ShiftedTap::new(g, ky, kx) else { return };
    t.zero_borders(row);
    plane[t.src..t.src + (t.b - t.a)].iter_mut().zip(&row[t.a..t.b]).for_each(|(d, &v)| *d += v);
}

/// Adds `col [cg*kh*kw, oh*ow]` back into one group of one sample's `dx [C, H, W]`.
/// `col` is scratch: the shifted-plane path zeroes the entries that fall on padding.
fn col2im(g: &Geometry, col: &mut [f32], group: usize, dx: &mut [f32]) {
    let p = g.positions();
    for ci in 0..g.cg() {
        let plane = &mut dx[(group * g.cg() + ci) * g.h * g.w..][..g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut col[((ci * g.kh + ky) * g.kw + kx) * p..][..p];
                if g.stride == [1, 1] && g.ow == g.w {
                    add_shifted_plane(g, row, ky, kx, plane);
                    continue;
                }
                let row = &*row;
                for oy in 0..g.oh {
                    let Some(iy) = g.in_y(oy, ky) else { continue };
                    let src = &row[oy * g.ow..(oy + 1) * g.ow];
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let (lo, hi, off) = g.column_range(kx);
                    if hi > lo {
                        let start = (lo as isize * g.stride[1] as isize + off) as usize;
                        if g.stride[1] == 1 {
                            dst[start..start + hi - lo].iter_mut().zip(&src[lo..hi]).for_each(|(a, &b)| *a += b);
                        } else {
                            dst[start..].iter_mut().step_by(g.stride[1]).zip(&src[lo..hi]).for_each(|(a, &b)| *a += b);
                        }
                    }
                }
            }
        }
    }
}

fn row_major(ptr: *const f32, cols: usize) -> Mat {
    Mat { ptr, row: cols as isize, col: 1 }
}

/// The transpose of a row-major matrix with `cols` columns.
fn transposed(ptr: *const f32, cols: usize) -> Mat {
    Mat { ptr, row: 1, col: cols as isize }
}

/// Samples per weight-gradient GEMM (their columns side by side, so K is large).
const BLOCK: usize = 8;

/// Convolution forward: per sample and group, `out^T [p, og] = col^T [p, k] * W^T [k, og]`
/// (positions as the large GEMM dimension), written straight into NCHW.
pub fn conv2d(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    let g = Geometry::new(&x.shape(), &weight.shape(), options);
    let dtype = x.dtype();
    let (xv, wv) = (values(&x), values(&weight));
    let bv = bias.as_ref().map(values);
    let (k, p, og) = (g.k(), g.positions(), g.og());
    let per_sample = g.o * p;
    // every element is written by its group's GEMM (accumulate = false) or the direct kernel
    let mut out = uninit_f32(g.n * per_sample);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(layout) = direct_layout(&g, options) {
        let padded = layout.padded_len(g.c, g.h, g.w);
        for_each_chunk(&mut out, per_sample, padded, |n, out_n, xp| {
            layout.pad(&xv[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w], g.c, g.h, g.w, xp);
            // SAFETY: `direct_layout` checked AVX-512F and the plane shape; the buffers are sized
            // from the same geometry.
            unsafe { layout.forward(xp, g.c, g.h, g.w, &wv, g.o, out_n) };
            if let Some(b) = &bv {
                add_bias(out_n, b, p);
            }
        });
        return tensor(out, vec![g.n, g.o, g.oh, g.ow], dtype);
    }
    let parallel_gemm = g.n < threads();
    let scratch = if g.pointwise() { 0 } else { k * p };
    for_each_chunk(&mut out, per_sample, scratch, |n, out_n, col| {
        let x_n = &xv[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w];
        for group in 0..g.groups {
            let cols: &[f32] = if g.pointwise() {
                &x_n[group * k * p..(group + 1) * k * p]
            } else {
                im2col(&g, x_n, group, col, p, 0);
                col
            };
            let w = &wv[group * og * k..];
            let dst = out_n[group * og * p..].as_mut_ptr();
            gemm(p, og, k, dst, (1, p as isize), false, transposed(cols.as_ptr(), p), transposed(w.as_ptr(), k), parallel_gemm);
        }
        if let Some(b) = &bv {
            add_bias(out_n, b, p);
        }
    });
    tensor(out, vec![g.n, g.o, g.oh, g.ow], dtype)
}

/// Adds `bias[o]` to plane `o` (`p` values) of one sample's output.
fn add_bias(out_n: &mut [f32], bias: &[f32], p: usize) {
    for (plane, &b) in out_n.chunks_mut(p).zip(bias) {
        plane.iter_mut().for_each(|v| *v += b);
    }
}

/// The direct 3x3 kernels ([`direct_conv`]) that compute this convolution, if any: one group,
/// 3x3, stride 1, dilation 1, padding 1 on every side, rows a multiple of 16 wide or 8-wide rows
/// in pairs, AVX-512F.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn direct_layout(g: &Geometry, options: &ConvOptions<2>) -> Option<direct_conv::Layout> {
    let fits = g.groups == 1
        && (g.kh, g.kw) == (3, 3)
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && options.padding == [(1, 1), (1, 1)]
        && (g.oh, g.ow) == (g.h, g.w);
    if !fits || !direct_conv::available() {
        return None;
    }
    direct_conv::Layout::of(g.h, g.w)
}

/// Input gradient: per sample and group, `dcol^T [p, k] = dy^T [p, og] * W [og, k]`, then col2im.
pub fn conv2d_x_backward(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: &ConvOptions<2>) -> FlexTensor {
    let g = Geometry::new(&x.shape(), &weight.shape(), options);
    let dtype = x.dtype();
    let (wv, dy) = (values(&weight), values(&output_grad));
    let (k, p, og) = (g.k(), g.positions(), g.og());
    let per_sample = g.c * g.h * g.w;
    // zeroed per sample inside the parallel pass (col2im accumulates), while it is in cache;
    // written whole by the direct kernel
    let mut dx = uninit_f32(g.n * per_sample);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(layout) = direct_layout(&g, options) {
        // the gradient of a stride-1 "same" 3x3 convolution: the same convolution of the
        // padded output gradient with the kernel flipped and its channel axes swapped
        let wt = direct_conv::flipped_transposed(&wv, g.o, g.c);
        let padded = layout.padded_len(g.o, g.h, g.w);
        for_each_chunk(&mut dx, per_sample, padded, |n, dx_n, dyp| {
            layout.pad(&dy[n * g.o * p..(n + 1) * g.o * p], g.o, g.h, g.w, dyp);
            // SAFETY: as in `conv2d`.
            unsafe { layout.forward(dyp, g.o, g.h, g.w, &wt, g.c, dx_n) };
        });
        return tensor(dx, vec![g.n, g.c, g.h, g.w], dtype);
    }
    let parallel_gemm = g.n < threads();
    let scratch = if g.pointwise() { 0 } else { k * p };
    for_each_chunk(&mut dx, per_sample, scratch, |n, dx_n, col| {
        if !g.pointwise() {
            dx_n.fill(0.0);
        }
        let dy_n = &dy[n * g.o * p..(n + 1) * g.o * p];
        for group in 0..g.groups {
            let w = row_major(wv[group * og * k..].as_ptr(), k);
            let dyt = transposed(dy_n[group * og * p..].as_ptr(), p);
            if g.pointwise() {
                let dst = dx_n[group * k * p..].as_mut_ptr();
                gemm(p, k, og, dst, (1, p as isize), false, dyt, w, parallel_gemm);
            } else {
                gemm(p, k, og, col.as_mut_ptr(), (1, p as isize), false, dyt, w, parallel_gemm);
                col2im(&g, col, group, dx_n);
            }
        }
    });
    tensor(dx, vec![g.n, g.c, g.h, g.w], dtype)
}

/// Weight gradient: per group and block of samples,
/// `dW^T [k, og] += col_block [k, B p] * dy_block^T [B p, og]`; each worker sums its samples.
pub fn conv2d_weight_backward(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: &ConvOptions<2>) -> FlexTensor {
    let g = Geometry::new(&x.shape(), &weight.shape(), options);
    let dtype = weight.dtype();
    let (xv, dy) = (values(&x), values(&output_grad));
    let (k, p, og) = (g.k(), g.positions(), g.og());
    // each worker sums the gradient of one contiguous range of samples
    let workers = threads().min(g.n).max(1);
    let per_worker = g.n.div_ceil(workers);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(layout) = direct_layout(&g, options) {
        // per worker: a [O][C][9][16] lane sum over its samples, reduced at the end
        let lanes = g.o * k * direct_conv::LANES;
        let mut sums = vec![0f32; workers * lanes];
        let padded = layout.padded_len(g.c, g.h, g.w);
        let chunk = layout.grad_samples(g.h, g.w);
        for_each_chunk(&mut sums, lanes, chunk * padded, |t, sums_t, xp| {
            let (first, end) = (t * per_worker, ((t + 1) * per_worker).min(g.n));
            for n0 in (first..end).step_by(chunk) {
                let count = chunk.min(end - n0);
                for (i, n) in (n0..n0 + count).enumerate() {
                    layout.pad(&xv[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w], g.c, g.h, g.w, &mut xp[i * padded..(i + 1) * padded]);
                }
                // SAFETY: as in `conv2d`; samples n0..n0 + count are consecutive in `dy`.
                unsafe { layout.weight_grad(xp, &dy[n0 * g.o * p..(n0 + count) * g.o * p], count, g.c, g.h, g.w, g.o, sums_t) };
            }
        });
        let mut dw = vec![0f32; g.o * k];
        for part in sums.chunks(lanes) {
            direct_conv::reduce_lanes(part, &mut dw);
        }
        return tensor(dw, weight.shape().dims::<4>().to_vec(), dtype);
    }
    // each worker accumulates dW^T [k, o] row-major, transposed to [o, k] at the end; `gemm`
    // then runs the product transposed (M = og). A column-major [o, k] destination (M = k) was
    // measured 1.6x slower for the whole training step (it packs the [k, B p] column block)
    let size = g.o * k;
    let block = BLOCK.min(per_worker).max(1);
    let mut partials = vec![0f32; workers * size];
    let parallel_gemm = g.n < threads();
    // scratch: a column block [k, block * p] followed by a gradient block [og, block * p]
    let scratch = k * block * p + block * p * og;
    for_each_chunk(&mut partials, size, scratch, |t, dw, buf| {
        let (cols, dyb) = buf.split_at_mut(k * block * p);
        let samples: Vec<usize> = (t * per_worker..((t + 1) * per_worker).min(g.n)).collect();
        for chunk in samples.chunks(block) {
            let ld = chunk.len() * p;
            for group in 0..g.groups {
                for (b, &n) in chunk.iter().enumerate() {
                    let x_n = &xv[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w];
                    if g.pointwise() {
                        for r in 0..k {
                            cols[r * ld + b * p..][..p].copy_from_slice(&x_n[(group * k + r) * p..][..p]);
                        }
                    } else {
                        im2col(&g, x_n, group, cols, ld, b * p);
                    }
                    let dy_g = &dy[(n * g.o + group * og) * p..][..og * p];
                    for o in 0..og {
                        dyb[o * ld + b * p..][..p].copy_from_slice(&dy_g[o * p..(o + 1) * p]);
                    }
                }
                let dst = dw[group * og..].as_mut_ptr();
                gemm(k, og, ld, dst, (g.o as isize, 1), true, row_major(cols.as_ptr(), ld), transposed(dyb.as_ptr(), ld), parallel_gemm);
            }
        }
    });
    let (dwt, rest) = partials.split_at_mut(size);
    for part in rest.chunks(size) {
        dwt.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    // [k, o] -> [o, k] (group-major: group g's columns g*og..(g+1)*og hold its og outputs)
    let mut dw = uninit_f32(size);
    for r in 0..k {
        for o in 0..g.o {
            dw[o * k + r] = dwt[r * g.o + o];
        }
    }
    tensor(dw, weight.shape().dims::<4>().to_vec(), dtype)
}

// ============================================================================
// Batch norm
// ============================================================================

/// `(samples, channels, spatial)` of a `[N, C, ...]` tensor.
fn nc_s(shape: &Shape) -> (usize, usize, usize) {
    let dims = shape.as_slice();
    let n = dims[0];
    let c = dims[1];
    (n, c, dims[2..].iter().product::<usize>().max(1))
}

/// Independent partial sums per reduction, which the compiler keeps in one vector register (a
/// single serial `+=` chain cannot be vectorised without reassociating it).
const LANES: usize = 16;

/// `(sum (v - sh), sum (v - sh)^2)`.
#[inline(always)]
fn shifted_moments_body(v: &[f32], sh: f32) -> (f32, f32) {
    let (mut s1, mut s2) = ([0f32; LANES], [0f32; LANES]);
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let d = c[l] - sh;
            s1[l] += d;
            s2[l] += d * d;
        }
    }
    let (mut x1, mut x2) = (s1.iter().sum::<f32>(), s2.iter().sum::<f32>());
    for &u in chunks.remainder() {
        let d = u - sh;
        x1 += d;
        x2 += d * d;
    }
    (x1, x2)
}

/// `(sum a, sum a * (b - sh))`.
#[inline(always)]
fn weighted_sums_body(a: &[f32], b: &[f32], sh: f32) -> (f32, f32) {
    let (mut s1, mut s2) = ([0f32; LANES], [0f32; LANES]);
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (u, v) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            s1[l] += u[l];
            s2[l] += u[l] * (v[l] - sh);
        }
    }
    let (mut x1, mut x2) = (s1.iter().sum::<f32>(), s2.iter().sum::<f32>());
    for (&u, &v) in ca.remainder().iter().zip(cb.remainder()) {
        x1 += u;
        x2 += u * (v - sh);
    }
    (x1, x2)
}

/// [`shifted_moments_body`] on 16-lane AVX-512 vectors (the auto-vectoriser shuffles lanes
/// around instead).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn shifted_moments_avx512(v: &[f32], sh: f32) -> (f32, f32) {
    use std::arch::x86_64::*;
    let full = v.len() / LANES * LANES;
    let shv = _mm512_set1_ps(sh);
    let (mut s1, mut s2) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let p = v.as_ptr();
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 <= v.len()
        let d = _mm512_sub_ps(unsafe { _mm512_loadu_ps(p.add(i)) }, shv);
        s1 = _mm512_add_ps(s1, d);
        s2 = _mm512_fmadd_ps(d, d, s2);
        i += LANES;
    }
    let (r1, r2) = shifted_moments_body(&v[full..], sh);
    (_mm512_reduce_add_ps(s1) + r1, _mm512_reduce_add_ps(s2) + r2)
}

/// [`weighted_sums_body`] on 16-lane AVX-512 vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weighted_sums_avx512(a: &[f32], b: &[f32], sh: f32) -> (f32, f32) {
    use std::arch::x86_64::*;
    let len = a.len().min(b.len());
    let full = len / LANES * LANES;
    let shv = _mm512_set1_ps(sh);
    let (mut s1, mut s2) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 <= len of both slices
        let (u, w) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
        s1 = _mm512_add_ps(s1, u);
        s2 = _mm512_fmadd_ps(u, _mm512_sub_ps(w, shv), s2);
        i += LANES;
    }
    let (r1, r2) = weighted_sums_body(&a[full..len], &b[full..len], sh);
    (_mm512_reduce_add_ps(s1) + r1, _mm512_reduce_add_ps(s2) + r2)
}

fn shifted_moments(v: &[f32], sh: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above).
        return unsafe { shifted_moments_avx512(v, sh) };
    }
    shifted_moments_body(v, sh)
}

fn weighted_sums(a: &[f32], b: &[f32], sh: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above).
        return unsafe { weighted_sums_avx512(a, b, sh) };
    }
    weighted_sums_body(a, b, sh)
}

/// Per-channel `(sum a, sum a*b)` over `[N, C, S]` data, in f64 across samples (f32 lanes within
/// one sample's plane), in parallel over channels.
fn channel_sums(n: usize, c: usize, s: usize, a: &[f32], b: Option<&[f32]>, shift: &[f64]) -> Vec<(f64, f64)> {
    let one = |ch: usize| {
        let (mut sa, mut sab) = (0f64, 0f64);
        let sh = shift[ch] as f32;
        for i in 0..n {
            let off = (i * c + ch) * s;
            let av = &a[off..off + s];
            let (x1, x2) = match b {
                // sum (a - shift) and sum (a - shift)^2
                None => shifted_moments(av, sh),
                // sum a and sum a * (b - shift)
                Some(b) => weighted_sums(av, &b[off..off + s], sh),
            };
            sa += x1 as f64;
            sab += x2 as f64;
        }
        (sa, sab)
    };
    #[cfg(feature = "rayon")]
    return (0..c).into_par_iter().map(one).collect();
    #[cfg(not(feature = "rayon"))]
    return (0..c).map(one).collect();
}

/// `out = x * scale[c] + shift[c]` (and, with `dy`, `out = dy * a[c] + x * b[c] + d[c]`).
fn channel_affine(n: usize, c: usize, s: usize, x: &[f32], scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut out = uninit_f32(n * c * s);
    for_each_chunk(&mut out, c * s, 0, |i, out_n, _| {
        let x_n = &x[i * c * s..(i + 1) * c * s];
        for ch in 0..c {
            let (a, b) = (scale[ch], shift[ch]);
            for (o, &v) in out_n[ch * s..(ch + 1) * s].iter_mut().zip(&x_n[ch * s..(ch + 1) * s]) {
                *o = v * a + b;
            }
        }
    });
    out
}

/// Inference batch norm with given statistics.
pub fn batch_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, mean: FlexTensor, variance: FlexTensor, epsilon: f64) -> FlexTensor {
    let shape = x.shape();
    let dtype = x.dtype();
    let (n, c, s) = nc_s(&shape);
    let (gv, bv, mv, vv) = (values(&gamma), values(&beta), values(&mean), values(&variance));
    let scale: Vec<f32> = (0..c).map(|ch| gv[ch] / (vv[ch] + epsilon as f32).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|ch| bv[ch] - mv[ch] * scale[ch]).collect();
    tensor(channel_affine(n, c, s, &values(&x), &scale, &shift), shape.as_slice().to_vec(), dtype)
}

/// Training batch norm: batch mean and biased variance per channel, then the affine pass.
/// Returns `(output, mean, variance)`.
pub fn batch_norm_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let dtype = x.dtype();
    let (n, c, s) = nc_s(&shape);
    let xv = values(&x);
    let m = (n * s) as f64;
    // shift by each channel's first value for a well-conditioned variance
    let first: Vec<f64> = (0..c).map(|ch| xv[ch * s] as f64).collect();
    let sums = channel_sums(n, c, s, &xv, None, &first);
    let mean: Vec<f64> = (0..c).map(|ch| first[ch] + sums[ch].0 / m).collect();
    let var: Vec<f64> = (0..c).map(|ch| (sums[ch].1 / m - (sums[ch].0 / m).powi(2)).max(0.0)).collect();
    let (gv, bv) = (values(&gamma), values(&beta));
    let scale: Vec<f32> = (0..c).map(|ch| (gv[ch] as f64 / (var[ch] + epsilon).sqrt()) as f32).collect();
    let shift: Vec<f32> = (0..c).map(|ch| (bv[ch] as f64 - mean[ch] * scale[ch] as f64) as f32).collect();
    let out = channel_affine(n, c, s, &xv, &scale, &shift);
    (
        tensor(out, shape.as_slice().to_vec(), dtype),
        tensor(mean.iter().map(|&v| v as f32).collect(), vec![c], dtype),
        tensor(var.iter().map(|&v| v as f32).collect(), vec![c], dtype),
    )
}

/// Training batch norm backward: `(x_grad, gamma_grad, beta_grad)` with `x̂ = (x - μ)/σ`,
/// `dβ = Σ dy`, `dγ = Σ dy x̂`, `dx = γ/σ (dy - dβ/M - x̂ dγ/M)`.
pub fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let dtype = x.dtype();
    let (n, c, s) = nc_s(&shape);
    let (xv, dy, gv) = (values(&x), values(&output_grad), values(&gamma));
    let mv: Vec<f64> = values(&mean).iter().map(|&v| v as f64).collect();
    let inv: Vec<f64> = values(&variance).iter().map(|&v| 1.0 / (v as f64 + epsilon).sqrt()).collect();
    let sums = channel_sums(n, c, s, &dy, Some(&xv), &mv);
    let m = (n * s) as f64;
    let dbeta: Vec<f64> = sums.iter().map(|s| s.0).collect();
    let dgamma: Vec<f64> = (0..c).map(|ch| sums[ch].1 * inv[ch]).collect();
    // dx = a dy + b x + d, with a = γσ⁻¹, b = -γσ⁻² dγ/M, d = -γσ⁻¹ dβ/M - μ b
    let a: Vec<f32> = (0..c).map(|ch| (gv[ch] as f64 * inv[ch]) as f32).collect();
    let b: Vec<f64> = (0..c).map(|ch| -(gv[ch] as f64) * inv[ch] * inv[ch] * dgamma[ch] / m).collect();
    let d: Vec<f32> = (0..c).map(|ch| (-(gv[ch] as f64) * inv[ch] * dbeta[ch] / m - mv[ch] * b[ch]) as f32).collect();
    let b: Vec<f32> = b.iter().map(|&v| v as f32).collect();
    let mut dx = uninit_f32(n * c * s);
    for_each_chunk(&mut dx, c * s, 0, |i, dx_n, _| {
        let off = i * c * s;
        for ch in 0..c {
            let r = ch * s..(ch + 1) * s;
            let (aa, bb, dd) = (a[ch], b[ch], d[ch]);
            for ((o, &g), &v) in dx_n[r.clone()].iter_mut().zip(&dy[off + r.start..off + r.end]).zip(&xv[off + r.start..off + r.end]) {
                *o = aa * g + bb * v + dd;
            }
        }
    });
    (
        tensor(dx, shape.as_slice().to_vec(), dtype),
        tensor(dgamma.iter().map(|&v| v as f32).collect(), vec![c], dtype),
        tensor(dbeta.iter().map(|&v| v as f32).collect(), vec![c], dtype),
    )
}
