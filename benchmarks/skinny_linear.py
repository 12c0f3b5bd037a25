"""The decoder step's products: MKL (``F.linear``) against ``tmt.kernels.skinny_linear``.

The paper preset's 12 decoder layers' step weights (self-attention q/k/v/out, cross-attention
q/out, FFN in/out; every layer its own, so that they stream from memory as in a decoding step) multiplied by 1, 5 (a beam), 8 and 40 (8 sources x beam 5) rows, one product after another;
the weights' bytes per second of each, and a plain read (``a.sum()``) for scale. Then this
core's compute peaks, which bound a batch of beams (40 rows): MKL's float32 GEMM and fbgemm's
dynamic int8 GEMM (``tmt.precision.linear_at(..., "int8")``) on large products.

    python benchmarks/skinny_linear.py [--threads 1] [--rows 1 5 8 40] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.nn import functional as F

from tmt import kernels
from tmt.precision import linear_at

MODEL_DIM, FFN_DIM, LAYERS = 768, 3072, 12


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", nargs="+", type=int, default=[1, 5, 8, 40])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not kernels.enabled():
        raise SystemExit("the native kernels are not available here (no AVX2, no compiler, or TMT_NATIVE=0)")
    torch.manual_seed(0)
    shapes = [(MODEL_DIM, MODEL_DIM)] * 6 + [(FFN_DIM, MODEL_DIM), (MODEL_DIM, FFN_DIM)]
    weights = [(torch.randn(n, k) * 0.02, torch.randn(n)) for _ in range(LAYERS) for n, k in shapes]
    native = [kernels.skinny_linear(w, b) for w, b in weights]
    total_bytes = sum(w.numel() * 4 for w, _ in weights)
    flat = torch.ones(total_bytes // 4)
    read = total_bytes / best_of(flat.sum, args.repeat)
    print(f"{len(weights)} products, {total_bytes / 1e6:.0f} MB of float32 weights, {args.threads} "
          f"thread(s), load {os.getloadavg()[0]:.1f}; plain read {read / 1e9:.1f} GB/s")
    print(f"{'rows':>5} {'MKL ms':>8} {'GB/s':>6} {'native ms':>10} {'GB/s':>6} {'speed-up':>9}")
    for rows in args.rows:
        xs = {k: torch.randn(rows, k) for k in (MODEL_DIM, FFN_DIM)}
        for fn, (w, _) in zip(native, weights):  # same results, to rounding
            x = xs[w.shape[1]]
            assert torch.allclose(fn(x), F.linear(x, w, _), atol=1e-4, rtol=1e-4)
        t_mkl = t_native = float("inf")
        for _ in range(args.repeat):  # alternate, so that a change of load hits both
            t_mkl = min(t_mkl, best_of(
                lambda xs=xs: [F.linear(xs[w.shape[1]], w, b) for w, b in weights], 1))
            t_native = min(t_native, best_of(
                lambda xs=xs: [fn(xs[w.shape[1]]) for fn, (w, _) in zip(native, weights)], 1))
        print(f"{rows:5d} {t_mkl * 1e3:8.1f} {total_bytes / t_mkl / 1e9:6.1f} {t_native * 1e3:10.1f} "
              f"{total_bytes / t_native / 1e9:6.1f} {t_mkl / t_native:8.2f}x"
              + ("" if rows <= kernels.MAX_ROWS else "  (above MAX_ROWS: MKL in both)"))

    peaks = []
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        peaks.append(f"{n}² {2 * n**3 / best_of(lambda a=a, b=b: a @ b, 10) / 1e9:.0f}")
    print("float32 GEMM GFLOP/s: " + ", ".join(peaks))
    peaks = []
    for out, inp, rows in ((768, 768, 40), (3072, 768, 40), (1024, 1024, 1024)):
        fn, x = linear_at(torch.randn(out, inp), None, "int8"), torch.randn(rows, inp)
        peaks.append(f"{rows}x{inp}x{out} {2 * out * inp * rows / best_of(lambda f=fn, x=x: f(x), 20) / 1e9:.0f}")
    print("int8 dynamic GEMM GOPS: " + ", ".join(peaks))


if __name__ == "__main__":
    main()
