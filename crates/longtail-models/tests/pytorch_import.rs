//! Loading PyTorch-format checkpoints written by tests/fixtures/make_fixtures.py (PyTorch's own
//! `torch.save`, LDAM-DRW checkpoint layout): the tensors land where they belong and evaluation-mode
//! logits equal PyTorch's on the same input. The torchvision ResNet-50 check writes its 100 MB
//! fixture at test time and runs only where `python3` has torch and torchvision (skipped with a
//! message otherwise, as on CI).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use longtail_models::weights::{PytorchLayout, import_pytorch};
use longtail_models::{Arch, HeadConfig, ModelConfig, Network};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `x[n,c,h,w] = sin(0.01 * flat index)`, the fixture script's input.
pub fn formula_input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (0.01 * i as f64).sin() as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn expected(name: &str) -> (Vec<f32>, [usize; 4]) {
    expected_at(&fixture(name))
}

/// Logits and input shape of a `*_expected.json` written by make_fixtures.py.
fn expected_at(path: &Path) -> (Vec<f32>, [usize; 4]) {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let shape: Vec<usize> = v["input_shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let logits = v["logits"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect();
    (logits, shape.try_into().unwrap())
}

fn check(head: HeadConfig, file: &str, expected_file: &str) {
    let d = Device::flex();
    let net = ModelConfig::new(Arch::Resnet8, 3, 10, head).init(99, &d).unwrap();
    let net = import_pytorch(net, &fixture(file), PytorchLayout::LdamCifar, true).unwrap();
    let (want, shape) = expected(expected_file);
    let got = net.valid().predict(formula_input(shape, &d)).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-4 * w.abs().max(1.0), "{file} logit {i}: {g} vs PyTorch {w}");
    }
}

#[test]
fn ldam_resnet_with_a_linear_head_reproduces_pytorch_logits() {
    check(HeadConfig::Linear, "resnet8_linear.pth", "resnet8_linear_expected.json");
}

#[test]
fn ldam_resnet_with_a_normed_linear_head_reproduces_pytorch_logits() {
    check(HeadConfig::Cosine, "resnet8_normed.pth", "resnet8_normed_expected.json");
}

#[test]
fn imported_tensors_land_in_their_places() {
    let d = Device::flex();
    let net = ModelConfig::new(Arch::Resnet8, 3, 10, HeadConfig::Linear).init(5, &d).unwrap();
    let net = import_pytorch(net, &fixture("resnet8_linear.pth"), PytorchLayout::LdamCifar, true).unwrap();
    let reader = burn::store::pytorch_reader::PytorchReader::with_top_level_key(fixture("resnet8_linear.pth"), "state_dict").unwrap();
    let torch =
        |k: &str| -> Vec<f32> { reader.get(k).unwrap().read().unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect() };
    let Network::Classifier(c) = &net else { panic!() };
    let longtail_models::Backbone::ResNetCifar(b) = &c.backbone else { panic!() };
    let vals = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(b.layer2[0].conv1.weight.val().into_data().try_to_vec::<f32>().unwrap(), torch("module.layer2.0.conv1.weight"));
    assert_eq!(vals(b.layer3[0].bn2.running_var.value()), torch("module.layer3.0.bn2.running_var"));
    assert_eq!(vals(b.bn1.gamma.val()), torch("module.bn1.weight"));
    // nn.Linear stores [out, in]; Burn stores [in, out]
    let fc = c.head.as_linear().unwrap();
    let w = fc.weight.val().transpose().into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(w, torch("module.linear.weight"));
}

#[test]
fn a_checkpoint_for_another_architecture_names_the_missing_keys() {
    let d = Device::flex();
    let net = ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Linear).init(5, &d).unwrap();
    let err = import_pytorch(net, &fixture("resnet8_linear.pth"), PytorchLayout::LdamCifar, true).unwrap_err().to_string();
    assert!(err.contains("layer1.1"), "{err}");
}

/// torchvision's `resnet50` (seeded, batch-norm statistics moved off their defaults) written by
/// `make_fixtures.py --resnet50` into a temporary folder, imported with
/// `import_torchvision_resnet`: evaluation-mode logits of a 2x3x64x64 input equal PyTorch's
/// (measured 7.1e-7 largest difference, logits up to 0.45).
#[test]
fn torchvision_resnet50_reproduces_pytorch_logits() {
    let has_torchvision = std::process::Command::new("python3").args(["-c", "import torch, torchvision"]).output().is_ok_and(|o| o.status.success());
    if !has_torchvision {
        eprintln!("skipped: python3 with torch and torchvision is needed to write the ResNet-50 fixture (pip install torch torchvision)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new("python3").arg(fixture("make_fixtures.py")).arg(dir.path()).arg("--resnet50").output().unwrap();
    assert!(o.status.success(), "make_fixtures.py: {}", String::from_utf8_lossy(&o.stderr));
    let d = Device::flex();
    let net = ModelConfig::new(Arch::Resnet50, 3, 1000, HeadConfig::Linear).init(0, &d).unwrap();
    let net = longtail_models::weights::import_torchvision_resnet(net, &dir.path().join("resnet50.pth"), true).unwrap();
    let (want, shape) = expected_at(&dir.path().join("resnet50_expected.json"));
    let got = net.valid().predict(formula_input(shape, &d)).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!((got.len(), want.len()), (2000, 2000));
    let scale = want.iter().fold(0f32, |m, w| m.max(w.abs())).max(1.0);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-4 * scale, "logit {i}: {g} vs PyTorch {w}");
    }
}
