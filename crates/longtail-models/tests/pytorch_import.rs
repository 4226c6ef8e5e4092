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

fn eval_logits(net: &Network, shape: [usize; 4], d: &Device) -> Vec<f32> {
    net.clone().valid().predict(formula_input(shape, d)).into_data().try_to_vec::<f32>().unwrap()
}

/// Export under PyTorch names, import back: the same tensors and the same logits, for a
/// torchvision backbone (ResNet-50) and an LDAM CIFAR one with each head that has a counterpart.
#[test]
fn export_then_import_gives_the_same_logits() {
    use longtail_models::weights::{ImportOptions, export_pytorch, import_pretrained};
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (Arch::Resnet50, HeadConfig::Linear, PytorchLayout::Torchvision, [1, 3, 32, 32]),
        (Arch::Resnet8, HeadConfig::Linear, PytorchLayout::LdamCifar, [2, 3, 32, 32]),
        (Arch::Resnet8, HeadConfig::Cosine, PytorchLayout::LdamCifar, [2, 3, 32, 32]),
    ];
    for (arch, head, layout, shape) in cases {
        // trained-looking weights: the fixture where it fits, else seeded ones whose batch-norm
        // statistics two training-mode passes moved off 0 / 1 (a mean / var swap would show)
        let mut net = ModelConfig::new(arch, 3, 7, head.clone()).init(11, &d.clone().autodiff()).unwrap();
        for seed in [0.3, 0.7] {
            let x = formula_input([2, 3, 32, 32], &d.clone().autodiff()).mul_scalar(seed).add_scalar(seed);
            let _ = net.forward(x);
        }
        net = net.valid();
        if arch == Arch::Resnet8 {
            let file = if head == HeadConfig::Cosine { "resnet8_normed.pth" } else { "resnet8_linear.pth" };
            net = ModelConfig::new(arch, 3, 10, head.clone()).init(11, &d).unwrap();
            net = import_pytorch(net, &fixture(file), PytorchLayout::LdamCifar, true).unwrap();
        }
        let path = dir.path().join(format!("{arch:?}-{head:?}.safetensors"));
        let written = export_pytorch(&net, &path, layout).unwrap();
        assert!(written > 10);
        let classes = if arch == Arch::Resnet8 { 10 } else { 7 };
        let fresh = ModelConfig::new(arch, 3, classes, head.clone()).init(999, &d).unwrap();
        let (back, report) = import_pretrained(fresh, &path, &ImportOptions::new(layout, true)).unwrap();
        assert!(report.missing.is_empty() && report.unexpected.is_empty(), "{}", report.summary());
        let (a, b) = (eval_logits(&net, shape, &d), eval_logits(&back, shape, &d));
        assert_eq!(a, b, "{arch:?} {head:?}: logits after the round trip");
    }
}

/// The file's names: torchvision's, `[out, in]` linear weights, batch norms' weight / bias.
#[test]
fn exported_keys_are_torchvisions() {
    let d = Device::flex();
    let net = ModelConfig::new(Arch::Resnet50, 3, 5, HeadConfig::Linear).init(1, &d).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r50.safetensors");
    longtail_models::weights::export_pytorch(&net, &path, PytorchLayout::Torchvision).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let shape = |k: &str| -> Vec<u64> { header[k]["shape"].as_array().unwrap_or_else(|| panic!("no key {k}")).iter().map(|v| v.as_u64().unwrap()).collect() };
    assert_eq!(shape("conv1.weight"), [64, 3, 7, 7]);
    assert_eq!(shape("bn1.weight"), [64]);
    assert_eq!(shape("bn1.running_var"), [64]);
    assert_eq!(shape("layer1.0.downsample.0.weight"), [256, 64, 1, 1]);
    assert_eq!(shape("layer4.2.bn3.bias"), [2048]);
    assert_eq!(shape("fc.weight"), [5, 2048]);
    assert_eq!(shape("fc.bias"), [5]);
    let mut keys: Vec<String> = header.as_object().unwrap().keys().filter(|k| *k != "__metadata__").cloned().collect();
    keys.sort();
    // torchvision's resnet50().state_dict() keys, built from its structure (layers 3, 4, 6, 3 of
    // Bottlenecks; a downsample on each stage's first block), less the 53 num_batches_tracked
    // (batch norms fill those in when a dict without them is loaded): 320 - 53
    let bn = |p: &str| ["weight", "bias", "running_mean", "running_var"].map(|t| format!("{p}.{t}"));
    let mut want: Vec<String> = vec!["conv1.weight".into(), "fc.weight".into(), "fc.bias".into()];
    want.extend(bn("bn1"));
    for (layer, blocks) in [(1, 3), (2, 4), (3, 6), (4, 3)] {
        for b in 0..blocks {
            let p = format!("layer{layer}.{b}");
            for i in 1..=3 {
                want.push(format!("{p}.conv{i}.weight"));
                want.extend(bn(&format!("{p}.bn{i}")));
            }
            if b == 0 {
                want.push(format!("{p}.downsample.0.weight"));
                want.extend(bn(&format!("{p}.downsample.1")));
            }
        }
    }
    want.sort();
    assert_eq!(want.len(), 320 - 53);
    assert_eq!(keys, want);
}

#[test]
fn missing_and_unexpected_keys_are_named_and_can_be_allowed() {
    use longtail_models::weights::{ImportOptions, export_pytorch, import_pretrained};
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    // a ResNet-20's file has blocks a ResNet-8 does not: unexpected
    let r20 = ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Linear).init(2, &d).unwrap();
    let path = dir.path().join("r20.safetensors");
    export_pytorch(&r20, &path, PytorchLayout::LdamCifar).unwrap();
    let r8 = || ModelConfig::new(Arch::Resnet8, 3, 10, HeadConfig::Linear).init(3, &d).unwrap();
    let err = import_pretrained(r8(), &path, &ImportOptions::new(PytorchLayout::LdamCifar, true)).unwrap_err().to_string();
    assert!(err.contains("unexpected keys") && err.contains("layer1.1.conv1.weight") && err.contains("allow_unexpected"), "{err}");
    let opts = ImportOptions { allow_unexpected: true, ..ImportOptions::new(PytorchLayout::LdamCifar, true) };
    let (_, report) = import_pretrained(r8(), &path, &opts).unwrap();
    assert!(report.missing.is_empty());
    assert!(report.unexpected.contains(&"layer2.2.bn2.running_mean".to_string()), "{:?}", report.unexpected);
    // the other way round: missing, named by the model's parameter
    let r8_path = dir.path().join("r8.safetensors");
    export_pytorch(&r8(), &r8_path, PytorchLayout::LdamCifar).unwrap();
    let r20 = || ModelConfig::new(Arch::Resnet20, 3, 10, HeadConfig::Linear).init(2, &d).unwrap();
    let err = import_pretrained(r20(), &r8_path, &ImportOptions::new(PytorchLayout::LdamCifar, true)).unwrap_err().to_string();
    assert!(err.contains("missing keys") && err.contains("backbone.layer1.1.conv1.weight"), "{err}");
    let opts = ImportOptions { allow_missing: true, ..ImportOptions::new(PytorchLayout::LdamCifar, true) };
    let (_, report) = import_pretrained(r20(), &r8_path, &opts).unwrap();
    assert!(report.summary().contains("missing (kept at their initial values): backbone.layer1.1"), "{}", report.summary());
    // without the classifier, a file's classifier of another class count is not in the way
    let r8_5 = ModelConfig::new(Arch::Resnet8, 3, 5, HeadConfig::Linear).init(3, &d).unwrap();
    let (_, report) = import_pretrained(r8_5, &r8_path, &ImportOptions::new(PytorchLayout::LdamCifar, false)).unwrap();
    assert_eq!((report.missing.len(), report.unexpected.len()), (0, 0), "{}", report.summary());
    // a layout for another backbone
    let err = import_pretrained(r8(), &r8_path, &ImportOptions::new(PytorchLayout::Torchvision, false)).unwrap_err().to_string();
    assert!(err.contains("torchvision layout does not describe"), "{err}");
    let err = export_pytorch(&r8(), &dir.path().join("x.safetensors"), PytorchLayout::Torchvision).unwrap_err().to_string();
    assert!(err.contains("no torchvision counterpart"), "{err}");
}

/// The exported file loads into torchvision's `resnet50` with `strict=True` and gives our
/// logits; only where python3 has torch, torchvision and safetensors (skipped otherwise).
#[test]
fn exported_resnet50_loads_into_torchvision() {
    let probe = std::process::Command::new("python3").args(["-c", "import torch, torchvision, safetensors"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: python3 with torch, torchvision and safetensors is needed (pip install torch torchvision safetensors)");
        return;
    }
    let d = Device::flex();
    let net = ModelConfig::new(Arch::Resnet50, 3, 6, HeadConfig::Linear).init(4, &d).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r50.safetensors");
    longtail_models::weights::export_pytorch(&net, &path, PytorchLayout::Torchvision).unwrap();
    let script = r#"
import json, sys, torch, torchvision
from safetensors.torch import load_file
m = torchvision.models.resnet50(num_classes=6)
m.load_state_dict(load_file(sys.argv[1]), strict=True)
m.eval()
n, c, h, w = 1, 3, 32, 32
i = torch.arange(n * c * h * w, dtype=torch.float64)
x = torch.sin(0.01 * i).float().reshape(n, c, h, w)
print(json.dumps(m(x).detach().flatten().tolist()))
"#;
    let o = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(o.status.success(), "torchvision: {}", String::from_utf8_lossy(&o.stderr));
    let want: Vec<f32> = serde_json::from_slice::<Vec<f64>>(&o.stdout).unwrap().into_iter().map(|v| v as f32).collect();
    let got = eval_logits(&net, [1, 3, 32, 32], &d);
    let scale = want.iter().fold(0f32, |m, w| m.max(w.abs())).max(1.0);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-4 * scale, "logit {i}: {g} vs torchvision {w}");
    }
}
