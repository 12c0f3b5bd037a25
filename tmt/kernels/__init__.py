"""Native CPU kernels, built on first use (a C++ compiler and AVX2 + FMA needed; else unused).

``skinny_linear``: ``x Wᵀ + b`` for the few rows of a beam's decoder step. MKL's sgemm streams
the weights of a 5-row product at about 7 GB/s on one thread of this project's machine, less
than half of its 1-row rate; this kernel reads a pair-interleaved copy of the weights once for
every row of ``x``, at 2.2x that rate (three quarters of a plain read; ``python
benchmarks/skinny_linear.py``, figures in benchmarks/README.md). Its sums run in another order
than MKL's: float32 results agree to rounding, not bit for bit.

The build (about 30 s, once per source text, installation and torch) goes to
``$TMT_KERNELS_DIR`` (default ``~/.cache/tmt/kernels``); the ops are
``torch.ops.tmt.skinny_pack`` / ``skinny_linear``. ``TMT_NATIVE=0`` turns the kernels off.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from tmt.compiling import cxx_compiler

_SOURCE = Path(__file__).with_name("skinny_linear.cpp")
MAX_ROWS = 8
"""Up to this many rows of ``x`` the kernel runs; above, MKL's GEMM (compute-bound there) does."""

_lock = threading.Lock()
_module: Any = None
_tried = False
_off = 0  # depth of disabled() contexts


def _cpu_supported() -> bool:
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def native_module() -> Any:
    """The compiled ops (``torch.ops.tmt``), building them on first call; ``None`` where they
    cannot be used."""
    global _module, _tried
    if _off:
        return None
    with _lock:
        if _tried:
            return _module
        _tried = True
        if os.environ.get("TMT_NATIVE", "1") == "0" or not _cpu_supported() or cxx_compiler() is None:
            return None
        # one build per source text, source path and torch: two installations sharing the cache
        # (a checkout and a wheel) would otherwise rebuild each other's
        key = _SOURCE.read_bytes() + f"{_SOURCE.resolve()}|{torch.__file__}|{torch.__version__}".encode()
        name = "tmt_skinny_" + hashlib.sha256(key).hexdigest()[:12]
        root = os.environ.get("TMT_KERNELS_DIR") or Path.home() / ".cache" / "tmt" / "kernels"
        build = Path(root) / name
        try:
            library = build / f"{name}.so"
            if library.exists():  # built before: load it (ninja's up-to-date check costs ~0.5 s)
                torch.ops.load_library(str(library))
            else:
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA"
                from torch.utils import cpp_extension

                _put_ninja_on_path()

                build.mkdir(parents=True, exist_ok=True)
                print("tmt: building the native CPU kernels (once, about 30 s) ...", file=sys.stderr,
                      flush=True)
                cpp_extension.load(name=name, sources=[str(_SOURCE)], build_directory=str(build),
                                   extra_cflags=["-O3", "-mavx2", "-mfma"], is_python_module=False,
                                   verbose=False)
            _module = torch.ops.tmt
        except Exception as error:  # noqa: BLE001 — any build failure means: use torch's kernels
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            warnings.warn(f"tmt: native kernels unavailable ({reason}); using torch's", stacklevel=2)
            _module = None
        return _module


def _put_ninja_on_path() -> None:
    """torch runs ``ninja`` from ``PATH``; the ``ninja`` package's binary sits in the environment's
    scripts directory, which is not on ``PATH`` when the environment isn't activated."""
    try:
        import ninja  # type: ignore[import-untyped]
    except ImportError:
        return
    directory = str(ninja.BIN_DIR)
    if directory not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = directory + os.pathsep + os.environ.get("PATH", "")


def enabled() -> bool:
    """Whether products built now would use the native kernels (building them if needed)."""
    return native_module() is not None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within: build products on torch's kernels only (for comparisons; not thread-safe)."""
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1


def skinny_linear(weight: Tensor, bias: Tensor | None) -> Callable[[Tensor], Tensor] | None:
    """``x ↦ x Wᵀ + b`` through the native kernel when ``x`` has at most :data:`MAX_ROWS` rows
    (``F.linear`` otherwise), or ``None`` where the kernel cannot serve this weight (not a
    float32 CPU tensor, in_features not a multiple of 8, no kernel built). Holds a packed copy."""
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or weight.shape[1] % 8:
        return None
    ops = native_module()
    if ops is None:
        return None
    packed = ops.skinny_pack(weight.detach().contiguous())
    out_features = weight.shape[0]
    b = torch.empty(0) if bias is None else bias.detach().float().contiguous()

    def apply(x: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] > MAX_ROWS or x.dtype != torch.float32 or x.requires_grad:
            return F.linear(x, weight, bias)
        y = ops.skinny_linear(rows.contiguous(), packed, b, out_features)
        return y.view(*x.shape[:-1], out_features)

    return apply
