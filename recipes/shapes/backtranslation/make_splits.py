"""Split tmt-shapes' train items into the back-translation demo's three disjoint sets.

    python recipes/shapes/backtranslation/make_splits.py --store work/store-shapes --out work/bt-shapes

writes ``OUT/ids-paired.txt``, ``OUT/ids-images.txt`` (used as unpaired images) and
``OUT/ids-speech-text.txt`` (used as speech–text pairs without images), chosen by a seeded
permutation of the train split, and ``OUT/store-paired``: the paired items' tokens (with their
input-voice utterances) plus the whole valid split, copied from the full token store.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tmt.data.readers import SHAPES_INPUT_VOICES
from tmt.data.store import TokenStore, TokenStoreWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="work/store-shapes")
    parser.add_argument("--out", default="work/bt-shapes")
    parser.add_argument("--paired", type=int, default=2000)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--speech-text", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = TokenStore(args.store)
    items = sorted(store.filter(split="train", source="shapes").ids)
    order = np.random.default_rng(args.seed).permutation(len(items))
    bounds = np.cumsum([0, args.paired, args.images, args.speech_text])
    if bounds[-1] > len(items):
        raise SystemExit(f"only {len(items)} train items, {bounds[-1]} requested")
    sets = {}
    for name, lo, hi in zip(("paired", "images", "speech-text"), bounds[:-1], bounds[1:]):
        sets[name] = sorted(items[i] for i in order[lo:hi])
        (out / f"ids-{name}.txt").write_text("\n".join(sets[name]) + "\n")

    # The paired store: the chosen items, their extra-voice utterances (ids "<item>.v<k>"),
    # and the valid split (validation loss during training).
    paired = set(sets["paired"])
    train = store.split("train")
    keep = [
        i for i, example_id in enumerate(train.ids)
        if example_id.split(".")[0] in paired
    ]
    with TokenStoreWriter(out / "store-paired", vocab_sizes=store.vocab_sizes) as writer:
        for view in (train.subset(keep), store.split("valid")):
            for example in view:
                if example.id not in writer:
                    writer.add(example)
    written = TokenStore(out / "store-paired").stats()
    print({k: len(v) for k, v in sets.items()}, written["splits"], written["sources"])
    assert SHAPES_INPUT_VOICES in written["sources"]


if __name__ == "__main__":
    main()
