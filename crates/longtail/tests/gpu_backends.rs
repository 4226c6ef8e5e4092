//! The `longtail` binary on the GPU backends compiled in (`--features wgpu,cuda`): the
//! fixed-batch parity check against the CPU backend (`bench parity`: training loss, loss after
//! one SGD step, evaluation logits, relative tolerance 1e-3) and a whole tiny training run that
//! learns.
//!
//! Without `--features wgpu` the wgpu tests are skipped with a message, and so are they on a
//! machine where wgpu finds no adapter; `LONGTAIL_REQUIRE_WGPU=1` turns both into failures (CI
//! sets it, after installing Mesa's software Vulkan driver, lavapipe, so that the wgpu backend
//! runs without a GPU). Any other failure of the wgpu run fails the tests. With `--features
//! cuda` and no GPU (CI), `--device cuda` must end in the device probe's one-line error; with a
//! GPU it must pass the parity check (`LONGTAIL_REQUIRE_CUDA=1` makes the error a failure).

#![cfg_attr(not(all(feature = "wgpu", feature = "cuda")), allow(dead_code, unused_imports))]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;
use common::workspace;

fn longtail(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_longtail")).args(args).current_dir(cwd).env_remove("BURN_DEVICE").output().expect("run longtail")
}

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `LONGTAIL_REQUIRE_WGPU=1`: a missing wgpu backend or adapter fails the tests instead of
/// skipping them.
fn wgpu_required() -> bool {
    std::env::var("LONGTAIL_REQUIRE_WGPU").is_ok_and(|v| v == "1")
}

/// `longtail --device wgpu bench parity`, run once per test binary: the probe for an adapter
/// and the parity check's result.
fn parity_run() -> &'static Output {
    static RUN: OnceLock<Output> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        longtail(&["--device", "wgpu", "bench", "parity"], dir.path())
    })
}

/// `Some(reason)` when the wgpu tests cannot run here (and may be skipped): the backend is not
/// compiled in, or wgpu found no adapter. Any other failure of the probe is a failure.
fn wgpu_missing() -> Option<String> {
    if !cfg!(feature = "wgpu") {
        let reason = "the wgpu backend is not compiled in (cargo test -p longtail --features wgpu)";
        assert!(!wgpu_required(), "LONGTAIL_REQUIRE_WGPU=1 but {reason}");
        return Some(reason.into());
    }
    let o = parity_run();
    let out = text(o);
    let lower = out.to_lowercase();
    if o.status.success()
        || !lower.contains("device `wgpu` is compiled in but does not answer")
        || !(lower.contains("no adapter") || lower.contains("no cpu device found") || lower.contains("no other device found"))
    {
        return None;
    }
    let reason = format!("no wgpu adapter answered ({})", out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default());
    assert!(!wgpu_required(), "LONGTAIL_REQUIRE_WGPU=1 but {reason}\n{out}");
    Some(reason)
}

/// The tiny workspace for a wgpu run, or `None` (with the reason printed) when the wgpu tests are
/// skipped here.
fn wgpu_workspace() -> Option<tempfile::TempDir> {
    if let Some(reason) = wgpu_missing() {
        eprintln!("skipped: {reason}");
        return None;
    }
    Some(workspace())
}

#[test]
fn wgpu_gives_the_cpu_backends_numbers_on_a_fixed_batch() {
    if let Some(reason) = wgpu_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    assert_parity("wgpu", parity_run());
}

/// The parity line of a successful `bench parity` run on `name` is within tolerance.
fn assert_parity(name: &str, o: &Output) {
    assert!(o.status.success(), "{}", text(o));
    let line = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.contains("\"parity\""))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no parity line: {}", text(o)));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let worst = v["largest_relative_difference"].as_f64().unwrap();
    let (loss, cpu_loss) = (v["train_loss"].as_f64().unwrap(), v["cpu_train_loss"].as_f64().unwrap());
    eprintln!("{name}: largest relative difference {worst:.2e}, training loss {loss} vs cpu {cpu_loss}");
    assert!(worst <= 1e-3, "{line}");
    // ResNet-20 at initialisation on 10 classes: about ln 10, and the same on both backends
    assert!((loss - cpu_loss).abs() <= 1e-3 * cpu_loss && (1.5..8.0).contains(&loss), "{line}");
}

/// `--device cuda`: with a GPU that answers, the parity check passes; without one (no driver,
/// no `libnvrtc`, as on CI), the device probe ends the run in one line naming the device, exit
/// code 1, no panic and no "internal error". `LONGTAIL_REQUIRE_CUDA=1` (a GPU machine) makes
/// that line a failure.
#[test]
fn cuda_gives_the_cpu_backends_numbers_or_a_one_line_error() {
    if !cfg!(feature = "cuda") {
        eprintln!("skipped: the cuda backend is not compiled in (cargo test -p longtail --features cuda)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = longtail(&["--device", "cuda", "bench", "parity"], dir.path());
    if o.status.success() {
        return assert_parity("cuda", &o);
    }
    let (all, err) = (text(&o), String::from_utf8_lossy(&o.stderr));
    assert!(!std::env::var("LONGTAIL_REQUIRE_CUDA").is_ok_and(|v| v == "1"), "LONGTAIL_REQUIRE_CUDA=1 but the cuda device failed:\n{all}");
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert_eq!(err.trim_end().lines().count(), 1, "{all}");
    assert!(err.starts_with("error: device `cuda` is compiled in but does not answer: "), "{all}");
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{all}");
    // cudarc's list of the 30-odd library file names it tried is cut from the line
    assert!(!err.contains("searched for library names"), "{all}");
    eprintln!("cuda: {}", err.trim_end());
}

/// Three epochs of a ResNet-8 on 240 generated 28x28 images of four classes told apart by
/// brightness: the same run the CPU tests train, here on the wgpu device end to end (loader,
/// training steps, evaluation, checkpoints, report).
#[test]
fn wgpu_trains_a_tiny_run_that_learns() {
    let Some(ws) = wgpu_workspace() else { return };
    let cwd = ws.path();
    let o = longtail(&["-q", "--device", "wgpu", "train", "--config", "tiny.toml", "--out", "runs/wgpu"], cwd);
    assert!(o.status.success(), "{}", text(&o));
    let run = cwd.join("runs/wgpu");
    for f in ["final.json", "metrics.csv", "report.md", "checkpoints/final.bpk"] {
        assert!(run.join(f).exists(), "{f}");
    }
    assert_learned(&run, "f32");
}

/// `--precision` on wgpu: a 16-bit type the adapter computes in trains and learns; one it does
/// not gets the one-line config error (WGSL has no bf16; Mesa's lavapipe has f16), never a panic.
#[test]
fn wgpu_mixed_precision_trains_or_says_the_device_cannot() {
    let Some(ws) = wgpu_workspace() else { return };
    let cwd = ws.path();
    for precision in ["f16", "bf16"] {
        let out = format!("runs/{precision}");
        let o = longtail(&["-q", "--device", "wgpu", "train", "--config", "tiny.toml", "--precision", precision, "--out", &out, "--no-report"], cwd);
        let all = text(&o);
        if o.status.success() {
            assert_learned(&cwd.join(&out), precision);
            eprintln!("wgpu: {precision} trains");
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err.trim_end().lines().last().unwrap_or_default();
            assert_eq!(o.status.code(), Some(1), "{all}");
            assert!(last.starts_with("error: ") && last.contains(&format!("does not compute in {precision}")), "{all}");
            assert!(!err.contains("panicked"), "{all}");
            eprintln!("wgpu: {precision} refused: {last}");
        }
    }
}

/// The loss of the run in `run` fell over its three epochs and its accuracy beats chance.
fn assert_learned(run: &Path, what: &str) {
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let losses: Vec<f64> = metrics.as_array().unwrap().iter().map(|r| r["train_loss"].as_f64().unwrap()).collect();
    assert_eq!(losses.len(), 3, "{what}: {metrics}");
    assert!(losses[2] < 0.8 * losses[0], "{what}: loss should fall: {losses:?}");
    let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("final.json")).unwrap()).unwrap();
    let accuracy = f["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 50.0, "{what}: accuracy {accuracy} vs chance 25");
}
