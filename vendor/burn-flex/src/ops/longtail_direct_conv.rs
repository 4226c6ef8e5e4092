//! Direct 3x3 convolution kernels (stride 1, padding 1 on every side, dilation 1, one group,
//! `f32`, NCHW) with AVX-512, for rows a multiple of 16 values wide (the 16- and 32-channel
//! stages of a CIFAR ResNet, 32x32 and 16x16 planes) and for 8-wide rows taken two at a time
//! (its 64-channel stage, 8x8 planes). Part of longtail's patch (PATCHES.md).
//!
//! `im2col` + GEMM spends as long writing and reading the 9x larger column matrix as the GEMM
//! itself when there are only 16-32 channels, and the GEMM's `K = 9 C` is short. Here each
//! kernel reads a zero-padded copy of one sample's planes (`[C][H + 2][W + 2]`) straight into
//! registers, 16 output columns per vector:
//!
//! - forward: an `OB x R` block of accumulators (4 output channels x 4 output rows of 16
//!   columns), fed by `R + 2` input rows per input channel and kernel column, with the weights
//!   broadcast; 48 FMAs per 18 loads;
//! - input gradient: the same kernel on the padded output gradient with the kernel flipped
//!   and its two channel axes swapped (the gradient of a stride-1 "same" convolution is a
//!   "same" convolution);
//! - weight gradient: for 3 output channels and one input channel, 27 accumulators (one per
//!   kernel tap and channel) summed over the planes of 4 samples, then added into a per-worker
//!   vector sum that is reduced across lanes once at the end;
//! - 8-wide planes: the same three kernels with one vector holding two rows; the copy is padded
//!   above and below only, and the loads of the outer kernel columns mask off the lanes that
//!   would cross a row edge ([`Layout::Pairs`]).
//!
//! Every entry point checks for AVX-512F at run time ([`available`]); callers keep their
//! `im2col` path for everything else.

use core::arch::x86_64::*;

/// Output channels and output rows of the forward kernel's accumulator block.
const OB: usize = 4;
const ROWS: usize = 4;
/// Output channels per weight-gradient block (3 x 9 taps = 27 accumulators; 2 measured 15%
/// slower).
const WB: usize = 3;
/// Samples the weight gradient sums in registers before adding into its per-lane sums.
pub(crate) const GRAD_SAMPLES: usize = 4;
/// Lanes of an AVX-512 `f32` vector: the row width must be a multiple of it.
pub(crate) const LANES: usize = 16;

/// Whether the CPU has AVX-512F (checked once; `LONGTAIL_DIRECT_CONV=0` turns the kernels off,
/// for comparisons with the `im2col` path).
pub(crate) fn available() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("LONGTAIL_DIRECT_CONV").map_or(true, |v| v != "0") && std::arch::is_x86_feature_detected!("avx512f"))
}

/// `[C][H + 2][W + 2]` copy of one sample's `[C][H][W]` planes with a zero border.
pub(crate) fn pad_planes(x: &[f32], c: usize, h: usize, w: usize, xp: &mut [f32]) {
    let (hp, wp) = (h + 2, w + 2);
    for ci in 0..c {
        let dst = &mut xp[ci * hp * wp..(ci + 1) * hp * wp];
        dst[..wp].fill(0.0);
        dst[(hp - 1) * wp..].fill(0.0);
        for y in 0..h {
            let row = &mut dst[(y + 1) * wp..(y + 2) * wp];
            row[0] = 0.0;
            row[wp - 1] = 0.0;
            row[1..=w].copy_from_slice(&x[(ci * h + y) * w..][..w]);
        }
    }
}

/// The forward kernel's weights for the input gradient: `[C][O][3][3]` with
/// `wt[c][o][ky][kx] = w[o][c][2 - ky][2 - kx]`.
pub(crate) fn flipped_transposed(w: &[f32], o: usize, c: usize) -> alloc::vec::Vec<f32> {
    let mut wt = alloc::vec![0f32; o * c * 9];
    for oi in 0..o {
        for ci in 0..c {
            for t in 0..9 {
                wt[(ci * o + oi) * 9 + 8 - t] = w[(oi * c + ci) * 9 + t];
            }
        }
    }
    wt
}

/// Where a forward block reads and writes (raw pointers: the kernel is `unsafe` anyway).
#[derive(Clone, Copy)]
struct Block {
    xp: *const f32,
    c: usize,
    h: usize,
    w: usize,
    wt: *const f32,
    o0: usize,
    y0: usize,
    x0: usize,
    out: *mut f32,
}

/// Output channels `o0..o0 + B`, rows `y0..y0 + R`, columns `x0..x0 + 16` (`xp` from [`pad_planes`]).
#[target_feature(enable = "avx512f")]
unsafe fn forward_block<const B: usize, const R: usize>(at: Block) {
    let Block { xp, c, h, w, wt, o0, y0, x0, out } = at;
    let (hp, wp) = (h + 2, w + 2);
    let mut acc = [[_mm512_setzero_ps(); R]; B];
    // SAFETY (whole body): reads stay inside the padded planes (rows y0..y0 + R + 2 <= h + 2,
    // columns x0..x0 + 18 <= w + 2) and the weights; writes inside the output block.
    unsafe {
        for ci in 0..c {
            let plane = xp.add(ci * hp * wp + y0 * wp + x0);
            for kx in 0..3 {
                let mut rows = [_mm512_setzero_ps(); 6];
                for (i, row) in rows.iter_mut().enumerate().take(R + 2) {
                    *row = _mm512_loadu_ps(plane.add(i * wp + kx));
                }
                for (b, acc_b) in acc.iter_mut().enumerate() {
                    let wk = wt.add(((o0 + b) * c + ci) * 9 + kx);
                    for ky in 0..3 {
                        let wv = _mm512_set1_ps(*wk.add(ky * 3));
                        for (r, a) in acc_b.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(wv, rows[r + ky], *a);
                        }
                    }
                }
            }
        }
        for (b, acc_b) in acc.iter().enumerate() {
            for (r, a) in acc_b.iter().enumerate() {
                _mm512_storeu_ps(out.add(((o0 + b) * h + y0 + r) * w + x0), *a);
            }
        }
    }
}

/// Where a weight-gradient block reads (`samples` consecutive samples) and adds.
#[derive(Clone, Copy)]
struct GradBlock {
    xp: *const f32,
    dy: *const f32,
    samples: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    ci: usize,
    o0: usize,
    sums: *mut f32,
}

/// Output channels `o0..o0 + B` against input channel `ci`: 9 B accumulators over the planes
/// of every sample, added into `sums` once at the end.
#[target_feature(enable = "avx512f")]
unsafe fn weight_grad_block<const B: usize>(at: GradBlock) {
    let GradBlock { xp, dy, samples, c, h, w, o, ci, o0, sums } = at;
    let (hp, wp) = (h + 2, w + 2);
    let mut acc = [[_mm512_setzero_ps(); 9]; B];
    // SAFETY (whole body): reads rows y..y + 3 <= h + 2 and columns x0..x0 + 18 <= w + 2 of
    // plane ci of each sample, rows of dy inside its samples o h w values; writes inside sums.
    unsafe {
        for s in 0..samples {
            let plane = xp.add((s * c + ci) * hp * wp);
            let dys = dy.add(s * o * h * w);
            for y in 0..h {
                for x0 in (0..w).step_by(LANES) {
                    let mut d = [_mm512_setzero_ps(); B];
                    for (b, v) in d.iter_mut().enumerate() {
                        *v = _mm512_loadu_ps(dys.add(((o0 + b) * h + y) * w + x0));
                    }
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let v = _mm512_loadu_ps(plane.add((y + ky) * wp + x0 + kx));
                            for b in 0..B {
                                acc[b][ky * 3 + kx] = _mm512_fmadd_ps(d[b], v, acc[b][ky * 3 + kx]);
                            }
                        }
                    }
                }
            }
        }
        add_into_sums(&acc, sums, c, ci, o0);
    }
}

/// Adds the accumulators of output channels `o0..o0 + B` (9 taps each) against input channel
/// `ci` into the per-lane sums `sums [O][C][9][16]`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn add_into_sums<const B: usize>(acc: &[[__m512; 9]; B], sums: *mut f32, c: usize, ci: usize, o0: usize) {
    // SAFETY: the caller's `sums` holds the rows of output channels o0..o0 + B.
    unsafe {
        for (b, acc_b) in acc.iter().enumerate() {
            let dst = sums.add(((o0 + b) * c + ci) * 9 * LANES);
            for (t, a) in acc_b.iter().enumerate() {
                let p = dst.add(t * LANES);
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), *a));
            }
        }
    }
}

/// Sums each group of 16 lanes of `sums` into `out` (`out[i] += sum(sums[16 i..16 i + 16])`).
pub(crate) fn reduce_lanes(sums: &[f32], out: &mut [f32]) {
    for (o, lanes) in out.iter_mut().zip(sums.chunks_exact(LANES)) {
        *o += lanes.iter().sum::<f32>();
    }
}

// ----------------------------------------------------------------------------
// 8-wide planes: one vector holds two rows
// ----------------------------------------------------------------------------

/// Row width of the two-rows-per-vector kernels (the 8x8 stage of a CIFAR ResNet).
pub(crate) const PAIR_WIDTH: usize = 8;

/// Lanes kept by the loads of kernel column `kx`: the column left of (right of) the row reads
/// padding, so lanes `x = 0` (`x = 7`) of both rows are zeroed.
const PAIR_MASKS: [__mmask16; 3] = [0xFEFE, 0xFFFF, 0x7F7F];

/// Length of one sample's buffer for [`pad_rows`]: `C (H + 2) 8` values and one slack value on
/// each side (the masked loads of the outer kernel columns start one value early or end one
/// value late; those lanes are masked off, but the address stays inside the buffer).
pub(crate) fn pairs_len(c: usize, h: usize) -> usize {
    c * (h + 2) * PAIR_WIDTH + 2
}

/// `[C][H + 2][8]` copy of one sample's 8-wide planes with a zero row above and below, inside
/// [`pairs_len`] values (one slack value first).
pub(crate) fn pad_rows(x: &[f32], c: usize, h: usize, xq: &mut [f32]) {
    let w = PAIR_WIDTH;
    xq[0] = 0.0;
    xq[pairs_len(c, h) - 1] = 0.0;
    for ci in 0..c {
        let dst = &mut xq[1 + ci * (h + 2) * w..1 + (ci + 1) * (h + 2) * w];
        dst[..w].fill(0.0);
        dst[(h + 1) * w..].fill(0.0);
        dst[w..(h + 1) * w].copy_from_slice(&x[ci * h * w..(ci + 1) * h * w]);
    }
}

/// Output channels `o0..o0 + B`, two-row vectors `y0..y0 + R` (`y0` counts vectors here; `xp`
/// from [`pad_rows`], accumulators of 4 output channels x 4 vectors of two rows each).
#[target_feature(enable = "avx512f")]
unsafe fn pairs_block<const B: usize, const R: usize>(at: Block) {
    let Block { xp: xq, c, h, w, wt, o0, y0: v0, out, .. } = at;
    let mut acc = [[_mm512_setzero_ps(); R]; B];
    // SAFETY (whole body): every load starts at most one value before a plane row and ends at
    // most one value after the next row (padded rows 0..h + 2 of plane ci, plus the slack
    // values), and the lanes outside the plane are masked off; writes inside the output block.
    unsafe {
        for ci in 0..c {
            let plane = xq.add(1 + ci * (h + 2) * w);
            for ky in 0..3 {
                for kx in 0..3 {
                    let mut v = [_mm512_setzero_ps(); R];
                    for (r, vr) in v.iter_mut().enumerate() {
                        *vr = _mm512_maskz_loadu_ps(PAIR_MASKS[kx], plane.add((2 * (v0 + r) + ky) * w + kx).sub(1));
                    }
                    for (b, acc_b) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(*wt.add(((o0 + b) * c + ci) * 9 + ky * 3 + kx));
                        for (a, vr) in acc_b.iter_mut().zip(&v) {
                            *a = _mm512_fmadd_ps(wv, *vr, *a);
                        }
                    }
                }
            }
        }
        for (b, acc_b) in acc.iter().enumerate() {
            for (r, a) in acc_b.iter().enumerate() {
                _mm512_storeu_ps(out.add((o0 + b) * h * w + (v0 + r) * LANES), *a);
            }
        }
    }
}

/// [`weight_grad_block`] for 8-wide planes in row pairs (`xp` from [`pad_rows`]).
#[target_feature(enable = "avx512f")]
unsafe fn weight_grad_pairs_block<const B: usize>(at: GradBlock) {
    let GradBlock { xp: xq, dy, samples, c, h, w, o, ci, o0, sums } = at;
    let mut acc = [[_mm512_setzero_ps(); 9]; B];
    // SAFETY (whole body): as in `pairs_block` for the loads of x; dy rows inside each sample's
    // o h 8 values; writes inside sums.
    unsafe {
        for s in 0..samples {
            let plane = xq.add(s * pairs_len(c, h) + 1 + ci * (h + 2) * w);
            let dys = dy.add(s * o * h * w);
            for v in 0..h / 2 {
                let mut d = [_mm512_setzero_ps(); B];
                for (b, db) in d.iter_mut().enumerate() {
                    *db = _mm512_loadu_ps(dys.add((o0 + b) * h * w + v * LANES));
                }
                for ky in 0..3 {
                    for kx in 0..3 {
                        let x = _mm512_maskz_loadu_ps(PAIR_MASKS[kx], plane.add((2 * v + ky) * w + kx).sub(1));
                        for b in 0..B {
                            acc[b][ky * 3 + kx] = _mm512_fmadd_ps(d[b], x, acc[b][ky * 3 + kx]);
                        }
                    }
                }
            }
        }
        add_into_sums(&acc, sums, c, ci, o0);
    }
}

// ----------------------------------------------------------------------------
// Choosing the kernels
// ----------------------------------------------------------------------------

/// Which kernels a plane shape takes: rows a multiple of 16 wide (`Wide`, one or more vectors
/// per row), or 8-wide rows in pairs (`Pairs`, even height).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Wide,
    Pairs,
}

impl Layout {
    /// The kernels for `h x w` planes, if any.
    pub(crate) fn of(h: usize, w: usize) -> Option<Self> {
        if w % LANES == 0 {
            Some(Self::Wide)
        } else if w == PAIR_WIDTH && h % 2 == 0 {
            Some(Self::Pairs)
        } else {
            None
        }
    }

    /// Values of one sample's padded copy.
    pub(crate) fn padded_len(self, c: usize, h: usize, w: usize) -> usize {
        match self {
            Self::Wide => c * (h + 2) * (w + 2),
            Self::Pairs => pairs_len(c, h),
        }
    }

    pub(crate) fn pad(self, x: &[f32], c: usize, h: usize, w: usize, buf: &mut [f32]) {
        match self {
            Self::Wide => pad_planes(x, c, h, w, buf),
            Self::Pairs => pad_rows(x, c, h, buf),
        }
    }

    /// Samples the weight gradient sums per flush: about 1K positions, at least 4.
    pub(crate) fn grad_samples(self, h: usize, w: usize) -> usize {
        (1024 / (h * w).max(1)).max(GRAD_SAMPLES)
    }

    /// `out [O][H][W] = w [O][C][3][3] * x` for one sample (`buf` from [`Layout::pad`]), in
    /// blocks of 4 output channels x 4 rows (`Wide`) or row pairs (`Pairs`) x 16 columns.
    ///
    /// # Safety
    /// AVX-512F must be available ([`available`]); `(h, w)` fit `self` ([`Layout::of`]); `buf`
    /// holds [`Layout::padded_len`]`(c, h, w)` values, `wt` `o c 9`, `out` `o h w`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn forward(self, buf: &[f32], c: usize, h: usize, w: usize, wt: &[f32], o: usize, out: &mut [f32]) {
        debug_assert!(Self::of(h, w) == Some(self) && buf.len() >= self.padded_len(c, h, w) && wt.len() >= o * c * 9 && out.len() >= o * h * w);
        // the block's second axis: rows 16 columns at a time, or pairs of 8-wide rows
        let (units, strips) = match self {
            Self::Wide => (h, w / LANES),
            Self::Pairs => (h / 2, 1),
        };
        for o0 in (0..o).step_by(OB) {
            for y0 in (0..units).step_by(ROWS) {
                let kernel = forward_kernel(self, (o - o0).min(OB), (units - y0).min(ROWS));
                for strip in 0..strips {
                    let at = Block { xp: buf.as_ptr(), c, h, w, wt: wt.as_ptr(), o0, y0, x0: strip * LANES, out: out.as_mut_ptr() };
                    // SAFETY: the caller's contract; the block lies inside the planes.
                    unsafe { kernel(at) };
                }
            }
        }
    }

    /// Adds the weight gradient of `samples` consecutive samples into `sums [O][C][9][16]`
    /// (per-lane partial sums; reduce with [`reduce_lanes`]):
    /// `sums[o][c][ky 3 + kx] += sum_{s, y, x} dy[s][o][y][x] x[s][c][y + ky - 1][x + kx - 1]`.
    /// `buf` holds the samples' padded copies ([`Layout::pad`]) one after the other, `dy` their
    /// output gradients (`[samples][O][H][W]`).
    ///
    /// # Safety
    /// AVX-512F must be available; `(h, w)` fit `self`; `buf` holds `samples`
    /// [`Layout::padded_len`]`(c, h, w)` values, `dy` `samples o h w`, `sums` `o c 9 16`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn weight_grad(self, buf: &[f32], dy: &[f32], samples: usize, c: usize, h: usize, w: usize, o: usize, sums: &mut [f32]) {
        debug_assert!(Self::of(h, w) == Some(self) && buf.len() >= samples * self.padded_len(c, h, w) && dy.len() >= samples * o * h * w && sums.len() >= o * c * 9 * LANES);
        for ci in 0..c {
            for o0 in (0..o).step_by(WB) {
                let kernel = weight_grad_kernel(self, (o - o0).min(WB));
                let at = GradBlock { xp: buf.as_ptr(), dy: dy.as_ptr(), samples, c, h, w, o, ci, o0, sums: sums.as_mut_ptr() };
                // SAFETY: the caller's contract; the block's channels lie inside o.
                unsafe { kernel(at) };
            }
        }
    }
}

/// The forward block kernel of `layout` for `b` output channels and `r` rows or row pairs
/// (both 1..=4: [`OB`], [`ROWS`]).
fn forward_kernel(layout: Layout, b: usize, r: usize) -> unsafe fn(Block) {
    macro_rules! by_size {
        ($kernel:ident) => {
            match (b, r) {
                (4, 4) => $kernel::<4, 4>,
                (4, 3) => $kernel::<4, 3>,
                (4, 2) => $kernel::<4, 2>,
                (4, 1) => $kernel::<4, 1>,
                (3, 4) => $kernel::<3, 4>,
                (3, 3) => $kernel::<3, 3>,
                (3, 2) => $kernel::<3, 2>,
                (3, 1) => $kernel::<3, 1>,
                (2, 4) => $kernel::<2, 4>,
                (2, 3) => $kernel::<2, 3>,
                (2, 2) => $kernel::<2, 2>,
                (2, 1) => $kernel::<2, 1>,
                (1, 4) => $kernel::<1, 4>,
                (1, 3) => $kernel::<1, 3>,
                (1, 2) => $kernel::<1, 2>,
                _ => $kernel::<1, 1>,
            }
        };
    }
    match layout {
        Layout::Wide => by_size!(forward_block),
        Layout::Pairs => by_size!(pairs_block),
    }
}

/// The weight-gradient kernel of `layout` for `b` output channels (1..=3: [`WB`]).
fn weight_grad_kernel(layout: Layout, b: usize) -> unsafe fn(GradBlock) {
    match (layout, b) {
        (Layout::Wide, 3) => weight_grad_block::<3>,
        (Layout::Wide, 2) => weight_grad_block::<2>,
        (Layout::Wide, _) => weight_grad_block::<1>,
        (Layout::Pairs, 3) => weight_grad_pairs_block::<3>,
        (Layout::Pairs, 2) => weight_grad_pairs_block::<2>,
        (Layout::Pairs, _) => weight_grad_pairs_block::<1>,
    }
}
