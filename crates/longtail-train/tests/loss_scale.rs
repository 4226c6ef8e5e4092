//! fp16 loss scaling (`longtail_train::loss_scale`, PyTorch GradScaler's rules).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use longtail_models::{Arch, HeadConfig, ModelConfig, Network};
use longtail_train::loss_scale::LossScaler;

/// Every gradient of `network` in `grads`, flattened in parameter order.
fn flat(grads: &GradientsParams, network: &Network) -> Vec<f32> {
    struct Collect<'a>(&'a GradientsParams, Vec<f32>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(p.id) {
                self.1.extend(g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut c = Collect(grads, Vec::new());
    network.visit(&mut c);
    c.1
}

fn setup() -> (Network, Tensor<4>) {
    let d = Device::flex().autodiff();
    d.seed(5);
    let net = ModelConfig::new(Arch::Resnet8, 1, 4, HeadConfig::Linear).init(2, &d).unwrap();
    let x = Tensor::<4>::random([3, 1, 8, 8], Distribution::Normal(0.0, 1.0), &d);
    (net, x)
}

fn grads_of(net: &Network, x: &Tensor<4>, scale: f64) -> GradientsParams {
    let loss = net.forward(x.clone()).logits.powi_scalar(2).mean().mul_scalar(scale);
    GradientsParams::from_grads(loss.backward(), net)
}

/// Scaling by a power of two commutes with every floating-point operation of the backward pass
/// (no overflow here), so the unscaled gradients equal the plain ones bit for bit.
#[test]
fn unscaled_gradients_equal_the_plain_ones() {
    let (net, x) = setup();
    let plain = flat(&grads_of(&net, &x, 1.0), &net);
    let mut scaler = LossScaler::default();
    let unscaled = scaler.unscale(grads_of(&net, &x, scaler.scale), &net).expect("finite gradients");
    assert_eq!(flat(&unscaled, &net), plain);
    assert!(plain.iter().any(|g| *g != 0.0));
    assert_eq!((scaler.scale, scaler.good_steps, scaler.skipped), (65536.0, 1, 0));
}

#[test]
fn an_overflow_skips_the_step_and_halves_the_scale() {
    let (net, x) = setup();
    let mut scaler = LossScaler { scale: 1e39, good_steps: 5, ..LossScaler::default() }; // inf in f32
    assert!(scaler.unscale(grads_of(&net, &x, scaler.scale), &net).is_none());
    assert_eq!((scaler.scale, scaler.good_steps, scaler.skipped), (0.5e39, 0, 1));
}

#[test]
fn the_scale_grows_after_growth_interval_good_steps() {
    let (net, x) = setup();
    let mut scaler = LossScaler { scale: 8.0, growth_interval: 3, ..LossScaler::default() };
    let mut scales = Vec::new();
    for _ in 0..7 {
        assert!(scaler.unscale(grads_of(&net, &x, scaler.scale), &net).is_some());
        scales.push(scaler.scale);
    }
    assert_eq!(scales, vec![8.0, 8.0, 16.0, 16.0, 16.0, 32.0, 32.0]);
}
