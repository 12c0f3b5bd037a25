"""Unit BPE: merges of speech units learned on a corpus's train utterances, added to a codec.

    tmt codec train unit-bpe --corpus DIR --codec tmt/assets/codecs/speech --vocab-size 1000

The utterances of ``examples`` random train examples (every voice, or with ``voices="input"``
only those in the random input voices) are tokenized into units by the codec's tokenizer; the
merges (:class:`tmt.speech.unit_bpe.UnitBPE`) are learned on them and written into the codec
directory (``bpe.json``, ``"bpe": true`` in its config). From then on the codec encodes to
pieces and decodes pieces.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tmt.errors import TmtError
from tmt.speech.codec import SpeechCodec
from tmt.speech.unit_bpe import UnitBPE
from tmt.train.codecs.speech_data import read_manifest

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


@dataclass(kw_only=True)
class UnitBpeOptions:
    """A unit BPE fit."""

    corpus: Path
    """tmt-shapes corpus directory."""
    codec: Path
    """Speech codec directory; the merges are added to it (``bpe.json``)."""
    vocab_size: int = 1000
    """Units + merged pieces."""
    examples: int = 4000
    """Train examples whose utterances (in the ``voices``) the merges are learned on."""
    voices: str = "all"
    """Learn on the utterances in every voice (``all``), or in the random input voices only
    (``input``)."""
    seed: int = 0


def fit_unit_bpe(options: UnitBpeOptions) -> UnitBPE:
    """Learn the merges as ``options`` say and save the codec with them."""
    codec = SpeechCodec.load(options.codec)
    if codec.bpe is not None:
        raise TmtError(f"{options.codec} already has unit BPE ({codec.vocab_size} pieces)")
    paths = train_utterances(options.corpus, options.examples, options.seed, options.voices)
    t0 = time.perf_counter()
    units: list[torch.Tensor] = []
    for start in tqdm(range(0, len(paths), 16), desc="units", unit="batch"):
        units.extend(codec.tokenizer.encode_batch(paths[start : start + 16]))
    t1 = time.perf_counter()
    bpe = UnitBPE.learn(units, codec.tokenizer.vocab_size, options.vocab_size)
    t2 = time.perf_counter()
    codec.with_bpe(bpe).save(options.codec)
    before = float(np.mean([len(u) for u in units]))
    after = float(np.mean([len(x) for x in bpe.encode_many(units)]))
    print(f"{options.codec}: {bpe.vocab_size} pieces ({len(bpe.merges)} merges) from {len(units)} "
          f"utterances; mean length {before:.1f} units -> {after:.1f} pieces; units "
          f"{t1 - t0:.0f} s, merges {t2 - t1:.0f} s")
    return bpe
