"""The learning-rate schedule of every trainer: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math


def warmup_cosine(step: int, *, warmup: int, total: int, floor: float) -> float:
    """The multiplier of the peak learning rate at ``step`` (0-based).

    Rises linearly to 1 over ``warmup`` steps (the first step already trains, at 1/warmup), then
    follows half a cosine down to ``floor`` at ``total`` steps and stays there."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (1.0 - floor) * cosine
