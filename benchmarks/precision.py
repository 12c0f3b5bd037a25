"""float32 against bfloat16 autocast on this machine, side by side: is ``auto`` right here?

Times a translator-sized linear layer and an image-codec-sized convolution (forward and backward)
both ways, and prints what ``tmt.precision.native_bf16`` says about the CPU.

    python benchmarks/precision.py [--threads 2] [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from tmt.precision import bf16_autocast, native_bf16


def seconds(step: Callable[[bool], None], bf16: bool, repeat: int) -> float:
    step(bf16)  # warm-up (kernel selection)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step(bf16)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def workloads() -> dict[str, Callable[[bool], None]]:
    linear = torch.nn.Linear(256, 1024)
    tokens = torch.randn(2048, 256)  # (tokens, d) of the tiny translator
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    maps = torch.randn(16, 64, 32, 32)  # (B, C, H, W) of the image codec's trunk

    def run(module: torch.nn.Module, x: torch.Tensor) -> Callable[[bool], None]:
        def step(bf16: bool) -> None:
            with bf16_autocast(bf16, "cpu"):
                out = module(x)
            out.float().sum().backward()
        return step

    return {"linear 2048x256 -> 1024": run(linear, tokens), "conv3x3 16x64x32x32": run(conv, maps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {native_bf16('cpu')}, {args.threads} threads")
    print("| workload (forward + backward) | float32 ms | bf16 autocast ms | bf16 / float32 |")
    print("| --- | ---: | ---: | ---: |")
    for name, step in workloads().items():
        fp32 = seconds(step, False, args.repeat)
        bf16 = seconds(step, True, args.repeat)
        print(f"| {name} | {fp32 * 1e3:.1f} | {bf16 * 1e3:.1f} | {bf16 / fp32:.2f}x |")


if __name__ == "__main__":
    main()
