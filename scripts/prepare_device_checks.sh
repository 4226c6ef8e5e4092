#!/usr/bin/env bash
# Builds here what scripts/device_checks.sh needs on a lent GPU machine, which has no Rust
# toolchain and reaches no network:
#   .devcarry/longtail.xz          release `longtail` with the wgpu and cuda backends
#   .devcarry/cuda13-crt.tar.xz    CUDA 13.2's `crt/` headers (nvidia-cuda-crt), which PyTorch's
#                                  cu13 wheels lack and `mma.h` needs: NVRTC then compiles with
#                                  the headers PyTorch installed (site-packages/nvidia/cu13)
#   .devcarry/cuda-include.tar.xz  CUDA 12.8 headers for NVRTC (runtime, crt, CCCL) from PyPI's
#                                  nvidia-* wheels, for a machine with neither a toolkit nor those
#   .gl/*.deb                      Debian's Vulkan loader and GL vendor-neutral libraries
# Then, with the device tool: run command "bash scripts/device_checks.sh", carry [".devcarry", ".gl"]
# (both are git-ignored; together well under the 64 MiB a run carries).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devcarry .gl
cargo build --release -p longtail --features wgpu,cuda
xz -T2 -6 -c target/release/longtail > .devcarry/longtail.xz

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip download --quiet --no-deps --dest "$tmp/whl" \
  nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-nvcc-cu12==12.8.93 nvidia-cuda-cccl-cu12==12.8.90 \
  nvidia-cuda-crt==13.2.86
mkdir -p "$tmp/cuda/include"
for w in "$tmp"/whl/*.whl; do python3 -m zipfile -e "$w" "$tmp/unz"; done
for pkg in cuda_runtime cuda_nvcc cuda_cccl; do
  cp -r "$tmp/unz/nvidia/$pkg/include/." "$tmp/cuda/include/"
done
find "$tmp/cuda/include" -name '__init__.py' -delete
tar -C "$tmp/cuda" -cJf .devcarry/cuda-include.tar.xz include
tar -C "$tmp/unz/nvidia/cu13" -cJf .devcarry/cuda13-crt.tar.xz include/crt

(cd .gl && rm -f ./*.deb && apt-get download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 \
  libx11-6 libx11-data libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0)
du -ch .devcarry/* .gl/* | tail -1
