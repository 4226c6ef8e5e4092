//! CSMS-ResNet of MGKT-MFF (Zhao & Zhao, Pattern Recognition; spec 000 §3).
//!
//! Each of four levels computes a shortcut path `X_d` (1x1 projection + BN) and a residual path
//! `X_p` (three 3x3 conv-BN, LeakyReLU 0.1 between them) and fuses them with the Channel and
//! Spatial Multi-Scale module (Eqs. 1-9):
//!
//! ```text
//! X    = X_d + X_p                                   (1)
//! L(X) = B(PW2(relu(B(PW1(X)))))                     (3)  local channel attention
//! G(X) = B(PW2'(relu(B(PW1'(GAP(X))))))              (4-5) global channel attention
//! X_q  = L(X) + G(X)  (broadcast)                    (6)
//! M    = PW3([mean_c(X_q); max_c(X_q)])              (7)  1x1 conv, 2 -> 1 channels
//! W    = sigmoid(M) * M                              (8)  as printed (= SiLU); plain sigmoid optional
//! Z    = W * X_d + (1 - W) * X_p                     (9)
//! ```
//!
//! then LeakyReLU(0.1) and a 2x2 max-pool. Widths 64/160/320/640 and reduction R = 4 follow the
//! authors' code, since the paper gives none. Eq. 8 is not bounded to [0, 1] although the text
//! calls it a soft selection; we implement it as printed (the code agrees) and offer the plain
//! sigmoid as [`FusionWeight::Sigmoid`]. The paper puts `W` on the shortcut `X_d`; the code puts
//! it on the residual path ([`WeightedPath::Residual`]).

use crate::batch_norm::BatchNorm;
use crate::precision::AutocastConv;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::{leaky_relu, relu, sigmoid};
use serde::{Deserialize, Serialize};

use crate::init::{Fan, Init};
use crate::layers::{ConvSpec, batch_norm, conv2d};

/// How the fusion weight is computed from the spatial map `M` (Eq. 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FusionWeight {
    /// `sigmoid(M) * M`, as printed and as the authors' code does.
    #[default]
    SigmoidTimesM,
    /// `sigmoid(M)`, bounded to [0, 1] (the "soft selection" the text describes).
    Sigmoid,
}

/// Which path the weight `W` multiplies (the other gets `1 - W`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightedPath {
    /// `W * X_d + (1 - W) * X_p` (the paper, Eq. 9).
    #[default]
    Shortcut,
    /// `W * X_p + (1 - W) * X_d` (the authors' code).
    Residual,
}

/// Configuration of CSMS-ResNet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsmsResNetConfig {
    pub in_channels: usize,
    pub widths: [usize; 4],
    pub reduction: usize,
    #[serde(default)]
    pub fusion_weight: FusionWeight,
    #[serde(default)]
    pub weighted_path: WeightedPath,
}

impl CsmsResNetConfig {
    pub fn new(in_channels: usize) -> Self {
        Self { in_channels, widths: [64, 160, 320, 640], reduction: 4, fusion_weight: FusionWeight::default(), weighted_path: WeightedPath::default() }
    }

    pub fn feature_dim(&self) -> usize {
        self.widths[3]
    }

    pub fn init(&self, init: &mut Init) -> CsmsResNet {
        let mut in_ch = self.in_channels;
        let levels = self
            .widths
            .iter()
            .map(|&w| {
                let level = CsmsLevel::init(init, in_ch, w, self.reduction, self.fusion_weight, self.weighted_path);
                in_ch = w;
                level
            })
            .collect();
        CsmsResNet { levels }
    }
}

/// A 1x1 convolution with PyTorch's default uniform bias.
fn pointwise(init: &mut Init, c_in: usize, c_out: usize, bias: bool) -> Conv2d {
    let mut conv = conv2d(init, ConvSpec::new(c_in, c_out, 1, 1).bias(bias), Fan::Out);
    if bias {
        let bound = 1.0 / (c_in as f64).sqrt();
        conv.bias = Some(init.uniform([c_out], -bound, bound));
    }
    conv
}

/// Conv1x1 -> BN -> ReLU -> Conv1x1 -> BN (reduction `R`), the local / global channel branch.
#[derive(Module, Debug)]
pub struct ChannelBranch {
    pub pw1: Conv2d,
    pub bn1: BatchNorm,
    pub pw2: Conv2d,
    pub bn2: BatchNorm,
}

impl ChannelBranch {
    fn init(init: &mut Init, channels: usize, reduction: usize) -> Self {
        let inner = (channels / reduction).max(1);
        Self {
            pw1: pointwise(init, channels, inner, true),
            bn1: batch_norm(init, inner),
            pw2: pointwise(init, inner, channels, true),
            bn2: batch_norm(init, channels),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn2.forward(self.pw2.forward_autocast(relu(self.bn1.forward(self.pw1.forward_autocast(x)))))
    }
}

/// The CSMS fusion module (Eqs. 3-9).
#[derive(Module, Debug)]
pub struct Csms {
    pub local: ChannelBranch,
    pub global: ChannelBranch,
    /// PW3: 1x1 convolution from the two spatial maps to one, no bias.
    pub spatial: Conv2d,
    #[module(skip)]
    pub fusion_weight: FusionWeight,
    #[module(skip)]
    pub weighted_path: WeightedPath,
}

impl Csms {
    pub fn init(init: &mut Init, channels: usize, reduction: usize, fusion_weight: FusionWeight, weighted_path: WeightedPath) -> Self {
        Self {
            local: ChannelBranch::init(init, channels, reduction),
            global: ChannelBranch::init(init, channels, reduction),
            spatial: pointwise(init, 2, 1, false),
            fusion_weight,
            weighted_path,
        }
    }

    /// The fusion weight map `W` in `[N, 1, H, W]` (Eqs. 1, 3-8).
    pub fn weight(&self, x_d: Tensor<4>, x_p: Tensor<4>) -> Tensor<4> {
        let x = x_d + x_p;
        let [n, c, _, _] = x.dims();
        let g = x.clone().mean_dim(3).mean_dim(2); // [N, C, 1, 1]
        let x_q = self.local.forward(x) + self.global.forward(g.reshape([n, c, 1, 1]));
        let avg = x_q.clone().mean_dim(1);
        let max = x_q.max_dim(1);
        let m = self.spatial.forward_autocast(Tensor::cat(vec![avg, max], 1));
        match self.fusion_weight {
            FusionWeight::SigmoidTimesM => sigmoid(m.clone()) * m,
            FusionWeight::Sigmoid => sigmoid(m),
        }
    }

    /// `Z = W * X_d + (1 - W) * X_p` (Eq. 9), or with the roles swapped.
    pub fn forward(&self, x_d: Tensor<4>, x_p: Tensor<4>) -> Tensor<4> {
        let w = self.weight(x_d.clone(), x_p.clone());
        let (a, b) = match self.weighted_path {
            WeightedPath::Shortcut => (x_d, x_p),
            WeightedPath::Residual => (x_p, x_d),
        };
        // W * a + (1 - W) * b = b + W * (a - b)
        b.clone() + w * (a - b)
    }
}

/// One level: residual path, shortcut path, CSMS fusion, LeakyReLU, 2x2 max-pool.
#[derive(Module, Debug)]
pub struct CsmsLevel {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub shortcut: Conv2d,
    pub shortcut_bn: BatchNorm,
    pub csms: Csms,
    pub pool: MaxPool2d,
}

impl CsmsLevel {
    fn init(init: &mut Init, c_in: usize, c_out: usize, reduction: usize, fw: FusionWeight, wp: WeightedPath) -> Self {
        Self {
            conv1: conv2d(init, ConvSpec::new(c_in, c_out, 3, 1), Fan::Out),
            bn1: batch_norm(init, c_out),
            conv2: conv2d(init, ConvSpec::new(c_out, c_out, 3, 1), Fan::Out),
            bn2: batch_norm(init, c_out),
            conv3: conv2d(init, ConvSpec::new(c_out, c_out, 3, 1), Fan::Out),
            bn3: batch_norm(init, c_out),
            shortcut: conv2d(init, ConvSpec::new(c_in, c_out, 1, 1), Fan::Out),
            shortcut_bn: batch_norm(init, c_out),
            csms: Csms::init(init, c_out, reduction, fw, wp),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = leaky_relu(self.bn1.forward(self.conv1.forward_autocast(x.clone())), 0.1);
        let p = leaky_relu(self.bn2.forward(self.conv2.forward_autocast(p)), 0.1);
        let x_p = self.bn3.forward(self.conv3.forward_autocast(p));
        let x_d = self.shortcut_bn.forward(self.shortcut.forward_autocast(x));
        self.pool.forward(leaky_relu(self.csms.forward(x_d, x_p), 0.1))
    }
}

/// CSMS-ResNet backbone: returns the `[N, 640, H/16, W/16]` map before pooling.
#[derive(Module, Debug)]
pub struct CsmsResNet {
    pub levels: Vec<CsmsLevel>,
}

impl CsmsResNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.levels.iter().fold(x, |x, level| level.forward(x))
    }
}
