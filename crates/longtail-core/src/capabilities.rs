//! What a loss needs from the model and what a model's head provides, declared by each side
//! (`LossSpec::needs` in longtail-losses, `HeadConfig::provides` in longtail-models) so that a
//! config's validation follows from the declarations instead of per-method rules.

/// The kind of logits a classifier computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// `W f + b` (and the heads derived from it: LWS, tau-norm).
    Linear,
    /// Cosine similarities in `[-1, 1]` (a cosine classifier), scaled by the loss.
    Cosine,
}

/// A second head next to the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxHead {
    /// HRDC's re-weighting branch: a second classifier over the same classes.
    Reweighting,
    /// MGKT's coarse-class classifier.
    Coarse,
    /// RIDE-EA's expert-assignment routers: one logit per expert but the last.
    Router,
}

impl AuxHead {
    pub fn describe(self) -> &'static str {
        match self {
            AuxHead::Reweighting => "a dual head (model.head = { kind = \"dual\", ... }, HRDC)",
            AuxHead::Coarse => "a coarse + fine head (model.head = { kind = \"coarse-fine\", ... }, MGKT)",
            AuxHead::Router => "an expert router on a multi-expert model (a stage's head = { kind = \"router\" }, RIDE-EA)",
        }
    }
}

/// What a loss needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// The logits it expects, if it cares.
    pub logits: Option<Logits>,
    /// The second head it trains.
    pub aux: Option<AuxHead>,
    /// The pooled features (FBL).
    pub features: bool,
    /// Coarse labels from a class hierarchy (MGKT).
    pub coarse_labels: bool,
    /// Every expert's logits (RIDE's loss): a multi-expert model.
    pub experts: bool,
    /// Exactly this many experts (ResLT's three branches).
    pub expert_count: Option<usize>,
}

/// What a model's head provides (every model provides its pooled features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provides {
    pub logits: Logits,
    pub aux: Option<AuxHead>,
    /// Experts whose logits come next to their mean (0: a single model).
    pub experts: usize,
}

impl Provides {
    /// A single linear classifier.
    pub const LINEAR: Provides = Provides { logits: Logits::Linear, aux: None, experts: 0 };

    /// A head of `logits` with no second head.
    pub const fn single(logits: Logits) -> Provides {
        Provides { logits, aux: None, experts: 0 }
    }

    /// Why a loss with `needs` cannot train on this head (`None`: it can).
    pub fn unmet(&self, needs: &Needs) -> Option<String> {
        match needs.logits {
            Some(Logits::Cosine) if self.logits != Logits::Cosine => {
                return Some("expects a cosine classifier: set model.head = { kind = \"cosine\" }".into());
            }
            Some(Logits::Linear) if self.logits != Logits::Linear => return Some("applies to a linear classifier".into()),
            _ => {}
        }
        if let Some(aux) = needs.aux
            && self.aux != Some(aux)
        {
            return Some(format!("needs {}", aux.describe()));
        }
        if needs.experts && self.experts == 0 {
            return Some("needs a multi-expert model: set model.experts = { count = 3 } (RIDE)".into());
        }
        if let Some(n) = needs.expert_count
            && self.experts != n
        {
            return Some(format!("needs a model with {n} branches (model.experts.count = {n}), not {}", self.experts));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_need_is_met_only_by_the_head_that_provides_it() {
        let cosine = Needs { logits: Some(Logits::Cosine), ..Needs::default() };
        assert!(Provides::LINEAR.unmet(&cosine).unwrap().contains("cosine"));
        assert_eq!(Provides::single(Logits::Cosine).unmet(&cosine), None);
        let dual = Needs { aux: Some(AuxHead::Reweighting), ..Needs::default() };
        assert!(Provides { logits: Logits::Linear, aux: Some(AuxHead::Coarse), experts: 0 }.unmet(&dual).unwrap().contains("dual"));
        assert_eq!(Provides { logits: Logits::Linear, aux: Some(AuxHead::Reweighting), experts: 0 }.unmet(&dual), None);
        assert_eq!(Provides::LINEAR.unmet(&Needs::default()), None);
        let experts = Needs { experts: true, ..Needs::default() };
        assert!(Provides::single(Logits::Cosine).unmet(&experts).unwrap().contains("model.experts"));
        assert_eq!(Provides { experts: 2, ..Provides::single(Logits::Cosine) }.unmet(&experts), None);
        let three = Needs { experts: true, expert_count: Some(3), ..Needs::default() };
        assert!(Provides { experts: 2, ..Provides::LINEAR }.unmet(&three).unwrap().contains("3 branches"));
        assert_eq!(Provides { experts: 3, ..Provides::LINEAR }.unmet(&three), None);
    }
}
