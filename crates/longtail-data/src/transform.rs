//! Image transforms and the standard recipes.
//!
//! - CIFAR (He et al. 2016, every CIFAR-LT paper): zero-pad 4, random 32x32 crop, horizontal flip
//!   with p = 0.5, per-channel normalisation; test: normalisation only.
//! - ImageNet (Kang et al. 2020 and the large-scale papers): random resized crop 224 (scale
//!   0.08-1, ratio 3/4-4/3), flip, colour jitter 0.4; test: shorter side to 256, centre crop 224.
//! - Fashion-MNIST-LT (this toolkit's CPU protocol): 28x28 zero-padded to 32, then the CIFAR recipe.
//!
//! Random choices come from a per-sample RNG, so batches are reproducible whatever the threads.

use image::imageops::FilterType;
use image::{ImageBuffer, Luma, Rgb};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::image::Image;

/// CIFAR-10 channel means and standard deviations used by the LDAM-DRW family of code.
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];
/// ImageNet channel statistics.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Fashion-MNIST pixel statistics of the training set.
pub const FASHION_MNIST_MEAN: [f32; 1] = [0.2860];
pub const FASHION_MNIST_STD: [f32; 1] = [0.3530];

/// One transform step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TransformOp {
    /// Zero-pad symmetrically to `size x size` (larger images are left alone).
    PadTo { size: usize },
    /// Zero-pad by `padding` on every side, then crop a random `size x size` window.
    RandomCrop { size: usize, padding: usize },
    /// Crop the central `size x size` window.
    CenterCrop { size: usize },
    /// Resize so the shorter side is `shorter` (bilinear).
    Resize { shorter: usize },
    /// Random area/aspect crop resized to `size x size` (Szegedy et al.).
    RandomResizedCrop { size: usize, scale: [f64; 2], ratio: [f64; 2] },
    /// Mirror left-right with probability `p`.
    HorizontalFlip { p: f64 },
    /// Rotate by an angle drawn from `U(-degrees, degrees)` about the centre, nearest pixel, zero
    /// fill, same size: torchvision's `RandomRotation(degrees)` on a PIL image (RIDE's CIFAR recipe).
    RandomRotation { degrees: f64 },
    /// Random brightness, contrast and saturation factors in `[1 - x, 1 + x]`, applied in random order.
    ColorJitter { brightness: f64, contrast: f64, saturation: f64 },
    /// Repeat a single channel to `n` channels (grayscale data for RGB models).
    Channels { n: usize },
}

/// A transform pipeline ending in per-channel normalisation to `f32` CHW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub ops: Vec<TransformOp>,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Named recipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    Cifar,
    Imagenet,
    FashionMnist,
}

impl Recipe {
    /// The training pipeline of the recipe (`channels` = the model's input channels).
    pub fn train(self, channels: usize) -> Pipeline {
        use TransformOp::*;
        match self {
            Recipe::Cifar => Pipeline::new(vec![RandomCrop { size: 32, padding: 4 }, HorizontalFlip { p: 0.5 }], &CIFAR_MEAN, &CIFAR_STD),
            Recipe::Imagenet => Pipeline::new(
                vec![
                    RandomResizedCrop { size: 224, scale: [0.08, 1.0], ratio: [3.0 / 4.0, 4.0 / 3.0] },
                    HorizontalFlip { p: 0.5 },
                    ColorJitter { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
                ],
                &IMAGENET_MEAN,
                &IMAGENET_STD,
            ),
            Recipe::FashionMnist => Pipeline::grayscale(vec![PadTo { size: 32 }, RandomCrop { size: 32, padding: 4 }, HorizontalFlip { p: 0.5 }], channels),
        }
    }

    /// The evaluation pipeline of the recipe.
    pub fn test(self, channels: usize) -> Pipeline {
        use TransformOp::*;
        match self {
            Recipe::Cifar => Pipeline::new(vec![], &CIFAR_MEAN, &CIFAR_STD),
            Recipe::Imagenet => Pipeline::new(vec![Resize { shorter: 256 }, CenterCrop { size: 224 }], &IMAGENET_MEAN, &IMAGENET_STD),
            Recipe::FashionMnist => Pipeline::grayscale(vec![PadTo { size: 32 }], channels),
        }
    }

    /// The spatial size the recipe produces.
    pub fn image_size(self) -> usize {
        match self {
            Recipe::Cifar | Recipe::FashionMnist => 32,
            Recipe::Imagenet => 224,
        }
    }
}

impl Pipeline {
    pub fn new(ops: Vec<TransformOp>, mean: &[f32], std: &[f32]) -> Self {
        Self { ops, mean: mean.to_vec(), std: std.to_vec() }
    }

    /// A pipeline for single-channel data feeding a `channels`-channel model.
    fn grayscale(mut ops: Vec<TransformOp>, channels: usize) -> Self {
        if channels > 1 {
            ops.push(TransformOp::Channels { n: channels });
        }
        Self { ops, mean: vec![FASHION_MNIST_MEAN[0]; channels.max(1)], std: vec![FASHION_MNIST_STD[0]; channels.max(1)] }
    }

    /// Checks the pipeline's numbers.
    pub fn validate(&self) -> Result<()> {
        if self.mean.len() != self.std.len() || self.mean.is_empty() {
            return Err(DataError::invalid("transform.mean/std", "need one mean and one std per channel"));
        }
        if self.std.iter().any(|s| *s <= 0.0) {
            return Err(DataError::invalid("transform.std", "standard deviations must be positive"));
        }
        for op in &self.ops {
            let bad = match op {
                TransformOp::HorizontalFlip { p } => !(0.0..=1.0).contains(p),
                TransformOp::RandomRotation { degrees } => !(degrees.is_finite() && (0.0..=180.0).contains(degrees)),
                TransformOp::RandomResizedCrop { scale, ratio, size } => {
                    *size == 0 || scale[0] <= 0.0 || scale[0] > scale[1] || scale[1] > 1.0 || ratio[0] <= 0.0 || ratio[0] > ratio[1]
                }
                TransformOp::ColorJitter { brightness, contrast, saturation } => [brightness, contrast, saturation].iter().any(|v| !(0.0..=1.0).contains(*v)),
                TransformOp::PadTo { size } | TransformOp::CenterCrop { size } | TransformOp::RandomCrop { size, .. } => *size == 0,
                TransformOp::Resize { shorter } => *shorter == 0,
                TransformOp::Channels { n } => *n == 0,
            };
            if bad {
                return Err(DataError::invalid("transform", format!("out-of-range parameters in {op:?}")));
            }
        }
        Ok(())
    }

    /// Applies the geometric and photometric steps.
    pub fn augment<R: Rng>(&self, mut img: Image, rng: &mut R) -> Image {
        for op in &self.ops {
            img = apply(op, img, rng);
        }
        img
    }

    /// Augments, then writes normalised `f32` CHW values into `out` (length `C*H*W`).
    pub fn process_into<R: Rng>(&self, img: Image, rng: &mut R, out: &mut [f32]) -> Result<()> {
        let img = self.augment(img, rng);
        if img.channels != self.mean.len() {
            return Err(DataError::invalid(
                "transform",
                format!("image has {} channels but the normalisation has {} (add a `channels` step?)", img.channels, self.mean.len()),
            ));
        }
        if out.len() != img.data.len() {
            return Err(DataError::invalid(
                "transform",
                format!(
                    "image is {}x{}x{} after transforms but the batch expects {} values; add a crop/resize",
                    img.height,
                    img.width,
                    img.channels,
                    out.len()
                ),
            ));
        }
        let plane = img.height * img.width;
        for c in 0..img.channels {
            let (scale, shift) = (1.0 / (255.0 * self.std[c]), self.mean[c] / self.std[c]);
            let dst = &mut out[c * plane..(c + 1) * plane];
            for (p, d) in dst.iter_mut().enumerate() {
                *d = img.data[p * img.channels + c] as f32 * scale - shift;
            }
        }
        Ok(())
    }
}

fn apply<R: Rng>(op: &TransformOp, img: Image, rng: &mut R) -> Image {
    match *op {
        TransformOp::PadTo { size } => {
            let top = size.saturating_sub(img.height) / 2;
            let left = size.saturating_sub(img.width) / 2;
            pad(&img, top, left, size.max(img.height), size.max(img.width))
        }
        TransformOp::RandomCrop { size, padding } => {
            let padded = pad(&img, padding, padding, img.height + 2 * padding, img.width + 2 * padding);
            let y = rng.random_range(0..=padded.height.saturating_sub(size));
            let x = rng.random_range(0..=padded.width.saturating_sub(size));
            crop(&padded, y, x, size.min(padded.height), size.min(padded.width))
        }
        TransformOp::CenterCrop { size } => {
            let (h, w) = (size.min(img.height), size.min(img.width));
            crop(&img, (img.height - h) / 2, (img.width - w) / 2, h, w)
        }
        TransformOp::Resize { shorter } => {
            let s = img.height.min(img.width) as f64;
            let h = ((img.height as f64 * shorter as f64 / s).round() as usize).max(1);
            let w = ((img.width as f64 * shorter as f64 / s).round() as usize).max(1);
            resize(&img, h, w)
        }
        TransformOp::RandomResizedCrop { size, scale, ratio } => {
            let (y, x, h, w) = random_resized_window(img.height, img.width, scale, ratio, rng);
            resize(&crop(&img, y, x, h, w), size, size)
        }
        TransformOp::HorizontalFlip { p } => {
            if rng.random::<f64>() < p {
                flip(&img)
            } else {
                img
            }
        }
        TransformOp::RandomRotation { degrees } => {
            let angle = if degrees > 0.0 { rng.random_range(-degrees..=degrees) } else { 0.0 };
            rotate(&img, angle)
        }
        TransformOp::ColorJitter { brightness, contrast, saturation } => color_jitter(img, brightness, contrast, saturation, rng),
        TransformOp::Channels { n } => {
            if img.channels == 1 && n > 1 {
                img.replicate_channels(n)
            } else {
                img
            }
        }
    }
}

fn pad(img: &Image, top: usize, left: usize, height: usize, width: usize) -> Image {
    let c = img.channels;
    let mut out = Image::zeros(height, width, c);
    for y in 0..img.height {
        let src = &img.data[y * img.width * c..(y + 1) * img.width * c];
        let start = ((y + top) * width + left) * c;
        out.data[start..start + img.width * c].copy_from_slice(src);
    }
    out
}

fn crop(img: &Image, top: usize, left: usize, height: usize, width: usize) -> Image {
    let c = img.channels;
    let mut data = Vec::with_capacity(height * width * c);
    for y in top..top + height {
        let start = (y * img.width + left) * c;
        data.extend_from_slice(&img.data[start..start + width * c]);
    }
    Image::new(height, width, c, data)
}

fn flip(img: &Image) -> Image {
    let c = img.channels;
    let mut out = img.clone();
    for y in 0..img.height {
        for x in 0..img.width {
            let (dst, src) = ((y * img.width + x) * c, (y * img.width + img.width - 1 - x) * c);
            out.data[dst..dst + c].copy_from_slice(&img.data[src..src + c]);
        }
    }
    out
}

/// PIL's `Image.rotate(angle, NEAREST)` (counter-clockwise degrees, centre `(w/2, h/2)`, zero
/// fill): output pixel `(x, y)` samples the input at `R(theta) (x + 0.5 - cx, y + 0.5 - cy) + c`,
/// truncated (`Geometry.c`'s nearest affine), with the matrix entries rounded to 15 digits.
pub fn rotate(img: &Image, degrees: f64) -> Image {
    let theta = -degrees.to_radians();
    let round15 = |v: f64| (v * 1e15).round() / 1e15;
    let (a, b, d, e) = (round15(theta.cos()), round15(theta.sin()), round15(-theta.sin()), round15(theta.cos()));
    let (cx, cy) = (img.width as f64 / 2.0, img.height as f64 / 2.0);
    let c = img.channels;
    let mut out = Image::zeros(img.height, img.width, c);
    for y in 0..img.height {
        for x in 0..img.width {
            let (u, v) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let (xx, yy) = (a * u + b * v + cx, d * u + e * v + cy);
            if xx < 0.0 || yy < 0.0 {
                continue;
            }
            let (xi, yi) = (xx as usize, yy as usize);
            if xi < img.width && yi < img.height {
                let (dst, src) = ((y * img.width + x) * c, (yi * img.width + xi) * c);
                out.data[dst..dst + c].copy_from_slice(&img.data[src..src + c]);
            }
        }
    }
    out
}

fn resize(img: &Image, height: usize, width: usize) -> Image {
    let (h, w) = (img.height as u32, img.width as u32);
    let data = match img.channels {
        1 => {
            let buf: ImageBuffer<Luma<u8>, _> = ImageBuffer::from_raw(w, h, img.data.clone()).expect("valid buffer");
            image::imageops::resize(&buf, width as u32, height as u32, FilterType::Triangle).into_raw()
        }
        3 => {
            let buf: ImageBuffer<Rgb<u8>, _> = ImageBuffer::from_raw(w, h, img.data.clone()).expect("valid buffer");
            image::imageops::resize(&buf, width as u32, height as u32, FilterType::Triangle).into_raw()
        }
        c => panic!("resize supports 1 or 3 channels, got {c}"),
    };
    Image::new(height, width, img.channels, data)
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and log-uniform
/// aspect ratio, then a centre crop clamped to the ratio range.
fn random_resized_window<R: Rng>(height: usize, width: usize, scale: [f64; 2], ratio: [f64; 2], rng: &mut R) -> (usize, usize, usize, usize) {
    let area = (height * width) as f64;
    let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale[0]..=scale[1]);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if w > 0 && h > 0 && w <= width && h <= height {
            return (rng.random_range(0..=height - h), rng.random_range(0..=width - w), h, w);
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (h, w) = if in_ratio < ratio[0] {
        ((width as f64 / ratio[0]).round() as usize, width)
    } else if in_ratio > ratio[1] {
        (height, (height as f64 * ratio[1]).round() as usize)
    } else {
        (height, width)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

fn color_jitter<R: Rng>(mut img: Image, brightness: f64, contrast: f64, saturation: f64, rng: &mut R) -> Image {
    let mut order = [0usize, 1, 2];
    order.shuffle(rng);
    let factor = |x: f64, rng: &mut R| if x > 0.0 { rng.random_range((1.0 - x).max(0.0)..=1.0 + x) } else { 1.0 };
    let (fb, fc, fs) = (factor(brightness, rng), factor(contrast, rng), factor(saturation, rng));
    let c = img.channels;
    let luma = |px: &[f32]| if px.len() == 3 { 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2] } else { px[0] };
    let mut values: Vec<f32> = img.data.iter().map(|&v| v as f32).collect();
    for step in order {
        match step {
            0 if fb != 1.0 => values.iter_mut().for_each(|v| *v = (*v * fb as f32).clamp(0.0, 255.0)),
            1 if fc != 1.0 => {
                let mean = values.chunks(c).map(luma).sum::<f32>() / (values.len() / c) as f32;
                values.iter_mut().for_each(|v| *v = (mean + (*v - mean) * fc as f32).clamp(0.0, 255.0));
            }
            2 if fs != 1.0 && c == 3 => {
                for px in values.chunks_mut(3) {
                    let g = luma(px);
                    px.iter_mut().for_each(|v| *v = (g + (*v - g) * fs as f32).clamp(0.0, 255.0));
                }
            }
            _ => {}
        }
    }
    img.data = values.into_iter().map(|v| v.round() as u8).collect();
    img
}
