//! Checks the torchvision importer against PyTorch: loads `resnet50.pth` (written by
//! tests/fixtures/make_fixtures.py --resnet50) and compares evaluation-mode logits with
//! `resnet50_expected.json`. Usage: import_check DIR
use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use longtail_models::weights::import_torchvision_resnet;
use longtail_models::{Arch, HeadConfig, ModelConfig};

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: import_check DIR"));
    let d = Device::flex();
    let net = ModelConfig::new(Arch::Resnet50, 3, 1000, HeadConfig::Linear).init(0, &d).unwrap();
    let net = import_torchvision_resnet(net, &dir.join("resnet50.pth"), true).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("resnet50_expected.json")).unwrap()).unwrap();
    let want: Vec<f32> = v["logits"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect();
    let shape = [2, 3, 64, 64];
    let x: Vec<f32> = (0..shape.iter().product::<usize>()).map(|i| (0.01 * i as f64).sin() as f32).collect();
    let got = net.valid().predict(Tensor::from_data(TensorData::new(x, shape), &d)).into_data().try_to_vec::<f32>().unwrap();
    let max_diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
    println!("resnet50 import: {} logits, max |ours - pytorch| = {max_diff:.3e} (max |logit| {scale:.3})", got.len());
    if max_diff > 1e-3 * scale.max(1.0) {
        eprintln!("MISMATCH");
        std::process::exit(1);
    }
    println!("OK");
}
