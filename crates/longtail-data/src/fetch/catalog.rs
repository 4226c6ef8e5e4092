//! The official archives: where they are, how big, their published digests and how they unpack.
//!
//! Digests: the CIFAR-10/100 *binary* archives carry the MD5s published on
//! <https://www.cs.toronto.edu/~kriz/cifar.html>; the *python* archives and the Fashion-MNIST
//! files carry the MD5s torchvision pins (`torchvision/datasets/cifar.py`, `mnist.py`).

use std::fmt;

/// Where the CIFAR archives are published.
pub const CIFAR_HOST: &str = "https://www.cs.toronto.edu/~kriz";
/// Fashion-MNIST's official host (plain http only).
pub const FASHION_MNIST_OFFICIAL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";
/// The same four files over https, from the dataset's repository (the default).
pub const FASHION_MNIST_GITHUB: &str = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion";

/// Where torchvision's pretrained weights are published.
pub const TORCHVISION_MODELS: &str = "https://download.pytorch.org/models";

/// A dataset (or pretrained file) this module can download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Remote {
    /// `cifar-10-binary.tar.gz` -> `cifar-10-batches-bin/`.
    Cifar10,
    /// `cifar-100-binary.tar.gz` -> `cifar-100-binary/`.
    Cifar100,
    /// `cifar-10-python.tar.gz` -> `cifar-10-batches-py/` (pickled batches).
    Cifar10Python,
    /// `cifar-100-python.tar.gz` -> `cifar-100-python/` (pickled batches).
    Cifar100Python,
    /// The four gzipped IDX files, placed directly in the destination.
    FashionMnist,
    /// torchvision's ImageNet ResNet-152 (`IMAGENET1K_V1`, `resnet152-394f9c45.pth`), the start of
    /// the Places-LT configs; checked as torch.hub checks it, by the SHA-256 prefix in its name.
    Resnet152Imagenet,
}

impl Remote {
    /// Every dataset, in the order a listing shows them.
    pub const ALL: [Remote; 6] =
        [Remote::Cifar10, Remote::Cifar100, Remote::Cifar10Python, Remote::Cifar100Python, Remote::FashionMnist, Remote::Resnet152Imagenet];

    /// The short name used on the command line (`cifar10`, `fashion-mnist`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Remote::Cifar10 => "cifar10",
            Remote::Cifar100 => "cifar100",
            Remote::Cifar10Python => "cifar10-python",
            Remote::Cifar100Python => "cifar100-python",
            Remote::FashionMnist => "fashion-mnist",
            Remote::Resnet152Imagenet => "resnet152-imagenet",
        }
    }

    /// The dataset of a short name (see [`Remote::name`]); `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<Remote> {
        Remote::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The catalog entry: files, digests, sizes and layout.
    pub fn spec(self) -> Spec {
        match self {
            Remote::Cifar10 => Spec {
                title: "CIFAR-10".into(),
                base_url: CIFAR_HOST.into(),
                files: vec![RemoteFile::md5("cifar-10-binary.tar.gz", 170_052_171, "c32a1d4ab5d03f1284b67883e8d87530")],
                layout: Layout::Archive {
                    folder: "cifar-10-batches-bin".into(),
                    members: names(&[
                        "data_batch_1.bin",
                        "data_batch_2.bin",
                        "data_batch_3.bin",
                        "data_batch_4.bin",
                        "data_batch_5.bin",
                        "test_batch.bin",
                        "batches.meta.txt",
                    ]),
                },
            },
            Remote::Cifar100 => Spec {
                title: "CIFAR-100".into(),
                base_url: CIFAR_HOST.into(),
                files: vec![RemoteFile::md5("cifar-100-binary.tar.gz", 168_513_733, "03b5dce01913d631647c71ecec9e9cb8")],
                layout: Layout::Archive {
                    folder: "cifar-100-binary".into(),
                    members: names(&["train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt"]),
                },
            },
            Remote::Cifar10Python => Spec {
                title: "CIFAR-10 (python)".into(),
                base_url: CIFAR_HOST.into(),
                files: vec![RemoteFile::md5("cifar-10-python.tar.gz", 170_498_071, "c58f30108f718f92721af3b95e74349a")],
                layout: Layout::Archive {
                    folder: "cifar-10-batches-py".into(),
                    members: names(&["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"]),
                },
            },
            Remote::Cifar100Python => Spec {
                title: "CIFAR-100 (python)".into(),
                base_url: CIFAR_HOST.into(),
                files: vec![RemoteFile::md5("cifar-100-python.tar.gz", 169_001_437, "eb9058c3a382ffc7106e4002c42a8d85")],
                layout: Layout::Archive { folder: "cifar-100-python".into(), members: names(&["train", "test", "meta"]) },
            },
            Remote::FashionMnist => Spec {
                title: "Fashion-MNIST".into(),
                base_url: FASHION_MNIST_GITHUB.into(),
                files: vec![
                    RemoteFile::md5("train-images-idx3-ubyte.gz", 26_421_880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                    RemoteFile::md5("train-labels-idx1-ubyte.gz", 29_515, "25c81989df183df01b3e8a0aad5dffbe"),
                    RemoteFile::md5("t10k-images-idx3-ubyte.gz", 4_422_102, "bef4ecab320f06d8554ea6380940ec79"),
                    RemoteFile::md5("t10k-labels-idx1-ubyte.gz", 5_148, "bb300cfdad3c16e7a12a480ee83cd310"),
                ],
                layout: Layout::Files { marker: "train-images-idx3-ubyte.gz".into() },
            },
            Remote::Resnet152Imagenet => Spec {
                title: "torchvision's ImageNet ResNet-152".into(),
                base_url: TORCHVISION_MODELS.into(),
                files: vec![RemoteFile { name: "resnet152-394f9c45.pth".into(), size: None, md5: None, sha256: Some("394f9c45".into()) }],
                layout: Layout::Files { marker: "resnet152-394f9c45.pth".into() },
            },
        }
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// One downloadable file and what it must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, both on the server (under the base URL) and on disk.
    pub name: String,
    /// Size in bytes, when known (for progress and the summary line).
    pub size: Option<u64>,
    /// Lower-case hex MD5 the file must have.
    pub md5: Option<String>,
    /// Lower-case hex SHA-256 the file must have; a shorter pin (at least 8 digits) is a prefix
    /// of it, as torch.hub checks the hash in a weights file's name.
    pub sha256: Option<String>,
}

impl RemoteFile {
    /// A file pinned by its MD5.
    pub fn md5(name: &str, size: u64, md5: &str) -> RemoteFile {
        RemoteFile { name: name.into(), size: Some(size), md5: Some(md5.into()), sha256: None }
    }
}

/// How the downloaded files become a folder a reader opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One tar.gz holding `folder/` with `members`; `dest/folder` is the result.
    Archive { folder: String, members: Vec<String> },
    /// The files themselves, placed in `dest`; `marker` (the file readers look for) goes last.
    Files { marker: String },
}

/// A catalog entry: a dataset's files, where they are and how they unpack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Human name (`CIFAR-10`).
    pub title: String,
    /// URL the file names are appended to (no trailing slash needed).
    pub base_url: String,
    /// The files to download.
    pub files: Vec<RemoteFile>,
    /// What to do with them.
    pub layout: Layout,
}

impl Spec {
    /// The base URL in use: the mirror when one is given, else the official one.
    pub fn base<'a>(&'a self, mirror: Option<&'a str>) -> &'a str {
        mirror.unwrap_or(&self.base_url).trim_end_matches('/')
    }

    /// The URL of one file under the base in use.
    pub fn url(&self, file: &RemoteFile, mirror: Option<&str>) -> String {
        format!("{}/{}", self.base(mirror), file.name)
    }

    /// Total size of the files, when every size is known.
    pub fn total_bytes(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }
}
