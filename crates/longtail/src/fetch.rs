//! Getting Fashion-MNIST onto a fresh machine: a data folder if present, Debian's
//! `dataset-fashion-mnist` if installed, a download of the official files when online, an
//! `apt-get install` when apt is available and we run as root; otherwise an exact instruction.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};
use longtail_data::readers::idx::{DEBIAN_FASHION_MNIST, locate_fashion_mnist};

const FILES: [&str; 4] = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
const OFFICIAL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn download(dir: &Path, quiet: bool) -> bool {
    if Command::new("curl").arg("--version").output().is_err() {
        return false;
    }
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    for f in FILES {
        let target = dir.join(f);
        if target.exists() {
            continue;
        }
        if !quiet {
            eprintln!("downloading {OFFICIAL}/{f}");
        }
        let ok = Command::new("curl")
            .args(["-fsSL", "--connect-timeout", "10", "--max-time", "300", "-o"])
            .arg(&target)
            .arg(format!("{OFFICIAL}/{f}"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let _ = std::fs::remove_file(&target);
            return false;
        }
    }
    true
}

fn apt_install(quiet: bool) -> bool {
    if !is_root() || Command::new("apt-get").arg("--version").output().is_err() {
        return false;
    }
    if !quiet {
        eprintln!("installing Debian's dataset-fashion-mnist with apt-get");
    }
    let install = || Command::new("apt-get").args(["install", "-y", "-q", "dataset-fashion-mnist"]).status().map(|s| s.success()).unwrap_or(false);
    install() || (Command::new("apt-get").args(["update", "-q"]).status().map(|s| s.success()).unwrap_or(false) && install())
}

/// Returns a folder holding Fashion-MNIST, obtaining it if needed. `data_dir` is where a
/// download goes (`data/fashion-mnist` by default). With `named_root_must_hold` (a root the user
/// gave for training) a `data_dir` without the files is an error instead.
pub fn ensure_fashion_mnist(data_dir: Option<&Path>, named_root_must_hold: bool, quiet: bool) -> Result<PathBuf> {
    let local = data_dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("data/fashion-mnist"));
    if let Ok(dir) = locate_fashion_mnist(Some(&local)) {
        return Ok(dir);
    }
    // a folder the user named that does not hold the data is an error, not a reason to use another copy
    if let Some(dir) = data_dir.filter(|_| named_root_must_hold) {
        bail!(
            "{} does not hold the Fashion-MNIST IDX files ({}); fix the path, or download them there with `longtail fetch fashion-mnist --data-root {}`",
            dir.display(),
            FILES.join(", "),
            dir.display()
        );
    }
    if let Ok(dir) = locate_fashion_mnist(None) {
        return Ok(dir);
    }
    if download(&local, quiet)
        && let Ok(dir) = locate_fashion_mnist(Some(&local))
    {
        return Ok(dir);
    }
    if apt_install(quiet)
        && let Ok(dir) = locate_fashion_mnist(None)
    {
        return Ok(dir);
    }
    bail!(
        "Fashion-MNIST is not available and could not be fetched. Do one of:\n  \
         sudo apt-get install dataset-fashion-mnist          (Debian/Ubuntu; installs to {DEBIAN_FASHION_MNIST})\n  \
         mkdir -p {0} && cd {0} && for f in {1}; do curl -fLO {OFFICIAL}/$f; done\n  \
         or pass --data-root with a folder holding the four IDX files",
        local.display(),
        FILES.join(" ")
    )
}
