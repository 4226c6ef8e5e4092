//! Starting from a pretrained file (`init_from = { weights, layout }`) and training only chosen
//! parts (`train = { parts = [...] }`): the fixture's logits, frozen parts untouched, named
//! errors, exact resume.

mod common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{all_weights, config, opts, stage, write_data};
use longtail_losses::LossSpec;
use longtail_models::weights::{PytorchLayout, export_pytorch};
use longtail_models::{Arch, HeadConfig, Network};
use longtail_train::config::{PretrainedWeights, RunSource, Trainable};
use longtail_train::{ExperimentConfig, RunOptions, load_run_network, train};

fn models_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../longtail-models/tests/fixtures").join(name)
}

fn weights(path: &Path, layout: PytorchLayout, with_classifier: bool) -> RunSource {
    RunSource::Weights(PretrainedWeights { weights: path.to_path_buf(), layout, with_classifier, allow_missing: false, allow_unexpected: false })
}

/// The LDAM-layout fixture (torch.save of the LDAM-DRW code's CIFAR ResNet, make_fixtures.py)
/// through `init_from`: the network the run starts from gives PyTorch's logits.
#[test]
fn init_from_a_pytorch_file_gives_the_fixtures_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), HeadConfig::Linear, vec![stage("s", 1, LossSpec::Ce)]);
    cfg.model = longtail_models::ModelConfig::new(Arch::Resnet8, 3, 10, HeadConfig::Linear);
    let RunSource::Weights(w) = weights(&models_fixture("resnet8_linear.pth"), PytorchLayout::LdamCifar, true) else { unreachable!() };
    let d = Device::flex();
    let (net, report) = longtail_train::engine::pretrained_network(&cfg, &w, &d).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty() && report.loaded > 30, "{}", report.summary());
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(models_fixture("resnet8_linear_expected.json")).unwrap()).unwrap();
    let want: Vec<f32> = v["logits"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect();
    let n = 2 * 3 * 32 * 32;
    let x: Vec<f32> = (0..n).map(|i| (0.01 * i as f64).sin() as f32).collect();
    let got = net.valid().predict(Tensor::<4>::from_data(TensorData::new(x, [2, 3, 32, 32]), &d)).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(got.len(), 20);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-4 * w.abs().max(1.0), "logit {i}: {g} vs PyTorch {w}");
    }
}

/// A first run's network exported under the LDAM names, the start of a second run whose stage
/// trains `backbone.layer3` and the head only.
fn pretrained_setup(tmp: &Path) -> (ExperimentConfig, PathBuf, Network) {
    write_data(&tmp.join("data"));
    let base = config(&tmp.join("data"), HeadConfig::Linear, vec![stage("pre", 1, LossSpec::Ce)]);
    let first = train(&base, &opts(&tmp.join("first"))).unwrap();
    let (net, _) = load_run_network(&first.run_dir, &Device::flex()).unwrap();
    let file = tmp.join("pretrained.safetensors");
    export_pytorch(&net, &file, PytorchLayout::LdamCifar).unwrap();
    let mut fine = stage("fine-tune", 2, LossSpec::Ce);
    fine.train = Trainable::Parts(vec!["backbone.layer3".into(), "head".into()]);
    let mut cfg = config(&tmp.join("data"), HeadConfig::Linear, vec![fine]);
    cfg.init_from = Some(weights(&file, PytorchLayout::LdamCifar, true));
    (cfg, file, net)
}

fn part(n: &Network, prefix: &str) -> Vec<f32> {
    let Network::Classifier(c) = n else { panic!() };
    let longtail_models::Backbone::ResNetCifar(b) = &c.backbone else { panic!() };
    match prefix {
        "conv1" => all_weights(&b.conv1),
        "layer1" => all_weights(&b.layer1[0].conv1),
        "layer2" => all_weights(&b.layer2[0].conv2),
        "layer2.bn" => b.layer2[0].bn1.running_mean.value().into_data().try_to_vec::<f32>().unwrap(),
        "layer3" => all_weights(&b.layer3[0].conv1),
        "head" => all_weights(&c.head),
        _ => unreachable!(),
    }
}

#[test]
fn a_stage_trains_only_the_named_parts_of_a_pretrained_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, _, start) = pretrained_setup(tmp.path());
    let out = train(&cfg, &opts(&tmp.path().join("fine"))).unwrap();
    let (end, _) = load_run_network(&out.run_dir, &Device::flex()).unwrap();
    for frozen in ["conv1", "layer1", "layer2"] {
        assert_eq!(part(&start, frozen), part(&end, frozen), "{frozen} is frozen");
    }
    for trained in ["layer3", "head"] {
        assert_ne!(part(&start, trained), part(&end, trained), "{trained} trains");
    }
    // as requires_grad = False in PyTorch: frozen batch norms keep updating their statistics
    assert_ne!(part(&start, "layer2.bn"), part(&end, "layer2.bn"));
}

#[test]
fn a_pretrained_run_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, file, _) = pretrained_setup(tmp.path());
    let whole = train(&cfg, &opts(&tmp.path().join("whole"))).unwrap();
    let dir = tmp.path().join("cut");
    train(&cfg, &RunOptions { max_epochs: Some(1), ..opts(&dir) }).unwrap();
    // the checkpoint carries the weights on: the pretrained file is not needed any more
    std::fs::remove_file(&file).unwrap();
    train(&cfg, &RunOptions { resume: true, ..opts(&dir) }).unwrap();
    let load = |run: &Path| all_weights(&load_run_network(run, &Device::flex()).unwrap().0);
    assert_eq!(load(&whole.run_dir), load(&dir), "interrupted after epoch 1 and resumed = uninterrupted");
}

#[test]
fn bad_pretrained_starts_are_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, file, _) = pretrained_setup(tmp.path());
    // a part that names nothing
    let mut typo = cfg.clone();
    typo.stages[0].train = Trainable::Parts(vec!["backbone.layer9".into()]);
    let err = train(&typo, &opts(&tmp.path().join("a"))).unwrap_err().to_string();
    assert!(err.contains("backbone.layer9") && err.contains("backbone.layer3") && err.contains("head.fc"), "{err}");
    // no such file
    let mut gone = cfg.clone();
    gone.init_from = Some(weights(&tmp.path().join("nowhere.pth"), PytorchLayout::LdamCifar, true));
    let err = train(&gone, &opts(&tmp.path().join("b"))).unwrap_err().to_string();
    assert!(err.contains("nowhere.pth") && err.contains("is not a file"), "{err}");
    // another architecture: the keys it lacks, by name
    let mut deeper = cfg.clone();
    deeper.model.arch = Arch::Resnet20;
    let err = train(&deeper, &opts(&tmp.path().join("c"))).unwrap_err().to_string();
    assert!(err.contains("missing keys") && err.contains("backbone.layer1.1.conv1.weight"), "{err}");
    // the layout of another code base
    let mut other = cfg.clone();
    other.init_from = Some(weights(&file, PytorchLayout::Torchvision, true));
    let err = train(&other, &opts(&tmp.path().join("d"))).unwrap_err().to_string();
    assert!(err.contains("torchvision layout"), "{err}");
}

#[test]
fn init_from_tables_parse_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), HeadConfig::Linear, vec![stage("s", 1, LossSpec::Ce)]);
    let text = cfg.to_toml();
    let with = |table: &str| ExperimentConfig::from_toml(&format!("init_from = {table}\n{text}"), Path::new("t.toml"), &[]);
    let ok = with(r#"{ weights = "w.pth", layout = "timm", allow_missing = true }"#).unwrap();
    let Some(RunSource::Weights(w)) = &ok.init_from else { panic!("{:?}", ok.init_from) };
    assert_eq!((w.layout, w.with_classifier, w.allow_missing, w.allow_unexpected), (PytorchLayout::Timm, false, true, false));
    // written back and read again: the same source
    let again = ExperimentConfig::from_toml(&ok.to_toml(), Path::new("t.toml"), &[]).unwrap();
    assert_eq!(again.init_from, ok.init_from);
    assert_eq!(with(r#"{ run = "runs/ce" }"#).unwrap().init_from, Some(RunSource::Run { run: "runs/ce".into() }));
    for (table, says) in [
        (r#"{ weights = "w.pth" }"#, "needs its `layout`"),
        (r#"{ weights = "w.pth", layout = "caffe" }"#, "layout `caffe`: expected torchvision, timm or ldam-cifar"),
        (r#"{ run = "a", weights = "b", layout = "timm" }"#, "only one of"),
        (r#"{ run = "a", layout = "timm" }"#, "belong to a `weights` file"),
        (r#"{ weights = "w.pth", layout = "timm", strict = true }"#, "strict"),
    ] {
        let err = with(table).unwrap_err().to_string();
        assert!(err.contains(says), "{table}: {err}");
    }
    let parts = ExperimentConfig::from_toml(&text, Path::new("t.toml"), &["stages.0.train={ parts = [\"head\"] }".into()]);
    assert_eq!(parts.unwrap().stages[0].train, Trainable::Parts(vec!["head".into()]));
}

/// Places-LT starts from torchvision's ImageNet ResNet-152, and the thesis's methods train only its
/// last stage and the head in stage I, as the authors' code does.
#[test]
fn places_lt_configs_start_from_imagenet_weights() {
    use longtail_train::methods::{RESNET152_IMAGENET, default_config};
    use longtail_train::presets::Dataset;
    let ce = default_config("ce", Dataset::PlacesLt, 1.0).unwrap();
    let Some(RunSource::Weights(w)) = &ce.init_from else { panic!("{:?}", ce.init_from) };
    assert_eq!((w.weights.to_str().unwrap(), w.layout, w.with_classifier), (RESNET152_IMAGENET, PytorchLayout::Torchvision, false));
    assert_eq!(ce.stages[0].train, Trainable::All);
    let gcl = default_config("gcl", Dataset::PlacesLt, 1.0).unwrap();
    assert!(matches!(gcl.init_from, Some(RunSource::Weights(_))));
    assert_eq!(gcl.stages[0].train, Trainable::Parts(vec!["backbone.layer4".into(), "head".into()]));
    // elsewhere: from scratch
    assert_eq!(default_config("ce", Dataset::ImagenetLt, 1.0).unwrap().init_from, None);
}
