//! A minimal 8-bit image buffer (height x width x channels, row-major, channels last).

use std::path::Path;

use crate::error::{DataError, Result};

/// An 8-bit image, `HWC` layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Image {
    pub fn new(height: usize, width: usize, channels: usize, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), height * width * channels);
        Self { height, width, channels, data }
    }

    pub fn zeros(height: usize, width: usize, channels: usize) -> Self {
        Self::new(height, width, channels, vec![0; height * width * channels])
    }

    #[inline]
    pub fn at(&self, y: usize, x: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// Decodes a JPEG or PNG file to RGB (or to single-channel luma when `grayscale`).
    pub fn open(path: &Path, grayscale: bool) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::decode(&bytes, path, grayscale)
    }

    /// Decodes encoded bytes; `path` only names the source in errors.
    pub fn decode(bytes: &[u8], path: &Path, grayscale: bool) -> Result<Self> {
        let img = image::load_from_memory(bytes).map_err(|e| DataError::Decode { path: path.to_path_buf(), msg: e.to_string() })?;
        Ok(if grayscale {
            let g = img.to_luma8();
            Self::new(g.height() as usize, g.width() as usize, 1, g.into_raw())
        } else {
            let rgb = img.to_rgb8();
            Self::new(rgb.height() as usize, rgb.width() as usize, 3, rgb.into_raw())
        })
    }

    /// Repeats a single channel `n` times (grayscale data for 3-channel models).
    pub fn replicate_channels(&self, n: usize) -> Self {
        if self.channels == n {
            return self.clone();
        }
        assert_eq!(self.channels, 1, "only single-channel images can be replicated");
        let data = self.data.iter().flat_map(|&v| std::iter::repeat_n(v, n)).collect();
        Self::new(self.height, self.width, n, data)
    }
}
