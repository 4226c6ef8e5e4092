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
use crate::network::Network;

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
    network.load_from(&mut store).map_err(|e| read_err(path, e))?;
    Ok(network)
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
    network.load_from(&mut store).map_err(|e| read_err(path, e))?;
    Ok(network)
}

/// Which PyTorch code base wrote a state dict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PytorchLayout {
    /// torchvision `resnet50` / `resnet152` / `resnext50_32x4d` (`fc` classifier).
    Torchvision,
    /// The CIFAR ResNets of the LDAM-DRW code base that KPS, GCL, FFN and H2T build on
    /// (`conv1`, `bn1`, `layer1..3`, `linear`, a `NormedLinear` for cosine heads).
    LdamCifar,
}

/// Loads a PyTorch state dict (`.pth`/`.pt`; a `state_dict` entry and a DataParallel `module.`
/// prefix are handled) into a single-backbone model of the same architecture. The classifier is
/// loaded when `with_classifier`, otherwise only the backbone (and every backbone key must be
/// present).
pub fn import_pytorch(mut network: Network, path: &Path, layout: PytorchLayout, with_classifier: bool) -> Result<Network, ModelError> {
    if !path.is_file() {
        return Err(ModelError::Read { path: path.to_path_buf(), msg: "no such file".into() });
    }
    let has_state_dict_key = burn::store::pytorch_reader::PytorchReader::with_top_level_key(path, "state_dict").is_ok_and(|r| !r.keys().is_empty());
    let mut store = PytorchStore::from_file(path);
    if has_state_dict_key {
        store = store.with_top_level_key("state_dict");
    }
    let classifier = match layout {
        PytorchLayout::Torchvision => "fc",
        PytorchLayout::LdamCifar => "linear",
    };
    let head_target = match network.head() {
        Some(crate::heads::Head::Cosine(_)) => "head.",
        _ => "head.fc.",
    };
    store = store
        .with_key_remapping(r"^module\.", "")
        .with_key_remapping(r"^(conv1|bn1|layer[1-4])\.", "backbone.$1.")
        .with_key_remapping(r"\.downsample\.0\.", ".downsample.conv.")
        .with_key_remapping(r"\.downsample\.1\.", ".downsample.bn.")
        .with_key_remapping(format!(r"^{classifier}\."), head_target)
        .map_indices_contiguous(false);
    if !with_classifier {
        store = store.with_regex(r"^backbone\.").allow_partial(true);
    }
    let result = network.load_from(&mut store).map_err(|e| read_err(path, e))?;
    let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).filter(|p| with_classifier || p.contains("backbone")).collect();
    if !missing.is_empty() {
        return Err(ModelError::Mismatch { path: path.to_path_buf(), msg: format!("missing keys: {}", missing.join(", ")) });
    }
    Ok(network)
}

/// Loads a torchvision ResNet-50/152 or ResNeXt-50 state dict into a single-backbone model with
/// the same architecture. `conv1.*`, `bn1.*`, `layerN.*` go to the backbone (`downsample.0/1`
/// to `downsample.conv/bn`); `fc.*` goes to a linear head when `with_classifier` (a 1000-class
/// head), and is ignored otherwise (the usual start of a Places-LT run with its own head).
pub fn import_torchvision_resnet(network: Network, path: &Path, with_classifier: bool) -> Result<Network, ModelError> {
    import_pytorch(network, path, PytorchLayout::Torchvision, with_classifier)
}
