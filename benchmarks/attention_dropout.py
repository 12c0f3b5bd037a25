"""What attention-weight dropout costs torch's CPU attention: the kernel it takes, and the time.

With ``dropout_p > 0`` in training, ``scaled_dot_product_attention`` on the CPU leaves the flash
kernel for the math path (the weights materialised, softmax, ``bernoulli_`` masks). The
translator's ``attn_dropout_p`` (0.1 in ``recipes/shapes/translator.yaml``) takes that path in
every attention layer. Prints the kernels the profiler saw and the forward + backward time of
one translator-sized attention (batch 16, 4 heads, 150 positions, head dim 64: a pass of speech
units) with and without dropout, taking turns.

    python benchmarks/attention_dropout.py [--threads 1] [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.profiler import profile


def attention_step(qkv: torch.Tensor, dropout: float) -> None:
    F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=dropout).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--length", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    qkv = torch.randn(3, 16, 4, args.length, 64, requires_grad=True)
    for dropout in (0.0, 0.1):
        with profile() as prof:
            attention_step(qkv, dropout)
        kernels = sorted({e.key for e in prof.key_averages()
                          if any(w in e.key for w in ("attention", "bernoulli", "softmax"))})
        print(f"dropout {dropout}: {', '.join(kernels)}")
    times: dict[float, list[float]] = {0.0: [], 0.1: []}
    for _ in range(args.repeat):
        for dropout, ts in times.items():
            start = time.perf_counter()
            attention_step(qkv, dropout)
            ts.append(time.perf_counter() - start)
    base = statistics.median(times[0.0])
    print(f"16x4x{args.length}x64 attention, forward + backward, {args.threads} thread(s), "
          f"median of {args.repeat}:")
    for dropout, ts in times.items():
        median = statistics.median(ts)
        print(f"  dropout {dropout}: {median * 1000:.1f} ms ({median / base:.2f}x)")


if __name__ == "__main__":
    main()
