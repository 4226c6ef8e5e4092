//! The real `longtail` binary, end to end on tiny generated data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{CONFIG, workspace};

fn longtail(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_longtail")).args(args).current_dir(cwd).env("BURN_DEVICE", "flex").output().expect("run longtail")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Asserts a clean failure: exit code 1, one `error:` line naming `needle`, no panic or backtrace.
fn assert_clean_error(o: &Output, needle: &str) {
    let (_, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked") && !err.contains("stack backtrace") && !err.contains("RUST_BACKTRACE"), "{err}");
}

fn assert_png(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    assert!(img.width() >= 300 && img.height() >= 300, "{}", path.display());
}

#[test]
fn train_eval_predict_report_compare_end_to_end() {
    let ws = workspace();
    let cwd = ws.path();
    let o = longtail(&["-q", "train", "--config", "tiny.toml", "--out", "runs/ce"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let run = cwd.join("runs/ce");
    for f in ["final.json", "metrics.csv", "report.md", "report.html", "checkpoints/final.bpk"] {
        assert!(run.join(f).exists(), "{f}");
    }
    for plot in ["class_accuracy", "groups", "learning_curves", "reliability", "confusion"] {
        assert_png(&run.join(format!("plots/{plot}.png")));
        let svg = std::fs::read_to_string(run.join(format!("plots/{plot}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "{plot}.svg");
    }
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("TIE") && md.contains("three rarest classes"), "{md}");

    // a second method through --set, then compare
    let o = longtail(
        &[
            "-q",
            "train",
            "--config",
            "tiny.toml",
            "--set",
            "method=balanced-softmax",
            "--set",
            "stages.0.loss={ kind = \"balanced-softmax\" }",
            "--out",
            "runs/bs",
            "--no-report",
        ],
        cwd,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = longtail(&["compare", "runs/ce", "runs/bs", "--out", "table.md"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    assert!(out.contains("| tiny | ce |") && out.contains("| tiny | balanced-softmax |"), "{out}");
    assert!(std::fs::read_to_string(cwd.join("table.md")).unwrap().contains("overall"));

    // eval re-computes the metrics of the final checkpoint exactly
    let o = longtail(&["eval", "--run", "runs/ce"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("final.json")).unwrap()).unwrap();
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("eval-final.json")).unwrap()).unwrap();
    assert_eq!(f["metrics"]["accuracy"], e["metrics"]["accuracy"]);
    assert_eq!(f["metrics"]["confusion"], e["metrics"]["confusion"]);
    // under a test prior (LADE's inference): a uniform one changes nothing, a skewed one moves
    // predictions towards its likely classes; a prior of the wrong length or sum is refused
    let o = longtail(&["eval", "--run", "runs/bs", "--test-prior", "0.25,0.25,0.25,0.25"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let bs = |name: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(cwd.join("runs/bs").join(name)).unwrap()).unwrap() };
    assert_eq!(bs("final.json")["metrics"]["confusion"], bs("eval-final-test-prior.json")["metrics"]["confusion"]);
    std::fs::write(cwd.join("prior.txt"), "0.999997 0.000001 0.000001 0.000001\n").unwrap();
    assert!(longtail(&["eval", "--run", "runs/bs", "--test-prior", "prior.txt"], cwd).status.success());
    let column0 = |v: &serde_json::Value| -> u64 { v["metrics"]["confusion"].as_array().unwrap().iter().map(|r| r[0].as_u64().unwrap()).sum() };
    assert!(
        column0(&bs("eval-final-test-prior.json")) > column0(&bs("final.json")),
        "a prior on class 0 predicts it more often: {} vs {}",
        bs("eval-final-test-prior.json")["metrics"]["confusion"],
        bs("final.json")["metrics"]["confusion"]
    );
    assert_clean_error(&longtail(&["eval", "--run", "runs/bs", "--test-prior", "0.5,0.5"], cwd), "2 values but the model has 4 classes");
    assert_clean_error(&longtail(&["eval", "--run", "runs/bs", "--test-prior", "0.5,0.5,0.5,0.5"], cwd), "sums to 2");
    assert_clean_error(&longtail(&["eval", "--run", "runs/bs", "--test-prior", "0.5,0.5,0,0"], cwd), "probability > 0");

    // predict: a bright image is class `three`
    image::GrayImage::from_pixel(28, 28, image::Luma([215])).save(cwd.join("bright.png")).unwrap();
    let o = longtail(&["predict", "--run", "runs/ce", "--top-k", "2", "bright.png"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    assert!(out.starts_with("bright.png: three [3]"), "{out}");
    let o = longtail(&["predict", "--run", "runs/ce", "--top-k", "0", "bright.png"], cwd);
    assert!(!o.status.success() && text(&o).1.contains("--top-k"), "{:?}", text(&o));
    // one bad image among good ones: the good ones are printed, the bad one named, exit 1; the
    // class names come from the run (the training data is not needed)
    std::fs::write(cwd.join("bad.png"), b"not a png").unwrap();
    std::fs::rename(cwd.join("data"), cwd.join("data-away")).unwrap();
    let o = longtail(&["predict", "--run", "runs/ce", "bright.png", "bad.png", "bright.png"], cwd);
    let (out, err) = text(&o);
    std::fs::rename(cwd.join("data-away"), cwd.join("data")).unwrap();
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("bright.png: three [3]")).count(), 2, "{out}");
    assert!(err.contains("bad.png") && err.contains("1 of 3 images"), "{err}");
    // an OS error is said once, not once per level of the error chain
    let o = longtail(&["predict", "--run", "runs/ce", "missing.png"], cwd);
    let err = text(&o).1;
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");

    // report regenerates
    let o = longtail(&["report", "runs/bs"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(cwd.join("runs/bs/report.html").exists());
}

#[test]
fn methods_config_and_data_inspect() {
    let ws = workspace();
    let cwd = ws.path();
    let o = longtail(&["methods"], cwd);
    let (out, _) = text(&o);
    assert!(o.status.success());
    let names: Vec<&str> = out.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    for m in ["ce", "ldam-drw", "balanced-softmax", "crt", "kps", "fbl", "gcl", "h2t", "ffn", "hrdc", "mgkt"] {
        assert!(names.contains(&m), "{m} missing");
    }
    let o = longtail(&["config", "--method", "gcl", "--dataset", "cifar100-lt"], cwd);
    assert!(o.status.success() && text(&o).0.contains("kind = \"cben\""));
    let o = longtail(&["data", "inspect", "--config", "tiny.toml"], cwd);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("4 classes, 105 training images") && out.contains("rank third") && out.contains("hierarchy: 2 coarse classes"), "{out}");
}

/// `data inspect --check-images` decodes every listed image and names the one that does not.
#[test]
fn data_inspect_check_images_names_a_broken_image() {
    let ws = workspace();
    let cwd = ws.path();
    std::fs::create_dir_all(cwd.join("img")).unwrap();
    for (name, v) in [("a.png", 10u8), ("b.png", 200)] {
        image::GrayImage::from_pixel(4, 4, image::Luma([v])).save(cwd.join("img").join(name)).unwrap();
    }
    std::fs::write(cwd.join("train.txt"), "a.png 0\nb.png 1\n").unwrap();
    std::fs::write(cwd.join("test.txt"), "a.png 0\nb.png 1\n").unwrap();
    let config = common::CONFIG
        .replace(
            r#"source = { format = "idx", root = "data", classes = ["zero", "one", "two", "three"] }"#,
            r#"source = { format = "list", image_root = "img", train = "train.txt", test = "test.txt", num_classes = 2, grayscale = true }"#,
        )
        .replace("imbalance_factor = 10", "imbalance_factor = 1")
        .replace(r#"hierarchy = "groups.toml""#, "");
    std::fs::write(cwd.join("list.toml"), config).unwrap();
    let o = longtail(&["data", "inspect", "--config", "list.toml", "--check-images"], cwd);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("train: all 2 images exist and decode"), "{out}");
    std::fs::write(cwd.join("img/b.png"), b"not a png").unwrap();
    let o = longtail(&["data", "inspect", "--config", "list.toml", "--check-images"], cwd);
    assert_clean_error(&o, "b.png");
    // without the flag the images are not read
    assert!(longtail(&["data", "inspect", "--config", "list.toml"], cwd).status.success());
}

#[test]
fn resume_continues_an_interrupted_run() {
    let ws = workspace();
    let cwd = ws.path();
    let o = longtail(&["-q", "train", "--config", "tiny.toml", "--out", "runs/r", "--max-epochs", "1"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!cwd.join("runs/r/final.json").exists());
    let o = longtail(&["-q", "train", "--resume", "runs/r"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cwd.join("runs/r/state.json")).unwrap()).unwrap();
    assert_eq!(state["history"].as_array().unwrap().len(), 3);
}

/// `--precision bf16` is saved in the run's config, a resumed run keeps it, and it cannot be
/// changed on resume.
#[test]
fn precision_flag_is_saved_and_kept_on_resume() {
    let ws = workspace();
    let cwd = ws.path();
    let o = longtail(&["-q", "train", "--config", "tiny.toml", "--precision", "bf16", "--out", "runs/m", "--max-epochs", "1"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(std::fs::read_to_string(cwd.join("runs/m/config.toml")).unwrap().contains("precision = \"bf16\""));
    assert_clean_error(&longtail(&["train", "--resume", "runs/m", "--precision", "f16"], cwd), "--precision");
    let o = longtail(&["-q", "train", "--resume", "runs/m", "--no-report"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(cwd.join("runs/m/final.json").exists());
}

#[test]
fn bad_input_gives_one_line_causes_and_non_zero_exits() {
    let ws = workspace();
    let cwd = ws.path();
    // unknown config key: file, field, expectation
    std::fs::write(cwd.join("bad.toml"), CONFIG.replace("[model]", "[model]\ndepth = 32")).unwrap();
    let o = longtail(&["train", "--config", "bad.toml"], cwd);
    assert_clean_error(&o, "bad.toml");
    assert!(text(&o).1.contains("unknown field `depth`") && text(&o).1.contains("expected one of"));
    // wrong type
    std::fs::write(cwd.join("type.toml"), CONFIG.replace("epochs = 3", "epochs = \"three\"")).unwrap();
    assert_clean_error(&longtail(&["train", "--config", "type.toml"], cwd), "type.toml");
    // out-of-range --set value
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--set", "data.long_tail.imbalance_factor=0.5"], cwd), "imbalance_factor");
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--set", "stages.0.lr.base=-1"], cwd), "stages.0.lr.base");
    // unknown precision, from the flag and from --set
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--precision", "f64"], cwd), "expected f32, bf16 or f16");
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--set", "precision=fp8"], cwd), "fp8");
    // unknown method
    assert_clean_error(&longtail(&["train", "--method", "nope"], cwd), "unknown method `nope`");
    // class count that disagrees with the data
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--set", "model.num_classes=7"], cwd), "model.num_classes");
    // missing dataset
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--set", "data.source.root=\"nowhere\""], cwd), "nowhere");
    // stage II pointing at a missing checkpoint
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--set", "init_from={ run = \"runs/none\" }"], cwd), "runs/none");
    // a corrupt checkpoint
    let o = longtail(&["-q", "train", "--config", "tiny.toml", "--set", "stages.0.epochs=1", "--out", "runs/c", "--no-report"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    std::fs::write(cwd.join("runs/c/checkpoints/final.bpk"), b"garbage").unwrap();
    assert_clean_error(&longtail(&["eval", "--run", "runs/c"], cwd), "final.bpk");
    // a run folder that is not one
    assert_clean_error(&longtail(&["eval", "--run", "data"], cwd), "not a run folder");
    // an unknown device
    assert_clean_error(&longtail(&["--device", "tpu", "train", "--config", "tiny.toml"], cwd), "unknown device `tpu`");
    // flags that would be ignored next to --config are refused, as is relabelling the method
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--imbalance-factor", "50"], cwd), "--imbalance-factor");
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--dataset", "cifar10-lt"], cwd), "--dataset");
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--data-root", "elsewhere"], cwd), "--data-root elsewhere");
    assert_clean_error(&longtail(&["train", "--config", "tiny.toml", "--set", "method=focal"], cwd), "--set method=focal");
    // a Fashion-MNIST root that does not hold the data is an error, not the system copy
    assert_clean_error(
        &longtail(&["train", "--method", "ce", "--data-root", "no-such-root", "--max-epochs", "0"], cwd),
        "no-such-root does not hold the Fashion-MNIST",
    );
    // usage errors are clap's (exit code 2)
    assert_eq!(longtail(&["train", "--bogus"], cwd).status.code(), Some(2));
}

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// configs/ holds exactly the registry's shipped configs (`longtail_train::methods::shipped_configs`),
/// each parsing back to what the registry generates today, with its header.
#[test]
fn shipped_configs_match_the_method_registry() {
    use longtail_train::ExperimentConfig;
    use longtail_train::methods::{config_header, shipped_configs};
    let root = configs_dir().join("..");
    let mut expected = std::collections::BTreeSet::new();
    for (path, method, config) in shipped_configs() {
        let file = root.join(&path);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask configs`", path.display()));
        assert!(text.starts_with(&config_header(method)), "{} has another header: run `cargo xtask configs`", path.display());
        let shipped = ExperimentConfig::load(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shipped, config, "{} is stale: run `cargo xtask configs`", path.display());
        expected.insert(file.canonicalize().unwrap());
    }
    let mut found = std::collections::BTreeSet::new();
    for dir in std::fs::read_dir(configs_dir()).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            found.insert(file.unwrap().path().canonicalize().unwrap());
        }
    }
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(extra.is_empty(), "configs no method generates: {extra:?}; run `cargo xtask configs`");
    assert!(expected.len() > 100, "only {} configs", expected.len());
}

/// Every registered method has its binary (`cargo run --bin <method>`), and every binary is a
/// registered method: the `[[bin]]` entries of longtail-methods and their sources are what
/// `cargo xtask configs` writes from the registry.
#[test]
fn method_binaries_match_the_method_registry() {
    use longtail_train::methods::METHODS;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../longtail-methods");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let names: Vec<&str> =
        manifest.lines().filter_map(|l| l.strip_prefix("name = \"")).map(|l| l.trim_end_matches('"')).filter(|n| *n != "longtail-methods").collect();
    assert_eq!(names, METHODS.iter().map(|m| m.name).collect::<Vec<_>>(), "run `cargo xtask configs`");
    for m in METHODS {
        let src = std::fs::read_to_string(dir.join("src/bin").join(format!("{}.rs", m.name.replace('-', "_")))).unwrap();
        assert!(src.contains("method_main(env!(\"CARGO_BIN_NAME\"))"), "{}'s binary: run `cargo xtask configs`", m.name);
    }
}

/// A one-shot HTTP server on 127.0.0.1 answering every request with `body` (status 200).
fn serve(body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    (url, handle)
}

/// A port nothing listens on.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// A failure whose message spans lines (an instruction): exit code 1, `error:` first, no panic.
fn assert_instruction(o: &Output, needle: &str) {
    let (_, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("error: ") && err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked") && !err.contains("stack backtrace"), "{err}");
}

#[test]
fn fetch_checks_the_published_checksum_and_says_what_to_do_offline() {
    let ws = workspace();
    let cwd = ws.path();
    // a server that answers with something else than CIFAR-10's archive: refused by its MD5
    let (url, server) = serve(b"not the CIFAR-10 archive".to_vec());
    let o = longtail(&["fetch", "cifar10", "--data-root", "cifar", "--mirror", &url], cwd);
    server.join().unwrap();
    assert_clean_error(&o, "c32a1d4ab5d03f1284b67883e8d87530");
    let (_, err) = text(&o);
    assert!(err.contains("fetching CIFAR-10 (162.2 MiB) from http://127.0.0.1"), "{err}");
    assert!(!cwd.join("cifar/cifar-10-batches-bin").exists(), "no dataset is left behind");
    assert!(!cwd.join("cifar/.partial/cifar-10-binary.tar.gz.part").exists(), "the bad download is removed");
    // unreachable: the exact instruction
    let o = longtail(&["fetch", "cifar100", "--data-root", "c100", "--mirror", &closed_port()], cwd);
    assert_instruction(&o, "mkdir -p c100 && cd c100 && curl -fLO https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz && tar xzf cifar-100-binary.tar.gz");
    // a training run whose CIFAR data is missing fetches it on demand, with one line saying so
    let o = Command::new(env!("CARGO_BIN_EXE_longtail"))
        .args(["train", "--method", "ce", "--dataset", "cifar10-lt", "--data-root", "c10"])
        .current_dir(cwd)
        .env("LONGTAIL_MIRROR", closed_port())
        .output()
        .unwrap();
    assert_instruction(&o, "CIFAR-10 could not be downloaded");
    let (_, err) = text(&o);
    assert!(err.contains("fetching CIFAR-10 (162.2 MiB) from http://127.0.0.1") && err.contains("into c10"), "{err}");
    assert_clean_error(&longtail(&["fetch", "imagenet-lt"], cwd), "known are cifar10, cifar100");
}

#[test]
fn export_writes_pytorch_names_that_init_from_reads_back() {
    let ws = workspace();
    let cwd = ws.path();
    let o = longtail(&["-q", "train", "--config", "tiny.toml", "--set", "stages.0.epochs=1", "--out", "runs/ce"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = longtail(&["export", "--run", "runs/ce", "--to", "ldam.safetensors", "--names", "ldam-cifar"], cwd);
    assert!(o.status.success(), "{:?}", text(&o));
    let bytes = std::fs::read(cwd.join("ldam.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&bytes[8..8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize]).into_owned();
    assert!(header.contains("\"linear.weight\"") && header.contains("\"layer3.0.bn2.running_var\"") && !header.contains("gamma"), "{header}");
    // the exported file starts a run: the head only trains, from the exported weights
    let init = r#"init_from={ weights = "ldam.safetensors", layout = "ldam-cifar", with_classifier = true }"#;
    let o = longtail(
        &[
            "-q",
            "train",
            "--config",
            "tiny.toml",
            "--set",
            init,
            "--set",
            "stages.0.epochs=1",
            "--set",
            "stages.0.train={ parts = [\"head\"] }",
            "--out",
            "runs/ft",
        ],
        cwd,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert_clean_error(&longtail(&["export", "--run", "runs/ce", "--to", "tv.safetensors", "--names", "torchvision"], cwd), "no torchvision counterpart");
    assert_clean_error(
        &longtail(&["export", "--run", "runs/ce", "--to", "x.safetensors", "--names", "caffe"], cwd),
        "expected burn, torchvision, timm or ldam-cifar",
    );
    let o = longtail(&["-q", "train", "--config", "tiny.toml", "--set", r#"init_from={ weights = "ldam.safetensors" }"#, "--out", "runs/bad"], cwd);
    assert_clean_error(&o, "needs its `layout`");
}
