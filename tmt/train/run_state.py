"""The process state a training run saves and restores beside its weights: seeds, random
number generators, a signal turned into a stop at a step boundary, and the checkpoint of a run
that a rerun of the same command resumes from."""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch

from tmt.errors import TmtError

if TYPE_CHECKING:
    from tmt.train.distributed import Dist


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


def random_state(rng: random.Random) -> dict[str, Any]:
    """A ``random.Random``'s state in a form ``torch.load(weights_only=True)`` reads."""
    version, internal, gauss = rng.getstate()
    return {"version": version, "internal": list(internal), "gauss": gauss}


def set_random_state(rng: random.Random, state: dict[str, Any]) -> None:
    rng.setstate((state["version"], tuple(state["internal"]), state["gauss"]))


class StepStop:
    """SIGTERM and SIGINT (Ctrl-C) stop a codec trainer's loop at a step boundary.

    Inside ``with StepStop() as stop:`` the loop asks ``stop()`` before each step; once it is
    true, the loop writes the checkpoint it writes periodically and ends with
    :meth:`interrupt` (``tmt`` exits with code 130), so a rerun resumes exactly there. Under
    torchrun every rank must ask at the same step: the ranks' flags are summed, so that all
    stop at the same step even when only one was signalled (none waits in a collective)."""

    def __init__(self, dist: Dist | None = None, device: str | torch.device = "cpu") -> None:
        self.dist, self.device = dist, device
        self.stopped = False
        self._request: StopRequest | None = None

    def __enter__(self) -> StepStop:
        self._request = StopRequest((signal.SIGTERM, signal.SIGINT))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._request is not None:
            self._request.restore()

    def __call__(self) -> bool:
        requested = self._request is not None and self._request.requested
        if self.dist is not None and self.dist.world_size > 1:
            flag = torch.tensor([float(requested)], device=self.device)
            requested = bool(self.dist.sum(flag).item() > 0)
        self.stopped = self.stopped or requested
        return self.stopped

    def interrupt(self, step: int, checkpoint: str | Path | None) -> NoReturn:
        message = (f"stopped at step {step}; rerun to resume from {checkpoint}" if checkpoint
                   else f"stopped at step {step} (no checkpoint kept)")
        if self.dist is None or self.dist.is_main:
            print(message, flush=True)
        raise KeyboardInterrupt(message)


def run_options(options: Any, resumable: tuple[str, ...]) -> dict[str, Any]:
    """A trainer's options (a dataclass) as plain data, without the ``resumable`` fields (those
    a rerun may change, e.g. the step count or the device): what makes a checkpoint this run's."""
    plain = json.loads(json.dumps(dataclasses.asdict(options), default=str))
    return {k: v for k, v in plain.items() if k not in resumable}


def load_checkpoint(path: Path, run: dict[str, Any],
                    map_location: str | torch.device | None = None) -> dict[str, Any] | None:
    """The training state saved at ``path`` with ``"run": run`` (None when there is none); a
    checkpoint of another run (other options, see :func:`run_options`) is one TmtError."""
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=True, map_location=map_location)
    saved = state.get("run", {})
    differ = sorted(k for k in {*saved, *run} if saved.get(k) != run.get(k))
    if differ:
        flags = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)} (now {run.get(k)})" for k in differ)
        raise TmtError(f"{path} is the checkpoint of another run ({flags}): give another --work, "
                       "or delete it to start afresh")
    return dict(state)
