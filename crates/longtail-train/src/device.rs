//! Backend selection. Backends are compiled in by cargo feature (`flex` and `ndarray` on the CPU,
//! `cuda`, `wgpu`) and picked at run time by name: `--device` or the `BURN_DEVICE` variable.
//!
//! Names: `flex` (alias `cpu`), `ndarray`, `cuda` / `cuda:N`, `wgpu` / `wgpu:N` (discrete GPU N).

use burn::tensor::Device;

use crate::error::{Result, TrainError};

/// Backends compiled into this build, in order of preference for the default.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = Vec::new();
    #[cfg(feature = "flex")]
    v.push("flex");
    #[cfg(feature = "ndarray")]
    v.push("ndarray");
    #[cfg(feature = "cuda")]
    v.push("cuda");
    #[cfg(feature = "wgpu")]
    v.push("wgpu");
    v
}

fn index(spec: &str, rest: Option<&str>) -> Result<usize> {
    rest.map(|r| r.parse::<usize>().map_err(|_| TrainError::Device(spec.into(), "the device index must be a number, e.g. cuda:1".into())))
        .transpose()
        .map(|i| i.unwrap_or(0))
}

/// Parses a device name.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    let (name, rest) = match spec.split_once(':') {
        Some((n, r)) => (n, Some(r)),
        None => (spec, None),
    };
    let missing = |feature: &str| {
        TrainError::Device(
            spec.into(),
            format!("this build has no `{feature}` backend (compiled: {}); rebuild with `--features {feature}`", compiled_backends().join(", ")),
        )
    };
    let _ = index(spec, rest)?;
    match name {
        "flex" | "cpu" => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[cfg(not(feature = "flex"))]
            return Err(missing("flex"));
        }
        "ndarray" => {
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // offered next to flex on purpose (docs/backends.md)
            return Ok(Device::ndarray());
            #[cfg(not(feature = "ndarray"))]
            return Err(missing("ndarray"));
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index(spec, rest)?));
            #[cfg(not(feature = "cuda"))]
            return Err(missing("cuda"));
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return Ok(match rest {
                Some(_) => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index(spec, rest)?)),
                None => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            });
            #[cfg(not(feature = "wgpu"))]
            return Err(missing("wgpu"));
        }
        _ => Err(TrainError::Device(spec.into(), format!("expected one of: {} (or cpu, cuda:N, wgpu:N)", compiled_backends().join(", ")))),
    }
}

/// The device named by `flag`, else `BURN_DEVICE`, else the first compiled CPU backend.
pub fn select_device(flag: Option<&str>) -> Result<Device> {
    if let Some(f) = flag {
        return parse_device(f);
    }
    if let Ok(env) = std::env::var("BURN_DEVICE") {
        if !env.trim().is_empty() {
            return parse_device(&env);
        }
    }
    match compiled_backends().first() {
        Some(b) => parse_device(b),
        None => Err(TrainError::Device("<none>".into(), "no backend is compiled in; build with --features flex".into())),
    }
}

/// A short description of a device for logs and reports.
pub fn describe(device: &Device) -> String {
    format!("{device:?}")
}
