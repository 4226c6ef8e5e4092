//! torchvision's python layout of CIFAR (pickles) read against the binary layout of the same data.
//!
//! The fixture `tests/fixtures/torchvision_cifar/` is written by
//! `scripts/make_torchvision_cifar_fixture.py` (fixed seed; see its doc for the folders); the
//! numbers below are the ones it printed, computed as torchvision computes them. Files ending in
//! `.gz` are stored compressed and unpacked into a temporary folder with the rest.

use std::io::Read;
use std::path::{Path, PathBuf};

use longtail_data::readers::cifar::{self, Layout};
use longtail_data::readers::pickle::Pickle;
use longtail_data::{DataError, Dataset, ImageStore, Splits};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torchvision_cifar").join(path)
}

/// Copies the fixture folder `from` into `to`, unpacking `*.gz`.
fn unpack(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if path.is_dir() {
            unpack(&path, &to.join(name));
        } else if let Some(stem) = name.strip_suffix(".gz") {
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_end(&mut bytes).unwrap();
            std::fs::write(to.join(stem), bytes).unwrap();
        } else {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

/// A temporary root holding the fixture's `variant` folder (`binary`, `py2`, `proto4`).
fn root(variant: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    unpack(&fixture(variant), dir.path());
    dir
}

fn pixels(d: &Dataset) -> &[u8] {
    match &d.store {
        ImageStore::Memory { height: 32, width: 32, channels: 3, pixels } => pixels,
        other => panic!("not 32x32x3 in memory: {other:?}"),
    }
}

fn assert_same(a: &Splits, b: &Splits, what: &str) {
    for (x, y) in [(&a.train, &b.train), (&a.test, &b.test)] {
        assert_eq!(x.labels, y.labels, "{what}: labels");
        assert_eq!(x.class_names, y.class_names, "{what}: class names");
        assert_eq!(x.hierarchy, y.hierarchy, "{what}: hierarchy");
        assert!(pixels(x) == pixels(y), "{what}: pixels differ");
    }
    assert!(a.val.is_none() && b.val.is_none());
}

/// The HWC pixel (y, x) of sample `i`.
fn rgb(d: &Dataset, i: usize, y: usize, x: usize) -> [u8; 3] {
    let img = d.image(i).unwrap();
    [img.at(y, x, 0), img.at(y, x, 1), img.at(y, x, 2)]
}

#[test]
fn cifar10_pickles_read_as_the_binary_files() {
    let binary = cifar::read_cifar10(root("binary").path()).unwrap();
    for variant in ["py2", "proto4"] {
        let dir = root(variant);
        let (found, layout) = cifar::locate_cifar10_layout(dir.path()).unwrap();
        assert_eq!((found.file_name().unwrap().to_str().unwrap(), layout), ("cifar-10-batches-py", Layout::Python));
        assert_same(&cifar::read_cifar10(dir.path()).unwrap(), &binary, variant);
    }
    assert_eq!(binary.train.class_names[0], "airplane");
}

#[test]
fn cifar100_pickles_read_as_the_binary_files_with_the_hierarchy() {
    let binary = cifar::read_cifar100(root("binary").path()).unwrap();
    assert!(binary.train.hierarchy.is_some());
    for variant in ["py2", "proto4"] {
        let dir = root(variant);
        assert_eq!(cifar::locate_cifar100_layout(dir.path()).unwrap().1, Layout::Python);
        assert_same(&cifar::read_cifar100(dir.path()).unwrap(), &binary, variant);
    }
}

#[test]
fn the_python_layout_gives_the_numbers_the_script_printed() {
    let c10 = cifar::read_cifar10(root("py2").path()).unwrap();
    assert_eq!(c10.train.labels, vec![1, 5, 8, 9, 7, 4, 6, 7, 3, 4, 3, 6, 0, 2, 0]);
    assert_eq!(c10.test.labels, vec![2, 1, 5]);
    assert_eq!(rgb(&c10.train, 4, 5, 7), [19, 234, 98]);
    assert_eq!(rgb(&c10.train, 14, 31, 31), [116, 127, 223]);
    assert_eq!(rgb(&c10.test, 2, 0, 1), [119, 41, 163]);
    assert_eq!(c10.train.class_names[9], "truck");

    let c100 = cifar::read_cifar100(root("py2").path()).unwrap();
    assert_eq!(c100.train.labels[..8], [70, 1, 22, 77, 24, 74, 29, 45]);
    assert_eq!((0..8).map(|i| c100.train.coarse_label(i).unwrap()).collect::<Vec<_>>(), [2, 5, 11, 13, 4, 4, 18, 15]);
    assert_eq!(c100.test.labels, vec![17, 30, 28, 60, 65]);
    let h = c100.train.hierarchy.as_ref().unwrap();
    assert_eq!([h.parent[0], h.parent[7], h.parent[99]], [18, 1, 4]);
    assert_eq!(rgb(&c100.train, 50, 9, 30), [1, 182, 246]);
    // a latin-1 py2 `str` decoded as torchvision's encoding="latin1" does
    assert_eq!(c100.train.class_names[7], "café");
    assert_eq!((h.coarse_names[19].as_str(), c100.train.class_names[99].as_str()), ("coarse_19", "fine_99"));
}

/// A python-layout CIFAR-10 root whose six batch files are all the fixture file `single`.
fn six_copies(single: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let py = dir.path().join("cifar-10-batches-py");
    std::fs::create_dir(&py).unwrap();
    let bytes = std::fs::read(fixture(single)).unwrap();
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"] {
        std::fs::write(py.join(name), &bytes).unwrap();
    }
    std::fs::copy(fixture("py2/cifar-10-batches-py/batches.meta"), py.join("batches.meta")).unwrap();
    dir
}

#[test]
fn python3_protocols_2_and_5_and_fortran_order_read_the_same() {
    let binary = cifar::read_cifar10(root("binary").path()).unwrap();
    for single in ["single/test_batch.proto2", "single/test_batch.proto5", "single/test_batch.fortran4"] {
        let s = cifar::read_cifar10(six_copies(single).path()).unwrap();
        assert_eq!(s.test.labels, binary.test.labels, "{single}");
        assert!(pixels(&s.test) == pixels(&binary.test), "{single}: pixels");
        assert_eq!(s.train.labels, binary.test.labels.repeat(5), "{single}");
        assert!(pixels(&s.train) == pixels(&binary.test).repeat(5), "{single}: train pixels");
    }
}

#[test]
fn the_binary_layout_is_preferred_when_both_are_there() {
    let dir = root("binary");
    unpack(&fixture("py2"), dir.path());
    // a python test batch that would fail: it must not be read
    std::fs::write(dir.path().join("cifar-10-batches-py/test_batch"), b"not a pickle").unwrap();
    std::fs::write(dir.path().join("cifar-100-python/test"), b"not a pickle").unwrap();
    assert_eq!(cifar::locate_cifar10_layout(dir.path()).unwrap().1, Layout::Binary);
    assert!(cifar::read_cifar10(dir.path()).is_ok());
    assert!(cifar::read_cifar100(dir.path()).is_ok());
    std::fs::remove_dir_all(dir.path().join("cifar-10-batches-bin")).unwrap();
    let err = cifar::read_cifar10(dir.path()).unwrap_err().to_string();
    assert!(err.contains("cifar-10-batches-py/test_batch: pickle byte 0: unsupported pickle opcode 0x6e"), "{err}");
}

#[test]
fn a_missing_dataset_names_both_downloads() {
    let dir = tempfile::tempdir().unwrap();
    for err in [cifar::read_cifar10(dir.path()).unwrap_err(), cifar::read_cifar100(dir.path()).unwrap_err()] {
        assert!(matches!(err, DataError::NotFound { .. }));
        let msg = err.to_string();
        assert!(msg.contains("-binary.tar.gz") && msg.contains("-python.tar.gz") && msg.contains("torchvision"), "{msg}");
    }
    let msg = cifar::read_cifar10(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("cifar-10-batches-bin/test_batch.bin") && msg.contains("cifar-10-batches-py/test_batch"), "{msg}");
}

/// The error reading a py2 CIFAR-10 root whose `test_batch` is `edit`ed.
fn broken_test_batch(edit: impl Fn(&mut Vec<u8>)) -> String {
    let dir = root("py2");
    let path = dir.path().join("cifar-10-batches-py/test_batch");
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    let err = cifar::read_cifar10(dir.path()).unwrap_err().to_string();
    assert!(err.contains("cifar-10-batches-py/test_batch: "), "the message names the file: {err}");
    err
}

/// Replaces the one occurrence of `from` in `bytes` by `to`.
fn patch(bytes: &mut Vec<u8>, from: &[u8], to: &[u8]) {
    let at: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i..].starts_with(from)).collect();
    assert_eq!(at.len(), 1, "{from:?} occurs {} times", at.len());
    bytes.splice(at[0]..at[0] + from.len(), to.iter().copied());
}

#[test]
fn a_truncated_pickle_is_an_error() {
    let err = broken_test_batch(|b| b.truncate(b.len() / 2));
    assert!(err.ends_with("truncated pickle: string of 9216 bytes runs past the end (4605 bytes left)"), "{err}");
    let err = broken_test_batch(|b| b.truncate(b.len() - 1));
    assert!(err.ends_with("truncated pickle: the input ends before the STOP opcode"), "{err}");
}

#[test]
fn a_foreign_global_is_an_error() {
    let err = broken_test_batch(|b| patch(b, b"cnumpy\ndtype\n", b"cos\nsystem\n"));
    assert!(err.contains("global `os.system` refused"), "{err}");
}

#[test]
fn a_wrong_byte_count_is_an_error() {
    // the data's shape (3, 3072) made (2, 3072): 9216 bytes for 6144
    let err = broken_test_batch(|b| patch(b, b"K\x03M\x00\x0c\x86", b"K\x02M\x00\x0c\x86"));
    assert!(err.ends_with("ndarray data holds 9216 bytes but shape [2, 3072] of dtype |u1 needs 6144 (wrong byte count)"), "{err}");
}

#[test]
fn a_non_uint8_data_array_and_mismatched_labels_are_errors() {
    let err = broken_test_batch(|b| patch(b, b"U\x02u1", b"U\x02i1"));
    assert!(err.ends_with("`data` has dtype |i1, expected uint8 (u1)"), "{err}");
    // one label fewer: `labels` is [2, 1, 5] as BININT1s closed by APPENDS
    let err = broken_test_batch(|b| patch(b, b"K\x02K\x01K\x05e", b"K\x02K\x01e"));
    assert!(err.ends_with("2 `labels` for 3 images"), "{err}");
    let err = broken_test_batch(|b| patch(b, b"K\x02K\x01K\x05e", b"K\x02K\x01K\x0ae"));
    assert!(err.ends_with("`labels`[2]: label 10 outside 0..10"), "{err}");
}

/// The pickle API on `bytes` must return, never panic; what it parses is read back whole.
fn exercise(bytes: &[u8]) -> bool {
    match Pickle::parse(bytes, Path::new("fuzz")) {
        Ok(p) => {
            let _ = (p.ints("labels"), p.texts("filenames"), p.texts("label_names"), p.u8_array("data"));
            true
        }
        Err(_) => false,
    }
}

#[test]
fn every_truncation_and_many_byte_flips_of_the_fixtures_never_panic() {
    for file in
        ["py2/cifar-10-batches-py/test_batch", "proto4/cifar-10-batches-py/test_batch", "single/test_batch.proto5", "py2/cifar-10-batches-py/batches.meta"]
    {
        let valid = std::fs::read(fixture(file)).unwrap();
        assert!(exercise(&valid), "{file}");
        for n in 0..valid.len() {
            // STOP is the last byte: every proper prefix lacks it
            assert!(!exercise(&valid[..n]), "{file}: prefix of {n} bytes parsed");
        }
        let mut flipped = valid.clone();
        for i in 0..valid.len() {
            for mask in [0x01, 0x80, 0xff] {
                flipped[i] ^= mask;
                exercise(&flipped);
                flipped[i] ^= mask;
            }
        }
    }
}

#[test]
fn the_reader_survives_flipped_bytes_in_every_file_role() {
    // through read_cifar10: a flipped meta, batch or test file gives Ok or an error, never a panic
    let dir = root("py2");
    let py = dir.path().join("cifar-10-batches-py");
    for name in ["batches.meta", "data_batch_3", "test_batch"] {
        let valid = std::fs::read(py.join(name)).unwrap();
        for i in (0..valid.len()).step_by(97).chain(0..200.min(valid.len())) {
            let mut bytes = valid.clone();
            bytes[i] ^= 0xff;
            std::fs::write(py.join(name), &bytes).unwrap();
            let _ = cifar::read_cifar10(dir.path());
        }
        std::fs::write(py.join(name), &valid).unwrap();
    }
    assert!(cifar::read_cifar10(dir.path()).is_ok());
}
