"""Optional ``torch.compile`` of a training step's forward and loss.

The image codec's frozen-trunk trainers (stage 2, the decoder refit) spend their step in small
convolutions and pointwise ops, where TorchInductor's fused kernels pay: 1.27-1.32x on 1 CPU
thread, 1.07-1.13x on 2 (``python benchmarks/image_train_step.py``, figures in
benchmarks/README.md). Stage 1 (the trunk in training mode) and the translator did not gain.
Compiling costs up to a couple of minutes per process and needs a C++ compiler on the CPU, so
the trainers accept ``auto``: compile where one is found, else run eagerly.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TypeVar

import torch

from tmt.errors import TmtError

CHOICES = ("no", "yes", "auto")
"""``no``: eager; ``yes``: compiled (an error without a C++ compiler on a CPU); ``auto``: compiled
where it can be."""

BACKEND = "inductor"
"""``torch.compile``'s backend (the tests trace with ``aot_eager``, which compiles no C++)."""

F = TypeVar("F", bound=Callable[..., object])


def cxx_compiler() -> str | None:
    """The C++ compiler TorchInductor's CPU backend would call (``$CXX`` isn't consulted by it)."""
    return next((path for name in ("g++", "c++", "clang++") if (path := shutil.which(name))), None)


def use_compile(choice: str, device: torch.device | str) -> bool:
    """Resolve a compile choice (one of ``CHOICES``) for ``device``."""
    if choice not in CHOICES:
        raise TmtError(f"compile must be one of {', '.join(CHOICES)}, not {choice!r}")
    needs_cxx = torch.device(device).type == "cpu"
    if choice == "auto":
        return not needs_cxx or cxx_compiler() is not None
    if choice == "yes" and needs_cxx and cxx_compiler() is None:
        raise TmtError("torch.compile on the CPU needs a C++ compiler (apt-get install g++); "
                       "or train eagerly (--compile no)")
    return choice == "yes"


def maybe_compile(fn: F, enabled: bool) -> F:
    """``fn`` compiled by TorchInductor (fixed shapes: a trainer's batches are all alike) when
    ``enabled``, else ``fn`` itself."""
    return torch.compile(fn, dynamic=False, backend=BACKEND) if enabled else fn  # type: ignore[return-value]
