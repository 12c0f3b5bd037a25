"""Recipe step: learn unit BPE on a corpus's train utterances and add it to a speech codec.

    python -m tmt.speech.fit_bpe --corpus DIR --codec tokenizers/speech --vocab-size 1000

The utterances of ``--examples`` random train examples (every voice, or with ``--voices input``
only those in the random input voices) are tokenized into units by the codec's tokenizer; the
merges (:class:`tmt.speech.unit_bpe.UnitBPE`) are learned on them and written into the codec
directory (``bpe.json``, ``"bpe": true`` in its config). From then on the codec encodes to
pieces and decodes pieces.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tmt.errors import TmtError
from tmt.speech.codec import SpeechCodec
from tmt.speech.corpus import read_manifest
from tmt.speech.unit_bpe import UnitBPE

VOICES = ("all", "input")
"""Whose utterances the merges are learned on. Half of a tmt-shapes corpus's utterances are in
its one output voice, so merges learned on all of them fit that voice: 1 000 pieces shorten its
valid utterances 4.1x and the random input voices' 1.5-2.3x. Learned on the input voices only,
every voice is shortened alike (``python benchmarks/unit_bpe.py --corpus ...``; the table is in
benchmarks/README.md, "Unit BPE")."""


def train_utterances(corpus: str | Path, examples: int, seed: int, voices: str = "all") -> list[Path]:
    """The utterances of ``examples`` random train examples of a tmt-shapes corpus: in every
    voice (``voices="all"``) or in the random input voices only (``"input"``)."""
    if voices not in VOICES:
        raise TmtError(f"voices must be one of {', '.join(VOICES)} (got {voices!r})")
    items = [it for it in read_manifest(corpus) if it.split == "train"]
    ids = sorted({it.example_id for it in items})
    if not ids:
        raise TmtError(f"no train utterances in {corpus}")
    chosen = set(random.Random(seed).sample(ids, min(examples, len(ids))))
    return [it.path for it in items
            if it.example_id in chosen and (voices == "all" or not it.is_output_voice)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, help="tmt-shapes corpus directory")
    p.add_argument("--codec", required=True,
                   help="speech codec directory; the merges are added to it (bpe.json)")
    p.add_argument("--vocab-size", type=int, default=1000, help="units + merged pieces")
    p.add_argument("--examples", type=int, default=4000,
                   help="train examples whose utterances (in the --voices) the merges are learned on")
    p.add_argument("--voices", choices=VOICES, default="all",
                   help="learn on the utterances in every voice, or in the random input voices only")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    codec = SpeechCodec.load(args.codec)
    if codec.bpe is not None:
        raise TmtError(f"{args.codec} already has unit BPE ({codec.vocab_size} pieces)")
    paths = train_utterances(args.corpus, args.examples, args.seed, args.voices)
    t0 = time.perf_counter()
    units: list[torch.Tensor] = []
    for start in tqdm(range(0, len(paths), 16), desc="units", unit="batch"):
        units.extend(codec.tokenizer.encode_batch(paths[start : start + 16]))
    t1 = time.perf_counter()
    bpe = UnitBPE.learn(units, codec.tokenizer.vocab_size, args.vocab_size)
    t2 = time.perf_counter()
    codec.with_bpe(bpe).save(args.codec)
    before = float(np.mean([len(u) for u in units]))
    after = float(np.mean([len(x) for x in bpe.encode_many(units)]))
    print(f"{args.codec}: {bpe.vocab_size} pieces ({len(bpe.merges)} merges) from {len(units)} "
          f"utterances; mean length {before:.1f} units -> {after:.1f} pieces; units "
          f"{t1 - t0:.0f} s, merges {t2 - t1:.0f} s")


if __name__ == "__main__":
    main()
