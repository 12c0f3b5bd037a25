"""Figures of merit for the image codec: reconstruction PSNR and codebook usage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (B, 3, H, W) tensors in [-1, 1] (peak-to-peak range 2)."""
    mse = (reconstruction.clamp(-1, 1) - target).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(4.0 / mse.clamp_min(1e-10))


@dataclass(frozen=True)
class CodebookUsage:
    """How the codes of a set of images spread over the codebook."""

    perplexity: float
    """exp(entropy) of the code histogram: the 'effective' number of codes in use."""
    used: int
    """Distinct codes that occur at least once."""
    share_used: float
    """``used / codebook_size``."""


def codebook_usage(ids: torch.Tensor, codebook_size: int) -> CodebookUsage:
    counts = torch.bincount(ids.flatten().long(), minlength=codebook_size).double()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    used = int((counts > 0).sum())
    return CodebookUsage(perplexity=math.exp(entropy), used=used, share_used=used / codebook_size)
