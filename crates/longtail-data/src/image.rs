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

/// The largest image file read (bytes): a listed path that is a device or a runaway file is an
/// error, not an unbounded read.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;
/// The most pixels an image may have (64 megapixels; the benchmarks' largest are about 10).
pub const MAX_IMAGE_PIXELS: u64 = 64 << 20;

/// Reads an image file: a regular file of at most [`MAX_IMAGE_BYTES`] (a FIFO would block the
/// read forever, `/dev/zero` never end).
pub fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if !meta.is_file() {
        return Err(DataError::format(path, "is not a regular file (a folder, a FIFO or a device); list image files only"));
    }
    if meta.len() > MAX_IMAGE_BYTES {
        return Err(DataError::format(path, format!("is {} bytes, over the {MAX_IMAGE_BYTES}-byte bound of an image file", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path).and_then(|f| f.take(MAX_IMAGE_BYTES + 1).read_to_end(&mut bytes)).map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(DataError::format(path, format!("grew past the {MAX_IMAGE_BYTES}-byte bound of an image file while it was read")));
    }
    Ok(bytes)
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
        Self::decode(&read_bounded(path)?, path, grayscale)
    }

    /// Decodes encoded bytes; `path` only names the source in errors. The header's dimensions are
    /// checked against [`MAX_IMAGE_PIXELS`] before any pixel is decoded.
    pub fn decode(bytes: &[u8], path: &Path, grayscale: bool) -> Result<Self> {
        let err = |msg: String| DataError::Decode { path: path.to_path_buf(), msg };
        let reader = || image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| err(e.to_string()));
        let (w, h) = reader()?.into_dimensions().map_err(|e| err(e.to_string()))?;
        let pixels = w as u64 * h as u64;
        if pixels > MAX_IMAGE_PIXELS {
            return Err(err(format!("{w}x{h} is over the {MAX_IMAGE_PIXELS}-pixel bound of an image (a decompression bomb, or an image to resize first)")));
        }
        let mut limits = image::Limits::default();
        // the decoded image in its widest pixel format (16-bit RGBA) and a copy of it
        limits.max_alloc = Some(pixels * 8 * 2 + (1 << 20));
        let mut reader = reader()?;
        reader.limits(limits);
        let img = reader.decode().map_err(|e| err(e.to_string()))?;
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
