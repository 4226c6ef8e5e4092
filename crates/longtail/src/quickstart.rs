//! The main job: on Fashion-MNIST-LT (IF 100), train CE and balanced softmax with a short budget,
//! add post-hoc logit adjustment on the CE model, and write a report for each and a comparison.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use longtail_data::SourceSpec;
use longtail_models::Arch;
use longtail_train::config::RunSource;
use longtail_train::methods::default_config;
use longtail_train::presets::Dataset;
use longtail_train::schedule::{Decay, LrConfig};
use longtail_train::{ExperimentConfig, RunDir, RunOptions, train};

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Where the runs and the summary go.
    #[arg(long, default_value = "runs/quickstart")]
    pub out: PathBuf,
    /// Epochs per trained method.
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// Backbone (the default resnet20 keeps the job to minutes on a 2-core CPU; resnet32 is the papers').
    #[arg(long, default_value = "resnet20")]
    pub arch: String,
    /// Folder for Fashion-MNIST if it has to be downloaded.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

fn quick(method: &str, args: &QuickstartArgs, arch: Arch, root: &Path) -> Result<ExperimentConfig> {
    let mut c = default_config(method, Dataset::FashionMnistLt, 100.0)?;
    c.name = format!("quickstart-{method}");
    c.model.arch = arch;
    c.data.source = SourceSpec::FashionMnist { root: Some(root.to_path_buf()) };
    for s in &mut c.stages {
        if s.epochs > 0 {
            s.epochs = args.epochs;
            s.lr = LrConfig {
                base: s.lr.base,
                warmup_epochs: usize::from(args.epochs > 2),
                warmup_per_step: true,
                warmup_start: 0.0,
                decay: Decay::Cosine { min: 0.0, offset: 0 },
            };
        }
    }
    Ok(c)
}

pub fn run(args: &QuickstartArgs, device: Option<&str>, quiet: bool) -> Result<()> {
    let device = longtail_train::device::select_device(device)?;
    let arch: Arch = serde_json::from_value(serde_json::Value::String(args.arch.clone())).with_context(|| format!("unknown --arch `{}`", args.arch))?;
    if args.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1");
    }
    let root = crate::fetch::ensure_fashion_mnist(args.data_root.as_deref(), true, quiet)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let ce = quick("ce", args, arch, &root)?;
    let bs = quick("balanced-softmax", args, arch, &root)?;
    let mut la = quick("logit-adjustment-posthoc", args, arch, &root)?;
    let ce_dir = args.out.join("ce");
    la.init_from = Some(RunSource::Run { run: ce_dir.clone() });
    let mut dirs = Vec::new();
    for (config, dir) in [(ce, ce_dir), (bs, args.out.join("balanced-softmax")), (la, args.out.join("ce+logit-adjustment"))] {
        let resume = RunDir::new(&dir).state_path().exists();
        let outcome = train(&config, &RunOptions { run_dir: dir.clone(), device: device.clone(), resume, max_epochs: None, quiet, data_parallel: Vec::new() })?;
        if outcome.finished {
            crate::report::write_report(&dir)?;
        }
        dirs.push(dir);
    }
    let table = crate::compare::table(&crate::compare::load_reports(&dirs)?);
    let summary = args.out.join("summary.md");
    let text = format!(
        "# Quickstart: Fashion-MNIST-LT (imbalance factor 100)\n\n{} backbone, {} epochs per trained method. Per-run reports: {}.\n\n{table}",
        arch.name(),
        args.epochs,
        dirs.iter().map(|d| format!("[{0}]({0}/report.md)", d.file_name().unwrap().to_string_lossy())).collect::<Vec<_>>().join(", ")
    );
    std::fs::write(&summary, text).with_context(|| format!("writing {}", summary.display()))?;
    println!("{table}");
    eprintln!("summary: {}", summary.display());
    Ok(())
}
