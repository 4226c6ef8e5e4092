//! Runtime losses: a [`LossSpec`] bound to the training counts and a device.

use burn::tensor::activation::{log_softmax, softplus};
use burn::tensor::{Device, Int, Tensor};

use crate::class_stats::{ClassWeighting, cdt_factors, hierarchical_factors, kps_constants, label_aware_smoothing, ldam_margins, normalized_log_gap};
use crate::functional::{class_weighted, constant, cross_entropy, nll, one_hot, per_sample};
use crate::spec::{BranchSchedule, Curriculum, FocalForm, LossSpec};

/// Errors of loss construction and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error("loss `{loss}`: {msg}")]
    Invalid { loss: &'static str, msg: String },
    #[error("loss `{loss}` needs {what}, which the model does not provide")]
    MissingInput { loss: &'static str, what: &'static str },
}

/// The model outputs and labels of one batch.
#[derive(Debug, Clone)]
pub struct LossInputs {
    pub logits: Tensor<2>,
    /// The second head (HRDC's re-weighting branch, MGKT's coarse head).
    pub aux: Option<Tensor<2>>,
    /// Pooled features (FBL).
    pub features: Option<Tensor<2>>,
    pub targets: Tensor<1, Int>,
    pub coarse_targets: Option<Tensor<1, Int>>,
    /// Each expert's logits on a multi-expert model (RIDE); empty otherwise.
    pub experts: Vec<Tensor<2>>,
}

impl LossInputs {
    /// Logits and labels alone.
    pub fn new(logits: Tensor<2>, targets: Tensor<1, Int>) -> Self {
        Self { logits, aux: None, features: None, targets, coarse_targets: None, experts: Vec::new() }
    }
}

/// Where training is: the 0-based epoch of the stage, the stage's length, and the seed of this
/// step's random draws (GCL's clouds), so a step is reproducible whatever else runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossState {
    pub epoch: usize,
    pub total_epochs: usize,
    pub seed: u64,
}

impl LossState {
    pub fn new(epoch: usize, total_epochs: usize) -> Self {
        Self { epoch, total_epochs, seed: 0 }
    }
}

/// `N(0, sigma^2)` noise of `shape` drawn from a seeded host stream.
fn gaussian(shape: [usize; 2], sigma: f64, seed: u64, device: &Device) -> Tensor<2> {
    use rand::SeedableRng;
    use rand_distr::Distribution as _;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let normal = rand_distr::Normal::new(0.0, sigma.max(0.0)).expect("sigma >= 0");
    let values: Vec<f32> = (0..shape[0] * shape[1]).map(|_| normal.sample(&mut rng) as f32).collect();
    Tensor::from_data(burn::tensor::TensorData::new(values, shape), device)
}

#[derive(Debug, Clone)]
enum Kind {
    Ce,
    Weighted { weights: Tensor<1> },
    Focal { gamma: f64, weights: Option<Tensor<1>>, form: FocalForm, detach: bool },
    Smoothing { epsilon: f64 },
    Ldam { margins: Tensor<1>, scale: f64 },
    Offset { offsets: Tensor<1> },
    Lade { offsets: Tensor<1>, prior: Tensor<1>, bias: Tensor<1>, alpha: f64, lambda: f64 },
    Cdt { inv: Tensor<1> },
    Las { epsilon: Tensor<1> },
    Kps { r: Tensor<1>, m: Tensor<1>, s: Tensor<1>, base_scale: f64, ga_epoch: Option<usize> },
    Fbl { lambda: Tensor<1>, strength: f64, curriculum: Curriculum, end_fraction: f64 },
    Gcl { delta: Tensor<1>, scale: f64, noise_mul: f64, sigma: f64, margin: f64, focal_gamma: f64 },
    Hrdc { inv: Tensor<1>, schedule: BranchSchedule, reweight: Option<Box<Loss>> },
    Mg { coarse_epochs: usize, fine_epochs: usize, magnitude_scaling: bool, drw: Option<(usize, Tensor<1>, Tensor<1>)> },
    Ride(Box<Ride>),
    ResLt { beta: f64, medium: Tensor<1>, tail: Option<Tensor<1>> },
    RideRouter { pos_weight: f64 },
}

/// RIDE's constants ([`LossSpec::Ride`]).
#[derive(Debug, Clone)]
struct Ride {
    margins: Tensor<1>,
    scale: f64,
    diversity: f64,
    temperature: f64,
    base_factor: f64,
    /// From this 0-based epoch: the class weights, the per-class temperature `[1, C]` and its mean.
    reweight: Option<(usize, Tensor<1>, Tensor<2>, f64)>,
}

/// A loss bound to class counts and a device.
#[derive(Debug, Clone)]
pub struct Loss {
    spec: LossSpec,
    kind: Kind,
    num_classes: usize,
}

fn check(ok: bool, loss: &'static str, msg: impl Into<String>) -> Result<(), LossError> {
    if ok { Ok(()) } else { Err(LossError::Invalid { loss, msg: msg.into() }) }
}

impl Loss {
    /// Binds `spec` to the training counts (`coarse_counts` for hierarchical losses).
    pub fn new(spec: &LossSpec, counts: &[usize], coarse_counts: Option<&[usize]>, device: &Device) -> Result<Self, LossError> {
        let name = spec.name();
        check(counts.len() >= 2, name, "needs at least two classes")?;
        check(counts.iter().all(|&n| n > 0), name, "every class needs at least one training image")?;
        let c = |v: &[f64]| constant(v, device);
        let kind = match spec {
            LossSpec::Ce => Kind::Ce,
            LossSpec::WeightedCe { weighting } => Kind::Weighted { weights: c(&weights(weighting, counts, name)?) },
            LossSpec::Focal { gamma, weighting, form, detach } => {
                check(*gamma >= 0.0, name, format!("gamma must be >= 0, got {gamma}"))?;
                let weights = weighting.as_ref().map(|w| weights(w, counts, name)).transpose()?.map(|w| c(&w));
                Kind::Focal { gamma: *gamma, weights, form: *form, detach: *detach }
            }
            LossSpec::LabelSmoothing { epsilon } => {
                check((0.0..1.0).contains(epsilon), name, format!("epsilon must be in [0, 1), got {epsilon}"))?;
                Kind::Smoothing { epsilon: *epsilon }
            }
            LossSpec::Ldam { max_margin, scale } => {
                check(*max_margin >= 0.0 && *scale > 0.0, name, "max_margin must be >= 0 and scale > 0")?;
                Kind::Ldam { margins: c(&ldam_margins(counts, *max_margin)), scale: *scale }
            }
            LossSpec::BalancedSoftmax => Kind::Offset { offsets: c(&longtail_core::class_stats::log_counts(counts)) },
            LossSpec::Lade { alpha, lambda } => {
                check(alpha.is_finite() && *alpha >= 0.0 && lambda.is_finite() && *lambda >= 0.0, name, "alpha and lambda must be finite and >= 0")?;
                let total: f64 = counts.iter().sum::<usize>() as f64;
                let prior: Vec<f64> = counts.iter().map(|&n| n as f64 / total).collect();
                let uniform = (1.0 / counts.len() as f64 + 1e-9).ln();
                Kind::Lade {
                    offsets: c(&prior.iter().map(|p| (p + 1e-9).ln()).collect::<Vec<_>>()),
                    bias: c(&prior.iter().map(|p| uniform - (p + 1e-9).ln()).collect::<Vec<_>>()),
                    prior: c(&prior),
                    alpha: *alpha,
                    lambda: *lambda,
                }
            }
            LossSpec::LogitAdjusted { tau } => Kind::Offset { offsets: c(&longtail_core::class_stats::log_prior(counts, *tau)) },
            LossSpec::Cdt { gamma } => Kind::Cdt { inv: c(&cdt_factors(counts, *gamma).iter().map(|a| 1.0 / a).collect::<Vec<_>>()) },
            LossSpec::LabelAwareSmoothing { head, tail, shape } => {
                check((0.0..1.0).contains(head) && (0.0..1.0).contains(tail), name, "head and tail smoothing must be in [0, 1)")?;
                Kind::Las { epsilon: c(&label_aware_smoothing(counts, *head, *tail, *shape)) }
            }
            LossSpec::Kps { n_base, max_margin, base_scale, ga_epoch, scale_cap, margins } => {
                check(*n_base > 1.0 && *max_margin >= 0.0 && *base_scale > 0.0, name, "needs n_base > 1, max_margin >= 0, base_scale > 0")?;
                if ga_epoch.is_some() {
                    check(*scale_cap >= *base_scale, name, format!("scale_cap ({scale_cap}) must be at least base_scale ({base_scale})"))?;
                }
                let (r, m, mut s) = kps_constants(counts, *n_base, *max_margin, *base_scale, *margins);
                // the code's `clamp(flip(s_list) * s, s, 50)`
                s.iter_mut().for_each(|v| *v = v.max(*base_scale).min(*scale_cap));
                Kind::Kps { r: c(&r), m: c(&m), s: c(&s), base_scale: *base_scale, ga_epoch: *ga_epoch }
            }
            LossSpec::Fbl { strength, curriculum, end_fraction } => {
                check(*strength >= 0.0 && *end_fraction > 0.0 && *end_fraction <= 1.0, name, "needs strength >= 0 and end_fraction in (0, 1]")?;
                Kind::Fbl { lambda: c(&normalized_log_gap(counts)), strength: *strength, curriculum: *curriculum, end_fraction: *end_fraction }
            }
            LossSpec::Gcl { scale, noise_mul, sigma, margin, focal_gamma } => {
                check(
                    *scale > 0.0 && *noise_mul >= 0.0 && *sigma >= 0.0 && *focal_gamma >= 0.0,
                    name,
                    "needs scale > 0 and non-negative noise_mul, sigma, focal_gamma",
                )?;
                Kind::Gcl {
                    delta: c(&normalized_log_gap(counts)),
                    scale: *scale,
                    noise_mul: *noise_mul,
                    sigma: *sigma,
                    margin: *margin,
                    focal_gamma: *focal_gamma,
                }
            }
            LossSpec::Hrdc { gamma, levels, schedule, reweight_loss } => {
                check(*gamma >= 0.0, name, format!("gamma must be >= 0, got {gamma}"))?;
                if let BranchSchedule::Segmented { switch_fraction } = schedule {
                    check((0.0..=1.0).contains(switch_fraction), name, "switch_fraction must be in [0, 1]")?;
                }
                let reweight = reweight_loss.as_ref().map(|s| Loss::new(s, counts, coarse_counts, device).map(Box::new)).transpose()?;
                let inv: Vec<f64> = hierarchical_factors(counts, *gamma, levels).iter().map(|a| 1.0 / a).collect();
                Kind::Hrdc { inv: c(&inv), schedule: *schedule, reweight }
            }
            LossSpec::Ride { max_margin, scale, diversity, temperature, reweight_epoch, reweight_factor, base_factor } => {
                check(*max_margin >= 0.0 && *scale > 0.0 && *temperature > 0.0, name, "needs max_margin >= 0, scale > 0 and temperature > 0")?;
                check((0.0..=1.0).contains(reweight_factor), name, format!("reweight_factor must be in [0, 1], got {reweight_factor}"))?;
                let reweight = reweight_epoch.map(|e| {
                    let t = longtail_core::class_stats::ride_temperature(counts, *temperature, *reweight_factor);
                    let mean = t.iter().sum::<f64>() / t.len() as f64;
                    (e, c(&ClassWeighting::EFFECTIVE_NUMBER.weights(counts)), c(&t).unsqueeze_dim(0), mean)
                });
                Kind::Ride(Box::new(Ride {
                    margins: c(&ldam_margins(counts, *max_margin)),
                    scale: *scale,
                    diversity: *diversity,
                    temperature: *temperature,
                    base_factor: *base_factor,
                    reweight,
                }))
            }
            LossSpec::ResLt { beta, medium_from, tail_from } => {
                check((0.0..=1.0).contains(beta), name, format!("beta must be in [0, 1], got {beta}"))?;
                let last = tail_from.unwrap_or(*medium_from);
                check(
                    medium_from <= &last && last < counts.len(),
                    name,
                    format!("needs medium_from <= tail_from < the {} classes (a branch with no class), got {medium_from} and {tail_from:?}", counts.len()),
                )?;
                let rank = longtail_core::class_stats::frequency_rank(counts);
                let from = |first: usize| c(&rank.iter().map(|&r| f64::from(u8::from(r >= first))).collect::<Vec<_>>());
                Kind::ResLt { beta: *beta, medium: from(*medium_from), tail: tail_from.map(from) }
            }
            LossSpec::RideRouter { pos_weight } => {
                check(pos_weight.is_finite() && *pos_weight > 0.0, name, format!("pos_weight must be > 0, got {pos_weight}"))?;
                Kind::RideRouter { pos_weight: *pos_weight }
            }
            LossSpec::MultiGranularity { coarse_epochs, fine_epochs, magnitude_scaling, drw_epoch } => {
                let coarse = coarse_counts.ok_or(LossError::MissingInput { loss: name, what: "a class hierarchy (coarse labels)" })?;
                check(coarse.iter().all(|&n| n > 0), name, "every coarse class needs training images")?;
                let drw = drw_epoch.map(|e| {
                    let w = ClassWeighting::InverseFrequency;
                    (e, c(&w.weights(counts)), c(&w.weights(coarse)))
                });
                Kind::Mg { coarse_epochs: *coarse_epochs, fine_epochs: *fine_epochs, magnitude_scaling: *magnitude_scaling, drw }
            }
        };
        Ok(Self { spec: spec.clone(), kind, num_classes: counts.len() })
    }

    pub fn spec(&self) -> &LossSpec {
        &self.spec
    }

    /// Per-sample losses `[N]`; their mean is the batch loss.
    pub fn per_sample(&self, inputs: &LossInputs, state: LossState) -> Result<Tensor<1>, LossError> {
        let name = self.spec.name();
        let y = || inputs.targets.clone();
        let z = || inputs.logits.clone();
        let k = self.num_classes;
        Ok(match &self.kind {
            Kind::Ce => cross_entropy(z(), y()),
            Kind::Weighted { weights } => class_weighted(cross_entropy(z(), y()), weights, y()),
            Kind::Focal { gamma, weights, form: FocalForm::Softmax, detach } => {
                // LDAM-DRW / thesis authors: p from the (weighted) per-sample CE
                let ce = cross_entropy(z(), y());
                let ce = match weights {
                    Some(w) => ce * per_sample(w, y()),
                    None => ce,
                };
                let modulator = ce.clone().neg().exp().neg().add_scalar(1.0).clamp_min(0.0).powf_scalar(*gamma);
                (if *detach { modulator.detach() } else { modulator }) * ce
            }
            Kind::Focal { gamma, weights, form: FocalForm::Sigmoid, detach } => {
                // Cui et al.: BCE(z, onehot) with the focal modulator, summed over classes
                let t = one_hot(y(), k);
                let (pos, neg) = (softplus(z(), 1.0), softplus(z().neg(), 1.0));
                let bce = pos.clone() - t.clone() * z();
                let modulator = ((t * z() + neg).mul_scalar(-*gamma)).exp();
                let modulator = if *detach { modulator.detach() } else { modulator };
                let l = (modulator * bce).sum_dim(1).reshape([q_rows(&inputs.logits)]);
                match weights {
                    Some(w) => l * per_sample(w, y()),
                    None => l,
                }
            }
            Kind::Smoothing { epsilon } => {
                let q = one_hot(y(), k).mul_scalar(1.0 - epsilon).add_scalar(epsilon / k as f64);
                (log_softmax(z(), 1) * q).sum_dim(1).reshape([q_rows(&inputs.logits)]).neg()
            }
            Kind::Las { epsilon } => {
                let logp = log_softmax(z(), 1);
                let eps = per_sample(epsilon, y());
                let smooth = logp.clone().mean_dim(1).reshape([q_rows(&inputs.logits)]).neg();
                nll(logp, y()) * eps.clone().neg().add_scalar(1.0) + smooth * eps
            }
            Kind::Ldam { margins, scale } => {
                let m = per_sample(margins, y()).unsqueeze_dim(1);
                cross_entropy((z() - one_hot(y(), k) * m).mul_scalar(*scale), y())
            }
            Kind::Offset { offsets } => cross_entropy(z() + offsets.clone().unsqueeze_dim(0), y()),
            // PriorCE (LADE-CE): the regulariser is the batch term
            Kind::Lade { offsets, .. } => cross_entropy(z() + offsets.clone().unsqueeze_dim(0), y()),
            Kind::Cdt { inv } => cross_entropy(z() * inv.clone().unsqueeze_dim(0), y()),
            Kind::Kps { r, m, s, base_scale, ga_epoch } => {
                let margin = per_sample(m, y()).unsqueeze_dim(1);
                let adjusted = z() * r.clone().unsqueeze_dim(0) - one_hot(y(), k) * margin;
                let ga = ga_epoch.is_some_and(|e| state.epoch >= e);
                let scaled = if ga { adjusted * per_sample(s, y()).unsqueeze_dim(1) } else { adjusted.mul_scalar(*base_scale) };
                cross_entropy(scaled, y())
            }
            Kind::Fbl { lambda, strength, curriculum, end_fraction } => {
                let f = inputs.features.clone().ok_or(LossError::MissingInput { loss: name, what: "pooled features" })?;
                let x = state.epoch as f64 / (end_fraction * state.total_epochs as f64);
                let alpha = strength * curriculum.value(x);
                let norm = l2_norm_rows(f).add_scalar(1e-12);
                let shift = lambda.clone().unsqueeze_dim(0).mul_scalar(alpha) / norm;
                cross_entropy(z() - shift, y())
            }
            Kind::Gcl { delta, scale, noise_mul, sigma, margin, focal_gamma } => {
                let logits = z();
                let noise = gaussian(logits.dims(), *sigma, state.seed, &logits.device()).clamp(-1.0, 1.0).abs();
                let mut clouded = logits - noise * delta.clone().unsqueeze_dim(0).mul_scalar(*noise_mul);
                if *margin != 0.0 {
                    clouded = clouded - one_hot(y(), k).mul_scalar(*margin);
                }
                let ce = cross_entropy(clouded.mul_scalar(*scale), y());
                if *focal_gamma > 0.0 {
                    let w = ce.clone().neg().exp().neg().add_scalar(1.0).clamp_min(0.0).powf_scalar(*focal_gamma).detach();
                    w * ce
                } else {
                    ce
                }
            }
            Kind::Hrdc { inv, schedule, reweight } => {
                let aux = inputs.aux.clone().ok_or(LossError::MissingInput { loss: name, what: "a dual (plain + re-weighting) head" })?;
                let alpha = schedule.alpha(state.epoch, state.total_epochs);
                let l_c = cross_entropy(z(), y());
                let l_r = match reweight {
                    None => cross_entropy(aux * inv.clone().unsqueeze_dim(0), y()),
                    Some(loss) => loss.per_sample(&LossInputs { logits: aux, aux: None, ..inputs.clone() }, state)?,
                };
                l_c.mul_scalar(alpha) + l_r.mul_scalar(1.0 - alpha)
            }
            Kind::Ride(r) => r.per_sample(inputs, state, k)?,
            Kind::ResLt { beta, medium, tail } => reslt(inputs, *beta, medium, tail)?,
            Kind::RideRouter { pos_weight } => ride_router(inputs, *pos_weight)?,
            Kind::Mg { coarse_epochs, fine_epochs, magnitude_scaling, drw } => {
                let lambda = mg_lambda(state.epoch, state.total_epochs, *coarse_epochs, *fine_epochs);
                let drw_on = drw.as_ref().filter(|(e, _, _)| state.epoch >= *e);
                let fine = || {
                    let l = cross_entropy(z(), y());
                    match drw_on {
                        Some((_, w, _)) => class_weighted(l, w, y()),
                        None => l,
                    }
                };
                let coarse = || -> Result<Tensor<1>, LossError> {
                    let aux = inputs.aux.clone().ok_or(LossError::MissingInput { loss: name, what: "a coarse + fine head" })?;
                    let yc = inputs.coarse_targets.clone().ok_or(LossError::MissingInput { loss: name, what: "coarse labels" })?;
                    let l = cross_entropy(aux, yc.clone());
                    Ok(match drw_on {
                        Some((_, _, w)) => class_weighted(l, w, yc),
                        None => l,
                    })
                };
                if lambda >= 1.0 {
                    coarse()?
                } else if lambda <= 0.0 {
                    fine()
                } else {
                    let (lc, lf) = (coarse()?, fine());
                    let lf = if *magnitude_scaling { lf.clone() * magnitude_factor(&lc, &lf).expand(lf.dims()) } else { lf };
                    lc.mul_scalar(lambda) + lf.mul_scalar(1.0 - lambda)
                }
            }
        })
    }

    /// The batch loss (mean of [`Loss::per_sample`]).
    pub fn forward(&self, inputs: &LossInputs, state: LossState) -> Result<Tensor<1>, LossError> {
        let mean = self.per_sample(inputs, state)?.mean();
        Ok(match self.batch_term(inputs) {
            Some(term) => mean + term,
            None => mean,
        })
    }

    /// The part of the batch loss that is not a mean of per-sample terms (LADE's regulariser,
    /// already weighted), added to the mean of [`Loss::per_sample`]; none for other losses.
    pub fn batch_term(&self, inputs: &LossInputs) -> Option<Tensor<1>> {
        match &self.kind {
            Kind::Lade { prior, bias, alpha, lambda, .. } if *alpha > 0.0 => {
                Some(lader(inputs.logits.clone(), inputs.targets.clone(), prior, bias, *lambda, self.num_classes).mul_scalar(*alpha))
            }
            _ => None,
        }
    }
}

/// LADER (Hong et al. 2021, Eq. 16) as `LADELoss.py` computes it: per class `c`,
/// `A_c = sum_{i: y_i = c} z_ic / (n_c + 1e-8)`, `S_c = logsumexp_i (z_ic + b_c) - log N` with
/// `b_c = log(1/C + 1e-9) - log(pi_s(c) + 1e-9)`, and `sum_c pi_s(c) (-A_c + S_c + lambda S_c^2)`;
/// classes absent from the batch are not masked (the code's behaviour).
fn lader(z: Tensor<2>, y: Tensor<1, Int>, prior: &Tensor<1>, bias: &Tensor<1>, lambda: f64, num_classes: usize) -> Tensor<1> {
    let [n, _] = z.dims();
    let m = one_hot(y, num_classes);
    let count = m.clone().sum_dim(0);
    let first = (z.clone() * m).sum_dim(0) / count.add_scalar(1e-8);
    let shifted = z + bias.clone().unsqueeze_dim(0);
    let max = shifted.clone().max_dim(0).detach();
    let second = (shifted - max.clone()).exp().sum_dim(0).log() + max - (n as f64).ln();
    let per_class = second.clone() + second.powi_scalar(2).mul_scalar(lambda) - first;
    (per_class * prior.clone().unsqueeze_dim(0)).sum()
}

/// ResLT's `beta ICE + (1 - beta) FCE` as per-sample terms whose batch mean is the code's:
/// `ICE_i (B / P)` with `P` the batch's active (sample, branch) pairs.
fn reslt(inputs: &LossInputs, beta: f64, medium: &Tensor<1>, tail: &Option<Tensor<1>>) -> Result<Tensor<1>, LossError> {
    let (want, words) = if tail.is_some() { (3, "three") } else { (2, "two") };
    if inputs.experts.len() != want {
        return Err(LossError::Invalid { loss: "ResLT", msg: format!("needs {words} branches (model.experts.count = {want}), got {}", inputs.experts.len()) });
    }
    let (zh, zm) = (inputs.experts[0].clone(), inputs.experts[1].clone());
    let y = inputs.targets.clone();
    let n = y.dims()[0];
    // the code's `crossEntropy`: -log(softmax(z) + 1e-7) at the label
    let nll_eps = |z: Tensor<2>| nll(burn::tensor::activation::softmax(z, 1).add_scalar(1e-7).log(), y.clone());
    let m = per_sample(medium, y.clone());
    let mut pairs = m.clone().sum().add_scalar(n as f64);
    let mut ice = nll_eps(zh.clone()) + nll_eps(zm.clone()) * m;
    let mut fused = zh + zm;
    if let Some(tail) = tail {
        let (zt, t) = (inputs.experts[2].clone(), per_sample(tail, y.clone()));
        pairs = pairs + t.clone().sum();
        ice = ice + nll_eps(zt.clone()) * t;
        fused = fused + zt;
    }
    let ice = ice.mul_scalar(n as f64) / pairs.expand([n]);
    Ok(ice.mul_scalar(beta) + cross_entropy(fused, y).mul_scalar(1.0 - beta))
}

/// RIDE-EA's router loss per sample ([`LossSpec::RideRouter`]): the mean over routers of the
/// weighted binary cross-entropy, `p t softplus(-r) + (1 - t) softplus(r)`.
fn ride_router(inputs: &LossInputs, pos_weight: f64) -> Result<Tensor<1>, LossError> {
    const NAME: &str = "RIDE-EA router";
    let routers = inputs.aux.clone().ok_or(LossError::MissingInput { loss: NAME, what: "the routers' logits (a stage with head = { kind = \"router\" })" })?;
    let e = inputs.experts.len();
    let [n, r] = routers.dims();
    check(e >= 2 && r == e - 1, NAME, format!("needs one router logit per expert but the last: {e} experts, {r} router logits"))?;
    let y = inputs.targets.clone();
    // c_k: is the mean of experts 0..=k right (the sum has the same argmax)
    let mut sum = inputs.experts[0].clone().detach();
    let mut right = Vec::with_capacity(e);
    for (k, z) in inputs.experts.iter().enumerate() {
        if k > 0 {
            sum = sum + z.clone().detach();
        }
        right.push(sum.clone().argmax(1).reshape([n]).equal(y.clone()).float());
    }
    let mut total = Tensor::<1>::zeros([n], &y.device());
    // none of the later ensembles right, from the last router back
    let mut none_later = Tensor::<1>::ones([n], &y.device());
    for i in (0..e - 1).rev() {
        none_later = none_later * right[i + 1].clone().neg().add_scalar(1.0);
        let t = right[i].clone().neg().add_scalar(1.0) * none_later.clone().neg().add_scalar(1.0);
        let x = routers.clone().narrow(1, i, 1).reshape([n]);
        let softplus = |v: Tensor<1>| burn::tensor::activation::log_sigmoid(v.neg()).neg();
        total = total + t.clone().mul_scalar(pos_weight) * softplus(x.clone().neg()) + t.neg().add_scalar(1.0) * softplus(x);
    }
    Ok(total.div_scalar((e - 1) as f64))
}

impl Ride {
    /// `sum_k [f_b CE_w(x_k - s m_y, y) + lambda T̄^2 KL_k]` per sample (see [`LossSpec::Ride`]).
    fn per_sample(&self, inputs: &LossInputs, state: LossState, k: usize) -> Result<Tensor<1>, LossError> {
        if inputs.experts.is_empty() {
            return Err(LossError::MissingInput { loss: "RIDE", what: "every expert's logits (a multi-expert model, model.experts)" });
        }
        let y = inputs.targets.clone();
        let on = self.reweight.as_ref().filter(|(e, ..)| state.epoch >= *e);
        let margin = one_hot(y.clone(), k) * per_sample(&self.margins, y.clone()).unsqueeze_dim(1).mul_scalar(self.scale);
        let base = |x: Tensor<2>| {
            let l = cross_entropy(x - margin.clone(), y.clone()).mul_scalar(self.base_factor);
            match on {
                Some((_, w, ..)) => class_weighted(l, w, y.clone()),
                None => l,
            }
        };
        let scaled: Vec<Tensor<2>> = inputs.experts.iter().map(|z| z.clone().mul_scalar(self.scale)).collect();
        let mean = scaled.iter().cloned().reduce(|a, b| a + b).expect("checked: not empty").div_scalar(scaled.len() as f64);
        let divide = |x: Tensor<2>| match on {
            Some((_, _, t, _)) => x / t.clone(),
            None => x.div_scalar(self.temperature),
        };
        let t_mean = on.map_or(self.temperature, |(.., m)| *m);
        let target = burn::tensor::activation::softmax(divide(mean.clone()), 1).detach();
        let log_target = log_softmax(divide(mean.clone()), 1).detach();
        let rows = q_rows(&mean);
        let mut total: Option<Tensor<1>> = None;
        for x in scaled {
            let mut l = base(if self.diversity == 0.0 { mean.clone() } else { x.clone() });
            if self.diversity != 0.0 {
                let kl = (target.clone() * (log_target.clone() - log_softmax(divide(x), 1))).sum_dim(1).reshape([rows]);
                l = l + kl.mul_scalar(self.diversity * t_mean * t_mean);
            }
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        Ok(total.expect("checked: not empty"))
    }
}

/// Row norms `‖f_i‖` `[N, 1]` with `torch.norm`'s gradient: 0 at a zero row (the plain
/// `sqrt(sum f^2)` has `0 * inf = NaN` there, and one such sample would turn every backbone
/// weight into NaN). The zero rows' squares are replaced before the square root, and their norms
/// set to 0 after it, so neither branch sees `sqrt'(0)`.
pub fn l2_norm_rows(f: Tensor<2>) -> Tensor<2> {
    let squares = f.powi_scalar(2).sum_dim(1);
    let zero = squares.clone().equal_elem(0.0);
    squares.mask_fill(zero.clone(), 1.0).sqrt().mask_fill(zero, 0.0)
}

fn q_rows(t: &Tensor<2>) -> usize {
    t.dims()[0]
}

fn weights(w: &ClassWeighting, counts: &[usize], name: &'static str) -> Result<Vec<f64>, LossError> {
    match w {
        ClassWeighting::EffectiveNumber { beta } => check((0.0..1.0).contains(beta), name, format!("beta must be in [0, 1), got {beta}"))?,
        ClassWeighting::Generalized { p } => check(p.is_finite() && *p >= 0.0, name, format!("p must be >= 0, got {p}"))?,
        ClassWeighting::InverseFrequency => {}
    }
    Ok(w.weights(counts))
}

/// MGKT's lambda at 0-based `epoch` (authors' code): 1 before `coarse_epochs`, 0 in the last
/// `fine_epochs`, `1 - ((t + 1 - E_c) / (E_max - E_f - E_c))^2` in between.
pub fn mg_lambda(epoch: usize, total: usize, coarse_epochs: usize, fine_epochs: usize) -> f64 {
    let fine_start = total.saturating_sub(fine_epochs);
    if epoch < coarse_epochs {
        1.0
    } else if epoch >= fine_start {
        0.0
    } else {
        let span = (fine_start - coarse_epochs) as f64;
        (1.0 - ((epoch + 1 - coarse_epochs) as f64 / span).powi(2)).max(0.0)
    }
}

/// `10^(floor(log10 L_c) - floor(log10 L_f))` of the batch means (the authors' code), 1 when a
/// mean is not positive; a constant for the gradient (detached). Computed on the device, shape
/// `[1]`: reading the two means back would cost a host sync every step on a GPU.
fn magnitude_factor(coarse: &Tensor<1>, fine: &Tensor<1>) -> Tensor<1> {
    let ln10 = std::f64::consts::LN_10;
    let (lc, lf) = (coarse.clone().mean().detach(), fine.clone().mean().detach());
    let not_positive = lc.clone().lower_equal_elem(0.0).bool_or(lf.clone().lower_equal_elem(0.0));
    let decades = lc.log().div_scalar(ln10).floor() - lf.log().div_scalar(ln10).floor();
    decades.mul_scalar(ln10).exp().mask_fill(not_positive, 1.0)
}

/// Applies class weights to per-sample losses so their mean is the class-weighted mean (DRW).
pub fn reweight(per_sample_losses: Tensor<1>, class_weights: &Tensor<1>, targets: Tensor<1, Int>) -> Tensor<1> {
    class_weighted(per_sample_losses, class_weights, targets)
}
