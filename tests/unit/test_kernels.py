"""The native skinny-linear kernel against F.linear, and its fallbacks."""

import os

import pytest
import torch
from torch.nn import functional as F

from tmt import kernels

needs_kernels = pytest.mark.skipif(not kernels.enabled(),
                                   reason="native kernels not built here (no AVX2 or no C++ compiler)")


@needs_kernels
@pytest.mark.parametrize("out_features,in_features,with_bias", [(7, 16, True), (64, 24, False), (1, 8, True)])
def test_equals_f_linear_for_every_row_count(out_features, in_features, with_bias):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(out_features, in_features, generator=g)
    bias = torch.randn(out_features, generator=g) if with_bias else None
    fn = kernels.skinny_linear(weight, bias)
    assert fn is not None
    for rows in range(1, kernels.MAX_ROWS + 3):  # the kernel's passes of 5, then torch above MAX_ROWS
        x = torch.randn(rows, 1, in_features, generator=g)
        y = fn(x)
        assert y.shape == (rows, 1, out_features)
        torch.testing.assert_close(y, F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)


@needs_kernels
def test_a_non_contiguous_input_is_read_correctly():
    weight = torch.randn(16, 32)
    fn = kernels.skinny_linear(weight, None)
    x = torch.randn(32, 4).t()  # (4, 32), transposed view
    torch.testing.assert_close(fn(x), F.linear(x, weight), atol=1e-5, rtol=1e-5)


def test_weights_it_cannot_serve_get_none():
    assert kernels.skinny_linear(torch.randn(4, 12), None) is None  # in_features not a multiple of 8
    assert kernels.skinny_linear(torch.randn(4, 16, dtype=torch.float64), None) is None


def test_disabled_turns_them_off_within_only():
    before = kernels.enabled()
    with kernels.disabled():
        assert not kernels.enabled()
        assert kernels.skinny_linear(torch.randn(4, 16), None) is None
    assert kernels.enabled() == before


def test_a_failed_build_warns_and_falls_back_to_torch(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("TMT_KERNELS_DIR", str(blocker))  # the build directory cannot be made
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_module", None)
    monkeypatch.setattr(kernels, "cxx_compiler", lambda: "/usr/bin/g++")
    monkeypatch.setattr(kernels, "_cpu_supported", lambda: True)
    with pytest.warns(UserWarning, match="native kernels unavailable"):
        assert kernels.native_module() is None
    assert kernels.skinny_linear(torch.randn(4, 16), None) is None  # tried once, not again


def test_tmt_native_0_turns_them_off(monkeypatch):
    monkeypatch.setenv("TMT_NATIVE", "0")
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_module", None)
    assert not kernels.enabled()


def test_the_ninja_package_is_found_when_the_environment_is_not_activated(monkeypatch):
    ninja = pytest.importorskip("ninja")
    monkeypatch.setenv("PATH", "/nonexistent")
    kernels._put_ninja_on_path()
    kernels._put_ninja_on_path()  # once only
    assert os.environ["PATH"].split(os.pathsep) == [str(ninja.BIN_DIR), "/nonexistent"]
