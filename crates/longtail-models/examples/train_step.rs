//! Measures ResNet-32 training-step throughput (batch 128, 32x32) on the CPU backend.
use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use longtail_models::init::Init;
use longtail_models::layers::global_avg_pool;
use longtail_models::resnet_cifar::{ResNetCifar, ResNetCifarConfig};

#[derive(Module, Debug)]
struct Net {
    backbone: ResNetCifar,
    fc: Linear,
}

fn main() {
    let device = Device::flex().autodiff();
    let mut init = Init::new(0, &device);
    let backbone = ResNetCifarConfig::resnet32(3).init(&mut init);
    let fc = LinearConfig::new(64, 10).init(&device);
    let mut model = Net { backbone, fc };
    println!("params {}", model.num_params());
    let mut optim =
        SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_dampening(0.0))).with_weight_decay(Some(WeightDecayConfig::new(2e-4))).init();
    let batch = 128;
    let steps: usize = std::env::var("STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let x = Tensor::<4>::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new((0..batch as i64).map(|i| i % 10).collect::<Vec<_>>(), [batch]), &device);
    let mut t0 = Instant::now();
    for step in 0..steps {
        if step == 1 {
            t0 = Instant::now();
        }
        let map = model.backbone.forward(x.clone());
        let logits = model.fc.forward(global_avg_pool(map));
        let loss = burn::tensor::loss::cross_entropy_with_logits(logits, y.clone().one_hot(10).float());
        let grads = loss.backward();
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(0.1, model, grads);
    }
    let _ = model.fc.weight.val().into_data();
    let dt = t0.elapsed().as_secs_f64();
    println!("train: {:.1} img/s", ((steps - 1) * batch) as f64 / dt);
    let valid = model.valid();
    let t0 = Instant::now();
    for _ in 0..steps {
        let map = valid.backbone.forward(x.clone().detach());
        let _ = valid.fc.forward(global_avg_pool(map)).into_data();
    }
    println!("infer: {:.1} img/s", (steps * batch) as f64 / t0.elapsed().as_secs_f64());
}
