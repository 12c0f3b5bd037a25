"""The process state a training run saves and restores beside its weights: seeds, random
number generators, and a SIGTERM turned into a clean stop."""

from __future__ import annotations

import random
import signal
import threading
from typing import Any

import numpy as np
import torch


class StopRequest:
    """SIGTERM (e.g. ``kill``, a cluster's preemption) asks the loop to stop after the current
    step; the loop then writes a checkpoint. Ctrl-C raises KeyboardInterrupt as usual, unless
    ``signals`` includes SIGINT too (then it also stops between steps, never inside one)."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)) -> None:
        self.requested = False
        self._previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in signals}

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Torch's and Python's generator states, in a form ``torch.load(weights_only=True)`` reads."""
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "pyver": random.getstate()[0]}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["pyver"], tuple(state["python"]), None))
