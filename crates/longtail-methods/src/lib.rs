//! One binary per method (`cargo run --release --bin <method> -- --help`). They share the
//! umbrella CLI's `train` arguments; see the `longtail` crate.
