"""torch.compile of the image trainers' steps: tmt.compiling's choices, and the compiled step is
the eager step."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_image_semantic import SMALL as SEMANTIC_SMALL

from tmt import compiling
from tmt.errors import TmtError
from tmt.image.codec import ImageCodec
from tmt.image.config import ImageCodecConfig
from tmt.train.codecs.image_alignment import trunk_features
from tmt.train.codecs.image_refit import DecoderTrainer
from tmt.train.codecs.image_steps import Trainer, TrainOptions

SMALL = {**SEMANTIC_SMALL, "image_size": 16}  # the stage tests' small CNN codec, 16x16 images


def test_auto_compiles_only_with_a_cxx_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiling, "cxx_compiler", lambda: "/usr/bin/g++")
    assert compiling.use_compile("auto", "cpu") is True
    assert compiling.use_compile("yes", "cpu") is True
    assert compiling.use_compile("no", "cpu") is False
    monkeypatch.setattr(compiling, "cxx_compiler", lambda: None)
    assert compiling.use_compile("auto", "cpu") is False
    with pytest.raises(TmtError, match="C\\+\\+ compiler"):
        compiling.use_compile("yes", "cpu")
    with pytest.raises(TmtError, match="maybe"):
        compiling.use_compile("maybe", "cpu")


@pytest.mark.parametrize("backend", [
    "aot_eager",  # traced as torch.compile traces, run eagerly: seconds
    pytest.param("inductor", marks=[  # what the trainers run: ~100 s of g++ on a cold cache
        pytest.mark.slow,
        pytest.mark.skipif(compiling.cxx_compiler() is None, reason="needs a C++ compiler")]),
])
def test_compiled_steps_are_the_eager_steps(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 2 (frozen trunk, perceptual loss, cached features) and the decoder refit, two steps
    each from the same weights, eager and compiled: the same losses and the same weights after."""
    monkeypatch.setattr(compiling, "BACKEND", backend)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        images = (torch.rand(6, 3, 16, 16) * 255).to(torch.uint8)
        batch = images.float() / 127.5 - 1
        opts = TrainOptions(steps=4, batch_size=6, freeze_encoder=True, perceptual_weight=1.0)
        codec = ImageCodec(ImageCodecConfig.from_dict(SMALL))
        features = trunk_features(codec, images)
        ids = codec.quantize(batch)[1]
        runs = []
        for compiled in (False, True):
            stage2 = ImageCodec(codec.config)
            stage2.load_state_dict(codec.state_dict())
            refit = ImageCodec(codec.config)
            refit.load_state_dict(codec.state_dict())
            run_opts = dataclasses.replace(opts, compile=compiled)
            trainer, decoder_trainer = Trainer(stage2, run_opts), DecoderTrainer(refit, run_opts)
            stats = [(trainer.train_step(batch, features=features),
                      decoder_trainer.train_step(ids, batch, features)) for _ in range(2)]
            runs.append((stats, stage2.state_dict(), refit.state_dict()))
    finally:
        torch.set_num_threads(threads)
    (eager, eager_stage2, eager_refit), (compiled, compiled_stage2, compiled_refit) = runs
    for (eager_step, eager_refit_step), (step, refit_step) in zip(eager, compiled):
        for key in ("loss", "rec", "vq", "perceptual", "psnr"):
            assert step[key] == pytest.approx(eager_step[key], rel=1e-4, abs=1e-6), key
        assert refit_step["loss"] == pytest.approx(eager_refit_step["loss"], rel=1e-4)
    for eager_weights, weights in ((eager_stage2, compiled_stage2), (eager_refit, compiled_refit)):
        for name, value in eager_weights.items():
            assert torch.allclose(weights[name].float(), value.float(), rtol=1e-3, atol=1e-5), name
