//! GPU backends give the CPU backend's numbers on a fixed batch (`longtail_train::parity`,
//! relative tolerance 1e-3). Runs for each GPU backend compiled in (`--features wgpu` / `cuda`)
//! whose device answers; otherwise it is skipped with a message.

use burn::tensor::Device;
use longtail_train::parity::{compare, numbers};

fn gpu_devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut v = Vec::new();
    #[cfg(feature = "wgpu")]
    v.push(("wgpu", Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)));
    #[cfg(feature = "cuda")]
    v.push(("cuda", Device::cuda(0)));
    v
}

#[test]
fn gpu_backends_match_the_cpu_backend() {
    let devices = gpu_devices();
    if devices.is_empty() {
        eprintln!("skipped: no GPU backend compiled in (run with --features wgpu or --features cuda)");
        return;
    }
    let cpu = numbers(&Device::flex());
    for (name, device) in devices {
        let Ok(gpu) = std::panic::catch_unwind(|| numbers(&device)) else {
            eprintln!("skipped {name}: the backend is compiled in but no device answered");
            continue;
        };
        match compare(&cpu, &gpu) {
            Ok(worst) => eprintln!("{name}: within tolerance (largest relative difference {worst:.2e})"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}
