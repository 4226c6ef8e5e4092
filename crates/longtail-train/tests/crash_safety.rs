//! Crash safety: a run stopped at any commit point (a failpoint standing in for a kill or a
//! failed write) resumes to the final metrics and weights of an uninterrupted run, bit for bit;
//! an edited config, a corrupted checkpoint and a diverging run are refused or stopped with the
//! reason, and the run folder stays readable. One test function: the failpoints are global.

mod common;

use std::path::Path;

use burn::tensor::Device;
use common::{all_weights, config, opts, stage, write_data};
use longtail_losses::LossSpec;
use longtail_models::HeadConfig;
use longtail_train::checkpoint::failpoint;
use longtail_train::config::{HeadChange, MixupConfig, Trainable};
use longtail_train::{ExperimentConfig, RunDir, RunOptions, train};

/// Two trained epochs of CE with mixup (random draws every step), a class-balanced classifier
/// stage of two epochs, then a post-hoc tau-norm stage (no epoch: its own commit point).
fn two_stage(data: &Path) -> ExperimentConfig {
    let mut first = stage("rep", 2, LossSpec::Ce);
    first.mixup = Some(MixupConfig { alpha: 1.0, remix: None });
    let mut second = stage("crt", 2, LossSpec::Ce);
    second.train = Trainable::Classifier;
    second.sampler = longtail_data::SamplerSpec::ClassBalanced;
    let mut third = stage("tau", 0, LossSpec::Ce);
    third.train = Trainable::Classifier;
    third.head = HeadChange::TauNorm { tau: 1.0 };
    config(data, HeadConfig::Linear, vec![first, second, third])
}

/// Resumes `dir` until it finishes (a run stopped before its first commit point is started again).
fn finish(cfg: &ExperimentConfig, dir: &Path) -> longtail_train::FinalReport {
    let resume = RunDir::new(dir).state_path().exists();
    train(cfg, &RunOptions { resume, ..opts(dir) }).unwrap_or_else(|e| panic!("resuming {}: {e}", dir.display())).final_report.unwrap()
}

/// Every run file a resume writes, in turn, cannot be written (a folder stands where its `.tmp`
/// would be created: a real OS error, as a read-only folder or a full disk gives, that root
/// cannot bypass the way it bypasses permissions). The resume fails with an error naming the
/// file; once the obstacle is gone, the run resumes to the uninterrupted run's metrics and weights.
fn failed_writes(cfg: &ExperimentConfig, tmp: &Path, want: &longtail_train::FinalReport, want_weights: &[f32]) {
    let blocked = [
        "state.json.tmp",
        "metrics.json.tmp",
        "metrics.csv.tmp",
        "checkpoints/stage0-epoch1.bpk.tmp",
        "checkpoints/stage0-epoch1.optim.bpk.tmp",
        "checkpoints/stage0-last.bpk.tmp",
        "checkpoints/stage1-epoch0.bpk.tmp",
        "checkpoints/stage2-posthoc.bpk.tmp",
        "checkpoints/final.bpk.tmp",
        "final.json.tmp",
    ];
    for (i, name) in blocked.iter().enumerate() {
        let dir = tmp.join(format!("blocked-{i}"));
        train(cfg, &RunOptions { max_epochs: Some(1), ..opts(&dir) }).unwrap();
        let obstacle = dir.join(name);
        std::fs::create_dir_all(obstacle.join("in-the-way")).unwrap();
        let err = train(cfg, &RunOptions { resume: true, ..opts(&dir) }).map(|_| ()).unwrap_err().to_string();
        let file = name.trim_end_matches(".tmp").rsplit('/').next().unwrap();
        assert!(err.contains(file), "{name}: {err}");
        std::fs::remove_dir_all(&obstacle).unwrap();
        let got = finish(cfg, &dir);
        assert_eq!(got.metrics, want.metrics, "resumed after a failed write of {name}");
        let weights = all_weights(&longtail_train::load_run_network(&dir, &Device::flex()).unwrap().0);
        assert_eq!(weights, want_weights, "final weights after a failed write of {name}");
    }
}

#[test]
fn crash_safety() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_data(&data);
    let cfg = two_stage(&data);
    let final_weights = |dir: &Path| all_weights(&longtail_train::load_run_network(dir, &Device::flex()).unwrap().0);
    let want = train(&cfg, &opts(&tmp.path().join("whole"))).unwrap().final_report.unwrap();
    let want_weights = final_weights(&tmp.path().join("whole"));
    let want_history = RunDir::new(tmp.path().join("whole")).read_state().unwrap().history;

    // every pass through every commit point
    let mut crashes = 0;
    for point in failpoint::POINTS {
        for nth in 1.. {
            let dir = tmp.path().join(format!("{}-{nth}", point.replace(':', "-")));
            failpoint::arm(point, nth);
            let first = train(&cfg, &opts(&dir));
            failpoint::disarm();
            match first {
                Ok(out) => {
                    assert!(out.finished);
                    break; // the run passes this point fewer than nth times
                }
                Err(e) => assert_eq!(e.to_string(), format!("failpoint {point}"), "{point} #{nth}"),
            }
            crashes += 1;
            let got = finish(&cfg, &dir);
            assert_eq!(got.metrics, want.metrics, "resumed after {point} #{nth}");
            assert_eq!(final_weights(&dir), want_weights, "final weights after {point} #{nth}");
            let history = RunDir::new(&dir).read_state().unwrap().history;
            assert_eq!(
                history.iter().map(|r| (r.stage, r.epoch, r.train_loss)).collect::<Vec<_>>(),
                want_history.iter().map(|r| (r.stage, r.epoch, r.train_loss)).collect::<Vec<_>>()
            );
            let leftovers: Vec<_> =
                std::fs::read_dir(dir.join("checkpoints")).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "tmp")).collect();
            assert!(leftovers.is_empty(), "{point} #{nth}: .tmp files left: {leftovers:?}");
        }
    }
    assert!(crashes >= 15, "only {crashes} crashes injected");
    failed_writes(&cfg, tmp.path(), &want, &want_weights);

    // a run paused in its first stage, its config edited: refused, naming the fields
    let dir = tmp.path().join("edited");
    train(&cfg, &RunOptions { max_epochs: Some(1), ..opts(&dir) }).unwrap();
    let mut edited = cfg.clone();
    edited.seed = 4;
    edited.stages[0].lr.base = 0.1;
    let err = train(&edited, &RunOptions { resume: true, ..opts(&dir) }).unwrap_err().to_string();
    assert!(err.contains("seed") && err.contains("stages.0.lr.base"), "{err}");
    // the same after the file in the folder was edited (the CLI resumes with that file's config)
    std::fs::write(RunDir::new(&dir).config(), edited.to_toml()).unwrap();
    let from_file = ExperimentConfig::load(&RunDir::new(&dir).config(), &[]).unwrap();
    let err = train(&from_file, &RunOptions { resume: true, ..opts(&dir) }).unwrap_err().to_string();
    assert!(err.contains("seed"), "{err}");
    std::fs::write(RunDir::new(&dir).config(), cfg.to_toml()).unwrap();

    // a flipped byte in the committed checkpoint: refused by its checksum
    let state = RunDir::new(&dir).read_state().unwrap();
    let ckpt = dir.join("checkpoints").join(&state.checkpoint.as_ref().unwrap().weights);
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&ckpt, bytes).unwrap();
    let err = train(&cfg, &RunOptions { resume: true, ..opts(&dir) }).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");

    // a diverging run stops at its first non-finite loss, keeps its last good epoch, and its
    // folder stays readable and resumable
    let dir = tmp.path().join("diverged");
    let mut wild = cfg.clone();
    wild.stages[0].epochs = 3;
    wild.stages[0].lr = longtail_train::schedule::LrConfig {
        base: 0.05,
        warmup_epochs: 0,
        warmup_per_step: true,
        warmup_start: 0.0,
        decay: longtail_train::schedule::Decay::Constant,
    };
    train(&wild, &RunOptions { max_epochs: Some(1), ..opts(&dir) }).unwrap();
    // the edit a diverging user would not make: blow the learning rate up for the next epochs
    let mut state = RunDir::new(&dir).read_state().unwrap();
    wild.stages[0].lr.base = 1e6;
    state.started_config = Some(wild.to_toml());
    RunDir::new(&dir).write_state(&state).unwrap();
    std::fs::write(RunDir::new(&dir).config(), wild.to_toml()).unwrap();
    let err = train(&wild, &RunOptions { resume: true, ..opts(&dir) }).unwrap_err().to_string();
    assert!(err.contains("training loss is") && err.contains("epoch 2/3 step") && err.contains("lr 1000000"), "{err}");
    let after = RunDir::new(&dir).read_state().unwrap();
    assert_eq!((after.stage, after.next_epoch, after.history.len()), (0, 1, 1), "the last good epoch is kept");
    assert!(after.history.iter().all(|r| r.train_loss.is_finite()));
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics.as_array().unwrap().len(), 1);
    assert!(std::fs::read_to_string(dir.join("log.txt")).unwrap().contains("training loss is"));
}
