//! Setting a network up for a stage: classifier surgery (cRT re-initialisation, LWS, tau-norm,
//! post-hoc logit adjustment) and which parameters train.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Device;
use longtail_losses::functional::constant;
use longtail_models::heads::{DisAlignHead, ExpertHeads, LinearHead, LwsHead, TauNormHead};
use longtail_models::init::Init;
use longtail_models::{Head, ModelConfig, Network};

use crate::config::{HeadChange, StageConfig, Trainable};
use crate::error::{Result, TrainError};

fn linear_of(network: &Network) -> Result<Linear> {
    network
        .head()
        .and_then(|h| h.as_linear())
        .cloned()
        .ok_or_else(|| TrainError::config("stages.head", "this classifier change needs a model with a linear head"))
}

/// Applies the stage's classifier change. Deterministic in `(seed, stage)`.
pub fn change_head(network: Network, change: &HeadChange, model: &ModelConfig, counts: &[usize], seed: u64, stage: usize, device: &Device) -> Result<Network> {
    Ok(match change {
        HeadChange::Keep => network,
        HeadChange::Reinit => {
            let head = model.init_head(longtail_core::streams::head_seed(seed, stage), device);
            network.with_head(head)?
        }
        HeadChange::Lws => {
            let fc = linear_of(&network)?;
            let classes = fc.weight.dims()[1];
            let scales = Param::from_tensor(burn::tensor::Tensor::ones([classes], device));
            network.with_head(Head::Lws(LwsHead { fc, scales }))?
        }
        HeadChange::TauNorm { tau } => {
            if !(tau.is_finite() && *tau >= 0.0) {
                return Err(TrainError::config("stages.head.tau", format!("must be >= 0, got {tau}")));
            }
            let fc = linear_of(&network)?;
            network.with_head(Head::TauNorm(TauNormHead { fc, tau: *tau }))?
        }
        HeadChange::LogitAdjust { tau } => {
            let mut fc = linear_of(&network)?;
            let log_prior = longtail_core::class_stats::log_prior(counts, *tau);
            let bias = fc.bias.take().map(|b| b.val()).unwrap_or_else(|| burn::tensor::Tensor::zeros([counts.len()], device));
            fc.bias = Some(Param::from_tensor((bias - constant(&log_prior, device)).detach()));
            network.with_head(Head::Linear(LinearHead { fc }))?
        }
        HeadChange::DisAlign => {
            let fc = linear_of(&network)?;
            let mut init = Init::new(longtail_core::streams::head_seed(seed, stage), device);
            network.with_head(Head::DisAlign(DisAlignHead::on(fc, &mut init)))?
        }
        HeadChange::Router(r) => network.with_router(r, longtail_core::streams::head_seed(seed, stage), device)?,
    })
}

/// Sets which parameters train (and the batch-norm mode of frozen backbones).
pub fn set_trainable(network: Network, stage: &StageConfig) -> Result<Network> {
    let network = network.unfreeze();
    let network = match &stage.train {
        Trainable::All => network,
        Trainable::Classifier => network.freeze_backbones(false),
        Trainable::ClassifierShiftBn => network.freeze_backbones(true),
        Trainable::Parts(parts) => longtail_models::parts::train_only(network, parts).map_err(|e| TrainError::config("train.parts", e.to_string()))?,
    };
    // LWS learns only the scales on top of the linear classifier, DisAlign only its calibration,
    // a multi-expert model with routers only the routers (the code freezes everything else).
    match network {
        Network::Classifier(mut c) => {
            c.head = match c.head {
                Head::Lws(h) => Head::Lws(LwsHead { fc: h.fc.no_grad(), scales: h.scales }),
                Head::DisAlign(h) => Head::DisAlign(DisAlignHead { fc: h.fc.no_grad(), ..h }),
                Head::Experts(h) if h.router.is_some() => Head::Experts(ExpertHeads { heads: h.heads.into_iter().map(|e| e.no_grad()).collect(), ..h }),
                other => other,
            };
            Ok(Network::Classifier(c))
        }
        other => Ok(other),
    }
}

/// Checks a test label distribution: one finite, positive probability per class, summing to one.
pub fn check_test_prior(prior: &[f64], num_classes: usize) -> Result<()> {
    if prior.len() != num_classes {
        return Err(TrainError::config("test prior", format!("has {} values but the model has {num_classes} classes", prior.len())));
    }
    if let Some((c, p)) = prior.iter().enumerate().find(|(_, p)| !(p.is_finite() && **p > 0.0)) {
        return Err(TrainError::config("test prior", format!("class {c} has probability {p}; every class needs a probability > 0")));
    }
    let sum: f64 = prior.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(TrainError::config("test prior", format!("sums to {sum}, not 1")));
    }
    Ok(())
}

/// The network under a test label distribution `pi_t` (LADE's inference, Hong et al. 2021,
/// `run_networks.py`: `logits + log pi_t`): `log pi_t` added to a linear classifier's bias. For a
/// network whose logits are calibrated to a uniform prior (LADE, balanced softmax, logit-adjusted
/// training); a cosine or other head cannot take it.
pub fn with_test_prior(network: Network, prior: &[f64], device: &Device) -> Result<Network> {
    if !matches!(network.head(), Some(Head::Linear(_))) {
        return Err(TrainError::config("test prior", "needs a model with a plain linear classifier (not cosine, LWS, tau-norm or a two-branch head)"));
    }
    let mut fc = linear_of(&network)?;
    check_test_prior(prior, fc.weight.dims()[1])?;
    let log_prior: Vec<f64> = prior.iter().map(|p| p.ln()).collect();
    let bias = fc.bias.take().map(|b| b.val()).unwrap_or_else(|| burn::tensor::Tensor::zeros([prior.len()], device));
    fc.bias = Some(Param::from_tensor((bias + constant(&log_prior, device)).detach()));
    Ok(network.with_head(Head::Linear(LinearHead { fc }))?)
}
