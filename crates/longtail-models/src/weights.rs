//! Saving and loading weights.
//!
//! - Checkpoints use Burn's native burnpack format ([`save`], [`load`]).
//! - [`save_safetensors`] / [`load_safetensors`] exchange weights with other tools.
//! - [`import_torchvision_resnet`] reads a torchvision ResNet / ResNeXt state dict (`.pth`), so an
//!   ImageNet-pretrained backbone can start a Places-LT run.
//!
//! A file that does not fit the model (a missing key, a shape that differs) is an error that names
//! the key; nothing is silently left at its initial value.

use std::path::Path;

use burn::store::{BurnpackStore, ModuleSnapshot, PytorchStore, SafetensorsStore};

use crate::error::ModelError;
use crate::network::{Backbone, Network};

fn read_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    let msg = e.to_string();
    if !path.exists() {
        ModelError::Read { path: path.to_path_buf(), msg: "no such file".into() }
    } else if msg.contains("issing") || msg.contains("ismatch") || msg.contains("alidation") {
        ModelError::Mismatch { path: path.to_path_buf(), msg }
    } else {
        ModelError::Read { path: path.to_path_buf(), msg: format!("{msg} (corrupt or not a weights file?)") }
    }
}

/// Writes a checkpoint (burnpack).
pub fn save(network: &Network, path: &Path) -> Result<(), ModelError> {
    let mut store = BurnpackStore::from_file(path).overwrite(true).auto_extension(false);
    network.save_into(&mut store).map_err(|e| ModelError::Write { path: path.to_path_buf(), msg: e.to_string() })
}

/// Loads a checkpoint written by [`save`] into a model built from the same config.
pub fn load(mut network: Network, path: &Path) -> Result<Network, ModelError> {
    if !path.is_file() {
        return Err(ModelError::Read { path: path.to_path_buf(), msg: "no such file".into() });
    }
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    let result = network.load_from(&mut store).map_err(|e| read_err(path, e))?;
    no_unused(path, &result.unused)?;
    Ok(network)
}

/// Parameters in a file that the network has no place for (a stage's classifier change such as
/// RIDE-EA's routers, not rebuilt) would be dropped without a word; they are an error instead.
fn no_unused(path: &Path, unused: &[String]) -> Result<(), ModelError> {
    if unused.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = unused.iter().take(4).map(String::as_str).collect();
    Err(ModelError::Read {
        path: path.to_path_buf(),
        msg: format!(
            "holds {} parameters this network does not have ({}{}): the file is of a different model, or of one changed by a training stage (an expert router, LWS, DisAlign) that was not applied before loading",
            unused.len(),
            shown.join(", "),
            if unused.len() > shown.len() { ", ..." } else { "" }
        ),
    })
}

/// Writes the weights as safetensors (Burn's parameter names).
pub fn save_safetensors(network: &Network, path: &Path) -> Result<(), ModelError> {
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    network.save_into(&mut store).map_err(|e| ModelError::Write { path: path.to_path_buf(), msg: e.to_string() })
}

/// Reads safetensors written by [`save_safetensors`].
pub fn load_safetensors(mut network: Network, path: &Path) -> Result<Network, ModelError> {
    if !path.is_file() {
        return Err(ModelError::Read { path: path.to_path_buf(), msg: "no such file".into() });
    }
    let mut store = SafetensorsStore::from_file(path);
    let result = network.load_from(&mut store).map_err(|e| read_err(path, e))?;
    no_unused(path, &result.unused)?;
    Ok(network)
}

/// Which code base wrote a state dict, so its names map onto the backbone and head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PytorchLayout {
    /// torchvision `resnet50` / `resnet152` / `resnext50_32x4d` (`conv1`, `bn1`, `layer1..4`,
    /// `downsample.0/1`, `fc` classifier). timm's ResNets use the same names.
    Torchvision,
    /// timm's `resnet50` / `resnet152` / `resnext50_32x4d`: the torchvision names.
    Timm,
    /// The CIFAR ResNets of the LDAM-DRW code base that KPS, GCL, FFN and H2T build on
    /// (`conv1`, `bn1`, `layer1..3`, `linear`, a `NormedLinear` for cosine heads).
    LdamCifar,
}

impl PytorchLayout {
    /// The classifier's name in the state dict.
    fn classifier(self) -> &'static str {
        match self {
            PytorchLayout::Torchvision | PytorchLayout::Timm => "fc",
            PytorchLayout::LdamCifar => "linear",
        }
    }

    /// Which backbones have this layout.
    fn fits(self, network: &Network) -> bool {
        let Network::Classifier(c) = network else { return false };
        match self {
            PytorchLayout::Torchvision | PytorchLayout::Timm => matches!(c.backbone, Backbone::ResNet(_)),
            PytorchLayout::LdamCifar => matches!(c.backbone, Backbone::ResNetCifar(_)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PytorchLayout::Torchvision => "torchvision",
            PytorchLayout::Timm => "timm",
            PytorchLayout::LdamCifar => "ldam-cifar",
        }
    }
}

/// How a pretrained file is loaded ([`import_pretrained`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    pub layout: PytorchLayout,
    /// Also load the classifier (same class count); otherwise only the backbone, and the file's
    /// classifier keys are expected to be left over.
    pub with_classifier: bool,
    /// Accept model parameters the file does not have (they keep their initial values).
    pub allow_missing: bool,
    /// Accept keys of the file that no parameter takes.
    pub allow_unexpected: bool,
}

impl ImportOptions {
    pub fn new(layout: PytorchLayout, with_classifier: bool) -> Self {
        Self { layout, with_classifier, allow_missing: false, allow_unexpected: false }
    }
}

/// What an import loaded and left over, by name (the model's names for missing parameters, the
/// file's names for unexpected keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub loaded: usize,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
}

impl ImportReport {
    /// One line: how many tensors were loaded, and the missing / unexpected names if any.
    pub fn summary(&self) -> String {
        let mut s = format!("{} tensors loaded", self.loaded);
        if !self.missing.is_empty() {
            s += &format!("; missing (kept at their initial values): {}", self.missing.join(", "));
        }
        if !self.unexpected.is_empty() {
            s += &format!("; unexpected (ignored): {}", self.unexpected.join(", "));
        }
        s
    }
}

/// The file's names -> the network's names, for a layout (the reverse of [`export_remapping`]).
fn import_remapping(layout: PytorchLayout, network: &Network) -> Vec<(String, String)> {
    let head_target = match network.head() {
        Some(crate::heads::Head::Cosine(_)) => "head.",
        _ => "head.fc.",
    };
    vec![
        (r"^module\.".into(), String::new()),
        (r"^(conv1|bn1|layer[1-4])\.".into(), "backbone.$1.".into()),
        (r"\.downsample\.0\.".into(), ".downsample.conv.".into()),
        (r"\.downsample\.1\.".into(), ".downsample.bn.".into()),
        (format!(r"^{}\.", layout.classifier()), head_target.into()),
    ]
}

/// Loads a PyTorch state dict (`.pth`/`.pt`/`.bin`, pickled by `torch.save`; a `state_dict`
/// entry and a DataParallel `module.` prefix are handled) or a safetensors file of the same names
/// into a single-backbone model of the architecture the layout describes.
///
/// Every backbone parameter must come from the file (and the classifier's, `with_classifier`),
/// and every key of the file must be taken, except batch norms' `num_batches_tracked` and, without
/// the classifier, the file's classifier: otherwise an error names the keys, unless
/// `allow_missing` / `allow_unexpected` accept them (the report still names them). A shape that
/// differs is always an error.
pub fn import_pretrained(mut network: Network, path: &Path, opts: &ImportOptions) -> Result<(Network, ImportReport), ModelError> {
    if !path.is_file() {
        return Err(ModelError::Read { path: path.to_path_buf(), msg: "no such file".into() });
    }
    if !opts.layout.fits(&network) {
        return Err(ModelError::Mismatch {
            path: path.to_path_buf(),
            msg: format!("the {} layout does not describe this network's backbone", opts.layout.name()),
        });
    }
    let remapping = import_remapping(opts.layout, &network);
    let keep = if opts.with_classifier { r"^(backbone|head)\." } else { r"^backbone\." };
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let result = if is_safetensors {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(burn::store::PyTorchToBurnAdapter)
            .skip_enum_variants(true)
            .allow_partial(true)
            .with_regex(keep);
        for (from, to) in &remapping {
            store = store.with_key_remapping(from, to);
        }
        network.load_from(&mut store).map_err(|e| read_err(path, e))?
    } else {
        let has_state_dict_key = burn::store::pytorch_reader::PytorchReader::with_top_level_key(path, "state_dict").is_ok_and(|r| !r.keys().is_empty());
        let mut store = PytorchStore::from_file(path).map_indices_contiguous(false).allow_partial(true).with_regex(keep);
        if has_state_dict_key {
            store = store.with_top_level_key("state_dict");
        }
        for (from, to) in &remapping {
            store = store.with_key_remapping(from, to);
        }
        network.load_from(&mut store).map_err(|e| read_err(path, e))?
    };
    if !result.errors.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        return Err(ModelError::Mismatch { path: path.to_path_buf(), msg: errors.join("; ") });
    }
    let missing: Vec<String> = result.missing.iter().map(|(p, _)| p.clone()).filter(|p| opts.with_classifier || p.starts_with("backbone.")).collect();
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !k.ends_with(".num_batches_tracked") && (opts.with_classifier || !k.starts_with("head.")))
        .map(|k| file_name_of(k, opts.layout))
        .collect();
    let report = ImportReport { loaded: result.applied.len(), missing, unexpected };
    let refused_missing = !report.missing.is_empty() && !opts.allow_missing;
    let refused_unexpected = !report.unexpected.is_empty() && !opts.allow_unexpected;
    if refused_missing || refused_unexpected {
        let mut parts = Vec::new();
        if !report.missing.is_empty() {
            parts.push(format!("missing keys (parameters of the model the file does not have): {}", report.missing.join(", ")));
        }
        if !report.unexpected.is_empty() {
            parts.push(format!("unexpected keys (in the file, taken by no parameter): {}", report.unexpected.join(", ")));
        }
        let hint = "; if that is intended, allow it (init_from's allow_missing / allow_unexpected)";
        return Err(ModelError::Mismatch { path: path.to_path_buf(), msg: format!("{}{hint}", parts.join("; ")) });
    }
    Ok((network, report))
}

/// A remapped key back in the file's names (for reports: the user knows the file's names).
fn file_name_of(key: &str, layout: PytorchLayout) -> String {
    let key = key.strip_prefix("backbone.").unwrap_or(key);
    let key = key.replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.", ".downsample.1.");
    match key.strip_prefix("head.fc.").or_else(|| key.strip_prefix("head.")) {
        Some(rest) => format!("{}.{rest}", layout.classifier()),
        None => key,
    }
}

/// Loads a PyTorch state dict into a single-backbone model of the same architecture: the
/// classifier too when `with_classifier`, otherwise only the backbone. Missing or unexpected
/// keys are errors ([`import_pretrained`] reports and can allow them).
pub fn import_pytorch(network: Network, path: &Path, layout: PytorchLayout, with_classifier: bool) -> Result<Network, ModelError> {
    import_pretrained(network, path, &ImportOptions::new(layout, with_classifier)).map(|(n, _)| n)
}

/// Loads a torchvision ResNet-50/152 or ResNeXt-50 state dict into a single-backbone model with
/// the same architecture. `conv1.*`, `bn1.*`, `layerN.*` go to the backbone (`downsample.0/1`
/// to `downsample.conv/bn`); `fc.*` goes to a linear head when `with_classifier` (a 1000-class
/// head), and is ignored otherwise (the usual start of a Places-LT run with its own head).
pub fn import_torchvision_resnet(network: Network, path: &Path, with_classifier: bool) -> Result<Network, ModelError> {
    import_pytorch(network, path, PytorchLayout::Torchvision, with_classifier)
}

/// The network's names -> a layout's names (the reverse of [`import_remapping`]).
fn export_remapping(layout: PytorchLayout, network: &Network) -> Vec<(String, String)> {
    let head_source = match network.head() {
        Some(crate::heads::Head::Cosine(_)) => r"^head\.",
        _ => r"^head\.fc\.",
    };
    vec![
        (r"^backbone\.".into(), String::new()),
        (r"\.downsample\.conv\.".into(), ".downsample.0.".into()),
        (r"\.downsample\.bn\.".into(), ".downsample.1.".into()),
        (head_source.into(), format!("{}.", layout.classifier())),
    ]
}

/// Writes the weights as safetensors under a PyTorch code base's names (`fc.weight` as
/// `[out, in]`, batch norms' `weight` / `bias`), loadable with `model.load_state_dict(
/// safetensors.torch.load_file(path))`; [`import_pretrained`] reads it back. Only a linear or
/// cosine head has a counterpart; returns the number of tensors written.
pub fn export_pytorch(network: &Network, path: &Path, layout: PytorchLayout) -> Result<usize, ModelError> {
    let write_err = |msg: String| ModelError::Write { path: path.to_path_buf(), msg };
    if !layout.fits(network) {
        return Err(write_err(format!("this network's backbone has no {} counterpart (export it with Burn's names instead)", layout.name())));
    }
    match network.head() {
        Some(crate::heads::Head::Linear(_)) => {}
        Some(crate::heads::Head::Cosine(_)) if layout == PytorchLayout::LdamCifar => {}
        _ => return Err(write_err(format!("only a linear head (or the LDAM code's NormedLinear) has a {} counterpart", layout.name()))),
    }
    let mut store = SafetensorsStore::from_file(path).overwrite(true).skip_enum_variants(true).with_to_adapter(burn::store::BurnToPyTorchAdapter);
    for (from, to) in export_remapping(layout, network) {
        store = store.with_key_remapping(from, to);
    }
    network.save_into(&mut store).map_err(|e| write_err(e.to_string()))?;
    Ok(crate::parts::parameter_paths(network).len())
}
