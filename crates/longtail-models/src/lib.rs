//! Backbones and classifier heads for long-tailed visual recognition, on any Burn backend.
//!
//! ```no_run
//! use burn::tensor::{Device, Tensor};
//! use longtail_models::{Arch, HeadConfig, ModelConfig};
//!
//! let device = Device::default();
//! let config = ModelConfig::new(Arch::Resnet32, 3, 10, HeadConfig::Linear);
//! let model = config.init(0, &device).unwrap();
//! let logits = model.predict(Tensor::<4>::zeros([2, 3, 32, 32], &device));
//! ```
//!
//! Every model gives back the pre-pool feature map, the pooled feature and the logits
//! ([`ModelOutput`]), so feature-map fusion (H2T), feature fusion (FFN) and classifier
//! re-training (cRT, LWS, tau-norm) all reuse one model type, [`Network`].

pub mod batch_norm;
pub mod csms;
pub mod error;
pub mod experts;
pub mod heads;
pub mod init;
pub mod layers;
pub mod macs;
pub mod network;
pub mod parts;
pub mod precision;
pub mod resnet;
pub mod resnet_cifar;
pub mod router;
pub mod two_branch;
pub mod weights;

pub use batch_norm::BatchNorm;
pub use error::ModelError;
pub use experts::{ExpertSplit, ExpertsConfig, MultiExpert};
pub use heads::{Head, HeadConfig, HeadOutput};
pub use network::{Arch, Backbone, Classifier, CsmsOptions, FeatureFusion, ModelConfig, ModelOutput, Network, count_learnable};
pub use precision::{AutocastConv, Precision, autocast};
pub use router::{ExpertRouter, RouterConfig};
