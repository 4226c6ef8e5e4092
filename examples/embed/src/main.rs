//! Classify images with a model trained by `longtail`, from a program that depends only on the
//! models crate and Burn.
//!
//! ```sh
//! cargo run --release -p embed -- runs/quickstart/ce photo.png
//! cargo run --release -p embed --no-default-features --features wgpu -- runs/x photo.png
//! ```
//!
//! A run folder gives everything needed: `config.toml` (the `[model]` section rebuilds the
//! network, `[data] recipe` says how images were prepared), `checkpoints/final.bpk` (weights) and
//! `final.json` (class names).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;
use longtail_models::{ModelConfig, weights};

/// The parts of a run's `config.toml` this program reads.
#[derive(serde::Deserialize)]
struct RunConfig {
    model: ModelConfig,
    data: DataSection,
    #[serde(default)]
    stages: Vec<StageSection>,
}

/// A stage's classifier change: the checkpoint holds the changed classifier.
#[derive(serde::Deserialize)]
struct StageSection {
    head: Option<toml::Table>,
}

/// The network as the run's last stage left it: RIDE-EA's routers added where a stage added
/// them; the classifier changes this example does not rebuild are an error, not a network that
/// silently drops them.
fn rebuild(config: &RunConfig, device: &Device) -> Result<longtail_models::Network, String> {
    let mut model = config.model.init(0, device).map_err(|e| e.to_string())?;
    for head in config.stages.iter().filter_map(|s| s.head.as_ref()) {
        match head.get("kind").and_then(|k| k.as_str()) {
            None | Some("keep") | Some("reinit") => {}
            Some("router") => {
                let mut fields = head.clone();
                fields.remove("kind");
                let router: longtail_models::RouterConfig = fields.try_into().map_err(|e| format!("config.toml: stages.head: {e}"))?;
                model = model.with_router(&router, 0, device).map_err(|e| e.to_string())?;
            }
            Some(other) => {
                return Err(format!("this example rebuilds plain networks and RIDE-EA's routers, not a `{other}` classifier; use `longtail predict`"));
            }
        }
    }
    Ok(model)
}

#[derive(serde::Deserialize)]
struct DataSection {
    recipe: String,
}

fn device() -> Device {
    #[cfg(feature = "cuda")]
    return Device::cuda(0);
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    return Device::flex();
}

/// The evaluation preprocessing of each recipe: size, channel statistics.
fn preprocess(path: &Path, recipe: &str, channels: usize, device: &Device) -> Result<Tensor<4>, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (side, canvas, mean, std): (u32, u32, Vec<f32>, Vec<f32>) = match recipe {
        // 28x28 grayscale zero-padded to 32x32
        "fashion-mnist" => (28, 32, vec![0.2860; channels], vec![0.3530; channels]),
        "cifar" => (32, 32, vec![0.4914, 0.4822, 0.4465], vec![0.2023, 0.1994, 0.2010]),
        // resize the shorter side to 256 and centre-crop 224
        "imagenet" => (224, 224, vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]),
        other => return Err(format!("unknown recipe `{other}`")),
    };
    let img = if recipe == "imagenet" {
        img.resize_to_fill(256, 256, FilterType::Triangle).crop_imm(16, 16, 224, 224)
    } else {
        img.resize_exact(side, side, FilterType::Triangle)
    };
    let pixels: Vec<[u8; 3]> =
        if channels == 1 { img.to_luma8().pixels().map(|p| [p.0[0]; 3]).collect() } else { img.to_rgb8().pixels().map(|p| p.0).collect() };
    let offset = ((canvas - side) / 2) as usize;
    let (side, canvas) = (side as usize, canvas as usize);
    let mut x = vec![0f32; channels * canvas * canvas];
    for c in 0..channels {
        let plane = &mut x[c * canvas * canvas..(c + 1) * canvas * canvas];
        plane.iter_mut().for_each(|v| *v = -mean[c] / std[c]); // padding is black
        for y in 0..side {
            for xx in 0..side {
                let p = pixels[y * side + xx][c.min(2)] as f32 / 255.0;
                plane[(y + offset) * canvas + xx + offset] = (p - mean[c]) / std[c];
            }
        }
    }
    Ok(Tensor::from_data(TensorData::new(x, [1, channels, canvas, canvas]), device))
}

fn run(run: &Path, images: &[PathBuf]) -> Result<(), String> {
    let text = std::fs::read_to_string(run.join("config.toml")).map_err(|e| format!("{}: {e} (is it a run folder?)", run.display()))?;
    let config: RunConfig = toml::from_str(&text).map_err(|e| format!("config.toml: {e}"))?;
    let final_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("final.json")).map_err(|e| format!("final.json: {e}"))?)
        .map_err(|e| format!("final.json: {e}"))?;
    let names: Vec<String> =
        final_json["metrics"]["per_class"].as_array().into_iter().flatten().map(|c| c["name"].as_str().unwrap_or("?").to_string()).collect();
    let device = device();
    let model = rebuild(&config, &device)?;
    let model = weights::load(model, &run.join("checkpoints/final.bpk")).map_err(|e| e.to_string())?.valid();
    for path in images {
        let x = preprocess(path, &config.data.recipe, config.model.in_channels, &device)?;
        // with routers, only the experts each image is sent to run (RIDE-EA's early exit)
        let logits = match model.predict_routed(x.clone()) {
            Some((logits, _)) => logits,
            None => model.predict(x),
        };
        let probs: Vec<f32> = softmax(logits, 1).into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = ranked.iter().take(3).map(|(c, p)| format!("{} {:.1}%", names.get(*c).map(String::as_str).unwrap_or("?"), 100.0 * p)).collect();
        println!("{}: {}", path.display(), top.join(", "));
    }
    Ok(())
}

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if args.len() < 2 {
        eprintln!("usage: embed RUN_FOLDER IMAGE...");
        std::process::exit(2);
    }
    if let Err(e) = run(&args[0], &args[1..]) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
