//! Readers on small files generated in the exact on-disk formats.

use std::io::Write;
use std::path::Path;

use longtail_data::readers::{cifar, folder, idx, inat, list};
use longtail_data::{DataError, Hierarchy};

/// A CIFAR record: label bytes then 3072 planar pixels where pixel (c, p) = (seed + 7c + p) % 256.
fn cifar_record(labels: &[u8], seed: u8) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in 0..3usize {
        for p in 0..1024usize {
            r.push(((seed as usize + 7 * c + p) % 256) as u8);
        }
    }
    r
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar10_binary_batches_are_read_with_names_and_hwc_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&bin).unwrap();
    for b in 1..=5u8 {
        let mut bytes = cifar_record(&[b], b);
        bytes.extend(cifar_record(&[9], 100 + b));
        write(&bin.join(format!("data_batch_{b}.bin")), &bytes);
    }
    write(&bin.join("test_batch.bin"), &cifar_record(&[3], 42));
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    write(&bin.join("batches.meta.txt"), names.as_bytes());

    let splits = cifar::read_cifar10(dir.path()).unwrap();
    assert_eq!(splits.train.len(), 10);
    assert_eq!(splits.train.labels, vec![1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    assert_eq!(splits.test.labels, vec![3]);
    assert_eq!(splits.train.class_names[9], "truck");
    let img = splits.test.image(0).unwrap();
    assert_eq!((img.height, img.width, img.channels), (32, 32, 3));
    // pixel (y=1, x=2) is planar position p = 34; channel c holds (42 + 7c + 34) % 256
    assert_eq!([img.at(1, 2, 0), img.at(1, 2, 1), img.at(1, 2, 2)], [76, 83, 90]);
}

#[test]
fn cifar100_reads_fine_and_coarse_labels_into_a_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    let mut train = Vec::new();
    // fine class f belongs to superclass f % 20
    for f in 0..100u8 {
        train.extend(cifar_record(&[f % 20, f], f));
    }
    write(&dir.path().join("train.bin"), &train);
    write(&dir.path().join("test.bin"), &cifar_record(&[7, 27], 1));
    let fine: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    let coarse: String = (0..20).map(|i| format!("coarse{i}\n")).collect();
    write(&dir.path().join("fine_label_names.txt"), fine.as_bytes());
    write(&dir.path().join("coarse_label_names.txt"), coarse.as_bytes());

    let splits = cifar::read_cifar100(dir.path()).unwrap();
    let h = splits.train.hierarchy.as_ref().unwrap();
    assert_eq!(h.num_coarse(), 20);
    assert_eq!(h.parent[27], 7);
    assert_eq!(h.parent[99], 19);
    assert_eq!(splits.test.coarse_label(0), Some(7));
    assert_eq!(splits.train.class_names[5], "fine5");
    assert_eq!(h.coarse_names[3], "coarse3");
}

#[test]
fn truncated_cifar_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = cifar_record(&[0, 0], 0);
    bytes.truncate(3000);
    write(&dir.path().join("train.bin"), &bytes);
    write(&dir.path().join("test.bin"), &cifar_record(&[0, 0], 0));
    let err = cifar::read_cifar100(dir.path()).unwrap_err().to_string();
    assert!(err.contains("train.bin") && err.contains("truncated"), "{err}");
}

#[test]
fn missing_cifar_folder_names_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let err = cifar::read_cifar10(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }));
    assert!(err.to_string().contains("cifar-10-binary.tar.gz"), "{err}");
}

fn idx_bytes(type_dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, type_dims.len() as u8];
    for d in type_dims {
        out.extend(d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn write_idx_set(dir: &Path, compress: bool, train_labels: &[u8]) {
    let n = train_labels.len() as u32;
    let images: Vec<u8> = (0..n * 4 * 3).map(|v| (v % 251) as u8).collect();
    let files = [
        ("train-images-idx3-ubyte", idx_bytes(&[n, 4, 3], &images)),
        ("train-labels-idx1-ubyte", idx_bytes(&[n], train_labels)),
        ("t10k-images-idx3-ubyte", idx_bytes(&[1, 4, 3], &images[..12])),
        ("t10k-labels-idx1-ubyte", idx_bytes(&[1], &[2])),
    ];
    for (name, bytes) in files {
        if compress {
            write(&dir.join(format!("{name}.gz")), &gz(&bytes));
        } else {
            write(&dir.join(name), &bytes);
        }
    }
}

#[test]
fn idx_files_read_raw_and_gzipped_identically() {
    let classes: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
    let raw = tempfile::tempdir().unwrap();
    let zipped = tempfile::tempdir().unwrap();
    write_idx_set(raw.path(), false, &[0, 1, 2, 1]);
    write_idx_set(zipped.path(), true, &[0, 1, 2, 1]);
    let a = idx::read_idx_dataset(raw.path(), "t", &classes).unwrap();
    let b = idx::read_idx_dataset(zipped.path(), "t", &classes).unwrap();
    assert_eq!(a.train.labels, vec![0, 1, 2, 1]);
    assert_eq!(a.train.labels, b.train.labels);
    let (ia, ib) = (a.train.image(2).unwrap(), b.train.image(2).unwrap());
    assert_eq!(ia, ib);
    assert_eq!((ia.height, ia.width, ia.channels), (4, 3, 1));
    assert_eq!(ia.data, (24..36).map(|v| v as u8).collect::<Vec<_>>());
    assert_eq!(a.test.labels, vec![2]);
}

#[test]
fn idx_label_outside_class_range_and_truncation_are_errors() {
    let classes: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
    let dir = tempfile::tempdir().unwrap();
    write_idx_set(dir.path(), true, &[0, 1, 7, 1]);
    let err = idx::read_idx_dataset(dir.path(), "t", &classes).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { label: 7, num_classes: 3, .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    write_idx_set(dir.path(), false, &[0, 1]);
    let path = dir.path().join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 5);
    write(&path, &bytes);
    let err = idx::read_idx_dataset(dir.path(), "t", &classes).unwrap_err().to_string();
    assert!(err.contains("truncated") && err.contains("train-images-idx3-ubyte"), "{err}");
}

/// Headers that used to panic or to cost unbounded memory: zero-sized images (a division by
/// zero further on), and a gzip stream far longer than its header's dimensions (it was
/// decompressed whole before the header was read; now at most one byte past them).
#[test]
fn idx_headers_bound_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero-idx3-ubyte");
    write(&zero, &idx_bytes(&[2, 0, 0], &[]));
    let err = idx::read_idx(&zero).unwrap_err().to_string();
    assert!(err.contains("at least 1") && err.contains("[2, 0, 0]"), "{err}");

    let long = dir.path().join("long-idx3-ubyte.gz");
    let mut bytes = idx_bytes(&[1, 2, 2], &[1, 2, 3, 4]);
    bytes.resize(bytes.len() + (64 << 20), 0);
    write(&long, &gz(&bytes));
    let err = idx::read_idx(&long).unwrap_err().to_string();
    assert!(err.contains("need 4 bytes") && err.contains("has more"), "{err}");

    let huge = dir.path().join("huge-idx3-ubyte");
    write(&huge, &idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[0; 16]));
    let err = idx::read_idx(&huge).unwrap_err().to_string();
    assert!(err.contains("overflow") || err.contains("truncated"), "{err}");

    let short = dir.path().join("short-idx1-ubyte.gz");
    write(&short, &gz(&[0, 0, 8]));
    assert!(idx::read_idx(&short).unwrap_err().to_string().contains("bad magic"));
}

#[test]
fn missing_fashion_mnist_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = idx::read_fashion_mnist(Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains("apt-get install dataset-fashion-mnist"), "{err}");
    // the command the hint names exists (it named a `cargo xtask fetch` that does not)
    assert!(err.contains("`longtail fetch fashion-mnist`") && !err.contains("xtask"), "{err}");
}

fn write_png(path: &Path, value: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(6, 4, image::Rgb([value, value / 2, 255 - value])).save(path).unwrap();
}

fn write_jpeg(path: &Path, value: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(8, 8, image::Rgb([value, value, value])).save(path).unwrap();
}

#[test]
fn list_files_resolve_paths_against_the_image_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    write_png(&root.join("train/n01/a.png"), 10);
    write_jpeg(&root.join("train/n02/b.jpg"), 200);
    write_png(&root.join("val/c.png"), 30);
    write(&dir.path().join("train.txt"), b"train/n01/a.png 0\ntrain/n02/b.jpg 2\n\n");
    write(&dir.path().join("test.txt"), b"val/c.png 1\n");
    let spec = list::ListSpec {
        name: "imagenet-lt".into(),
        image_root: root,
        train: dir.path().join("train.txt"),
        test: dir.path().join("test.txt"),
        val: None,
        class_names: None,
        num_classes: None,
        grayscale: false,
        allow_outside_root: false,
    };
    let splits = list::read_list_splits(&spec).unwrap();
    assert_eq!(splits.train.labels, vec![0, 2]);
    assert_eq!(splits.train.num_classes(), 3);
    let png = splits.train.image(0).unwrap();
    assert_eq!((png.height, png.width, png.channels), (4, 6, 3));
    assert_eq!(&png.data[..3], &[10, 5, 245]);
    let jpg = splits.train.image(1).unwrap();
    assert_eq!((jpg.height, jpg.width), (8, 8));
    assert!((jpg.data[0] as i32 - 200).abs() <= 2, "JPEG value {}", jpg.data[0]);
}

/// A listed path that leaves the image root (`..`, absolute) is refused unless the source allows
/// it: an image outside the root would otherwise train under the given label.
#[test]
fn list_and_inat_paths_outside_the_image_root_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    write_png(&root.join("a.png"), 10);
    write_png(&dir.path().join("outside.png"), 20);
    std::fs::create_dir(root.join("sub")).unwrap();
    let outside = dir.path().join("outside.png");
    for line in ["../outside.png 0\n".to_string(), format!("{} 0\n", outside.display()), "sub/../../outside.png 0\n".to_string()] {
        write(&dir.path().join("train.txt"), format!("a.png 0\n{line}").as_bytes());
        write(&dir.path().join("test.txt"), b"a.png 0\n");
        let mut spec = list::ListSpec {
            name: "x".into(),
            image_root: root.clone(),
            train: dir.path().join("train.txt"),
            test: dir.path().join("test.txt"),
            val: None,
            class_names: None,
            num_classes: Some(1),
            grayscale: false,
            allow_outside_root: false,
        };
        let err = list::read_list_splits(&spec).unwrap_err().to_string();
        assert!(err.contains("entry 2") && err.contains("outside the image root") && err.contains("allow_outside_root"), "{err}");
        spec.allow_outside_root = true;
        assert_eq!(list::read_list_splits(&spec).unwrap().train.image(1).unwrap().data[0], 20);
    }
    let image = |id: u64, name: &str| format!(r#"{{"id": {id}, "file_name": "{name}"}}"#);
    let json = |name: &str| {
        format!(
            r#"{{"images": [{}, {}], "annotations": [{{"image_id": 1, "category_id": 0}}, {{"image_id": 2, "category_id": 0}}]}}"#,
            image(1, "a.png"),
            image(2, name)
        )
    };
    write(&dir.path().join("train2018.json"), json("../outside.png").as_bytes());
    write(&dir.path().join("val2018.json"), json("a.png").as_bytes());
    let (t, v) = (dir.path().join("train2018.json"), dir.path().join("val2018.json"));
    let err = inat::read_inat(&t, &v, &root, false).unwrap_err().to_string();
    assert!(err.contains("image 2") && err.contains("outside the image root"), "{err}");
    assert!(inat::read_inat(&t, &v, &root, true).is_ok());
}

#[test]
fn a_list_line_that_does_not_parse_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.txt");
    write(&path, b"a.jpg 0\nb.jpg one\n");
    let err = list::parse_list(&path).unwrap_err();
    assert!(matches!(err, DataError::Parse { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("train.txt:2"), "{err}");
    write(&path, b"a.jpg 0\nnolabel\n");
    assert!(list::parse_list(&path).unwrap_err().to_string().contains(":2:"));
}

#[test]
fn a_missing_image_is_reported_when_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("img");
    std::fs::create_dir(&root).unwrap();
    write(&dir.path().join("l.txt"), b"nothere.jpg 0\n");
    let spec = list::ListSpec {
        name: "x".into(),
        image_root: root,
        train: dir.path().join("l.txt"),
        test: dir.path().join("l.txt"),
        val: None,
        class_names: None,
        num_classes: Some(1),
        grayscale: false,
        allow_outside_root: false,
    };
    let splits = list::read_list_splits(&spec).unwrap();
    let err = splits.train.image(0).unwrap_err().to_string();
    assert!(err.contains("nothere.jpg"), "{err}");
    // and before any decoding, by the stat check a run makes before training
    let err = splits.train.check_files().unwrap_err().to_string();
    assert!(err.contains("1 of the 1 images") && err.contains("nothere.jpg") && err.contains("--check-images"), "{err}");
}

/// A FIFO, a device and an image whose header promises 20000 x 20000 pixels are errors, without
/// blocking, reading without end or allocating for the pixels.
#[test]
fn image_reads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.png");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let err = longtail_data::image::Image::open(&fifo, false).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    let err = longtail_data::image::Image::open(Path::new("/dev/zero"), false).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    // a 1x1 PNG whose IHDR is rewritten to 20000 x 20000 (with its CRC)
    let small = dir.path().join("small.png");
    write_png(&small, 5);
    let mut png = std::fs::read(&small).unwrap();
    png[16..20].copy_from_slice(&20000u32.to_be_bytes());
    png[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let err = longtail_data::image::Image::decode(&png, &small, true).unwrap_err().to_string();
    assert!(err.contains("20000x20000") && err.contains("pixel bound"), "{err}");
}

#[test]
fn inaturalist_json_maps_category_ids_to_contiguous_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_jpeg(&dir.path().join("train_val2018/Plantae/7/a.jpg"), 1);
    write_jpeg(&dir.path().join("train_val2018/Aves/3/b.jpg"), 2);
    let train = r#"{"images":[{"id":11,"file_name":"train_val2018/Plantae/7/a.jpg","width":8,"height":8},
                              {"id":12,"file_name":"train_val2018/Aves/3/b.jpg"}],
                    "annotations":[{"id":1,"image_id":12,"category_id":3},{"id":2,"image_id":11,"category_id":7}],
                    "categories":[{"id":7,"name":"Plantae sp"},{"id":3,"name":"Aves sp"}]}"#;
    let val = r#"{"images":[{"id":5,"file_name":"train_val2018/Aves/3/b.jpg"}],
                  "annotations":[{"image_id":5,"category_id":7}],"categories":[]}"#;
    write(&dir.path().join("train2018.json"), train.as_bytes());
    write(&dir.path().join("val2018.json"), val.as_bytes());
    let splits = inat::read_inat(&dir.path().join("train2018.json"), &dir.path().join("val2018.json"), dir.path(), false).unwrap();
    // ids sorted: 3 -> 0, 7 -> 1
    assert_eq!(splits.train.class_names, vec!["Aves sp", "Plantae sp"]);
    assert_eq!(splits.train.labels, vec![1, 0]);
    assert_eq!(splits.test.labels, vec![1]);
    assert_eq!(splits.train.image(1).unwrap().height, 8);
}

#[test]
fn image_folders_use_sorted_class_folders() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("train/zebra/1.png"), 1);
    write_png(&dir.path().join("train/ant/1.png"), 2);
    write_png(&dir.path().join("train/ant/2.PNG"), 3);
    std::fs::write(dir.path().join("train/ant/notes.txt"), "x").unwrap();
    write_png(&dir.path().join("test/zebra/9.png"), 4);
    let train = folder::read_folder(&dir.path().join("train"), "own", None, false).unwrap();
    assert_eq!(train.class_names, vec!["ant", "zebra"]);
    assert_eq!(train.labels, vec![0, 0, 1]);
    let test = folder::read_folder(&dir.path().join("test"), "own", Some(&train.class_names), false).unwrap();
    assert_eq!(test.labels, vec![1]);
    write_png(&dir.path().join("test/unknown/1.png"), 4);
    let err = folder::read_folder(&dir.path().join("test"), "own", Some(&train.class_names), false).unwrap_err();
    assert!(err.to_string().contains("unknown"), "{err}");
    // a class folder whose name is not UTF-8 is named, not read as an empty class
    {
        use std::os::unix::ffi::OsStrExt;
        let bad = dir.path().join("train").join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        write_png(&bad.join("1.png"), 5);
    }
    let err = folder::read_folder(&dir.path().join("train"), "own", None, false).unwrap_err().to_string();
    assert!(err.contains("not valid UTF-8"), "{err}");
}

#[test]
fn hierarchy_files_map_names_and_reject_mistakes() {
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.toml");
    write(&path, b"[[group]]\nname = \"x\"\nclasses = [\"a\", 2]\n[[group]]\nname = \"y\"\nclasses = [\"b\"]\n");
    let h = Hierarchy::load(&path, &names).unwrap();
    assert_eq!(h.parent, vec![0, 1, 0]);
    assert_eq!(h.children(), vec![vec![0, 2], vec![1]]);

    let json = dir.path().join("h.json");
    write(&json, br#"{"group":[{"name":"x","classes":["a","b","c"]}]}"#);
    assert_eq!(Hierarchy::load(&json, &names).unwrap().parent, vec![0, 0, 0]);

    write(&path, b"[[group]]\nname = \"x\"\nclasses = [\"a\", \"zz\"]\n");
    assert!(Hierarchy::load(&path, &names).unwrap_err().to_string().contains("unknown class `zz`"));
    write(&path, b"[[group]]\nname = \"x\"\nclasses = [\"a\", \"b\"]\n");
    assert!(Hierarchy::load(&path, &names).unwrap_err().to_string().contains("without a group: c"));
    write(&path, b"[[group]]\nname = \"x\"\nclasses = [\"a\", \"b\", \"c\"]\n[[group]]\nname = \"y\"\nclasses = [\"a\"]\n");
    assert!(Hierarchy::load(&path, &names).unwrap_err().to_string().contains("in both"));
}

#[test]
fn builtin_fashion_mnist_grouping_covers_all_ten_classes() {
    let names: Vec<String> = idx::FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect();
    let h = longtail_data::source::load_hierarchy("builtin:fashion-mnist", &names).unwrap();
    assert_eq!(h.coarse_names, vec!["tops", "bottoms", "dresses", "footwear", "bags"]);
    assert_eq!(h.parent, vec![0, 1, 0, 2, 0, 3, 0, 3, 4, 3]);
}
