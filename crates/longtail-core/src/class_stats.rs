//! Class statistics of the training counts `n_j`, computed once for the samplers, the losses and
//! the classifier changes that all use them.

/// Effective-number class weights `(1 - beta) / (1 - beta^n_j)` (Cui et al. 2019, Eq. 3 and
/// its normalisation), scaled to sum to the number of classes. Classes without samples get 0.
pub fn effective_number_weights(counts: &[usize], beta: f64) -> Vec<f64> {
    normalize_to_classes(counts.iter().map(|&n| if n == 0 { 0.0 } else { (1.0 - beta) / (1.0 - beta.powi(n as i32)) }).collect())
}

/// Inverse-frequency class weights `1 / n_j`, scaled to sum to the number of classes.
pub fn inverse_frequency_weights(counts: &[usize]) -> Vec<f64> {
    normalize_to_classes(counts.iter().map(|&n| 1.0 / n as f64).collect())
}

/// DisAlign's generalised re-weighting (Zhang et al. 2021, Eq. 6; the authors'
/// `GRWCrossEntropyLoss`): `w_j ∝ 1 / r_j^p` with `r_j = n_j / N`, scaled to sum to the number of
/// classes (`p` = 1 is inverse frequency, `p` = 0 no re-weighting). An empty class gets 0.
pub fn generalized_reweighting_weights(counts: &[usize], p: f64) -> Vec<f64> {
    let total: usize = counts.iter().sum();
    normalize_to_classes(counts.iter().map(|&n| if n == 0 { 0.0 } else { (n as f64 / total as f64).powf(-p) }).collect())
}

fn normalize_to_classes(raw: Vec<f64>) -> Vec<f64> {
    let sum: f64 = raw.iter().sum();
    let classes = raw.len() as f64;
    raw.iter().map(|w| w / sum * classes).collect()
}

/// `tau log pi_j` with the empirical prior `pi_j = n_j / N` (logit adjustment, Menon et al.
/// 2021, Eq. 10; post-hoc with `tau` on the logits, as a loss offset in its Eq. 11).
pub fn log_prior(counts: &[usize], tau: f64) -> Vec<f64> {
    let total: usize = counts.iter().sum();
    counts.iter().map(|&n| tau * (n as f64 / total as f64).ln()).collect()
}

/// The classes from the most training images to the fewest, ties by class index.
pub fn frequency_order(counts: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    order
}

/// Each class's position in [`frequency_order`] (0: the most images; the CIFAR-LT builders keep
/// classes sorted by count, so there the rank is the index).
pub fn frequency_rank(counts: &[usize]) -> Vec<usize> {
    let mut rank = vec![0; counts.len()];
    for (r, c) in frequency_order(counts).into_iter().enumerate() {
        rank[c] = r;
    }
    rank
}

/// RIDE's per-class diversity temperature (the authors' `RIDELoss`, `reweight_temperature`):
/// `T_j = t w_j / max_k w_k` with `w_j = C n_j / N * gamma + 1 - gamma` (larger for head classes).
pub fn ride_temperature(counts: &[usize], base: f64, gamma: f64) -> Vec<f64> {
    let total: usize = counts.iter().sum();
    let c = counts.len() as f64;
    let w: Vec<f64> = counts.iter().map(|&n| c * n as f64 / total as f64 * gamma + 1.0 - gamma).collect();
    let max = w.iter().copied().fold(f64::MIN, f64::max);
    w.iter().map(|v| base * v / max).collect()
}

/// `log n_j` (balanced softmax's offsets, Ren et al. 2020, Eq. 4).
pub fn log_counts(counts: &[usize]) -> Vec<f64> {
    counts.iter().map(|&n| (n as f64).ln()).collect()
}

/// The training counts of each coarse class: the sum over its fine classes (`parent[fine]`).
pub fn coarse_counts(counts: &[usize], parent: &[usize], num_coarse: usize) -> Vec<usize> {
    let mut c = vec![0; num_coarse];
    for (fine, &n) in counts.iter().enumerate() {
        c[parent[fine]] += n;
    }
    c
}

/// `log n_max - log n_j` per class (FBL's stimulus, GCL's cloud size and class-based beta
/// before their normalisations); an empty class counts as one sample.
pub fn log_gap(counts: &[usize]) -> Vec<f64> {
    let n_max = *counts.iter().max().unwrap_or(&1) as f64;
    counts.iter().map(|&n| n_max.ln() - (n.max(1) as f64).ln()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    /// Numbers from NumPy: `w = (1-b)/(1-b**n); w / w.sum() * len(n)` for n = [500, 50, 5],
    /// b = 0.999 (Cui et al.'s class-balanced-loss code's weights).
    #[test]
    fn effective_number_weights_match_numpy() {
        close(&effective_number_weights(&[500, 50, 5], 0.999), &[0.034_110_773_740_219_74, 0.275_169_415_141_640_95, 2.690_719_811_118_139_4]);
        close(&effective_number_weights(&[4, 0, 4], 0.9), &[1.5, 0.0, 1.5]);
        close(&inverse_frequency_weights(&[100, 10, 1]), &[0.027_027_027_027_027_03, 0.270_270_270_270_270_3, 2.702_702_702_702_703]);
    }

    #[test]
    fn priors_counts_and_gaps() {
        close(&log_prior(&[3, 1], 1.0), &[(0.75f64).ln(), (0.25f64).ln()]);
        close(&log_counts(&[1, 8]), &[0.0, (8f64).ln()]);
        assert_eq!(coarse_counts(&[5, 3, 2, 1], &[1, 0, 1, 0], 2), [4, 7]);
        close(&log_gap(&[100, 10, 0]), &[0.0, (10f64).ln(), (100f64).ln()]);
    }
}
