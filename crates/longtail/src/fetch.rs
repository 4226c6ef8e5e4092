//! Getting data onto a machine: `longtail fetch` and the on-demand fetch of `train` / `data
//! inspect`. Downloads go through `longtail_data::fetch` (HTTPS, resumable, checked against the
//! published MD5s, unpacked into place only when complete). Fashion-MNIST is also taken from
//! Debian's `dataset-fashion-mnist` when installed, or installed with `apt-get` when offline and
//! root; otherwise an exact instruction.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use longtail_data::fetch::{FetchError, FetchOptions, Layout, Progress, Remote, Stage, describe, fetch};
use longtail_data::readers::idx::{DEBIAN_FASHION_MNIST, locate_fashion_mnist};

const FILES: [&str; 4] = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
const OFFICIAL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

/// The mirror every download uses when `--mirror` is not given (`LONGTAIL_MIRROR`).
fn mirror_from_env() -> Option<String> {
    std::env::var("LONGTAIL_MIRROR").ok().filter(|m| !m.trim().is_empty())
}

/// The fetch options of this process: `mirror`, else `LONGTAIL_MIRROR`.
pub fn options(mirror: Option<&str>) -> FetchOptions {
    FetchOptions { mirror: mirror.map(str::to_string).or_else(mirror_from_env), ..FetchOptions::default() }
}

/// What `longtail fetch NAME` fetches and its default folder.
pub fn remote_of(name: &str) -> Option<(Remote, &'static str)> {
    Some(match name {
        "cifar10" | "cifar10-lt" => (Remote::Cifar10, "data/cifar10"),
        "cifar100" | "cifar100-lt" => (Remote::Cifar100, "data/cifar100"),
        "cifar10-python" => (Remote::Cifar10Python, "data/cifar10"),
        "cifar100-python" => (Remote::Cifar100Python, "data/cifar100"),
        "fashion-mnist" | "fashion-mnist-lt" => (Remote::FashionMnist, "data/fashion-mnist"),
        "resnet152-imagenet" => (Remote::Resnet152Imagenet, "data/pretrained"),
        _ => return None,
    })
}

/// Draws download progress: a bar on a terminal, a line every 5 s otherwise.
struct Reporter {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    current: String,
    last: Instant,
}

impl Reporter {
    fn new(quiet: bool) -> Self {
        Self { quiet, bar: None, current: String::new(), last: Instant::now() }
    }

    fn report(&mut self, p: Progress) {
        if self.quiet {
            return;
        }
        let verb = match p.stage {
            Stage::Download => "downloading",
            Stage::Verify => "checking",
            Stage::Extract => "extracting",
        };
        let what = format!("{verb} {}", p.file);
        if what != self.current {
            self.finish();
            self.current = what.clone();
            if longtail_train::progress::draws_bar() {
                let bar = longtail_train::progress::bar(p.total.unwrap_or(0), "B", indicatif::ProgressDrawTarget::stderr());
                bar.set_message(what.clone());
                self.bar = Some(bar);
            } else if p.stage == Stage::Download {
                eprintln!("{what}");
            }
            self.last = Instant::now();
        }
        match &self.bar {
            Some(b) => {
                if let Some(t) = p.total {
                    b.set_length(t);
                }
                b.set_position(p.done);
            }
            None if p.stage == Stage::Download && self.last.elapsed() >= Duration::from_secs(5) => {
                self.last = Instant::now();
                let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
                match p.total {
                    Some(t) => eprintln!("  {}: {:.1} of {:.1} MiB", p.file, mib(p.done), mib(t)),
                    None => eprintln!("  {}: {:.1} MiB", p.file, mib(p.done)),
                }
            }
            None => {}
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Downloads `remote` into `dest` with a one-line announcement and progress; returns the folder
/// a reader opens.
pub fn download(remote: Remote, dest: &Path, opts: &FetchOptions, quiet: bool) -> Result<PathBuf, FetchError> {
    let present = longtail_data::fetch::present(&remote.spec(), dest);
    if let Some(dir) = &present
        && !matches!(remote.spec().layout, Layout::Files { .. })
    {
        return Ok(dir.clone());
    }
    // files on disk are checked again (their digests), without announcing a download
    if !quiet && present.is_none() {
        eprintln!("{}", describe(remote, opts).line(dest));
    }
    let mut reporter = Reporter::new(quiet);
    let result = fetch(remote, dest, opts, &mut |p| reporter.report(p));
    reporter.finish();
    result
}

/// The exact instruction when `remote` cannot be downloaded from here.
fn offline_instruction(remote: Remote, dest: &Path, err: &FetchError) -> String {
    let spec = remote.spec();
    let file = &spec.files[0];
    let unpack = match &spec.layout {
        Layout::Archive { .. } => format!(" && tar xzf {}", file.name),
        Layout::Files { .. } => String::new(),
    };
    let digest = file.md5.as_deref().map(|m| format!(" (MD5 {m})")).unwrap_or_default();
    format!(
        "{title} could not be downloaded: {err}. On a machine with internet:\n  \
         mkdir -p {dir} && cd {dir} && curl -fLO {url}{unpack}{digest}\n  \
         then copy {dir} here, or run `longtail fetch {name} --mirror URL` with a mirror that serves {file_name}",
        title = spec.title,
        dir = shell_quoted(dest),
        url = spec.url(file, None),
        name = remote.name(),
        file_name = file.name,
    )
}

/// A path as a shell word (quoted when it holds anything but plain characters).
fn shell_quoted(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) { s } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

/// `longtail fetch NAME`: the folder (or file's folder) it fetched, or already had.
pub fn fetch_named(name: &str, data_root: Option<&Path>, mirror: Option<&str>, quiet: bool) -> Result<PathBuf> {
    let Some((remote, default)) = remote_of(name) else {
        let known: Vec<&str> = Remote::ALL.iter().map(|r| r.name()).collect();
        bail!(
            "cannot fetch `{name}`: known are {}; ImageNet-LT, iNaturalist and Places-LT need their official downloads (see docs/datasets.md)",
            known.join(", ")
        );
    };
    if remote == Remote::FashionMnist {
        return ensure_fashion_mnist_with(data_root, false, &options(mirror), quiet);
    }
    let dest = data_root.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(default));
    let opts = options(mirror);
    download(remote, &dest, &opts, quiet).map_err(|e| if e.is_offline() { anyhow::anyhow!(offline_instruction(remote, &dest, &e)) } else { e.into() })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
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
    ensure_fashion_mnist_with(data_dir, named_root_must_hold, &options(None), quiet)
}

fn ensure_fashion_mnist_with(data_dir: Option<&Path>, named_root_must_hold: bool, opts: &FetchOptions, quiet: bool) -> Result<PathBuf> {
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
    match download(Remote::FashionMnist, &local, opts, quiet) {
        Ok(_) => {
            if let Ok(dir) = locate_fashion_mnist(Some(&local)) {
                return Ok(dir);
            }
        }
        // a corrupt or refused download is reported; only an unreachable host falls back
        Err(e) if !e.is_offline() => return Err(e.into()),
        Err(_) => {}
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

/// CIFAR for a config whose files are missing: fetched into the config's root with a one-line
/// message, or the exact instruction when offline.
pub fn ensure_cifar(hundred: bool, root: &Path, quiet: bool) -> Result<PathBuf> {
    let remote = if hundred { Remote::Cifar100 } else { Remote::Cifar10 };
    let opts = options(None);
    download(remote, root, &opts, quiet).map_err(|e| if e.is_offline() { anyhow::anyhow!(offline_instruction(remote, root, &e)) } else { e.into() })
}
