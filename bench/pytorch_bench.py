#!/usr/bin/env python3
"""PyTorch eager counterpart of `longtail bench model`: the same models (LDAM-DRW's ResNet-32,
torchvision's ResNet-50 layout), the same step (CE, SGD momentum 0.9, weight decay 5e-4) on random
data, the same JSON line. Optional: the tests never need it. `--amp bf16|fp16` uses autocast."""
import argparse, json, resource, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or inp != planes) else 0

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad)) if self.pad else x
        return F.relu(out + sc)


class ResNetCifar(nn.Module):
    def __init__(self, blocks=5, channels=3, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, inp = [], 16
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            for b in range(blocks):
                layers.append(BasicBlock(inp, planes, stride if b == 0 else 1))
                inp = planes
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class Bottleneck(nn.Module):
    def __init__(self, inp, planes, stride=1, groups=1, width_per_group=64):
        super().__init__()
        width = planes * width_per_group // 64 * groups
        self.conv1 = nn.Conv2d(inp, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.down = None
        if stride != 1 or inp != planes * 4:
            self.down = nn.Sequential(nn.Conv2d(inp, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.down(x) if self.down is not None else x))


class ResNet(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), channels=3, classes=1000, groups=1, width_per_group=64):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, inp = [], 64
        for i, (n, planes) in enumerate(zip(layers, [64, 128, 256, 512])):
            for b in range(n):
                blocks.append(Bottleneck(inp, planes, (1 if i == 0 else 2) if b == 0 else 1, groups, width_per_group))
                inp = planes * 4
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.fc(F.adaptive_avg_pool2d(self.blocks(out), 1).flatten(1))


def build(arch, channels, classes):
    cifar = {"resnet8": 1, "resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}
    if arch in cifar:
        return ResNetCifar(cifar[arch], channels, classes)
    if arch == "resnet50":
        return ResNet((3, 4, 6, 3), channels, classes)
    if arch == "resnet152":
        return ResNet((3, 8, 36, 3), channels, classes)
    if arch == "resnext50-32x4d":
        return ResNet((3, 4, 6, 3), channels, classes, 32, 4)
    raise SystemExit(f"unknown arch {arch}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet32")
    p.add_argument("--mode", default="train", choices=["train", "infer"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--image", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = build(a.arch, a.channels, a.classes).to(dev)
    x = torch.randn(a.batch, a.channels, a.image, a.image, device=dev)
    y = (torch.arange(a.batch, device=dev) % a.classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    amp = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[a.amp]
    scaler = torch.amp.GradScaler(enabled=amp == torch.float16)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    if a.mode == "train":
        model.train()
    else:
        model.eval()
    t0 = None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            sync()
            t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            if a.mode == "train":
                loss = F.cross_entropy(model(x), y)
            else:
                with torch.no_grad():
                    out = model(x)
        if a.mode == "train":
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    sync()
    elapsed = time.perf_counter() - t0
    peak = torch.cuda.max_memory_reserved() / 2**20 if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    name = f"{a.arch} {a.mode} b{a.batch} {a.image}x{a.image}" + (f" {a.amp}" if a.amp != "none" else "")
    print(json.dumps({"bench": name, "backend": f"pytorch {torch.__version__} {a.device}", "batch": a.batch, "steps": a.steps,
                      "images_per_second": a.steps * a.batch / elapsed, "peak_mib": peak}))


if __name__ == "__main__":
    main()
