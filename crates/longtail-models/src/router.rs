//! RIDE's expert-assignment router (RIDE-EA; Wang et al., ICLR 2021, §3.3), as the authors'
//! `ea_resnet_cifar.py` / `EAResNet.py` compute it (frank-xwang/RIDE-LongTailRecognition):
//!
//! - router `i` (one per expert but the last) reads expert `i`'s pooled feature, L2-normalised,
//!   through its own hidden layer `relu(W_i f / ‖f‖ + b_i)` (`Linear(d -> 16)`), and the `k`
//!   largest values of the running mean `s (z_0 + ... + z_i) / (i + 1)` of the experts so far, in
//!   descending order; one output layer shared by every router (`share_expert_help_pred_fc`)
//!   maps `[top-k ; hidden]` to one logit `r_i` (`:194-207`);
//! - at test time expert 0 always runs, and a sample goes on to expert `i + 1` while
//!   `sigmoid(r_i) > 0.5`; once stopped it never resumes, and its logits are the mean of the
//!   experts it used (`:235-250`). Every sample's routers depend on that sample alone, so
//!   computing every router on every sample and cutting at the first "stop" gives the same
//!   output as the code's early exit ([`crate::Network::predict_routed`] skips the experts).
//!
//! The router reads the experts' outputs without training them (the code freezes every other
//! parameter, `:151-156`): its inputs are detached.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::heads::{LinearInit, l2_normalize, linear};
use crate::init::Init;

/// The router's shape (the code's `top_choices_num`, `expert_hidden_fc_output_dim`, `s` and its
/// fixed 0.5 threshold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// How many of the largest mean logits a router reads (`top_choices_num`: 30 in the CIFAR-100
    /// config, 50 on ImageNet-LT and iNaturalist; the constructor's default 5).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Width of each router's hidden layer (16 in the code).
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// `s`, the factor on the experts' logits the routers read: 30 on cosine classifiers
    /// (`use_norm`), 1 on linear ones (the code multiplies the logits by `s` in the model).
    #[serde(default = "default_logit_scale")]
    pub logit_scale: f64,
    /// A sample goes on to the next expert while `sigmoid(r) >` this (0.5 in the code).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_top_k() -> usize {
    30
}
fn default_hidden() -> usize {
    16
}
fn default_logit_scale() -> f64 {
    30.0
}
fn default_threshold() -> f64 {
    0.5
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self { top_k: default_top_k(), hidden: default_hidden(), logit_scale: default_logit_scale(), threshold: default_threshold() }
    }
}

impl RouterConfig {
    /// The router's config with `top_k` values read.
    pub fn with_top_k(top_k: usize) -> Self {
        Self { top_k, ..Self::default() }
    }

    /// Checks the numbers against the model the router is added to.
    pub fn validate(&self, experts: usize, num_classes: usize) -> Result<(), ModelError> {
        let err = |m: String| Err(ModelError::Config(m));
        if experts < 2 {
            return err(format!("an expert router decides whether to run the next expert; the model has {experts} expert(s), it needs at least 2"));
        }
        if self.top_k == 0 || self.top_k > num_classes {
            return err(format!("router.top_k must be in 1..={num_classes} (the number of classes), got {}", self.top_k));
        }
        if self.hidden == 0 {
            return err("router.hidden must be at least 1".into());
        }
        if !(self.logit_scale.is_finite() && self.logit_scale > 0.0) {
            return err(format!("router.logit_scale must be > 0, got {}", self.logit_scale));
        }
        if !(0.0..1.0).contains(&self.threshold) {
            return err(format!("router.threshold must be in [0, 1), got {}", self.threshold));
        }
        Ok(())
    }

    /// Fresh routers for `experts` experts of pooled width `d_expert`: Kaiming-normal weights
    /// (the code's `_weights_init` covers every `nn.Linear`), PyTorch's default biases.
    pub fn init(&self, init: &mut Init, experts: usize, d_expert: usize, num_classes: usize) -> Result<ExpertRouter, ModelError> {
        self.validate(experts, num_classes)?;
        let hidden = (0..experts - 1).map(|_| linear(init, d_expert, self.hidden, LinearInit::KaimingNormal)).collect();
        let output = linear(init, self.hidden + self.top_k, 1, LinearInit::KaimingNormal);
        Ok(ExpertRouter { hidden, output, top_k: self.top_k, logit_scale: self.logit_scale, threshold: self.threshold })
    }
}

/// The routers of a multi-expert model: `hidden[i]` is router `i`'s hidden layer, `output` the
/// shared output layer (`expert_help_pred_hidden_fcs`, `expert_help_pred_fc`).
#[derive(Module, Debug)]
pub struct ExpertRouter {
    pub hidden: Vec<Linear>,
    pub output: Linear,
    pub top_k: usize,
    pub logit_scale: f64,
    pub threshold: f64,
}

impl ExpertRouter {
    /// The config that rebuilds this router.
    pub fn config(&self) -> RouterConfig {
        RouterConfig { top_k: self.top_k, hidden: self.hidden[0].weight.dims()[1], logit_scale: self.logit_scale, threshold: self.threshold }
    }

    /// Router `i`'s logit `[N, 1]` from expert `i`'s pooled feature and the experts' running
    /// mean logits `(z_0 + ... + z_i) / (i + 1)` (unscaled: the router applies `s`).
    pub fn decide(&self, i: usize, feature: Tensor<2>, mean_logits: Tensor<2>) -> Tensor<2> {
        let hidden = relu(self.hidden[i].forward(l2_normalize(feature.detach(), 1)));
        let top = mean_logits.detach().mul_scalar(self.logit_scale).topk(self.top_k, 1);
        self.output.forward(Tensor::cat(vec![top, hidden], 1))
    }

    /// Every router's logit on every sample, `[N, E - 1]`, from each expert's pooled feature and
    /// logits (the code's training forward, `:213-229`).
    pub fn logits(&self, features: &[Tensor<2>], expert_logits: &[Tensor<2>]) -> Tensor<2> {
        let mut sum = expert_logits[0].clone();
        let mut out = Vec::with_capacity(self.hidden.len());
        for i in 0..self.hidden.len() {
            if i > 0 {
                sum = sum + expert_logits[i].clone();
            }
            out.push(self.decide(i, features[i].clone(), sum.clone().div_scalar((i + 1) as f64)));
        }
        Tensor::cat(out, 1)
    }

    /// Whether each router sends its sample on, `[N, E - 1]` as 0 / 1.
    pub fn goes_on(&self, router_logits: Tensor<2>) -> Tensor<2> {
        sigmoid(router_logits).greater_elem(self.threshold).float()
    }

    /// The routed prediction from every expert's logits and every router's logit: the mean of
    /// the experts each sample uses, and how many it uses (`[N]`, 1 to E).
    pub fn route(&self, expert_logits: &[Tensor<2>], router_logits: Tensor<2>) -> (Tensor<2>, Tensor<1, Int>) {
        let go = self.goes_on(router_logits);
        let n = go.dims()[0];
        // expert k runs while every router before it said "go on"
        let mut alive = Tensor::<2>::ones([n, 1], &go.device());
        let mut sum = expert_logits[0].clone();
        let mut used = alive.clone();
        for (k, z) in expert_logits.iter().enumerate().skip(1) {
            alive = alive * go.clone().narrow(1, k - 1, 1);
            sum = sum + z.clone() * alive.clone();
            used = used + alive.clone();
        }
        (sum / used.clone(), used.reshape([n]).int())
    }
}
