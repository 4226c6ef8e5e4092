//! `longtail predict`: top-k classes of image files with a trained run.

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use longtail_data::image::Image;
use longtail_train::ExperimentConfig;
use rand::SeedableRng;

/// One image's top-k `(class index, class name, probability)`.
pub type Ranked = Vec<(usize, String, f32)>;

/// The class names of a run: from its final report (no dataset needed), else from its data.
fn class_names(dir: &longtail_train::RunDir, config: &ExperimentConfig) -> Result<Vec<String>> {
    if let Ok(report) = dir.read_final() {
        let mut per_class = report.metrics.per_class.clone();
        per_class.sort_by_key(|c| c.class);
        if per_class.len() == config.model.num_classes && per_class.iter().enumerate().all(|(i, c)| c.class == i) {
            return Ok(per_class.into_iter().map(|c| c.name).collect());
        }
    }
    Ok(config.data.load().context("reading the run's dataset for its class names (the run has no final report)")?.train.class_names)
}

/// Classifies image files with the final weights of `run`: one result per image, so one bad
/// image does not hide the others' predictions.
pub fn predict_files(run: &Path, images: &[impl AsRef<Path>], top_k: usize, device: &Device) -> Result<Vec<Result<Ranked>>> {
    let dir = longtail_train::RunDir::new(run);
    let config = ExperimentConfig::load(&dir.config(), &[])?;
    let (network, _) = longtail_train::load_run_network(run, device)?;
    let network = network.valid();
    let names = class_names(&dir, &config)?;
    let channels = config.model.in_channels;
    let size = config.data.recipe.image_size();
    let pipeline = config.data.test_pipeline(channels);
    let mut out = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for path in images {
        let path = path.as_ref();
        let mut img = match Image::open(path, channels == 1) {
            Ok(img) => img,
            Err(e) => {
                out.push(Err(e.into()));
                continue;
            }
        };
        // the small-image recipes expect their native size (28 or 32); ImageNet's test pipeline resizes itself
        let native = match config.data.recipe {
            longtail_data::Recipe::FashionMnist => Some(28),
            longtail_data::Recipe::Cifar => Some(32),
            longtail_data::Recipe::Imagenet => None,
        };
        if let Some(side) = native.filter(|&s| img.height != s || img.width != s) {
            img = resize_to(&img, side);
        }
        let mut values = vec![0f32; channels * size * size];
        if let Err(e) = pipeline.process_into(img, &mut rng, &mut values) {
            out.push(Err(anyhow::Error::new(e).context(format!("preparing {}", path.display()))));
            continue;
        }
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, channels, size, size]), device);
        // a model with expert routers (RIDE-EA) runs only the experts its routers send the image to
        let logits = match network.predict_routed(x.clone()) {
            Some((logits, _)) => logits,
            None => network.predict(x),
        };
        let probs: Vec<f32> = softmax(logits, 1).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        out.push(Ok(ranked.into_iter().take(top_k).map(|(c, p)| (c, names[c].clone(), p)).collect()));
    }
    Ok(out)
}

fn resize_to(img: &Image, side: usize) -> Image {
    use image::{DynamicImage, GrayImage, RgbImage, imageops::FilterType};
    let dynamic = if img.channels == 1 {
        DynamicImage::ImageLuma8(GrayImage::from_raw(img.width as u32, img.height as u32, img.data.clone()).unwrap())
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(img.width as u32, img.height as u32, img.data.clone()).unwrap())
    };
    let r = dynamic.resize_exact(side as u32, side as u32, FilterType::Triangle);
    if img.channels == 1 { Image::new(side, side, 1, r.to_luma8().into_raw()) } else { Image::new(side, side, 3, r.to_rgb8().into_raw()) }
}
