//! Predictions of a model on an evaluation split.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Tensor};
use longtail_data::{Dataset, Loader};
use longtail_models::Network;

use crate::data::upload;
use crate::error::Result;
use crate::metrics::{Predictions, RoutingPredictions};

/// Runs `network` (inference mode) over every sample of `data` in order. Confidences are the
/// softmax of `logit_scale` times the logits (see `LossSpec::eval_logit_scale`).
pub fn predict(network: &Network, loader: &Loader, data: &Arc<Dataset>, device: &Device, logit_scale: f64) -> Result<Predictions> {
    let model = network.valid();
    let experts = model.num_experts();
    let mut p =
        Predictions { labels: Vec::with_capacity(data.len()), experts: vec![Vec::new(); if experts > 1 { experts } else { 0 }], ..Predictions::default() };
    for batch in loader.iter((0..data.len()).collect(), 0, 0, 0) {
        let batch = batch?;
        p.labels.extend_from_slice(&batch.labels);
        let b = upload(batch, device);
        let [_, _, h, w] = b.images.dims();
        let out = model.predict_with_experts(b.images);
        let (logits, each) = (out.logits, out.each);
        if let Some((decisions, _)) = out.routing {
            record_routing(&mut p, &model, &each, decisions, (h, w));
        }
        if !each.is_empty() {
            // every expert's argmax in one read-back: `[N, E]`, row-major
            let picks = Tensor::stack::<3>(each, 1).argmax(2).into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
            for (i, &q) in picks.iter().enumerate() {
                p.experts[i % experts].push(q as usize);
            }
        }
        let probs = softmax(logits.mul_scalar(logit_scale), 1);
        let (conf, idx) = probs.max_dim_with_indices(1);
        p.confidence.extend(conf.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        p.predicted.extend(idx.into_data().convert::<i64>().try_to_vec::<i64>().unwrap().into_iter().map(|i| i as usize));
    }
    Ok(p)
}

/// Appends a batch's prefix-ensemble predictions and router probabilities to `p.routing`.
fn record_routing(p: &mut Predictions, model: &Network, each: &[Tensor<2>], decisions: Tensor<2>, size: (usize, usize)) {
    let experts = each.len();
    let r = p.routing.get_or_insert_with(|| RoutingPredictions {
        prefix: vec![Vec::new(); experts],
        probs: vec![Vec::new(); experts - 1],
        threshold: model.router_threshold().unwrap_or(0.5),
        macs: model.expert_macs(size),
    });
    // `[N, E]` row-major: the argmax of the running sum of experts 0..=k
    let prefix = Tensor::stack::<3>(each.to_vec(), 1).cumsum(1).argmax(2).into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
    for (i, &q) in prefix.iter().enumerate() {
        r.prefix[i % experts].push(q as usize);
    }
    let probs = sigmoid(decisions).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    for (i, &q) in probs.iter().enumerate() {
        r.probs[i % (experts - 1)].push(q);
    }
}
