//! Errors of the models crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model config: {0}")]
    Config(String),

    #[error("cannot read weights {}: {msg}", path.display())]
    Read { path: PathBuf, msg: String },

    #[error("cannot write weights {}: {msg}", path.display())]
    Write { path: PathBuf, msg: String },

    #[error("weights {} do not fit the model: {msg}", path.display())]
    Mismatch { path: PathBuf, msg: String },
}
