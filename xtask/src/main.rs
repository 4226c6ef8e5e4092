//! Project tasks: `cargo xtask bench [--vs-pytorch] [--device D] [--rounds N] [--quick] [--precision P]`,
//! `cargo xtask configs` (regenerate configs/ from the method registry).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn longtail_bin(features: &str) -> Result<PathBuf> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root()).args(["build", "--release", "-q", "-p", "longtail"]);
    if !features.is_empty() {
        cmd.args(["--features", features]);
    }
    if !cmd.status()?.success() {
        bail!("building the longtail binary failed");
    }
    Ok(root().join("target/release/longtail"))
}

fn json_line(out: &[u8]) -> Result<Value> {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).with_context(|| format!("no JSON result in output:\n{text}"))?;
    Ok(serde_json::from_str(line)?)
}

fn run_json(mut cmd: Command) -> Result<Value> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    json_line(&out.stdout)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

struct Row {
    name: &'static str,
    args: Vec<String>,
}

fn rows(quick: bool) -> Vec<Row> {
    let model = |name, arch: &str, mode: &str, batch: usize, image: usize, steps: usize| Row {
        name,
        args: [
            "model",
            "--arch",
            arch,
            "--mode",
            mode,
            "--batch",
            &batch.to_string(),
            "--image",
            &image.to_string(),
            "--steps",
            &steps.to_string(),
            "--warmup",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    let mut r = vec![
        model("ResNet-32 train (b128, 32x32)", "resnet32", "train", 128, 32, 10),
        model("ResNet-32 inference (b128, 32x32)", "resnet32", "infer", 128, 32, 20),
    ];
    if !quick {
        r.push(model("ResNet-50 train (b64, 224x224)", "resnet50", "train", 64, 224, 3));
        r.push(model("ResNet-50 inference (b64, 224x224)", "resnet50", "infer", 64, 224, 5));
    }
    r
}

fn bench(args: &[String]) -> Result<()> {
    let vs = args.iter().any(|a| a == "--vs-pytorch");
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let device = value("--device").unwrap_or_else(|| "flex".into());
    let rounds: usize = value("--rounds").map(|r| r.parse()).transpose()?.unwrap_or(3);
    let features = value("--features").unwrap_or_default();
    // mixed precision: ours `--precision`, PyTorch `--amp` (autocast, GradScaler for fp16)
    let precision = value("--precision").unwrap_or_else(|| "f32".into());
    let amp = match precision.as_str() {
        "f32" => "none",
        "bf16" => "bf16",
        "f16" => "fp16",
        other => bail!("--precision {other}: expected f32, bf16 or f16"),
    };
    let torch_device = if device.starts_with("cuda") || device.starts_with("wgpu") { "cuda" } else { "cpu" };
    let bin = longtail_bin(&features)?;
    println!("| benchmark | backend | ours img/s | ours peak MiB |{} ", if vs { " PyTorch img/s | PyTorch peak MiB | ours / PyTorch |" } else { "" });
    println!("|---|---|---|---|{}", if vs { "---|---|---|" } else { "" });
    for row in rows(quick) {
        let (mut ours, mut theirs, mut ratios, mut peak, mut tpeak) = (vec![], vec![], vec![], 0f64, 0f64);
        let mut backend = String::new();
        for _ in 0..rounds {
            let mut cmd = Command::new(&bin);
            cmd.arg("--device").arg(&device).arg("bench").args(&row.args).args(["--precision", &precision]);
            let a = run_json(cmd)?;
            let ai = a["images_per_second"].as_f64().unwrap_or(0.0);
            backend = a["backend"].as_str().unwrap_or("").to_string();
            peak = peak.max(a["peak_mib"].as_f64().unwrap_or(0.0));
            ours.push(ai);
            if vs {
                let mut cmd = Command::new("python3");
                cmd.arg(root().join("bench/pytorch_bench.py")).args(&row.args[1..]).args(["--device", torch_device, "--amp", amp]);
                let b = run_json(cmd)?;
                let bi = b["images_per_second"].as_f64().unwrap_or(f64::NAN);
                tpeak = tpeak.max(b["peak_mib"].as_f64().unwrap_or(0.0));
                theirs.push(bi);
                ratios.push(ai / bi);
            }
        }
        let mut line = format!("| {} | {} | {:.1} | {:.0} |", row.name, backend, median(&mut ours), peak);
        if vs {
            line.push_str(&format!(" {:.1} | {:.0} | {:.2}x |", median(&mut theirs), tpeak, median(&mut ratios)));
        }
        println!("{line}");
    }
    for threads in [1, 2] {
        for format in ["cifar", "jpeg"] {
            let images = if format == "jpeg" { 512 } else { 8192 };
            let mut v = vec![];
            for _ in 0..rounds {
                let mut cmd = Command::new(&bin);
                cmd.args(["bench", "loader", "--format", format, "--threads", &threads.to_string(), "--images", &images.to_string()]);
                v.push(run_json(cmd)?["images_per_second"].as_f64().unwrap_or(0.0));
            }
            println!("| loader {format} with augmentation, {threads} thread(s) | host | {:.0} | - |{}", median(&mut v), if vs { " - | - | - |" } else { "" });
        }
    }
    Ok(())
}

/// Writes every shipped config, the per-method binaries and their `[[bin]]` entries from the
/// method registry (`longtail_train::methods`), and removes configs no method generates.
fn configs() -> Result<()> {
    use longtail_train::methods::{METHODS, config_header, shipped_configs};
    let configs = shipped_configs();
    let mut wanted = std::collections::BTreeSet::new();
    for (path, method, config) in &configs {
        let path = root().join(path);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, config_header(method) + &config.to_toml())?;
        wanted.insert(path);
    }
    let mut removed = 0;
    for dir in std::fs::read_dir(root().join("configs"))? {
        for file in std::fs::read_dir(dir?.path())? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "toml") && !wanted.contains(&file) {
                std::fs::remove_file(&file)?;
                removed += 1;
            }
        }
    }
    let methods = root().join("crates/longtail-methods");
    let manifest = methods.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)?;
    let head = text.split("\n[[bin]]").next().unwrap_or(&text).trim_end().to_string();
    let bins: String =
        METHODS.iter().map(|m| format!("\n[[bin]]\nname = \"{}\"\npath = \"src/bin/{}.rs\"\ntest = false\n", m.name, m.name.replace('-', "_"))).collect();
    std::fs::write(&manifest, format!("{head}\n{bins}"))?;
    for m in METHODS {
        std::fs::write(methods.join("src/bin").join(format!("{}.rs", m.name.replace('-', "_"))), method_binary())?;
    }
    println!("wrote {} configs under configs/ (removed {removed} stale), {} method binaries", configs.len(), METHODS.len());
    Ok(())
}

/// The source of every per-method binary: the method is the binary's name.
fn method_binary() -> &'static str {
    "fn main() {\n    longtail::cli::method_main(env!(\"CARGO_BIN_NAME\"));\n}\n"
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("configs") => configs(),
        _ => {
            eprintln!(
                "usage: cargo xtask bench [--vs-pytorch] [--device flex|ndarray|wgpu|cuda] [--features F] [--rounds N] [--quick] [--precision f32|bf16|f16]\n       cargo xtask configs"
            );
            std::process::exit(2);
        }
    }
}
