//! What every longtail crate shares and must compute one way: the class statistics derived from
//! the training counts ([`class_stats`]) and the keys of the random streams that exact resume
//! depends on ([`streams`]). No dependencies: the data, loss and training crates all build on it.

pub mod capabilities;
pub mod class_stats;
pub mod streams;
