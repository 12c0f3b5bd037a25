"""Mixed precision for training: does this device run bfloat16 natively, and the autocast context.

bfloat16 autocast pays only where the hardware has bf16 arithmetic. On a CPU without AMX or
AVX-512 bf16 (e.g. an AVX2-only AMD EPYC), oneDNN emulates it: forward + backward of a
2048x256 -> 1024 linear took 3.45x and of a 3x3 convolution 11.8x the float32 time
(``python benchmarks/precision.py --repeat 5``, figures in benchmarks/README.md). Training options
therefore accept ``auto``: bfloat16 where it is native, float32 elsewhere.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from tmt.errors import TmtError

CHOICES = ("none", "bf16", "auto")
"""``none``: float32 throughout; ``bf16``: bfloat16 autocast; ``auto``: bf16 where native."""


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes in bfloat16 natively (CPU: AMX tiles or AVX-512 bf16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = torch._C._cpu
        return bool(cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported())
    return False


def use_bf16(choice: str, device: torch.device | str) -> bool:
    """Resolve a precision choice (one of ``CHOICES``) for ``device``."""
    if choice not in CHOICES:
        raise TmtError(f"precision must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "auto":
        return native_bf16(device)
    return choice == "bf16"


def bf16_autocast(enabled: bool, device: torch.device | str) -> Any:
    """The training forward's context: bfloat16 autocast when ``enabled``, else nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
