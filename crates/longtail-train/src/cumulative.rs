//! BBN's cumulative-learning schedule (Zhou et al., CVPR 2020; `lib/core/combiner.py:16-19, 48`).

/// `T_max` of the code: the number of epochs, except 90 -> 100 and 180 -> 200
/// (`div_epoch = 100 * (epoch_number // 100 + 1)` for those two).
pub fn div_epoch(epochs: usize) -> usize {
    if matches!(epochs, 90 | 180) { 100 * (epochs / 100 + 1) } else { epochs }
}

/// `alpha = 1 - (t / T_max)^2` at the 0-based epoch `t` (the code's `1 - ((epoch - 1) / div)^2`
/// with 1-based epochs): 1 in the first epoch, towards 0 at the end; once per epoch.
pub fn alpha(epoch: usize, div_epoch: usize) -> f64 {
    let r = epoch as f64 / div_epoch.max(1) as f64;
    1.0 - r * r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code's values (1-based e: 1 - ((e - 1) / 200)^2), computed by hand / Python.
    #[test]
    fn alpha_follows_the_parabola_of_the_code() {
        let d = div_epoch(200);
        assert_eq!(d, 200);
        for (e, want) in [(1, 1.0), (101, 0.75), (160, 0.367975), (200, 0.00997500000000004)] {
            assert!((alpha(e - 1, d) - want).abs() < 1e-12, "epoch {e}: {} vs {want}", alpha(e - 1, d));
        }
        assert_eq!((div_epoch(90), div_epoch(180), div_epoch(15)), (100, 200, 15));
        // 90 epochs divide by 100: the last epoch's alpha is 1 - 0.89^2
        assert!((alpha(89, div_epoch(90)) - 0.2079).abs() < 1e-12);
    }
}
