"""Unit noise: speech units corrupted the way a unit extractor errs on a voice it never heard.

A translator trained only on the units its speech tokenizer gives the training voices meets, on
a new voice, units of which a fifth or more are wrong (substituted, missing or extra; the unit
normalizer's 16-27% on held-out voices, ``recipes/shapes/README.md``). Training the speech-source
directions on corrupted copies teaches the translator to read through such errors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def corrupt_units(units: Tensor, rate: float, vocab_size: int, rng: np.random.Generator) -> Tensor:
    """A copy of ``units`` (1-D unit ids in ``[0, vocab_size)``) where each unit is, with chance
    ``rate / 3`` each, replaced by a random unit, dropped, or followed by an inserted random unit;
    runs of one unit are then merged, as the speech tokenizer merges them. Never empty: an
    utterance that would lose every unit is returned unchanged."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"unit noise rate must be in [0, 1], not {rate}")
    if rate == 0.0 or units.numel() == 0:
        return units
    values = units.detach().cpu().numpy().astype(np.int64, copy=True)
    draw = rng.random(len(values))
    substituted = draw < rate / 3
    dropped = (draw >= rate / 3) & (draw < 2 * rate / 3)
    inserted = (draw >= 2 * rate / 3) & (draw < rate)
    values[substituted] = rng.integers(0, vocab_size, int(substituted.sum()))
    repeats = np.where(dropped, 0, 1 + inserted.astype(np.int64))
    out = np.repeat(values, repeats)
    last = np.cumsum(repeats) - 1  # where each unit's last copy landed
    out[last[inserted]] = rng.integers(0, vocab_size, int(inserted.sum()))
    if len(out) == 0:
        return units
    out = out[np.concatenate(([True], out[1:] != out[:-1]))]
    return torch.from_numpy(out).to(units.device, units.dtype)
