//! Inference images/s of a RIDE-EA run on its test set: every expert on every image
//! (`Network::predict_with_experts`, what evaluation computes) against the code's early exit
//! (`Network::predict_routed`, which runs expert `k` only on the images sent on). Batches are
//! uploaded before timing; each mode runs once untimed first.
//!
//! ```sh
//! cargo run --release -p longtail-train --example routed_throughput -- runs/fmnist/ride-ea [batches]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use longtail_train::data::{PreparedData, upload};
use longtail_train::load_run_network;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = PathBuf::from(args.first().ok_or("usage: routed_throughput RUN_FOLDER [batches]")?);
    let batches: usize = args.get(1).map(|b| b.parse()).transpose()?.unwrap_or(10);
    let device = Device::flex();
    let (network, config) = load_run_network(&run, &device)?;
    let network = network.valid();
    if network.router_threshold().is_none() {
        return Err(format!("{} has no expert routers (a ride-ea run)", run.display()).into());
    }
    let data = PreparedData::load(&config)?;
    let loader = data.eval_loader(&config, data.test.clone())?;
    let images: Vec<Tensor<4>> =
        loader.iter((0..data.test.len()).collect(), 0, 0, 0).take(batches).map(|b| b.map(|b| upload(b, &device).images)).collect::<Result<_, _>>()?;
    let n: usize = images.iter().map(|x| x.dims()[0]).sum();
    let time = |f: &dyn Fn(Tensor<4>)| {
        f(images[0].clone());
        let start = Instant::now();
        images.iter().for_each(|x| f(x.clone()));
        n as f64 / start.elapsed().as_secs_f64()
    };
    let all = time(&|x| {
        let _ = network.predict_with_experts(x).logits.into_data();
    });
    let used = std::cell::Cell::new(0usize);
    let routed = time(&|x| {
        let (logits, u) = network.predict_routed(x).unwrap();
        let _ = logits.into_data();
        used.set(used.get() + u.iter().sum::<usize>());
    });
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0);
    // the untimed first batch counts too
    let per_image = used.get() as f64 / (n + images[0].dims()[0]) as f64;
    println!(
        "{n} test images, batch {}: every expert {all:.1} img/s, early exit {routed:.1} img/s ({:.2}x), {per_image:.3} experts per image, peak RSS {peak:.0} MiB",
        images[0].dims()[0],
        routed / all
    );
    Ok(())
}
