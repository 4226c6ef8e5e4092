#!/usr/bin/env bash
# GPU checks on a lent NVIDIA machine (no Rust toolchain there, no network). Prepare the carried
# files here first with scripts/prepare_device_checks.sh, then run this with the device tool
# (carry [".devcarry", ".gl"], timeout_s 600). Every step has a time-out and the whole script a
# budget (BUDGET seconds, default 540): the most important checks come first, and what does not
# fit is skipped with a line saying so. Everything goes to $OUT/device_checks.log:
#   1. CUDA and wgpu give the CPU backend's losses on a fixed batch (`bench parity`);
#   2. ResNet-32 training (b128) ours on CUDA against PyTorch eager on CUDA, fp32 and bf16;
#   3. the CIFAR-10-LT recipe timed: 3 epochs of LDAM-DRW on CUDA (CIFAR-10-sized files of
#      random pixels: the machine cannot fetch CIFAR), to scale to the 200 of the recipe;
#   4. inference and ResNet-50 (b64, 224x224) rows; 5. data-parallel training with two replicas
#      on the one GPU (`--devices cuda:0,cuda:0`); 6. ResNet rows on wgpu (Vulkan).
# (The torchvision import check runs on the CPU: tests/pytorch_import.rs, where torchvision is.)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
BUDGET=${BUDGET:-540}
START=$(date +%s)
mkdir -p "$OUT" /tmp/b

# step SECONDS CMD...: runs CMD for at most SECONDS (fewer when the budget is shorter), or
# skips it when under 20 s of the budget are left. A failed step is listed in $OUT/failed.
: > "$OUT/failed"
step() {
  local want=$1 left rc
  shift
  left=$((BUDGET - ($(date +%s) - START)))
  if [ "$left" -lt 20 ]; then echo "skipped (budget spent): $*"; return 0; fi
  [ "$want" -gt "$left" ] && want=$left
  echo "\$ $*"
  timeout "$want" "$@"
  rc=$?
  echo "(exit $rc, $(($(date +%s) - START)) s into the script)"
  [ "$rc" -eq 0 ] || echo "$rc $*" | cut -c1-200 >> "$OUT/failed"
}

# Vulkan (wgpu): Debian's loader and GL vendor-neutral libraries, unpacked aside and found after
# the machine's own (NVIDIA's ICD needs libGLdispatch from glvnd).
for f in .gl/*.deb; do dpkg -x "$f" /tmp/gl; done
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/tmp/gl/usr/lib/x86_64-linux-gnu
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$ICD" ] && export VK_DRIVER_FILES=$ICD __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json

# CUDA (NVRTC; cubecl passes $CUDA_PATH/include and $CUDA_PATH/include/cccl): a toolkit if the
# machine has one; else the headers of PyTorch's cu13 wheels plus the carried crt/ (checked on
# the development machine: torch 2.15.0+cu132's libnvrtc.so.13 compiles cuda_fp16.h, cuda_bf16.h,
# mma.h and cuda/barrier that way); else the carried CUDA 12.8 headers. libnvrtc from the
# toolkit or from the nvidia-* wheels PyTorch installed.
if [ ! -f "${CUDA_PATH:-/usr/local/cuda}/include/crt/mma.h" ]; then
  CU13=$(python3 -c "
import glob, site
print(next(iter(glob.glob(d + '/nvidia/cu13') for d in site.getsitepackages() if glob.glob(d + '/nvidia/cu13/include/cuda_fp16.h')), [''])[0])" 2>/dev/null)
  mkdir -p /tmp/cuda
  if [ -n "$CU13" ]; then
    cp -rsf "$CU13/include" /tmp/cuda/ && tar -C /tmp/cuda -xJf .devcarry/cuda13-crt.tar.xz
  else
    tar -C /tmp/cuda -xJf .devcarry/cuda-include.tar.xz
  fi
  export CUDA_PATH=/tmp/cuda
  NVRTC_DIRS=$(python3 -c "
import glob, os, site
dirs = {os.path.dirname(p) for d in site.getsitepackages() for p in glob.glob(d + '/nvidia/**/libnvrtc.so*', recursive=True)}
print(':'.join(sorted(dirs)))" 2>/dev/null)
  export LD_LIBRARY_PATH=${NVRTC_DIRS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  export LD_LIBRARY_PATH=${CUDA_PATH:-/usr/local/cuda}/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

xz -dc .devcarry/longtail.xz > /tmp/b/longtail
chmod +x /tmp/b/*
LT=/tmp/b/longtail

# row DEVICE ARCH MODE BATCH IMAGE STEPS [PRECISION]: ours, then PyTorch eager on CUDA. Ours gets
# more time: in its warm-up steps autotune compiles (NVRTC) and times the candidate kernels of
# every new shape, once per process (timing starts after the warm-up).
row() {
  local dev=$1 arch=$2 mode=$3 batch=$4 image=$5 steps=$6 prec=${7:-f32} amp=none
  [ "$prec" != f32 ] && amp=$prec
  step 180 $LT --device "$dev" bench model --arch "$arch" --mode "$mode" --batch "$batch" --image "$image" --steps "$steps" --warmup 3 --precision "$prec"
  step 120 python3 bench/pytorch_bench.py --arch "$arch" --mode "$mode" --batch "$batch" --image "$image" --steps "$steps" --warmup 3 --device cuda --amp "$amp"
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "CUDA_PATH=${CUDA_PATH:-/usr/local/cuda} LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

  echo "== 1. parity with the CPU backend"
  step 150 $LT --device cuda bench parity
  step 90 $LT --device wgpu bench parity

  echo "== 2. ResNet-32 training, CUDA"
  row cuda resnet32 train 128 32 20
  row cuda resnet32 train 128 32 20 bf16

  echo "== 3. CIFAR-10-LT recipe, 3 epochs of 200, CUDA"
  step 60 python3 -c "
import numpy as np, os
d = '/tmp/cifar/cifar-10-batches-bin'; os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(0)
for name in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
    rec = np.empty((10000, 3073), np.uint8)
    rec[:, 0] = np.arange(10000) % 10
    rec[:, 1:] = rng.integers(0, 256, (10000, 3072), dtype=np.uint8)
    rec.tofile(os.path.join(d, name))"
  step 200 $LT --device cuda train --method ldam-drw --dataset cifar10-lt --data-root /tmp/cifar --max-epochs 3 --no-report --out /tmp/run

  echo "== 4. inference and ResNet-50, CUDA"
  row cuda resnet32 infer 128 32 40
  row cuda resnet50 train 64 224 6
  row cuda resnet50 train 64 224 6 bf16
  row cuda resnet50 infer 64 224 10

  echo "== 5. data-parallel on the one GPU: two replicas (cuda:0,cuda:0), 1 epoch of the recipe"
  step 120 $LT train --method ldam-drw --dataset cifar10-lt --data-root /tmp/cifar --devices cuda:0,cuda:0 --max-epochs 1 --no-report --out /tmp/run-dp

  echo "== 6. wgpu (Vulkan)"
  step 120 $LT --device wgpu bench model --arch resnet32 --mode train --batch 128 --steps 20 --warmup 3
  step 120 $LT --device wgpu bench model --arch resnet50 --mode train --batch 64 --image 224 --steps 6 --warmup 3
  echo "== failed steps: $(wc -l < "$OUT/failed")"
  cat "$OUT/failed"
} 2>&1 | tee "$OUT/device_checks.log"
[ ! -s "$OUT/failed" ]
