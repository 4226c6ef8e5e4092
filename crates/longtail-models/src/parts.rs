//! Parameters by name: the dotted paths of a network's parameters (enum variants left out, so
//! `backbone.layer4.0.conv1.weight`, the names weights files and [`crate::weights`] use), and
//! training only the parts under chosen prefixes (the decoupling code's Places-LT fine-tuning of
//! the last residual stage and the classifier).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::error::ModelError;
use crate::network::Network;

/// The dotted path of the parameter being visited, built from struct fields, `Vec` indices and
/// tuple positions; enum variant names are not part of it.
#[derive(Default)]
struct PathStack {
    segments: Vec<Option<String>>,
}

impl PathStack {
    fn enter(&mut self, name: &str, container: &str) {
        self.segments.push((!container.starts_with("Enum:")).then(|| name.to_string()));
    }
    fn exit(&mut self) {
        self.segments.pop();
    }
    fn path(&self) -> String {
        self.segments.iter().flatten().map(String::as_str).collect::<Vec<_>>().join(".")
    }
}

/// Whether `path` is `prefix` or lies under it (`backbone.layer4` covers `backbone.layer4.0.conv1.weight`
/// but not `backbone.layer40.x`).
pub fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

/// The dotted paths of every float parameter and running statistic, in module order.
pub fn parameter_paths<M: Module>(module: &M) -> Vec<String> {
    struct Paths {
        stack: PathStack,
        out: Vec<String>,
    }
    impl ModuleVisitor for Paths {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.stack.enter(name, container);
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.stack.exit();
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            self.out.push(self.stack.path());
        }
    }
    let mut paths = Paths { stack: PathStack::default(), out: Vec::new() };
    module.visit(&mut paths);
    paths.out
}

/// Stops gradients of every parameter outside `parts` (path prefixes such as `backbone.layer4`
/// and `head`). As `requires_grad = False` in PyTorch, the frozen layers stay in training mode:
/// their batch norms keep normalising with batch statistics and updating the running ones, as in
/// the decoupling code, which freezes parameters and calls `model.train()`.
///
/// A prefix that names no parameter is an error listing the top-level parts, so a typo does not
/// silently freeze the whole network.
pub fn train_only(network: Network, parts: &[String]) -> Result<Network, ModelError> {
    if parts.is_empty() {
        return Err(ModelError::Config("train only: no part named; give path prefixes such as backbone.layer4 and head".into()));
    }
    let paths = parameter_paths(&network);
    if let Some(unknown) = parts.iter().find(|p| !paths.iter().any(|path| is_under(path, p))) {
        return Err(ModelError::Config(format!("train only: `{unknown}` names no parameter of this network; its parts are {}", part_names(&paths).join(", "))));
    }
    struct Freezer<'a> {
        stack: PathStack,
        parts: &'a [String],
    }
    impl ModuleMapper for Freezer<'_> {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.stack.enter(name, container);
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.stack.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.stack.path();
            if self.parts.iter().any(|p| is_under(&path, p)) { param } else { param.set_require_grad(false) }
        }
    }
    Ok(network.map(&mut Freezer { stack: PathStack::default(), parts }))
}

/// The first two path segments of each parameter, deduplicated in order (`backbone.layer1`,
/// `head.fc`): what a user can name.
fn part_names(paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let name = p.split('.').take(2).collect::<Vec<_>>().join(".");
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_covers_whole_segments_only() {
        assert!(is_under("backbone.layer4.0.conv1.weight", "backbone.layer4"));
        assert!(is_under("head", "head"));
        assert!(!is_under("backbone.layer40.weight", "backbone.layer4"));
        assert!(!is_under("backbone", "backbone.layer4"));
    }
}
