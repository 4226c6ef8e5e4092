//! Backend selection. Backends are compiled in by cargo feature (`flex` and `ndarray` on the CPU,
//! `cuda`, `wgpu`) and picked at run time by name: `--device` or the `BURN_DEVICE` variable.
//!
//! Names: `flex` (alias `cpu`), `ndarray`, `cuda` / `cuda:N`, `wgpu` / `wgpu:N` (discrete GPU N).

use burn::tensor::Device;

use crate::error::{Result, TrainError};

/// Backends compiled into this build, in order of preference for the default.
#[allow(clippy::vec_init_then_push, unused_mut, reason = "one push per compiled-in feature (none in a build without a backend)")]
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
            return probe(spec, Device::cuda(index(spec, rest)?));
            #[cfg(not(feature = "cuda"))]
            return Err(missing("cuda"));
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return probe(
                spec,
                match rest {
                    Some(_) => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index(spec, rest)?)),
                    None => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
                },
            );
            #[cfg(not(feature = "wgpu"))]
            return Err(missing("wgpu"));
        }
        _ => Err(TrainError::Device(spec.into(), format!("expected one of: {} (or cpu, cuda:N, wgpu:N)", compiled_backends().join(", ")))),
    }
}

/// Adds 1 and 2 on a GPU `device` and reads the sum back, so that a backend that is compiled in
/// but cannot start (no driver, no adapter, no `libnvrtc`, no CUDA folder) ends here in one
/// line naming the device and the backend's own reason, not in a panic inside the first
/// training step. An f32 sum needs no CUDA header, so a CUDA folder that lacks some (e.g.
/// `cuda_bf16.h`, `crt/`) still passes and fails at the first kernel that includes one.
/// The backends report these failures by panicking, often on a runtime thread of their own
/// (the caller then sees only a closed channel), so the probe swaps the process's panic hook
/// for one that records every panic message meanwhile and reports the first: the cause
/// (`LONGTAIL_BACKTRACE=1` keeps the usual hook and its backtraces). Device selection happens
/// before any other work starts. CPU backends are not probed.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn probe(spec: &str, device: Device) -> Result<Device> {
    use crate::error::panic_message;
    use burn::tensor::Tensor;
    use std::sync::{Arc, Mutex};
    let panics = Arc::new(Mutex::new(Vec::<String>::new()));
    let backtraces = std::env::var("LONGTAIL_BACKTRACE").is_ok_and(|v| v == "1");
    let hook = (!backtraces).then(|| {
        let record = Arc::clone(&panics);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut v) = record.lock() {
                v.push(panic_message(info.payload()).unwrap_or_default());
            }
        }));
        hook
    });
    let sum = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Tensor::<1>::from_floats([1.0, 2.0], &device).sum().into_scalar::<f32>()));
    if let Some(hook) = hook {
        std::panic::set_hook(hook);
    }
    let reason = match sum {
        Ok(3.0) => return Ok(device),
        Ok(v) => format!("1 + 2 came back as {v}"),
        Err(payload) => {
            // the first recorded panic (none with LONGTAIL_BACKTRACE=1), else the caught one's
            let mut panics = panics.lock().map(|v| v.clone()).unwrap_or_default();
            panics.push(panic_message(payload.as_ref()).unwrap_or_default());
            let first = panics.iter().flat_map(|m| m.lines()).map(str::trim).find(|l| !l.is_empty());
            without_name_list(first.unwrap_or("the backend panicked"))
        }
    };
    Err(TrainError::DeviceUnavailable(spec.into(), reason))
}

/// cudarc's "cannot load a library" message lists the 30-odd file names it tried and ends by
/// referring to that list; the line keeps the cause and the hint ("Unable to dynamically load
/// the "cuda" shared library. Ensure that `LD_LIBRARY_PATH` has the correct path to the
/// installed library.").
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
fn without_name_list(msg: &str) -> String {
    const LIST: &str = " - searched for library names: [";
    const ASIDE: &str = " If the shared library is present on the system under a different name";
    let Some((start, end)) = msg.find(LIST).and_then(|start| msg[start..].find("].").map(|end| (start, start + end + 1))) else {
        return msg.to_string();
    };
    let rest = &msg[end..];
    format!("{}{}", &msg[..start], &rest[..rest.find(ASIDE).unwrap_or(rest.len())])
}

/// The device named by `flag`, else `BURN_DEVICE`, else the first compiled CPU backend.
pub fn select_device(flag: Option<&str>) -> Result<Device> {
    if let Some(f) = flag {
        return parse_device(f);
    }
    if let Ok(env) = std::env::var("BURN_DEVICE")
        && !env.trim().is_empty()
    {
        return parse_device(&env);
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

#[cfg(test)]
mod tests {
    use super::without_name_list;

    /// cudarc 0.19's message (src/lib.rs) for a missing driver library, shortened list.
    #[test]
    fn the_library_name_list_is_cut_from_cudarcs_message() {
        let msg = r#"Unable to dynamically load the "cuda" shared library - searched for library names: ["libcuda.so", "libcuda64.so", "libcuda.so.1"]. Ensure that `LD_LIBRARY_PATH` has the correct path to the installed library. If the shared library is present on the system under a different name than one of those listed above, please open a GitHub issue."#;
        assert_eq!(
            without_name_list(msg),
            r#"Unable to dynamically load the "cuda" shared library. Ensure that `LD_LIBRARY_PATH` has the correct path to the installed library."#
        );
        let other = "Unable to acquire wgpu device: AdapterUnavailable";
        assert_eq!(without_name_list(other), other);
    }
}
