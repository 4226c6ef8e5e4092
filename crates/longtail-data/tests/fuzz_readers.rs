//! Bounded fuzzing of every reader: seeded random bytes and random mutations (flipped, cut,
//! repeated and inserted bytes) of a valid file of each format, a fixed number of cases each.
//! Every case must end in `Ok` or an error, never a panic, and within a time bound (no hang, no
//! runaway read). The cases are deterministic (ChaCha8 from a fixed seed): a failure reproduces
//! with the case number it prints. `LONGTAIL_FUZZ_CASES` (default 2000 per reader, a few seconds) raises the count for a longer run.
//!
//! `tests/fuzz_regressions/` holds the inputs found to break a reader (the issue's reports and
//! what these cases found), named `<reader>-<what>.<ext>` (`pickle-`: a batch of CIFAR's python
//! layout); each must be refused with an error.

use std::path::Path;
use std::time::{Duration, Instant};

use longtail_data::image::Image;
use longtail_data::readers::{cifar, idx, inat, list};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cases() -> usize {
    std::env::var("LONGTAIL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

/// A random mutation of `valid`, or (one case in five) random bytes.
fn mutate(valid: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    if rng.random_range(0..5) == 0 {
        let mut v = vec![0u8; rng.random_range(0..2048)];
        rng.fill_bytes(&mut v);
        return v;
    }
    let mut v = valid.to_vec();
    for _ in 0..rng.random_range(1..6) {
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] = [0, 0xff, 0x7f, 0x80][rng.random_range(0..4)];
            }
            2 => v.truncate(rng.random_range(0..=v.len())),
            3 if !v.is_empty() => {
                let (a, b) = (rng.random_range(0..v.len()), rng.random_range(0..v.len()));
                let (a, b) = (a.min(b), a.max(b).min(a + 64));
                let chunk = v[a..b].to_vec();
                v.splice(a..a, chunk);
            }
            _ => {
                let i = rng.random_range(0..=v.len());
                v.insert(i, rng.random());
            }
        }
    }
    v
}

/// Runs `read` on `cases()` mutations of `valid`; panics name the reader and the case.
fn fuzz(name: &str, valid: &[u8], mut read: impl FnMut(&[u8])) {
    let mut rng = ChaCha8Rng::seed_from_u64(0xf022 ^ name.len() as u64);
    for case in 0..cases() {
        let bytes = mutate(valid, &mut rng);
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&bytes)));
        if r.is_err() {
            // kept for `tests/fuzz_regressions/` (commit it there, named after what it is)
            let keep = std::env::temp_dir().join(format!("longtail-fuzz-{name}-{case}.bin"));
            let _ = std::fs::write(&keep, &bytes);
            panic!("{name}: case {case} panicked (input of {} bytes, kept in {})", bytes.len(), keep.display());
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{name}: case {case} took {:?}", t0.elapsed());
    }
}

#[test]
fn the_idx_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    longtail_data::synthetic::write_idx_dataset(dir.path(), &[3, 2], 1, 1).unwrap();
    let valid = std::fs::read(dir.path().join("train-images-idx3-ubyte.gz")).unwrap();
    // the raw IDX bytes under the gzip
    let valid = {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&valid[..]), &mut v).unwrap();
        v
    };
    let path = dir.path().join("case");
    fuzz("idx", &valid, |bytes| {
        std::fs::write(&path, bytes).unwrap();
        let _ = idx::read_idx(&path);
    });
    // and gzip-wrapped
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &valid).unwrap();
    fuzz("idx.gz", &gz.finish().unwrap(), |bytes| {
        std::fs::write(&path, bytes).unwrap();
        let _ = idx::read_idx(&path);
    });
}

#[test]
fn the_cifar_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let record = |label: u8| std::iter::once(label).chain((0..3072).map(|i| (i % 251) as u8)).collect::<Vec<u8>>();
    let valid: Vec<u8> = (0..3).flat_map(|l| record(l as u8)).collect();
    fuzz("cifar10", &valid, |bytes| {
        for b in 1..=5 {
            std::fs::write(dir.path().join(format!("data_batch_{b}.bin")), bytes).unwrap();
        }
        std::fs::write(dir.path().join("test_batch.bin"), bytes).unwrap();
        let _ = cifar::read_cifar10(dir.path());
    });
}

/// Writes `bytes` as all six batches of a python-layout CIFAR-10 folder (torchvision's pickles).
fn write_python_batches(dir: &Path, bytes: &[u8]) {
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn the_cifar_python_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torchvision_cifar/py2/cifar-10-batches-py");
    let valid = std::fs::read(fixture.join("test_batch")).unwrap();
    fuzz("cifar-python", &valid, |bytes| {
        write_python_batches(dir.path(), bytes);
        let _ = cifar::read_cifar10(dir.path());
    });
    // and the meta pickle of class names
    write_python_batches(dir.path(), &valid);
    let meta = std::fs::read(fixture.join("batches.meta")).unwrap();
    fuzz("cifar-python-meta", &meta, |bytes| {
        std::fs::write(dir.path().join("batches.meta"), bytes).unwrap();
        let _ = cifar::read_cifar10(dir.path());
    });
}

#[test]
fn the_list_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("img");
    std::fs::create_dir(&root).unwrap();
    let valid = b"a/b.jpg 0\nc.png 1\n# comment\n\nd e.jpg 2\n".to_vec();
    let (train, test) = (dir.path().join("train.txt"), dir.path().join("test.txt"));
    std::fs::write(&test, b"c.png 1\n").unwrap();
    fuzz("list", &valid, |bytes| {
        std::fs::write(&train, bytes).unwrap();
        let _ = list::parse_list(&train);
        let spec = list::ListSpec {
            name: "fuzz".into(),
            image_root: root.clone(),
            train: train.clone(),
            test: test.clone(),
            val: None,
            class_names: None,
            num_classes: None,
            grayscale: false,
            allow_outside_root: false,
        };
        let _ = list::read_list_splits(&spec);
    });
}

#[test]
fn the_inaturalist_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let valid = br#"{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b/c.jpg"}], "annotations": [{"image_id": 1, "category_id": 5}, {"image_id": 2, "category_id": 7}], "categories": [{"id": 5, "name": "x"}, {"id": 7, "name": "y"}]}"#.to_vec();
    let (train, val) = (dir.path().join("train.json"), dir.path().join("val.json"));
    std::fs::write(&val, &valid).unwrap();
    fuzz("inat", &valid, |bytes| {
        std::fs::write(&train, bytes).unwrap();
        let _ = inat::read_inat(&train, &val, dir.path(), false);
    });
}

#[test]
fn the_image_decoder_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    for (format, file) in [("png", "x.png"), ("jpeg", "x.jpg")] {
        let path = dir.path().join(file);
        image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([(x * 16) as u8, (y * 20) as u8, 7])).save(&path).unwrap();
        let valid = std::fs::read(&path).unwrap();
        fuzz(format, &valid, |bytes| {
            let _ = Image::decode(bytes, Path::new(file), false);
            let _ = Image::decode(bytes, Path::new(file), true);
        });
    }
}

/// Feeds one regression input to the reader its name starts with.
fn replay(path: &Path, scratch: &Path) -> Result<(), String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(path).unwrap();
    let err = |e: longtail_data::DataError| e.to_string();
    let root = scratch.join("img");
    std::fs::create_dir_all(&root).unwrap();
    let test_list = scratch.join("test.txt");
    std::fs::write(&test_list, b"c.png 0\n").unwrap();
    match name.split('-').next().unwrap() {
        "idx" => idx::read_idx(path).map(drop).map_err(err),
        "cifar" => {
            for b in 1..=5 {
                std::fs::write(scratch.join(format!("data_batch_{b}.bin")), &bytes).unwrap();
            }
            std::fs::write(scratch.join("test_batch.bin"), &bytes).unwrap();
            cifar::read_cifar10(scratch).map(drop).map_err(err)
        }
        "pickle" => {
            write_python_batches(scratch, &bytes);
            cifar::read_cifar10(scratch).map(drop).map_err(err)
        }
        "list" => {
            let spec = list::ListSpec {
                name: "regression".into(),
                image_root: root,
                train: path.to_path_buf(),
                test: test_list,
                val: None,
                class_names: None,
                num_classes: None,
                grayscale: false,
                allow_outside_root: false,
            };
            list::read_list_splits(&spec).map(drop).map_err(err)
        }
        "inat" => inat::read_inat(path, path, &root, false).map(drop).map_err(err),
        "image" => Image::decode(&bytes, path, false).map(drop).map_err(err),
        other => panic!("{name}: no reader named `{other}`"),
    }
}

#[test]
fn every_regression_input_is_refused_with_an_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 15, "{} regression inputs", files.len());
    for path in files {
        let scratch = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let got = std::panic::catch_unwind(|| replay(&path, scratch.path()));
        let name = path.file_name().unwrap().to_string_lossy();
        match got {
            Ok(Err(msg)) => assert!(!msg.is_empty()),
            Ok(Ok(())) => panic!("{name} was accepted"),
            Err(_) => panic!("{name} panicked"),
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{name} took {:?}", t0.elapsed());
    }
}
