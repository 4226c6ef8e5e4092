//! Backbones and classifier heads for long-tailed visual recognition.

pub mod init;
pub mod layers;
pub mod resnet_cifar;
