//! Multiply-accumulates of one image's forward pass through the parts of a multi-expert model
//! (convolutions and classifiers; batch norms, activations and pooling left out, as FLOP counters
//! such as `ptflops` / `thop` count them): the computation side of RIDE-EA's
//! computation-versus-accuracy numbers, where a sample pays for the experts it uses.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use serde::{Deserialize, Serialize};

use crate::experts::MultiExpert;
use crate::heads::Head;
use crate::resnet::Bottleneck;
use crate::resnet_cifar::BasicBlock;
use crate::router::ExpertRouter;

/// A map's height and width.
pub type Size = (usize, usize);

/// The multiply-accumulates of each part of a multi-expert model, per image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpertMacs {
    /// The shared stem and early stages.
    pub trunk: u64,
    /// Each expert's own stages and classifier.
    pub experts: Vec<u64>,
    /// Each router (one per expert but the last; empty without a router).
    pub routers: Vec<u64>,
}

impl ExpertMacs {
    /// One image that uses its first `used` experts: the trunk, those experts, and the routers
    /// that were asked (router `i` runs after expert `i`).
    pub fn using(&self, used: usize) -> u64 {
        let used = used.clamp(1, self.experts.len());
        self.trunk + self.experts[..used].iter().sum::<u64>() + self.routers.iter().take(used).sum::<u64>()
    }

    /// Every expert on every image, without routers (the plain multi-expert model).
    pub fn all_experts(&self) -> u64 {
        self.trunk + self.experts.iter().sum::<u64>()
    }
}

fn padding(p: &PaddingConfig2d, kernel: [usize; 2]) -> (usize, usize) {
    match p {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Same => (kernel[0] - 1, kernel[1] - 1),
        PaddingConfig2d::Explicit(top, left, bottom, right) => (top + bottom, left + right),
    }
}

fn out_size(input: Size, kernel: [usize; 2], stride: [usize; 2], dilation: [usize; 2], pad: (usize, usize)) -> Size {
    let one = |n: usize, k: usize, s: usize, d: usize, p: usize| (n + p).saturating_sub(d * (k - 1) + 1) / s + 1;
    (one(input.0, kernel[0], stride[0], dilation[0], pad.0), one(input.1, kernel[1], stride[1], dilation[1], pad.1))
}

/// A convolution: its weight's size times the output's positions.
pub fn conv(c: &Conv2d, input: Size) -> (u64, Size) {
    let out = out_size(input, c.kernel_size, c.stride, c.dilation, padding(&c.padding, c.kernel_size));
    (c.weight.shape().num_elements() as u64 * (out.0 * out.1) as u64, out)
}

fn max_pool(p: &MaxPool2d, input: Size) -> Size {
    out_size(input, p.kernel_size, p.stride, p.dilation, padding(&p.padding, p.kernel_size))
}

fn basic(blocks: &[BasicBlock], mut size: Size) -> (u64, Size) {
    let mut total = 0;
    for b in blocks {
        let (m1, s1) = conv(&b.conv1, size);
        let (m2, s2) = conv(&b.conv2, s1);
        (total, size) = (total + m1 + m2, s2);
    }
    (total, size)
}

fn bottleneck(blocks: &[Bottleneck], mut size: Size) -> (u64, Size) {
    let mut total = 0;
    for b in blocks {
        let (m1, s1) = conv(&b.conv1, size);
        let (m2, s2) = conv(&b.conv2, s1);
        let (m3, s3) = conv(&b.conv3, s2);
        let down = b.downsample.as_ref().map_or(0, |d| conv(&d.conv, size).0);
        (total, size) = (total + m1 + m2 + m3 + down, s3);
    }
    (total, size)
}

/// A classifier on a pooled feature: its weight's size.
fn head(h: &Head) -> u64 {
    h.classifier_dims().map_or(0, |(d, c)| (d * c) as u64)
}

fn router(r: &ExpertRouter, i: usize) -> u64 {
    (r.hidden[i].weight.shape().num_elements() + r.output.weight.shape().num_elements()) as u64
}

/// The parts' multiply-accumulates for an `input`-sized image; `None` for ResLT's branches (one
/// block computed for all branches at once: no branch can be skipped).
pub fn multi_expert(b: &MultiExpert, heads: &[&Head], routers: Option<&ExpertRouter>, input: Size) -> Option<ExpertMacs> {
    let (trunk, experts): (u64, Vec<u64>) = match b {
        MultiExpert::Cifar(m) => {
            let (stem, s) = conv(&m.trunk.conv1, input);
            let (l1, s) = basic(&m.trunk.layer1, s);
            let experts = m.experts.iter().map(|e| {
                let (a, s2) = basic(&e.layer2, s);
                a + basic(&e.layer3, s2).0
            });
            (stem + l1, experts.collect())
        }
        MultiExpert::ResNet(m) => {
            let (stem, s) = conv(&m.trunk.conv1, input);
            let s = max_pool(&m.trunk.maxpool, s);
            let (l1, s) = bottleneck(&m.trunk.layer1, s);
            let (l2, s) = bottleneck(&m.trunk.layer2, s);
            let experts = m.experts.iter().map(|e| {
                let (a, s3) = bottleneck(&e.layer3, s);
                a + bottleneck(&e.layer4, s3).0
            });
            (stem + l1 + l2, experts.collect())
        }
        MultiExpert::BatchNorm(_) | MultiExpert::Conv(_) => return None,
    };
    let experts = experts.iter().enumerate().map(|(k, m)| m + head(heads[k.min(heads.len() - 1)])).collect();
    let routers = routers.map_or_else(Vec::new, |r| (0..r.hidden.len()).map(|i| router(r, i)).collect());
    Some(ExpertMacs { trunk, experts, routers })
}
