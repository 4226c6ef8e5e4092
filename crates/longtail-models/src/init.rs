//! Seeded parameter initialisers.
//!
//! Weights are drawn on the host from a ChaCha stream and then uploaded, so the same seed gives
//! bit-identical initial weights on every backend (CPU, CUDA, wgpu). The formulas follow
//! PyTorch's `torch.nn.init`, which the papers' reference code uses.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Which fan a Kaiming initialiser scales by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fan {
    /// `fan_in = in_channels * k * k` (PyTorch's default, used by the LDAM-DRW ResNet-32).
    In,
    /// `fan_out = out_channels * k * k` (torchvision ResNets, `mode='fan_out'`).
    Out,
}

/// A deterministic source of initial weights.
pub struct Init {
    rng: ChaCha8Rng,
    device: Device,
}

impl Init {
    /// Creates an initialiser whose draws depend only on `seed`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(seed), device: device.clone() }
    }

    /// The device the parameters are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn upload<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), &self.device))
    }

    /// Kaiming (He) normal: `N(0, gain^2 / fan)` with `gain = sqrt(2)` (ReLU).
    pub fn kaiming_normal<const D: usize>(&mut self, shape: [usize; D], fan: usize) -> Param<Tensor<D>> {
        let std = (2.0 / fan as f64).sqrt();
        self.normal(shape, 0.0, std)
    }

    /// Normal `N(mean, std^2)`.
    pub fn normal<const D: usize>(&mut self, shape: [usize; D], mean: f64, std: f64) -> Param<Tensor<D>> {
        let n = shape.iter().product();
        let values = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                (mean + std * z) as f32
            })
            .collect();
        self.upload(values, shape)
    }

    /// Uniform `U(low, high)`.
    pub fn uniform<const D: usize>(&mut self, shape: [usize; D], low: f64, high: f64) -> Param<Tensor<D>> {
        let n = shape.iter().product();
        let values = (0..n).map(|_| self.rng.random_range(low..high) as f32).collect();
        self.upload(values, shape)
    }

    /// A constant tensor.
    pub fn constant<const D: usize>(&mut self, shape: [usize; D], value: f32) -> Param<Tensor<D>> {
        let n = shape.iter().product();
        self.upload(vec![value; n], shape)
    }

    /// PyTorch's default `nn.Linear` initialisation: weight and bias from
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. Returns `(weight [d_in, d_out], bias [d_out])`.
    pub fn linear_default(&mut self, d_in: usize, d_out: usize) -> (Param<Tensor<2>>, Param<Tensor<1>>) {
        let bound = 1.0 / (d_in as f64).sqrt();
        let weight = self.uniform([d_in, d_out], -bound, bound);
        let bias = self.uniform([d_out], -bound, bound);
        (weight, bias)
    }

    /// The cosine classifier's initialisation (`NormedLinear` of the LDAM/KPS/GCL code):
    /// `U(-1, 1)`, then every class column rescaled to unit L2 norm.
    pub fn unit_columns(&mut self, d_in: usize, d_out: usize) -> Param<Tensor<2>> {
        let mut values: Vec<f32> = (0..d_in * d_out).map(|_| self.rng.random_range(-1.0..1.0)).collect();
        for c in 0..d_out {
            let norm = (0..d_in).map(|r| values[r * d_out + c].powi(2)).sum::<f32>().sqrt().max(1e-12);
            for r in 0..d_in {
                values[r * d_out + c] /= norm;
            }
        }
        self.upload(values, [d_in, d_out])
    }
}
