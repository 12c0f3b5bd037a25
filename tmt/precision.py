"""Precision: bfloat16 autocast for training, and the weight precisions of inference.

bfloat16 autocast pays only where the hardware has bf16 arithmetic. On a CPU without AMX or
AVX-512 bf16 (e.g. an AVX2-only AMD EPYC), oneDNN emulates it: forward + backward of a
2048x256 -> 1024 linear took 3.45x and of a 3x3 convolution 11.8x the float32 time
(``python benchmarks/precision.py --repeat 5``, figures in benchmarks/README.md). Training options
therefore accept ``auto``: bfloat16 where it is native, float32 elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

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


WEIGHT_PRECISIONS = ("fp32", "int8", "bf16")
"""Weights of an inference model's linear layers: ``fp32`` (exact), ``int8`` (per-row int8,
activations quantized per call: dynamic quantization, CPU only) or ``bf16`` (fast only where
the device computes bf16 natively, see :func:`native_bf16`)."""

LinearFn = Callable[[Tensor], Tensor]


def check_weight_precision(precision: str, device: torch.device | str | None = None) -> None:
    """One-line errors for an unknown precision, or int8 on a device without int8 kernels."""
    if precision not in WEIGHT_PRECISIONS:
        raise TmtError(f"precision must be one of {', '.join(WEIGHT_PRECISIONS)}, not {precision!r}")
    if precision == "int8" and device is not None and torch.device(device).type != "cpu":
        raise TmtError(f"int8 decoding runs on CPU only (dynamic quantization), not on "
                       f"{torch.device(device)}: use --precision bf16 on a GPU")


def linear_at(weight: Tensor, bias: Tensor | None, precision: str) -> LinearFn:
    """``x ↦ x Wᵀ + b`` (``x``: ``(..., in)``) at ``precision``; fp32 reads ``weight`` in place,
    the others hold converted copies."""
    if precision == "fp32":
        return lambda x: F.linear(x, weight, bias)
    if precision == "bf16":
        w16 = weight.detach().to(torch.bfloat16)
        b16 = None if bias is None else bias.detach().to(torch.bfloat16)
        return lambda x: F.linear(x.to(torch.bfloat16), w16, b16).to(x.dtype)
    # int8: symmetric per-row scales; fbgemm's dynamic linear quantizes x per call and wants
    # reduce_range on AVX2 (7-bit activations, so that its int16 accumulation cannot overflow).
    w = weight.detach().float().cpu()
    scales = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-8).double()
    zeros = torch.zeros(w.shape[0], dtype=torch.long)
    qweight = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(
        qweight, None if bias is None else bias.detach().float().cpu())
    return lambda x: torch.ops.quantized.linear_dynamic(x, packed, True)


class LinearAt(nn.Module):
    """A drop-in for an ``nn.Linear`` at another weight precision (inference only)."""

    def __init__(self, linear: nn.Linear, precision: str) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.precision = precision
        self._fn = linear_at(linear.weight, linear.bias, precision)

    def forward(self, x: Tensor) -> Tensor:
        return self._fn(x)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, precision={self.precision}"


class Conv1dAt(nn.Module):
    """A drop-in for an unpadded, undilated ``nn.Conv1d`` at another weight precision: the
    input's windows unfolded into rows of a :func:`linear_at` product (int8 GEMM has no conv
    counterpart among the dynamic kernels)."""

    def __init__(self, conv: nn.Conv1d, precision: str) -> None:
        super().__init__()
        if conv.padding != (0,) or conv.dilation != (1,) or conv.groups != 1:
            raise ValueError("Conv1dAt takes unpadded, undilated, ungrouped convolutions")
        self.kernel, self.stride = conv.kernel_size[0], conv.stride[0]
        self.precision = precision
        weight = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1)  # (out, k x in)
        self._fn = linear_at(weight, conv.bias, precision)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) -> (B, C_out, T_out)
        windows = x.transpose(1, 2).unfold(1, self.kernel, self.stride)  # (B, T_out, C, k)
        rows = windows.transpose(2, 3).flatten(2)  # (B, T_out, k x C), time-major windows
        return self._fn(rows).transpose(1, 2)
