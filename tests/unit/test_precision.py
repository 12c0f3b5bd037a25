"""bf16 only where the hardware computes it: tmt.precision and the trainers' ``auto`` choice."""

from __future__ import annotations

import pytest
import torch

from tmt import precision
from tmt.errors import TmtError


@pytest.mark.parametrize(("amx", "avx512_bf16", "native"),
                         [(False, False, False), (True, False, True), (False, True, True)])
def test_auto_follows_the_cpu_bf16_units(monkeypatch, amx, avx512_bf16, native):
    monkeypatch.setattr(torch._C._cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch._C._cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert precision.native_bf16("cpu") is native
    assert precision.use_bf16("auto", "cpu") is native
    # the explicit choices do not look at the hardware
    assert precision.use_bf16("bf16", "cpu") is True
    assert precision.use_bf16("none", "cpu") is False


def test_unknown_choice_is_refused():
    with pytest.raises(TmtError, match="fp8"):
        precision.use_bf16("fp8", "cpu")


def test_autocast_context_changes_matmul_dtype_only_when_enabled():
    a, b = torch.randn(4, 8), torch.randn(8, 2)
    with precision.bf16_autocast(True, "cpu"):
        assert (a @ b).dtype == torch.bfloat16
    with precision.bf16_autocast(False, "cpu"):
        assert (a @ b).dtype == torch.float32
