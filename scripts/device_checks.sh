#!/usr/bin/env bash
# GPU checks run on a lent NVIDIA machine (no Rust toolchain there): the wgpu build of `longtail`
# and the `import_check` example are built on a CPU machine, xz-compressed into .devcarry/, and
# carried with Debian's Vulkan/GL loaders (.gl/). Writes fixtures, the import check, backend
# parity and throughput (ours on wgpu against PyTorch eager on CUDA, fp32 and bf16) to $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT/fixtures" /tmp/b
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$ICD" ] && export VK_DRIVER_FILES=$ICD __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
xz -dc .devcarry/longtail.xz > /tmp/b/longtail; xz -dc .devcarry/import_check.xz > /tmp/b/import_check; chmod +x /tmp/b/*
LT=/tmp/b/longtail
{
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
python3 -c "import torchvision; print('torchvision', torchvision.__version__)" || echo "no torchvision"
echo "== fixtures"; timeout 300 python3 crates/longtail-models/tests/fixtures/make_fixtures.py "$OUT/fixtures" --resnet50
echo "== torchvision import check"; timeout 120 /tmp/b/import_check "$OUT/fixtures"; rm -f "$OUT/fixtures/resnet50.pth"
echo "== parity"; timeout 300 $LT --device wgpu bench parity
echo "== throughput"
for round in 1 2; do
  for row in "resnet32 train 128 32 10" "resnet32 infer 128 32 20" "resnet50 train 64 224 6" "resnet50 infer 64 224 10"; do
    set -- $row
    timeout 300 $LT --device wgpu bench model --arch $1 --mode $2 --batch $3 --image $4 --steps $5 --warmup 3
    timeout 300 python3 bench/pytorch_bench.py --arch $1 --mode $2 --batch $3 --image $4 --steps $5 --warmup 3 --device cuda
    timeout 300 python3 bench/pytorch_bench.py --arch $1 --mode $2 --batch $3 --image $4 --steps $5 --warmup 3 --device cuda --amp bf16
  done
done
} 2>&1 | tee "$OUT/device_checks.log"
