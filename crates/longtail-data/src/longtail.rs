//! Long-tailed subsets of balanced datasets (Cui et al. 2019; Cao et al. 2019).
//!
//! Exponential profile: class `i` keeps `n_i = floor(n_max * (1/IF)^(i/(C-1)))` images, computed
//! exactly as the LDAM-DRW code does (`int(img_max * imb_factor**(i / (C - 1.0)))`), so CIFAR-10-LT
//! at IF = 100 gives [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]. Step profile: the last
//! `round(mu * C)` classes keep `floor(n_max / IF)` images, the others `n_max`.

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::numpy_rng::NumpyRandomState;

/// How class sizes fall off with the class index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields, from = "ProfileRepr")]
pub enum Profile {
    /// Exponential decay from `n_max` (class 0) to `n_max / IF` (last class).
    Exp,
    /// `minority_fraction` of the classes (the last ones) reduced to `n_max / IF`.
    Step { minority_fraction: f64 },
    /// Keep the natural class sizes (ImageNet-LT, iNaturalist, Places-LT are long-tailed already).
    Natural,
}

/// Which images of a class are kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields, from = "SelectionRepr")]
pub enum Selection {
    /// The first `n_i` images of each class in file order.
    First,
    /// NumPy's `np.random.seed(seed)` then one `np.random.shuffle` per class, in class order —
    /// the LDAM-DRW / BBN / KPS / GCL reference subsets (seed 0 in their code).
    NumpyShuffle { seed: u32 },
}

// Read through mirrors whose unit variants are empty struct variants, which serde's
// `deny_unknown_fields` reaches (as `SamplerSpec`'s).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum ProfileRepr {
    Exp {},
    Step { minority_fraction: f64 },
    Natural {},
}

impl From<ProfileRepr> for Profile {
    fn from(r: ProfileRepr) -> Self {
        match r {
            ProfileRepr::Exp {} => Profile::Exp,
            ProfileRepr::Step { minority_fraction } => Profile::Step { minority_fraction },
            ProfileRepr::Natural {} => Profile::Natural,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum SelectionRepr {
    First {},
    NumpyShuffle { seed: u32 },
}

impl From<SelectionRepr> for Selection {
    fn from(r: SelectionRepr) -> Self {
        match r {
            SelectionRepr::First {} => Selection::First,
            SelectionRepr::NumpyShuffle { seed } => Selection::NumpyShuffle { seed },
        }
    }
}

/// A long-tailed subset specification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongTailSpec {
    pub profile: Profile,
    pub imbalance_factor: f64,
    /// Images of the largest class; defaults to the largest class of the source data.
    #[serde(default)]
    pub max_per_class: Option<usize>,
    pub selection: Selection,
}

impl LongTailSpec {
    /// The exponential profile with the given imbalance factor, first images in file order.
    pub fn exp(imbalance_factor: f64) -> Self {
        Self { profile: Profile::Exp, imbalance_factor, max_per_class: None, selection: Selection::First }
    }
}

/// Per-class target sizes for `num_classes` classes.
pub fn profile_counts(profile: Profile, imbalance_factor: f64, n_max: usize, num_classes: usize) -> Result<Vec<usize>> {
    if !imbalance_factor.is_finite() || imbalance_factor < 1.0 {
        return Err(DataError::ImbalanceFactor(imbalance_factor));
    }
    let factor = 1.0 / imbalance_factor;
    let counts = match profile {
        Profile::Natural => vec![n_max; num_classes],
        Profile::Exp if num_classes == 1 => vec![n_max],
        Profile::Exp => (0..num_classes).map(|i| (n_max as f64 * factor.powf(i as f64 / (num_classes as f64 - 1.0))) as usize).collect(),
        Profile::Step { minority_fraction } => {
            if !(0.0..=1.0).contains(&minority_fraction) {
                return Err(DataError::invalid("minority_fraction", format!("must be in [0, 1], got {minority_fraction}")));
            }
            let minority = (minority_fraction * num_classes as f64).round() as usize;
            let small = (n_max as f64 * factor) as usize;
            (0..num_classes).map(|i| if i < num_classes - minority { n_max } else { small }).collect()
        }
    };
    Ok(counts)
}

/// Builds the long-tailed training subset of `train` (sample order: class by class).
pub fn build_long_tail(train: &Dataset, spec: &LongTailSpec) -> Result<Dataset> {
    let by_class = train.indices_by_class();
    train.check_no_empty_class()?;
    if spec.profile == Profile::Natural {
        if spec.imbalance_factor.is_nan() || spec.imbalance_factor < 1.0 {
            return Err(DataError::ImbalanceFactor(spec.imbalance_factor));
        }
        return Ok(train.clone());
    }
    let available: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let n_max = spec.max_per_class.unwrap_or_else(|| *available.iter().max().unwrap_or(&0));
    let targets = profile_counts(spec.profile, spec.imbalance_factor, n_max, train.num_classes())?;
    let mut numpy = match spec.selection {
        Selection::NumpyShuffle { seed } => Some(NumpyRandomState::new(seed)),
        Selection::First => None,
    };
    let mut keep = Vec::with_capacity(targets.iter().sum());
    for (class, (mut idx, &n)) in by_class.into_iter().zip(&targets).enumerate() {
        if n == 0 {
            // the profile leaves it no image: a class of the data, not of its files
            return Err(DataError::invalid(
                "data.long_tail.imbalance_factor",
                format!(
                    "{} leaves class {class} (`{}`) no training image: the profile keeps n_max / factor = {n_max} / {} for the rarest class; use a factor of at most {n_max}",
                    spec.imbalance_factor, train.class_names[class], spec.imbalance_factor
                ),
            ));
        }
        if n > idx.len() {
            return Err(DataError::NotEnoughImages { class, name: train.class_names[class].clone(), available: idx.len(), requested: n });
        }
        if let Some(rng) = numpy.as_mut() {
            rng.shuffle(&mut idx);
        }
        keep.extend_from_slice(&idx[..n]);
    }
    Ok(train.subset(&keep))
}
