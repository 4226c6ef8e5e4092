//! Errors of the data layer. Every variant names the file, class or value at fault and, where
//! there is one, the fix.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The OS error is part of the message and not also a `source`, so that an error chain
    /// printed whole (`{:#}`) says it once.
    #[error("cannot read {}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },

    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },

    #[error("{}:{line}: {msg}", path.display())]
    Parse { path: PathBuf, line: usize, msg: String },

    #[error("{}: cannot decode image: {msg}", path.display())]
    Decode { path: PathBuf, msg: String },

    #[error("imbalance factor must be >= 1 (got {0}); 1 keeps the data balanced, 100 is the usual long-tailed setting")]
    ImbalanceFactor(f64),

    #[error("class {class} ({name}) has {available} images but the long-tail profile asks for {requested}; lower `max_per_class` or the imbalance factor")]
    NotEnoughImages { class: usize, name: String, available: usize, requested: usize },

    #[error(
        "class {class} ({name}) has no training images: no training sample carries label {class} (a gap in a list file's labels, num_classes larger than the data's, or an empty class folder); remove it from the class list or add images"
    )]
    EmptyClass { class: usize, name: String },

    #[error("{}: label {label} is outside the class range 0..{num_classes}", source_name)]
    LabelOutOfRange { source_name: String, label: i64, num_classes: usize },

    #[error("{what} not found; {hint}")]
    NotFound { what: String, hint: String },

    #[error("invalid setting `{field}`: {msg}")]
    Invalid { field: String, msg: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), error: source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        DataError::Format { path: path.into(), msg: msg.into() }
    }

    pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        DataError::Invalid { field: field.into(), msg: msg.into() }
    }
}
