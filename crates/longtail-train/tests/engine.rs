//! Engine behaviour on tiny generated data.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use common::{all_weights, config, opts, stage, write_data};
use longtail_losses::LossSpec;
use longtail_models::{HeadConfig, Network, weights};
use longtail_train::config::{HeadChange, RunSource, Trainable};
use longtail_train::{ExperimentConfig, RunDir, RunOptions, train};

#[test]
fn loss_falls_and_accuracy_beats_chance() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("main", 6, LossSpec::Ce)]);
    let out = train(&cfg, &opts(&tmp.path().join("run"))).unwrap();
    let report = out.final_report.unwrap();
    let state = RunDir::new(&out.run_dir).read_state().unwrap();
    let losses: Vec<f64> = state.history.iter().map(|r| r.train_loss).collect();
    assert!(losses.last().unwrap() < &(0.7 * losses[0]), "loss should fall: {losses:?}");
    assert!(report.metrics.accuracy > 50.0, "accuracy {} vs chance 25", report.metrics.accuracy);
    assert_eq!(report.train_counts, vec![60, 27, 12, 6]);
    // the run folder has everything
    for f in ["config.toml", "metrics.csv", "metrics.json", "final.json", "log.txt", "checkpoints/final.bpk", "checkpoints/best.bpk"] {
        assert!(out.run_dir.join(f).exists(), "{f}");
    }
    let csv = std::fs::read_to_string(out.run_dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "header + one row per epoch");
}

/// Data-parallel training over two CPU devices (`--devices flex,flex`): every step's batch is
/// split between two replicas; the run learns as a one-device run does, and it is reproducible.
#[test]
fn data_parallel_over_two_cpu_devices_learns() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("main", 6, LossSpec::Ce)]);
    let two = |dir: &str| RunOptions { data_parallel: vec![Device::flex()], ..opts(&tmp.path().join(dir)) };
    let out = train(&cfg, &two("a")).unwrap();
    let report = out.final_report.unwrap();
    let losses: Vec<f64> = RunDir::new(&out.run_dir).read_state().unwrap().history.iter().map(|r| r.train_loss).collect();
    assert!(losses.last().unwrap() < &(0.7 * losses[0]), "loss should fall: {losses:?}");
    assert!(report.metrics.accuracy > 50.0, "accuracy {} vs chance 25", report.metrics.accuracy);
    let again = train(&cfg, &two("b")).unwrap().final_report.unwrap();
    assert_eq!(again.metrics.accuracy, report.metrics.accuracy, "data-parallel runs are reproducible");
}

#[test]
fn resume_reaches_the_same_result_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let mut s = stage("main", 3, LossSpec::Ldam { max_margin: 0.5, scale: 30.0 });
    s.mixup = Some(longtail_train::config::MixupConfig { alpha: 1.0, remix: None });
    s.drw = Some(longtail_train::config::Deferred { from_epoch: 2, weighting: longtail_losses::ClassWeighting::EffectiveNumber { beta: 0.9999 } });
    let cfg = config(&tmp.path().join("data"), HeadConfig::Cosine, vec![s, stage("second", 1, LossSpec::Ce)]);
    let cfg = ExperimentConfig { model: longtail_models::ModelConfig { head: HeadConfig::Cosine, ..cfg.model.clone() }, ..cfg };
    let mut cfg = cfg;
    cfg.stages[1].loss = LossSpec::Gcl { scale: 30.0, noise_mul: 0.5, sigma: 1.0 / 3.0, margin: 0.0, focal_gamma: 0.0 };

    let a = train(&cfg, &opts(&tmp.path().join("a"))).unwrap().final_report.unwrap();

    let b_dir = tmp.path().join("b");
    let paused = train(&cfg, &RunOptions { max_epochs: Some(1), ..opts(&b_dir) }).unwrap();
    assert!(!paused.finished);
    let paused = train(&cfg, &RunOptions { resume: true, max_epochs: Some(2), ..opts(&b_dir) }).unwrap();
    assert!(!paused.finished);
    let b = train(&cfg, &RunOptions { resume: true, ..opts(&b_dir) }).unwrap().final_report.unwrap();

    assert_eq!(a.metrics, b.metrics, "resumed run differs");
    let final_weights =
        |dir: &std::path::Path| all_weights(&weights::load(cfg.model.init(0, &Device::flex()).unwrap(), &dir.join("checkpoints/final.bpk")).unwrap());
    let wa = final_weights(&tmp.path().join("a"));
    assert_eq!(wa, final_weights(&b_dir));

    // killed during the final evaluation: every stage done, no final report yet. The resumed run
    // evaluates the trained network (it used to evaluate a freshly initialised one and exit 0)
    let c_dir = tmp.path().join("c");
    train(&cfg, &opts(&c_dir)).unwrap();
    let c = RunDir::new(&c_dir);
    let mut state = c.read_state().unwrap();
    assert_eq!(state.stage, cfg.stages.len());
    state.finished = false;
    c.write_state(&state).unwrap();
    std::fs::remove_file(c.final_path()).unwrap();
    std::fs::remove_file(c.final_checkpoint()).unwrap();
    let resumed = train(&cfg, &RunOptions { resume: true, ..opts(&c_dir) }).unwrap().final_report.unwrap();
    assert_eq!(resumed.metrics, a.metrics, "a run resumed at its final evaluation differs");
    assert_eq!(final_weights(&c_dir), wa);
}

#[test]
fn a_frozen_backbone_does_not_change_in_stage_two() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let mut crt = stage("crt", 2, LossSpec::Ce);
    crt.train = Trainable::Classifier;
    crt.head = HeadChange::Reinit;
    crt.sampler = longtail_data::SamplerSpec::ClassBalanced;
    let cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("rep", 2, LossSpec::Ce), crt]);
    let out = train(&cfg, &opts(&tmp.path().join("run"))).unwrap();
    let load = |p: &str| weights::load(cfg.model.init(0, &Device::flex()).unwrap(), &out.run_dir.join(p)).unwrap();
    let (before, after) = (load("checkpoints/stage0-last.bpk"), load("checkpoints/final.bpk"));
    let backbone = |n: &Network| all_weights(n.backbone().unwrap());
    let head = |n: &Network| all_weights(n.head().unwrap());
    assert_eq!(backbone(&before), backbone(&after), "the backbone (weights and BN statistics) is untouched");
    assert_ne!(head(&before), head(&after), "the classifier is re-trained");
}

#[test]
fn stage_two_from_another_run_and_its_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let base = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("rep", 1, LossSpec::Ce)]);
    let first = train(&base, &opts(&tmp.path().join("first"))).unwrap();
    // tau-norm: a post-hoc stage (0 epochs) on the first run's checkpoint
    let mut tau = stage("tau-norm", 0, LossSpec::Ce);
    tau.head = HeadChange::TauNorm { tau: 1.0 };
    tau.train = Trainable::Classifier;
    let mut cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![tau]);
    cfg.init_from = Some(RunSource::Run { run: first.run_dir.clone() });
    let out = train(&cfg, &opts(&tmp.path().join("tau"))).unwrap();
    assert!(out.finished);

    // a missing checkpoint
    cfg.init_from = Some(RunSource::Run { run: tmp.path().join("nowhere") });
    let err = train(&cfg, &opts(&tmp.path().join("x"))).unwrap_err().to_string();
    assert!(err.contains("nowhere"), "{err}");

    // a mismatched checkpoint (another architecture)
    let mut other = cfg.clone();
    other.init_from = Some(RunSource::Run { run: first.run_dir.clone() });
    other.model.arch = longtail_models::Arch::Resnet20;
    let err = train(&other, &opts(&tmp.path().join("y"))).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn a_class_count_that_disagrees_with_the_data_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let mut cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("main", 1, LossSpec::Ce)]);
    cfg.model.num_classes = 7;
    let err = train(&cfg, &opts(&tmp.path().join("run"))).unwrap_err().to_string();
    assert!(err.contains("model.num_classes") && err.contains("4 classes"), "{err}");
}

#[test]
fn an_existing_run_folder_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    let cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("main", 1, LossSpec::Ce)]);
    train(&cfg, &opts(&tmp.path().join("run"))).unwrap();
    let err = train(&cfg, &opts(&tmp.path().join("run"))).unwrap_err().to_string();
    assert!(err.contains("--resume"), "{err}");
}

/// GCL's Gaussian clouds act in training only: the run's final evaluation is a clean forward
/// pass of its final network (cosine logits, no cloud), the same on every re-evaluation.
#[test]
fn gcl_clouds_are_absent_at_evaluation() {
    use burn::tensor::activation::softmax;
    use longtail_train::data::{PreparedData, upload};
    use longtail_train::{evaluate_network, load_run_network};
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    // a large cloud, so a noisy evaluation would move predictions
    let gcl = LossSpec::Gcl { scale: 30.0, noise_mul: 2.0, sigma: 1.0, margin: 0.0, focal_gamma: 0.0 };
    let cfg = config(&tmp.path().join("data"), HeadConfig::Cosine, vec![stage("gcl", 2, gcl)]);
    let out = train(&cfg, &opts(&tmp.path().join("run"))).unwrap();
    let report = out.final_report.unwrap();
    let device = Device::flex();
    let (network, config) = load_run_network(&out.run_dir, &device).unwrap();
    let data = PreparedData::load(&config).unwrap();
    // by hand: argmax and softmax confidence of s * cos over the test set
    let loader = data.eval_loader(&config, data.test.clone()).unwrap();
    let model = network.valid();
    let mut clean =
        longtail_train::metrics::Predictions { labels: Vec::new(), predicted: Vec::new(), confidence: Vec::new(), experts: Vec::new(), routing: None };
    for batch in loader.iter((0..data.test.len()).collect(), 0, 0, 0) {
        let batch = batch.unwrap();
        clean.labels.extend_from_slice(&batch.labels);
        let probs = softmax(model.predict(upload(batch, &device).images).mul_scalar(30.0), 1);
        let (conf, idx) = probs.max_dim_with_indices(1);
        clean.predicted.extend(idx.into_data().convert::<i64>().try_to_vec::<i64>().unwrap().into_iter().map(|i| i as usize));
        clean.confidence.extend(conf.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
    }
    let correct = clean.labels.iter().zip(&clean.predicted).filter(|(l, p)| l == p).count();
    let accuracy = 100.0 * correct as f64 / data.test.len() as f64;
    assert!((report.metrics.accuracy - accuracy).abs() < 1e-9, "final evaluation {} vs clean forward {accuracy}", report.metrics.accuracy);
    // the confidences too: the ECE of the clean s * cos probabilities is the reported one
    let (ece, _) = longtail_train::metrics::calibration(&clean, config.eval.ece_bins);
    assert!((report.metrics.ece - ece).abs() < 1e-6, "final ECE {} vs clean forward {ece}", report.metrics.ece);
    for _ in 0..2 {
        assert_eq!(evaluate_network(&network, &config, &data, &device).unwrap(), report.metrics, "evaluation is deterministic");
    }
}

/// `precision = "bf16"` / `"f16"`: the run learns like an f32 one; an fp16 run keeps its loss
/// scaler in the run state, a resumed fp16 run ends where an uninterrupted one does, and fp16
/// works data-parallel.
#[test]
fn mixed_precision_runs_learn_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    write_data(&tmp.path().join("data"));
    for precision in [longtail_models::Precision::Bf16, longtail_models::Precision::F16] {
        let mut cfg = config(&tmp.path().join("data"), HeadConfig::Linear, vec![stage("main", 6, LossSpec::Ce)]);
        cfg.precision = precision;
        let name = precision.name();
        let out = train(&cfg, &opts(&tmp.path().join(name))).unwrap();
        let report = out.final_report.unwrap();
        let state = RunDir::new(&out.run_dir).read_state().unwrap();
        let losses: Vec<f64> = state.history.iter().map(|r| r.train_loss).collect();
        assert!(losses.last().unwrap() < &(0.7 * losses[0]), "{name}: loss should fall: {losses:?}");
        assert!(report.metrics.accuracy > 50.0, "{name}: accuracy {} vs chance 25", report.metrics.accuracy);
        let saved = ExperimentConfig::load(&RunDir::new(&out.run_dir).config(), &[]).unwrap();
        assert_eq!(saved.precision, precision);
        match precision {
            longtail_models::Precision::F16 => {
                let scaler = state.loss_scaler.expect("an fp16 run saves its loss scaler");
                // 6 epochs of 105 images in batches of 16: 42 steps, none overflowed at 2^16
                assert_eq!((scaler.scale, scaler.good_steps, scaler.skipped), (65536.0, 42, 0), "{scaler:?}");
                let dir = tmp.path().join("f16-resumed");
                assert!(!train(&cfg, &RunOptions { max_epochs: Some(3), ..opts(&dir) }).unwrap().finished);
                let resumed = train(&cfg, &RunOptions { resume: true, ..opts(&dir) }).unwrap().final_report.unwrap();
                assert_eq!(resumed.metrics, report.metrics, "resumed fp16 run differs");
                // the scaler's count went on from the saved state
                assert_eq!(RunDir::new(&dir).read_state().unwrap().loss_scaler.unwrap().good_steps, 42);
                // data parallel: every replica's slice loss is scaled, the summed gradients unscaled once
                let two = RunOptions { data_parallel: vec![Device::flex()], ..opts(&tmp.path().join("f16-two")) };
                let out = train(&cfg, &two).unwrap();
                let state = RunDir::new(&out.run_dir).read_state().unwrap();
                let losses: Vec<f64> = state.history.iter().map(|r| r.train_loss).collect();
                assert!(losses.last().unwrap() < &(0.7 * losses[0]), "f16 data parallel: loss should fall: {losses:?}");
                assert_eq!(state.loss_scaler.unwrap().good_steps, 42);
            }
            _ => assert!(state.loss_scaler.is_none()),
        }
    }
}

/// A run's history reads back bit for bit: JSON floats are parsed exactly (serde_json's
/// `float_roundtrip`), so a resumed run's earlier epochs keep their values. Without it these
/// values (losses of real tiny runs) came back one unit in the last place off.
#[test]
fn run_state_floats_read_back_exactly() {
    use longtail_train::run_dir::{EpochRecord, RunState};
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path());
    dir.create().unwrap();
    let values = [1.8117978050595238, 0.20222385951450894, 3.9242960611979165, 2.6059884207589286, 0.22223855881463914, 1.0251403081984747];
    let history = values
        .iter()
        .enumerate()
        .map(|(epoch, &v)| EpochRecord {
            stage: 0,
            stage_name: "s".into(),
            epoch,
            lr: v / 7.0,
            train_loss: v,
            train_accuracy: 100.0 * v / 3.0,
            seconds: v,
            images_per_second: v * 1e3,
            test: None,
        })
        .collect();
    let state = RunState { history, ..Default::default() };
    dir.write_state(&state).unwrap();
    let back = dir.read_state().unwrap();
    for (a, b) in back.history.iter().zip(&state.history) {
        assert_eq!((a.train_loss.to_bits(), a.lr.to_bits(), a.train_accuracy.to_bits()), (b.train_loss.to_bits(), b.lr.to_bits(), b.train_accuracy.to_bits()));
    }
}
