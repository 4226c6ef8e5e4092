//! The command-line interface: the umbrella `longtail` binary and the per-method binaries.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use longtail_data::SourceSpec;
use longtail_models::Precision;
use longtail_train::device::select_device;
use longtail_train::methods::{METHODS, default_config, method};
use longtail_train::presets::Dataset;
use longtail_train::{ExperimentConfig, RunDir, RunOptions, train};

/// Long-tailed visual recognition on Burn.
#[derive(Parser, Debug)]
#[command(name = "longtail", version, about, long_about = None)]
pub struct Cli {
    /// Backend device: flex (cpu), ndarray, cuda[:N], wgpu[:N]; default from BURN_DEVICE, else the CPU.
    #[arg(long, global = true, env = "BURN_DEVICE")]
    pub device: Option<String>,
    /// Print only results, no progress.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every runnable method: name, paper, stages.
    Methods,
    /// Print the default config of a method on a dataset.
    Config {
        #[arg(long)]
        method: String,
        #[arg(long, default_value = "fashion-mnist-lt")]
        dataset: String,
        #[arg(long)]
        imbalance_factor: Option<f64>,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Train a method (the same as the per-method binaries).
    Train(TrainArgs),
    /// Re-evaluate a run's checkpoint on the test split and write the metrics.
    Eval {
        #[arg(long)]
        run: PathBuf,
        /// `final` or `best`.
        #[arg(long, default_value = "final")]
        checkpoint: String,
        /// Evaluate under this test label distribution (LADE's inference: `log p` added to the
        /// logits): one probability per class, comma-separated, or a file of them. For models
        /// trained to a uniform prior (LADE, balanced softmax); a linear classifier only.
        #[arg(long)]
        test_prior: Option<String>,
    },
    /// Classify image files with a trained run (top-k with class names).
    Predict {
        #[arg(long)]
        run: PathBuf,
        #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        top_k: usize,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Write report.md, report.html and plots for a finished run.
    Report { run: PathBuf },
    /// One table across runs.
    Compare {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Also write the table to this Markdown file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The main job: CE against long-tailed methods on Fashion-MNIST-LT, with reports.
    Quickstart(crate::quickstart::QuickstartArgs),
    /// Throughput benchmarks (images/s, peak memory); `cargo xtask bench` runs the standard set.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Write a run's final weights as safetensors for other tools (PyTorch: `--names torchvision`).
    Export {
        #[arg(long)]
        run: PathBuf,
        /// The file to write (`model.safetensors`).
        #[arg(long)]
        to: PathBuf,
        /// Key names: `burn` (longtail's own, loadable with `init_from`), `torchvision` (ResNet-50 /
        /// 152, ResNeXt-50: `torchvision.models.resnet50().load_state_dict(...)`; timm's are the
        /// same) or `ldam-cifar` (the CIFAR ResNets of the LDAM-DRW code base).
        #[arg(long, default_value = "burn")]
        names: String,
    },
    /// Download a dataset or pretrained file, checked against its published checksum:
    /// cifar10, cifar100 (binary versions), cifar10-python, cifar100-python (torchvision's
    /// layout), fashion-mnist (also from Debian's package or apt), resnet152-imagenet
    /// (torchvision's, for the Places-LT configs).
    Fetch {
        dataset: String,
        /// The folder to fetch into [default: data/cifar10, data/cifar100, data/fashion-mnist,
        /// data/pretrained].
        #[arg(long)]
        data_root: Option<PathBuf>,
        /// A server holding the same file names in place of the official host (also
        /// `LONGTAIL_MIRROR`).
        #[arg(long)]
        mirror: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Class histogram, many / medium / few membership and hierarchy of a long-tailed dataset.
    Inspect {
        /// A preset: fashion-mnist, cifar10, cifar100, imagenet-lt, inat2018, places-lt.
        #[arg(long, default_value = "fashion-mnist")]
        dataset: String,
        #[arg(long)]
        imbalance_factor: Option<f64>,
        /// Where the dataset's files are (overrides the preset's path).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Read the data section of this experiment config instead of a preset.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also check that every listed image file exists and decodes (reads them all).
        #[arg(long)]
        check_images: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Model training or inference on random data.
    Model {
        #[arg(long, default_value = "resnet32")]
        arch: String,
        /// `train` or `infer`.
        #[arg(long, default_value = "train")]
        mode: String,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        #[arg(long, default_value_t = 32)]
        image: usize,
        #[arg(long, default_value_t = 3)]
        channels: usize,
        #[arg(long, default_value_t = 10)]
        classes: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// f32, bf16 or f16 convolutions (`train --precision`).
        #[arg(long, default_value = "f32")]
        precision: String,
    },
    /// Compare this device's numbers on a fixed batch with the CPU backend's (relative 1e-3).
    Parity,
    /// Loader with augmentation: `cifar` (in-memory 32x32) or `jpeg` (decode + ImageNet recipe).
    Loader {
        #[arg(long, default_value = "cifar")]
        format: String,
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        #[arg(long, default_value_t = 4096)]
        images: usize,
    },
}

/// Arguments of `longtail train` and of every method binary.
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// Method name (`longtail methods`); fixed by the method binaries.
    #[arg(long)]
    pub method: Option<String>,
    /// Experiment config (TOML). Without it, the method's default config for --dataset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The benchmark of --method's default config [default: fashion-mnist-lt].
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub imbalance_factor: Option<f64>,
    /// Override any config field: --set stages.0.epochs=3 --set seed=1
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run folder (default runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<PathBuf>,
    /// Stop after this many epochs (the run stays resumable).
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// Folder for datasets fetched on demand (Fashion-MNIST; CIFAR: replaces the config's root).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Skip writing report.md / report.html.
    #[arg(long)]
    pub no_report: bool,
    /// Data-parallel training over these devices, comma-separated (`cuda:0,cuda:1`; `flex,flex`
    /// runs two replicas on the CPU). Replaces --device: the first device holds the model and
    /// takes the optimizer step; every step's batch is split across all of them.
    #[arg(long, value_delimiter = ',', value_name = "DEVICES")]
    pub devices: Vec<String>,
    /// Mixed precision: f32 (default), bf16 or f16 convolutions on f32 weights (f16 with dynamic
    /// loss scaling), like `torch.autocast`; the same as `--set precision=...`. For GPUs: on the
    /// CPU backend 16-bit convolutions are slower than f32.
    #[arg(long, value_name = "f32|bf16|f16")]
    pub precision: Option<String>,
}

/// Fills in the data's location, fetching Fashion-MNIST or CIFAR when their files are missing
/// (CIFAR into the config's root, or `--data-root`).
fn provide_data(config: &mut ExperimentConfig, data_root: Option<&Path>, quiet: bool) -> Result<()> {
    let takes_root = matches!(config.data.source, SourceSpec::FashionMnist { root: None } | SourceSpec::Cifar10 { .. } | SourceSpec::Cifar100 { .. });
    if let Some(r) = data_root
        && !takes_root
    {
        bail!(
            "--data-root {} applies to a Fashion-MNIST config without its own root or a CIFAR config; this config's data source names its files (set them with --set data.source...)",
            r.display()
        );
    }
    if let SourceSpec::Cifar10 { root } | SourceSpec::Cifar100 { root } = &mut config.data.source {
        if let Some(r) = data_root {
            *root = r.to_path_buf();
        }
        let hundred = matches!(config.data.source, SourceSpec::Cifar100 { .. });
        let (SourceSpec::Cifar10 { root } | SourceSpec::Cifar100 { root }) = &config.data.source else { unreachable!() };
        let found =
            if hundred { longtail_data::readers::cifar::locate_cifar100(root).is_ok() } else { longtail_data::readers::cifar::locate_cifar10(root).is_ok() };
        if !found {
            crate::fetch::ensure_cifar(hundred, &root.clone(), quiet)?;
        }
        return Ok(());
    }
    if let SourceSpec::FashionMnist { root } = &mut config.data.source {
        let wanted = root.clone().or_else(|| data_root.map(Path::to_path_buf));
        if longtail_data::readers::idx::locate_fashion_mnist(wanted.as_deref()).is_err() {
            *root = Some(crate::fetch::ensure_fashion_mnist(wanted.as_deref(), true, quiet)?);
        } else if wanted.is_some() {
            *root = wanted;
        }
    }
    Ok(())
}

/// Builds the experiment config of a `train` invocation.
pub fn resolve_config(args: &TrainArgs) -> Result<ExperimentConfig> {
    let mut overrides = args.overrides.clone();
    if let Some(p) = &args.precision {
        let p = Precision::parse(p).ok_or_else(|| anyhow!("--precision {p}: expected f32, bf16 or f16"))?;
        overrides.push(format!("precision={}", p.name()));
    }
    // the method is a label of the config's stages: renaming it without changing a stage would
    // label one method's run as another's
    let key = |o: &String| o.split_once('=').map(|(k, _)| k.trim().to_string()).unwrap_or_default();
    if let Some(o) = overrides.iter().find(|o| key(o) == "method")
        && !overrides.iter().any(|o| key(o).starts_with("stages"))
    {
        bail!(
            "--set {o}: the method comes with its config, and no stage is changed; use --method NAME (its default config), another --config, or name the run with the stage overrides that make it that method"
        );
    }
    let config = match &args.config {
        Some(path) => {
            // flags that shape a preset's default config do nothing to a config file: refuse them
            if args.dataset.is_some() || args.imbalance_factor.is_some() {
                bail!(
                    "--dataset and --imbalance-factor choose --method's default config; with --config {} set its data instead (--set data.long_tail.imbalance_factor=N)",
                    path.display()
                );
            }
            ExperimentConfig::load(path, &overrides)?
        }
        None => {
            let name = args.method.as_deref().ok_or_else(|| anyhow!("give --method NAME or --config FILE (see `longtail methods`)"))?;
            let dataset = Dataset::parse(args.dataset.as_deref().unwrap_or("fashion-mnist-lt"))?;
            let base = default_config(name, dataset, args.imbalance_factor.unwrap_or(dataset.default_imbalance()))?;
            ExperimentConfig::from_toml(&base.to_toml(), Path::new(&format!("<default {name} config>")), &overrides)?
        }
    };
    if let Some(m) = &args.method {
        method(m)?;
        if &config.method != m {
            bail!("the config is for method `{}` but this is `{m}`; use `longtail train --config` or the `{}` binary", config.method, config.method);
        }
    } else {
        method(&config.method)?;
    }
    Ok(config)
}

/// Runs `train` (or resume) and writes the report; returns the run folder.
pub fn run_train(args: &TrainArgs, device: Option<&str>, quiet: bool) -> Result<PathBuf> {
    let (device, data_parallel) = match args.devices.split_first() {
        Some((first, rest)) => {
            // --devices wins over --device / BURN_DEVICE
            let others = rest.iter().map(|d| select_device(Some(d))).collect::<Result<Vec<_>, _>>()?;
            (select_device(Some(first))?, others)
        }
        None => (select_device(device)?, Vec::new()),
    };
    let (config, run_dir, resume) = match &args.resume {
        Some(run) => {
            if args.config.is_some() || !args.overrides.is_empty() || args.precision.is_some() {
                bail!("--resume continues a run with its saved config; drop --config / --set / --precision");
            }
            let config = ExperimentConfig::load(&RunDir::new(run).config(), &[]).with_context(|| format!("{} is not a run folder", run.display()))?;
            (config, run.clone(), true)
        }
        None => {
            let mut config = resolve_config(args)?;
            provide_data(&mut config, args.data_root.as_deref(), quiet)?;
            let out = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
            (config, out, false)
        }
    };
    let opts = RunOptions { run_dir: run_dir.clone(), device, resume, max_epochs: args.max_epochs, quiet, data_parallel };
    let outcome = train(&config, &opts)?;
    if outcome.finished {
        if !args.no_report {
            let md = crate::report::write_report(&run_dir)?;
            if !quiet {
                eprintln!("report: {} (and report.html)", md.display());
            }
        }
        if let Some(r) = &outcome.final_report {
            println!("{}", crate::compare::table(std::slice::from_ref(r)));
        }
    } else if !quiet {
        eprintln!("paused; continue with --resume {}", run_dir.display());
    }
    Ok(run_dir)
}

/// The probabilities of `--test-prior`: comma- or whitespace-separated values, or a file of them.
fn parse_prior(arg: &str) -> Result<Vec<f64>> {
    let text = if Path::new(arg).is_file() { std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))? } else { arg.to_string() };
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<f64>().map_err(|_| anyhow!("--test-prior: `{t}` is not a number (give one probability per class, comma-separated, or a file)")))
        .collect()
}

fn eval(run: &Path, checkpoint: &str, test_prior: Option<&str>, device: Option<&str>) -> Result<()> {
    let device = select_device(device)?.autodiff();
    let dir = RunDir::new(run);
    let config = ExperimentConfig::load(&dir.config(), &[]).with_context(|| format!("{} is not a run folder", run.display()))?;
    let prior = test_prior.map(parse_prior).transpose()?;
    if let Some(p) = &prior {
        longtail_train::stage::check_test_prior(p, config.model.num_classes).context("--test-prior")?;
    }
    let network = match checkpoint {
        // with the stages' classifier changes (tau-norm, LWS) and the run's checksum checked
        "final" => longtail_train::load_run_network(run, &device)?.0,
        "best" => longtail_models::weights::load(config.model.init(config.seed, &device)?, &dir.best_checkpoint())?,
        other => bail!("--checkpoint must be `final` or `best`, got `{other}`"),
    };
    let network = match &prior {
        Some(p) => longtail_train::stage::with_test_prior(network, p, &device).context("--test-prior")?,
        None => network,
    };
    let data = longtail_train::data::PreparedData::load(&config)?;
    let metrics = longtail_train::evaluate_network(&network, &config, &data, &device)?;
    let under = if prior.is_some() { ", test prior given" } else { "" };
    let report = longtail_train::FinalReport {
        name: format!("{} ({checkpoint} checkpoint{under})", config.name),
        method: config.method.clone(),
        device: longtail_train::device::describe(&device),
        train_counts: data.counts.clone(),
        metrics,
        best: None,
        total_seconds: 0.0,
    };
    let out = run.join(format!("eval-{checkpoint}{}.json", if prior.is_some() { "-test-prior" } else { "" }));
    std::fs::write(&out, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", crate::compare::table(std::slice::from_ref(&report)));
    eprintln!("metrics written to {}", out.display());
    Ok(())
}

fn data_inspect(dataset: &str, imbalance: Option<f64>, root: Option<&Path>, config: Option<&Path>, check_images: bool, quiet: bool) -> Result<()> {
    let data = match config {
        Some(path) => ExperimentConfig::load(path, &[])?.data,
        None => {
            let preset = Dataset::parse(dataset)?;
            let mut data = preset.data(imbalance.unwrap_or(preset.default_imbalance()));
            if let Some(r) = imbalance {
                data.long_tail.imbalance_factor = r;
            }
            if let Some(root) = root {
                match &mut data.source {
                    SourceSpec::FashionMnist { root: r } => *r = Some(root.to_path_buf()),
                    SourceSpec::Cifar10 { root: r } | SourceSpec::Cifar100 { root: r } => *r = root.to_path_buf(),
                    _ => bail!("--root applies to fashion-mnist and cifar presets; use --config for list-file datasets"),
                }
            }
            data
        }
    };
    let mut exp = ExperimentConfig {
        name: "inspect".into(),
        method: "ce".into(),
        seed: 0,
        precision: Default::default(),
        data,
        model: longtail_models::ModelConfig::new(longtail_models::Arch::Resnet32, 1, 10, longtail_models::HeadConfig::Linear),
        stages: vec![],
        eval: Default::default(),
        loader: Default::default(),
        init_from: None,
        fusion: None,
    };
    provide_data(&mut exp, None, quiet)?;
    let splits = exp.data.load()?;
    print!("{}", crate::inspect::describe(&splits, exp.eval.many_above, exp.eval.few_below));
    if check_images {
        for (name, split) in [("train", Some(&splits.train)), ("test", Some(&splits.test)), ("val", splits.val.as_ref())] {
            let Some(split) = split else { continue };
            split.check_files()?;
            split.check_images().with_context(|| format!("the {name} split"))?;
            println!("{name}: all {} images exist and decode", split.len());
        }
    }
    Ok(())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let device = cli.device.as_deref();
    match cli.command {
        Command::Methods => {
            for m in METHODS {
                println!("{:<26} {:<50} {} | {}", m.name, m.title, m.paper, m.stages);
            }
        }
        Command::Config { method, dataset, imbalance_factor } => {
            let d = Dataset::parse(&dataset)?;
            print!("{}", default_config(&method, d, imbalance_factor.unwrap_or(d.default_imbalance()))?.to_toml());
        }
        Command::Data { command: DataCommand::Inspect { dataset, imbalance_factor, root, config, check_images } } => {
            data_inspect(&dataset, imbalance_factor, root.as_deref(), config.as_deref(), check_images, cli.quiet)?;
        }
        Command::Train(args) => {
            run_train(&args, device, cli.quiet)?;
        }
        Command::Eval { run, checkpoint, test_prior } => eval(&run, &checkpoint, test_prior.as_deref(), device)?,
        Command::Predict { run, top_k, images } => {
            let d = select_device(device)?;
            let mut failed = 0;
            for (path, ranked) in images.iter().zip(crate::predict::predict_files(&run, &images, top_k, &d)?) {
                match ranked {
                    Ok(ranked) => {
                        let parts: Vec<String> = ranked.iter().map(|(c, n, p)| format!("{n} [{c}] {:.1}%", 100.0 * p)).collect();
                        println!("{}: {}", path.display(), parts.join(", "));
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {}: {e:#}", path.display());
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} images could not be classified", images.len());
            }
        }
        Command::Report { run } => {
            let md = crate::report::write_report(&run)?;
            println!("{}", md.display());
        }
        Command::Compare { runs, out } => {
            let table = crate::compare::table(&crate::compare::load_reports(&runs)?);
            print!("{table}");
            if let Some(out) = out {
                std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
            }
        }
        Command::Quickstart(args) => crate::quickstart::run(&args, device, cli.quiet)?,
        Command::Bench { command } => {
            let result = match command {
                BenchCommand::Model { arch, mode, batch, image, channels, classes, steps, warmup, precision } => {
                    let arch: longtail_models::Arch =
                        serde_json::from_value(serde_json::Value::String(arch.clone())).map_err(|_| anyhow!("unknown --arch `{arch}`"))?;
                    let train = match mode.as_str() {
                        "train" => true,
                        "infer" => false,
                        other => bail!("--mode must be train or infer, got `{other}`"),
                    };
                    let precision = Precision::parse(&precision).ok_or_else(|| anyhow!("--precision {precision}: expected f32, bf16 or f16"))?;
                    let spec = crate::bench::ModelBench { arch, train, batch, image, channels, classes, steps, warmup, precision };
                    crate::bench::model(&spec, &select_device(device)?)?
                }
                BenchCommand::Parity => {
                    let d = select_device(device)?;
                    let cpu = longtail_train::parity::numbers(&burn::tensor::Device::flex());
                    let other = longtail_train::parity::numbers(&d);
                    let worst = longtail_train::parity::compare(&cpu, &other)
                        .map_err(|e| anyhow!("{} differs from the CPU backend: {e}", longtail_train::device::describe(&d)))?;
                    println!(
                        "{}",
                        serde_json::json!({"parity": longtail_train::device::describe(&d), "largest_relative_difference": worst, "tolerance": longtail_train::parity::TOLERANCE, "train_loss": other.train_loss, "cpu_train_loss": cpu.train_loss})
                    );
                    return Ok(());
                }
                BenchCommand::Loader { format, threads, batch, images } => {
                    crate::bench::loader(&format, threads, batch, images, &std::env::temp_dir().join("longtail-bench-jpeg"))?
                }
            };
            println!("{}", serde_json::to_string(&result)?);
        }
        Command::Export { run, to, names } => {
            let (network, _) = longtail_train::load_run_network(&run, &select_device(device)?)?;
            let written = match names.as_str() {
                "burn" => {
                    longtail_models::weights::save_safetensors(&network, &to)?;
                    longtail_models::parts::parameter_paths(&network).len()
                }
                other => {
                    let layout: longtail_models::weights::PytorchLayout = serde_json::from_value(serde_json::Value::String(other.to_string()))
                        .map_err(|_| anyhow!("--names {other}: expected burn, torchvision, timm or ldam-cifar"))?;
                    longtail_models::weights::export_pytorch(&network, &to, layout)?
                }
            };
            if !cli.quiet {
                eprintln!("{written} tensors written with {names} names");
            }
            println!("{}", to.display());
        }
        Command::Fetch { dataset, data_root, mirror } => {
            println!("{}", crate::fetch::fetch_named(&dataset, data_root.as_deref(), mirror.as_deref(), cli.quiet)?.display());
        }
    }
    Ok(())
}

/// Reports an unexpected panic as one line (a backtrace only with `LONGTAIL_BACKTRACE=1`).
pub fn install_panic_hook() {
    if std::env::var("LONGTAIL_BACKTRACE").is_ok_and(|v| v == "1") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = longtail_train::error::panic_message(info.payload()).unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error: {}{at}; please report it (LONGTAIL_BACKTRACE=1 shows a backtrace)", msg.lines().next().unwrap_or(""));
    }));
}

/// Prints an error as one line of cause (plus its hint) and exits non-zero; no backtrace.
pub fn exit_on_error(result: Result<()>) {
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The command line of a per-method binary.
#[derive(Parser, Debug)]
struct MethodCli {
    #[arg(long, env = "BURN_DEVICE")]
    device: Option<String>,
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    train: TrainArgs,
}

/// Entry point of the binary of method `name` (`cargo run --release --bin <name> -- ...`).
pub fn method_main(name: &str) {
    crate::tune_allocator();
    install_panic_hook();
    let mut cli = MethodCli::parse();
    exit_on_error((|| {
        method(name)?;
        if cli.train.method.as_deref().is_some_and(|m| m != name) {
            bail!("this is the `{name}` binary; use `longtail train --method ...` for other methods");
        }
        cli.train.method = Some(name.to_string());
        run_train(&cli.train, cli.device.as_deref(), cli.quiet).map(|_| ())
    })());
}
