"""Token store write and read speed on synthetic examples (shapes-corpus sized).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/token_store.py [--examples 20000]

Prints write examples/s, disk bytes per example, and sequential / random read examples/s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tmt.data.store import TokenExample, TokenStore, TokenStoreWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--shard-size", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    examples = [
        TokenExample(
            id=f"ex{i:07d}",
            speech=torch.from_numpy(rng.integers(0, 200, rng.integers(40, 90))),
            image=torch.from_numpy(rng.integers(0, 8192, 32)),
            text=torch.from_numpy(rng.integers(0, 30522, rng.integers(6, 16))),
        )
        for i in range(args.examples)
    ]
    root = Path(tempfile.mkdtemp(prefix="tmt-store-bench-"))
    try:
        start = time.perf_counter()
        with TokenStoreWriter(root, shard_size=args.shard_size) as writer:
            for ex in examples:
                writer.add(ex)
        write_s = time.perf_counter() - start
        disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

        start = time.perf_counter()
        store = TokenStore(root)
        open_s = time.perf_counter() - start
        start = time.perf_counter()
        n_seq = sum(1 for _ in store)
        seq_s = time.perf_counter() - start
        order = rng.permutation(len(store))
        start = time.perf_counter()
        for i in order:
            store[int(i)]
        rand_s = time.perf_counter() - start
    finally:
        shutil.rmtree(root)
    n = args.examples
    print(f"examples: {n}, shard size {args.shard_size}")
    print(f"write: {n / write_s:,.0f} examples/s; disk {disk / n:,.0f} bytes/example")
    print(f"open: {open_s * 1000:.0f} ms")
    print(f"read sequential: {n_seq / seq_s:,.0f} examples/s; random: {n / rand_s:,.0f} examples/s")


if __name__ == "__main__":
    main()
