//! Errors of the training crate.

use std::path::PathBuf;

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`; other payloads have none).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned())
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] longtail_data::DataError),

    #[error(transparent)]
    Model(#[from] longtail_models::ModelError),

    #[error(transparent)]
    Loss(#[from] longtail_losses::LossError),

    /// A config file that does not parse or has an unknown key / wrong type.
    #[error("{}: {msg}", path.display())]
    ConfigFile { path: PathBuf, msg: String },

    /// A value out of its allowed range.
    #[error("invalid config: `{field}` {msg}")]
    Config { field: String, msg: String },

    #[error("cannot {action} {}: {msg}", path.display())]
    Io { action: &'static str, path: PathBuf, msg: String },

    #[error("{0}")]
    Run(String),

    #[error("unknown device `{0}`; {1}")]
    Device(String, String),

    #[error("device `{0}` is compiled in but does not answer: {1}")]
    DeviceUnavailable(String, String),
}

impl TrainError {
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Self {
        TrainError::Config { field: field.into(), msg: msg.into() }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        TrainError::Io { action, path: path.into(), msg: e.to_string() }
    }
}
