//! Times the operations of a ResNet-32 training step at its shapes (batch 128) on the CPU
//! backend: convolution forward and forward+backward per stage, batch norm, ReLU. Used to find
//! where the step's time goes (docs/benchmarks.md).
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::nn::{BatchNormConfig, PaddingConfig2d, conv::Conv2dConfig};
use burn::tensor::{Device, Distribution, Tensor, activation::relu};

fn time<F: FnMut()>(label: &str, reps: usize, mut f: F) -> f64 {
    f();
    let t0 = Instant::now();
    for _ in 0..reps {
        f();
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0 / reps as f64;
    println!("{label:<48} {ms:8.2} ms");
    ms
}

fn main() {
    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    let n = 128;
    let mut total = 0.0;
    for (c, side, count) in [(16usize, 32usize, 11usize), (32, 16, 10), (64, 8, 10)] {
        let conv_p = Conv2dConfig::new([c, c], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(&plain);
        let conv_a = Conv2dConfig::new([c, c], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(&ad);
        let bn = BatchNormConfig::new(c).init(&ad);
        let xp = Tensor::<4>::random([n, c, side, side], Distribution::Normal(0.0, 1.0), &plain);
        let xa = Tensor::<4>::random([n, c, side, side], Distribution::Normal(0.0, 1.0), &ad).require_grad();
        let f = time(&format!("conv {c}x{side}x{side} forward"), 5, || {
            let _ = conv_p.forward(xp.clone()).into_data();
        });
        let fb = time(&format!("conv {c}x{side}x{side} forward+backward"), 5, || {
            let g = conv_a.forward(xa.clone()).sum().backward();
            let _ = xa.grad(&g).unwrap().into_data();
        });
        let b = time(&format!("batch norm {c}x{side}x{side} forward+backward"), 5, || {
            let g = bn.forward(xa.clone()).sum().backward();
            let _ = xa.grad(&g).unwrap().into_data();
        });
        let r = time(&format!("relu+add {c}x{side}x{side} forward+backward"), 5, || {
            let g = relu(xa.clone() + xa.clone()).sum().backward();
            let _ = xa.grad(&g).unwrap().into_data();
        });
        let _ = f;
        let stage = count as f64 * (fb + b) + count as f64 / 2.0 * r;
        println!("  stage estimate ({count} convs + BN, {} relu/add): {stage:.0} ms", count / 2);
        total += stage;
    }
    println!("sum of the estimates: {total:.0} ms per step of {n} ({:.0} img/s)", n as f64 / total * 1000.0);
}
