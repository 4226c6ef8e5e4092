//! Many / medium / few-shot class groups from training counts.
//!
//! The field's protocol (Liu et al. 2019, used by all five papers): many-shot classes have more
//! than 100 training images, medium-shot 20 to 100, few-shot fewer than 20. On data where a group
//! is empty (10-class CIFAR-10-LT and Fashion-MNIST-LT have no few-shot class), frequency-rank
//! thirds are offered as well and labelled as such.

use serde::{Deserialize, Serialize};

/// How the groups were formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupKind {
    /// `n > 100`, `20 <= n <= 100`, `n < 20`.
    ShotThresholds,
    /// Classes sorted by count: the first third head, the last third tail, the rest medium.
    RankThirds,
}

/// Three class groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassGroups {
    pub kind: GroupKind,
    pub many: Vec<usize>,
    pub medium: Vec<usize>,
    pub few: Vec<usize>,
}

impl ClassGroups {
    /// Group names as reports print them.
    pub fn names(&self) -> [&'static str; 3] {
        match self.kind {
            GroupKind::ShotThresholds => ["many", "medium", "few"],
            GroupKind::RankThirds => ["head-third", "middle-third", "tail-third"],
        }
    }

    pub fn groups(&self) -> [&[usize]; 3] {
        [&self.many, &self.medium, &self.few]
    }

    /// Whether any group is empty.
    pub fn has_empty_group(&self) -> bool {
        self.groups().iter().any(|g| g.is_empty())
    }

    /// Group index (0, 1, 2) of each class.
    pub fn level_of_class(&self, num_classes: usize) -> Vec<usize> {
        let mut level = vec![0; num_classes];
        for (g, classes) in self.groups().iter().enumerate() {
            for &c in *classes {
                level[c] = g;
            }
        }
        level
    }
}

/// The standard many / medium / few split with thresholds `many_above` (100) and `few_below` (20).
pub fn shot_groups(counts: &[usize], many_above: usize, few_below: usize) -> ClassGroups {
    let mut groups = ClassGroups { kind: GroupKind::ShotThresholds, many: vec![], medium: vec![], few: vec![] };
    for (c, &n) in counts.iter().enumerate() {
        if n > many_above {
            groups.many.push(c);
        } else if n < few_below {
            groups.few.push(c);
        } else {
            groups.medium.push(c);
        }
    }
    groups
}

/// Frequency-rank thirds: `floor(C/3)` most frequent classes, `floor(C/3)` rarest, the rest in
/// the middle (3 / 4 / 3 for ten classes, as H2T and HRDC split CIFAR-10-LT). Ties keep the lower
/// class index first.
pub fn rank_thirds(counts: &[usize]) -> ClassGroups {
    let order = longtail_core::class_stats::frequency_order(counts);
    let k = counts.len() / 3;
    let mut many = order[..k].to_vec();
    let mut medium = order[k..counts.len() - k].to_vec();
    let mut few = order[counts.len() - k..].to_vec();
    many.sort_unstable();
    medium.sort_unstable();
    few.sort_unstable();
    ClassGroups { kind: GroupKind::RankThirds, many, medium, few }
}
