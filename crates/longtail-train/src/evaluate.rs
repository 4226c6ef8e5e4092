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
        let logits = out.logits;
        if !out.each.is_empty() {
            // every expert's argmax, and with routers every prefix ensemble's (the argmax of the
            // running sum of experts 0..=k), in one read-back: `[N, E]` or `[N, 2E]`, row-major
            let stacked = Tensor::stack::<3>(out.each, 1);
            let columns = if out.routing.is_some() { Tensor::cat(vec![stacked.clone(), stacked.cumsum(1)], 1) } else { stacked };
            let picks: Vec<usize> = columns.argmax(2).into_data().convert::<i64>().try_to_vec::<i64>().unwrap().into_iter().map(|q| q as usize).collect();
            let width = if out.routing.is_some() { 2 * experts } else { experts };
            for row in picks.chunks(width) {
                row[..experts].iter().enumerate().for_each(|(k, &q)| p.experts[k].push(q));
            }
            if let Some((decisions, _)) = out.routing {
                let prefix: Vec<usize> = picks.chunks(width).flat_map(|row| row[experts..].iter().copied()).collect();
                record_routing(&mut p, &model, &prefix, decisions, (h, w));
            }
        }
        let probs = softmax(logits.mul_scalar(logit_scale), 1);
        let (conf, idx) = probs.max_dim_with_indices(1);
        p.confidence.extend(conf.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        p.predicted.extend(idx.into_data().convert::<i64>().try_to_vec::<i64>().unwrap().into_iter().map(|i| i as usize));
    }
    Ok(p)
}

/// Appends a batch's prefix-ensemble predictions (`[N, E]`, row-major) and router probabilities
/// to `p.routing`.
fn record_routing(p: &mut Predictions, model: &Network, prefix: &[usize], decisions: Tensor<2>, size: (usize, usize)) {
    let experts = decisions.dims()[1] + 1;
    let r = p.routing.get_or_insert_with(|| RoutingPredictions {
        prefix: vec![Vec::new(); experts],
        probs: vec![Vec::new(); experts - 1],
        threshold: model.router_threshold().unwrap_or(0.5),
        macs: model.expert_macs(size),
    });
    for (i, &q) in prefix.iter().enumerate() {
        r.prefix[i % experts].push(q);
    }
    let probs = sigmoid(decisions).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    for (i, &q) in probs.iter().enumerate() {
        r.probs[i % (experts - 1)].push(q);
    }
}
