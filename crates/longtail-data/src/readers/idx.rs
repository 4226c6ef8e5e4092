//! IDX files (the MNIST layout), raw or gzip-compressed: `train-images-idx3-ubyte[.gz]`,
//! `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
//!
//! Fashion-MNIST is looked up in Debian's `dataset-fashion-mnist` location,
//! `/usr/share/datasets/fashion-mnist/`, when no root is given.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dataset::{Dataset, ImageStore, Splits};
use crate::error::{DataError, Result};

/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Opens a file as a byte stream, un-gzipping it when it starts with the gzip magic; says
/// whether it did.
fn open_maybe_gz(path: &Path) -> Result<(Box<dyn Read>, bool)> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let got = file.read(&mut magic).map_err(|e| DataError::io(path, e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| DataError::io(path, e))?;
    let file = BufReader::new(file);
    Ok(if got == 2 && magic == [0x1f, 0x8b] { (Box::new(flate2::read::GzDecoder::new(file)), true) } else { (Box::new(file), false) })
}

/// An IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses an IDX file of unsigned bytes (type code 0x08). The header is checked before any data
/// is read, and no more data is read (or decompressed) than its dimensions give, plus one byte to
/// tell a file with trailing data.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let (mut stream, gz) = open_maybe_gz(path)?;
    let failed = |e: std::io::Error| if gz { DataError::format(path, format!("corrupt gzip stream: {e}")) } else { DataError::io(path, e) };
    let mut read = |buf: &mut Vec<u8>, limit: u64| stream.by_ref().take(limit).read_to_end(buf).map_err(failed);
    let mut head = Vec::with_capacity(4);
    read(&mut head, 4)?;
    if head.len() < 4 || head[0] != 0 || head[1] != 0 {
        return Err(DataError::format(path, "not an IDX file (bad magic number)"));
    }
    if head[2] != 0x08 {
        return Err(DataError::format(path, format!("IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)", head[2])));
    }
    let rank = head[3] as usize;
    let mut dim_bytes = Vec::with_capacity(4 * rank);
    read(&mut dim_bytes, 4 * rank as u64)?;
    if rank == 0 || dim_bytes.len() < 4 * rank {
        return Err(DataError::format(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = dim_bytes.chunks_exact(4).map(|d| u32::from_be_bytes(d.try_into().unwrap()) as usize).collect();
    if dims[1..].contains(&0) {
        return Err(DataError::format(path, format!("dimensions {dims:?}: every dimension after the first must be at least 1")));
    }
    let expected = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| DataError::format(path, format!("dimensions {dims:?} overflow")))?;
    let mut data = Vec::new();
    read(&mut data, expected as u64 + 1)?;
    if data.len() != expected {
        let found = if data.len() > expected { "more".to_string() } else { data.len().to_string() };
        return Err(DataError::format(
            path,
            format!("dimensions {dims:?} need {expected} bytes of data but the file has {found} (truncated or trailing data?)"),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// The path of `stem` under `root`, raw or gzipped, whichever exists.
fn idx_file(root: &Path, stem: &str) -> Result<PathBuf> {
    [root.join(stem), root.join(format!("{stem}.gz"))].into_iter().find(|p| p.exists()).ok_or_else(|| DataError::NotFound {
        what: format!("{stem}[.gz] under {}", root.display()),
        hint: "give the folder holding the four IDX files (train/t10k images and labels)".into(),
    })
}

fn read_pair(root: &Path, prefix: &str, name: &str, classes: &[String]) -> Result<Dataset> {
    let images_path = idx_file(root, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = idx_file(root, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    if images.dims.len() != 3 {
        return Err(DataError::format(&images_path, format!("expected 3 dimensions (n, rows, cols), found {:?}", images.dims)));
    }
    if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
        return Err(DataError::format(&labels_path, format!("{:?} labels for {} images", labels.dims, images.dims[0])));
    }
    let labels: Vec<usize> = labels.data.iter().map(|&l| l as usize).collect();
    if let Some(&bad) = labels.iter().find(|&&l| l >= classes.len()) {
        return Err(DataError::LabelOutOfRange { source_name: labels_path.display().to_string(), label: bad as i64, num_classes: classes.len() });
    }
    let store = ImageStore::Memory { height: images.dims[1], width: images.dims[2], channels: 1, pixels: Arc::new(images.data) };
    Dataset::new(name, classes.to_vec(), store, labels)
}

/// Reads an MNIST-layout dataset with the given class names.
pub fn read_idx_dataset(root: &Path, name: &str, classes: &[String]) -> Result<Splits> {
    Ok(Splits { train: read_pair(root, "train", name, classes)?, test: read_pair(root, "t10k", name, classes)?, val: None })
}

/// Locates Fashion-MNIST: the given root, else Debian's package location.
pub fn locate_fashion_mnist(root: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match root {
        Some(r) => vec![r.to_path_buf(), r.join("fashion-mnist")],
        None => vec![PathBuf::from(DEBIAN_FASHION_MNIST)],
    };
    candidates.into_iter().find(|d| d.join("train-images-idx3-ubyte.gz").exists() || d.join("train-images-idx3-ubyte").exists()).ok_or_else(|| {
        DataError::NotFound {
            what: match root {
                Some(r) => format!("Fashion-MNIST IDX files under {}", r.display()),
                None => format!("Fashion-MNIST (looked in {DEBIAN_FASHION_MNIST})"),
            },
            hint: "run `apt-get install dataset-fashion-mnist`, or `longtail fetch fashion-mnist`, or pass --data-root with the four IDX files".into(),
        }
    })
}

/// Reads Fashion-MNIST from `root` or Debian's package location.
pub fn read_fashion_mnist(root: Option<&Path>) -> Result<Splits> {
    let dir = locate_fashion_mnist(root)?;
    let classes: Vec<String> = FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect();
    read_idx_dataset(&dir, "fashion-mnist", &classes)
}
