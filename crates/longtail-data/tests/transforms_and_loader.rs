//! Transform shapes, values and determinism; loader batches and their reproducibility.

use std::sync::Arc;

use longtail_data::image::Image;
use longtail_data::{Dataset, ImageStore, Loader, Pipeline, Recipe, TransformOp};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn gradient(h: usize, w: usize, c: usize) -> Image {
    let data = (0..h * w * c).map(|i| (i % 256) as u8).collect();
    Image::new(h, w, c, data)
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn pad_to_centres_fashion_mnist_in_32x32() {
    let p = Pipeline::new(vec![TransformOp::PadTo { size: 32 }], &[0.0], &[1.0]);
    let out = p.augment(gradient(28, 28, 1), &mut rng(0));
    assert_eq!((out.height, out.width), (32, 32));
    assert_eq!(out.at(0, 0, 0), 0);
    assert_eq!(out.at(2, 2, 0), 0); // source pixel (0, 0) = 0
    assert_eq!(out.at(2, 3, 0), 1);
    assert_eq!(out.at(3, 2, 0), 28);
    assert_eq!(out.at(31, 31, 0), 0);
}

#[test]
fn random_crop_with_padding_keeps_size_and_shifts_content() {
    let p = Pipeline::new(vec![TransformOp::RandomCrop { size: 32, padding: 4 }], &[0.0; 3], &[1.0; 3]);
    let img = gradient(32, 32, 3);
    let mut seen_shift = false;
    for s in 0..20 {
        let out = p.augment(img.clone(), &mut rng(s));
        assert_eq!((out.height, out.width, out.channels), (32, 32, 3));
        if out != img {
            seen_shift = true;
        }
    }
    assert!(seen_shift);
}

#[test]
fn flip_mirrors_columns() {
    let p = Pipeline::new(vec![TransformOp::HorizontalFlip { p: 1.0 }], &[0.0], &[1.0]);
    let img = Image::new(2, 3, 1, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(p.augment(img, &mut rng(0)).data, vec![3, 2, 1, 6, 5, 4]);
}

#[test]
fn normalisation_writes_chw_values() {
    let p = Pipeline::new(vec![], &[0.5, 0.0], &[0.25, 1.0]);
    let img = Image::new(1, 2, 2, vec![255, 0, 0, 51]); // pixel0 = (255, 0), pixel1 = (0, 51)
    let mut out = vec![0.0; 4];
    p.process_into(img, &mut rng(0), &mut out).unwrap();
    let expected = [(1.0 - 0.5) / 0.25, (0.0 - 0.5) / 0.25, 0.0, 0.2];
    for (o, e) in out.iter().zip(expected) {
        assert!((o - e).abs() < 1e-6, "{out:?}");
    }
}

#[test]
fn recipes_produce_their_sizes() {
    let fm = Recipe::FashionMnist.train(3);
    let out = fm.augment(gradient(28, 28, 1), &mut rng(1));
    assert_eq!((out.height, out.width, out.channels), (32, 32, 3));
    let inet = Recipe::Imagenet.train(3);
    let out = inet.augment(gradient(300, 400, 3), &mut rng(1));
    assert_eq!((out.height, out.width, out.channels), (224, 224, 3));
    let test = Recipe::Imagenet.test(3);
    let out = test.augment(gradient(300, 500, 3), &mut rng(1));
    assert_eq!((out.height, out.width), (224, 224));
}

#[test]
fn the_same_seed_gives_the_same_augmentation() {
    let p = Recipe::Imagenet.train(3);
    let a = p.augment(gradient(64, 80, 3), &mut rng(9));
    let b = p.augment(gradient(64, 80, 3), &mut rng(9));
    let c = p.augment(gradient(64, 80, 3), &mut rng(10));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn wrong_output_size_is_an_error_not_garbage() {
    let p = Pipeline::new(vec![], &[0.0], &[1.0]);
    let mut out = vec![0.0; 16];
    let err = p.process_into(gradient(3, 3, 1), &mut rng(0), &mut out).unwrap_err();
    assert!(err.to_string().contains("crop/resize"), "{err}");
    let bad = Pipeline::new(vec![TransformOp::HorizontalFlip { p: 2.0 }], &[0.0], &[1.0]);
    assert!(bad.validate().is_err());
}

fn toy(n: usize) -> Arc<Dataset> {
    let pixels: Vec<u8> = (0..n * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    let store = ImageStore::Memory { height: 28, width: 28, channels: 1, pixels: Arc::new(pixels) };
    Arc::new(Dataset::new("toy", vec!["a".into(), "b".into()], store, (0..n).map(|i| i % 2).collect()).unwrap())
}

#[test]
fn loader_batches_cover_the_epoch_and_are_reproducible_across_thread_counts() {
    let data = toy(10);
    let order: Vec<usize> = vec![3, 1, 4, 0, 9, 2, 6, 5, 8, 7];
    let one = Loader::new(data.clone(), Recipe::FashionMnist.train(1), [1, 32, 32], 4, 1).unwrap();
    let two = Loader::new(data.clone(), Recipe::FashionMnist.train(1), [1, 32, 32], 4, 2).unwrap();
    let a: Vec<_> = one.iter(order.clone(), 5, 0, 0).map(Result::unwrap).collect();
    let b: Vec<_> = two.iter(order.clone(), 5, 0, 0).map(Result::unwrap).collect();
    assert_eq!(a.len(), 3);
    assert_eq!(a[2].shape, [2, 1, 32, 32]);
    assert_eq!(a.iter().flat_map(|b| b.indices.clone()).collect::<Vec<_>>(), order);
    assert_eq!(a[0].labels, vec![1, 1, 0, 0]);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.images, y.images);
    }
    let other_epoch: Vec<_> = one.iter(order, 5, 1, 0).map(Result::unwrap).collect();
    assert_ne!(a[0].images, other_epoch[0].images, "augmentation changes with the epoch");
}

#[test]
fn loader_reports_channel_mismatch_up_front() {
    let err = Loader::new(toy(2), Recipe::FashionMnist.train(1), [3, 32, 32], 4, 1).err().unwrap();
    assert!(err.to_string().contains("channels"), "{err}");
}

#[test]
fn dropping_an_unfinished_epoch_does_not_hang() {
    let loader = Loader::new(toy(64), Recipe::FashionMnist.train(1), [1, 32, 32], 2, 1).unwrap();
    let mut it = loader.iter((0..64).collect(), 0, 0, 0);
    assert!(it.next().is_some());
    drop(it);
}

/// `RandomRotation`'s rotation against Pillow 13's `Image.rotate(angle, NEAREST, fillcolor=0)` on
/// a 5x7 ramp (`np.arange(35).reshape(5, 7) * 7 + 3`), the numbers computed with Pillow.
#[test]
fn rotation_matches_pillow_nearest() {
    let img = Image::new(5, 7, 1, (0..35u8).map(|i| i * 7 + 3).collect());
    let cases: [(f64, [u8; 35]); 3] = [
        (
            15.0,
            [
                0, 17, 24, 31, 31, 87, 94, 3, 59, 66, 73, 80, 136, 143, 52, 59, 115, 122, 129, 185, 192, 101, 108, 164, 171, 178, 185, 241, 150, 157, 213, 213,
                220, 227, 0,
            ],
        ),
        (
            90.0,
            [0, 38, 87, 136, 185, 234, 0, 0, 31, 80, 129, 178, 227, 0, 0, 24, 73, 122, 171, 220, 0, 0, 17, 66, 115, 164, 213, 0, 0, 10, 59, 108, 157, 206, 0],
        ),
        (
            -37.5,
            [
                0, 101, 59, 17, 24, 0, 0, 150, 108, 115, 66, 73, 31, 0, 206, 157, 164, 122, 80, 87, 38, 0, 213, 171, 178, 129, 136, 94, 0, 0, 220, 227, 185,
                143, 0,
            ],
        ),
    ];
    for (angle, expected) in cases {
        assert_eq!(longtail_data::transform::rotate(&img, angle).data, expected.to_vec(), "{angle} degrees");
    }
    assert_eq!(longtail_data::transform::rotate(&img, 0.0).data, img.data, "0 degrees is the identity");
    let p = Pipeline::new(vec![TransformOp::RandomRotation { degrees: 15.0 }], &[0.0], &[1.0]);
    assert!(p.validate().is_ok());
    assert!(Pipeline::new(vec![TransformOp::RandomRotation { degrees: f64::NAN }], &[0.0], &[1.0]).validate().is_err());
    // a draw is one of the rotations by at most 15 degrees, reproducible from the seed
    let (a, b) = (p.augment(img.clone(), &mut rng(3)), p.augment(img.clone(), &mut rng(3)));
    assert_eq!(a.data, b.data);
}
