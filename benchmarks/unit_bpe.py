"""How much shorter unit BPE makes the speech sequences the translator reads and writes.

Learns merges (tmt.speech.unit_bpe.UnitBPE) on the unit sequences of a token store's train
split (every voice; a store written with a codec without BPE) for each vocabulary size, and
prints the mean length of the valid split's sequences in pieces against units, with the time
the merges took to learn and to apply.

    python benchmarks/unit_bpe.py --store work/store-shapes [--vocab-sizes 400 600 1000 1600]
        [--train-examples 8000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tmt.data.store import TokenStore
from tmt.speech.unit_bpe import UnitBPE


def speech_sequences(store: TokenStore, limit: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(store))[:limit]
    examples = (store[int(i)] for i in rows)
    return [ex.speech.numpy() for ex in examples if ex.speech is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="work/store-shapes")
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[400, 600, 1000, 1600])
    parser.add_argument("--train-examples", type=int, default=8000,
                        help="train sequences (random, seed 0) the merges are learned on")
    args = parser.parse_args()
    store = TokenStore(args.store)
    base = store.vocab_sizes["speech"]
    train = speech_sequences(store.split("train"), args.train_examples)
    valid = speech_sequences(store.split("valid"), len(store.split("valid")))
    units = float(np.mean([len(s) for s in valid]))
    print(f"{args.store}: {len(train)} train sequences, {len(valid)} valid; {base} units; "
          f"valid mean {units:.1f} units")
    print("| vocabulary | valid mean length | shorter by | learn | apply to valid |\n"
          "| ---: | ---: | ---: | ---: | ---: |")
    for size in args.vocab_sizes:
        start = time.perf_counter()
        bpe = UnitBPE.learn(train, base, size)
        learned = time.perf_counter() - start
        start = time.perf_counter()
        pieces = bpe.encode_many(valid)
        applied = time.perf_counter() - start
        mean = float(np.mean([len(p) for p in pieces]))
        print(f"| {bpe.vocab_size} | {mean:.1f} | {units / mean:.2f}x | {learned:.1f} s | {applied:.1f} s |")


if __name__ == "__main__":
    main()
