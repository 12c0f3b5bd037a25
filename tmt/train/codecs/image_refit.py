"""Retrain, and optionally resize, an image codec's pixel decoder on its frozen codes.

The encoder, Q-Former and codebook of ``--codec`` are kept exactly, so every image keeps its 32
ids: token stores and translators made with the codec stay valid. Only the decoder (code
embeddings → pixels) learns, with the codec's pixel and perceptual losses. It continues from the
old decoder's weights, or starts afresh when ``--override`` resizes it. The ids of the training
images are computed once and cached in ``--work``, so a step never runs the encoder on them.

    tmt codec train image-refit --codec tmt/assets/codecs/image --corpus work/shapes-20k \\
        --out work/codec-wide --override '{"decoder_channels": [64, 128]}' --steps 3000

Rerunning the same command resumes from ``work``/checkpoint.pt (written every
``checkpoint_every`` steps, and after the current step on SIGTERM or Ctrl-C).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from tmt import compiling
from tmt.errors import TmtError
from tmt.files import save_torch
from tmt.image.codec import ImageCodec
from tmt.image.config import ImageCodecConfig
from tmt.image.io import to_unit_range
from tmt.precision import bf16_autocast
from tmt.train.codecs.image_alignment import perceptual_loss
from tmt.train.codecs.image_data import cached_images, cached_trunk_features, image_set_name
from tmt.train.codecs.image_steps import (
    TrainOptions,
    codec_optimizer,
    evaluate,
    lr_at,
    reconstruction_loss,
    resolve_precision,
    save_checkpoint,
    validate_and_checkpoint,
)
from tmt.train.run_state import StepStop
from tmt.train.sampling import batch_indices

DECODER_FIELDS = frozenset(
    {"latent_channels", "decoder_channels", "decoder_layers_per_block", "decoder_norm_groups",
     "bridge_dim", "bridge_layers", "bridge_heads"}
)
"""Config fields that shape only the decoder; every other field would change the codes."""


@dataclass(kw_only=True)
class RefitOptions:
    """A decoder refit: the codec whose codes are kept, the data, the outputs, how it trains."""

    codec: Path
    """The image codec whose encoder, Q-Former and codebook are kept."""
    corpus: Path
    """Corpus directory (``manifest.jsonl`` + images)."""
    out: Path
    """Where the codec with the new decoder is saved."""
    work: Path = Path("work/image-decoder-refit")
    """The checkpoint and the cached ids, and the image caches unless ``image_cache`` is given."""
    image_cache: Path | None = None
    """Directory of the decoded-image caches, shareable between runs."""
    override: dict[str, Any] = field(default_factory=dict)
    """Decoder fields, e.g. ``{"decoder_channels": [64, 128]}`` (a resized decoder starts
    afresh; without it the old decoder continues)."""
    limit: int | None = None
    """Use only the first N training images."""
    threads: int = 2
    """Torch CPU threads (0: torch's default)."""
    device: str = "cpu"
    bf16: str = "none"
    """``none``, ``bf16`` or ``auto`` (where the device computes bfloat16 natively)."""
    compile: str = "no"
    """``no``, ``yes`` or ``auto`` (where a C++ compiler is found)."""
    train: TrainOptions = field(
        default_factory=lambda: TrainOptions(steps=3000, batch_size=32, perceptual_weight=0.3)
    )
    """The step's hyper-parameters (its ``bf16`` and ``compile`` are set from the choices above)."""


def with_new_decoder(codec: ImageCodec, override: dict[str, Any]) -> tuple[ImageCodec, bool]:
    """A copy of ``codec`` whose decoder follows ``override``; True when the decoder was kept
    (no size change), False when it starts afresh. Fields outside the decoder are refused."""
    codes_fields = sorted(set(override) - DECODER_FIELDS)
    if codes_fields:
        raise TmtError(
            f"refit_decoder only changes the decoder; {', '.join(codes_fields)} would change the "
            f"codes (decoder fields: {', '.join(sorted(DECODER_FIELDS))})"
        )
    config = ImageCodecConfig.from_dict({**codec.config.to_dict(), **override})
    new = ImageCodec(config, device=codec.device)
    kept = config.to_dict() == codec.config.to_dict()
    state = {
        k: v for k, v in codec.state_dict().items() if kept or not k.startswith("decoder.")
    }
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("decoder.") for k in missing), (missing, unexpected)
    return new, kept


class DecoderTrainer:
    """The decoder's optimiser and one step on (ids, images); the rest of the codec is frozen
    and in eval mode (its BatchNorm statistics and the codes never change)."""

    def __init__(self, codec: ImageCodec, opts: TrainOptions) -> None:
        self.codec, self.opts = codec, opts
        codec.requires_grad_(False)
        codec.decoder.requires_grad_(True)
        self.optimizer = codec_optimizer(list(codec.decoder.named_parameters()), opts)
        self.step = 0
        self.losses = compiling.maybe_compile(self._losses, opts.compile)

    def train_step(
        self, ids: torch.Tensor, images: torch.Tensor, reference: torch.Tensor | None = None
    ) -> dict[str, float]:
        """ids (B, Q) and their images in [-1, 1]; reference: the images' trunk feature maps
        (:func:`trunk_features`), else computed here."""
        self.codec.eval()
        self.codec.decoder.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.opts)
        loss, perceptual = self.losses(ids, images, reference)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.codec.decoder.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        return {"loss": loss.item(), "perceptual": perceptual.item()}

    def _losses(
        self, ids: torch.Tensor, images: torch.Tensor, reference: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's forward and the weighted loss (what ``compile`` compiles), and the
        perceptual part."""
        with bf16_autocast(self.opts.bf16, images.device):
            reconstruction = self.codec.decoder(self.codec.quantizer.lookup(ids)).float()
            rec = reconstruction_loss(reconstruction, images, self.opts.fg_weight)
            perceptual = torch.zeros(())
            if self.opts.perceptual_weight > 0:
                perceptual = perceptual_loss(self.codec, reconstruction, images, reference)
            return rec + self.opts.perceptual_weight * perceptual, perceptual

    def state_dict(self) -> dict[str, Any]:
        return {
            "decoder": self.codec.decoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.codec.decoder.load_state_dict(state["decoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        torch.set_rng_state(state["torch_rng"])


@torch.inference_mode()
def image_ids(codec: ImageCodec, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """uint8 images (N, 3, H, W) → their ids (N, Q) under the frozen codec."""
    codec.eval()
    return torch.cat(
        [
            codec.quantize(to_unit_range(images[i : i + batch_size]).to(codec.device))[1].cpu()
            for i in range(0, len(images), batch_size)
        ]
    )


def refit_decoder(options: RefitOptions) -> ImageCodec:
    """Retrain the decoder of ``options.codec`` on its frozen codes; saves to ``options.out``."""
    torch.manual_seed(options.train.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    bf16, compiled = resolve_precision(options.bf16, options.compile, options.device)
    opts = dataclasses.replace(options.train, bf16=bf16, compile=compiled)
    override = options.override
    source = ImageCodec.load(options.codec, device=options.device)
    codec, kept = with_new_decoder(source, override)
    del source
    work, out, corpus = Path(options.work), Path(options.out), Path(options.corpus)
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(options.image_cache or work)
    train_images = cached_images(corpus, "train", codec.image_size, cache, options.limit)
    valid_images = cached_images(corpus, "valid", codec.image_size, cache, 512)
    ids_cache = work / "train-ids.pt"
    ids = torch.load(ids_cache, weights_only=True) if ids_cache.is_file() else None
    # a cache from other images or another codec is recomputed (its first ids would differ)
    if ids is None or len(ids) != len(train_images) or not torch.equal(
        ids[:64], image_ids(codec, train_images[:64])
    ):
        ids = image_ids(codec, train_images)
        save_torch(ids, ids_cache)
    # the perceptual loss's view of every training image, computed once instead of every step
    reference = None
    if opts.perceptual_weight > 0:
        reference = cached_trunk_features(codec, train_images, opts.bf16, cache,
                                          image_set_name("train", codec.image_size, options.limit))

    trainer = DecoderTrainer(codec, opts)
    checkpoint, config = work / "checkpoint.pt", codec.config.to_dict()
    elapsed = 0.0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True, map_location=options.device)
        if state.get("config") != config:
            raise TmtError(f"{checkpoint} is a different decoder; use another --work")
        trainer.load_state_dict(state)
        elapsed = state.get("elapsed", 0.0)
        print(f"resumed from {checkpoint} at step {trainer.step}")

    from tqdm import tqdm

    n = len(train_images)
    bar = tqdm(total=opts.steps, initial=trainer.step, desc="image decoder", unit="step", mininterval=10)
    start = time.time() - elapsed
    state = lambda: {**trainer.state_dict(), "config": config}  # noqa: E731
    with StepStop() as stop:  # SIGTERM / Ctrl-C: checkpoint after the current step
        while trainer.step < opts.steps and not stop():
            index = batch_indices(n, opts.batch_size, trainer.step, opts.seed)
            stats = trainer.train_step(
                ids[index].to(options.device), to_unit_range(train_images[index]).to(options.device),
                None if reference is None else reference[index].to(options.device),
            )
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.4f}", perc=f"{stats['perceptual']:.3f}", refresh=False)
            validate_and_checkpoint(trainer.step, opts, codec, valid_images, bar.write, state,
                                    checkpoint, time.time() - start)
        if stop.stopped:
            bar.close()
            save_checkpoint(state, checkpoint, time.time() - start)
            stop.interrupt(trainer.step, checkpoint)
    bar.close()
    seconds = time.time() - start
    figures = evaluate(codec, valid_images)
    codec.config.extra = {
        **codec.config.extra,
        "decoder_refit": {
            "recipe": "tmt codec train image-refit",
            "codec": str(options.codec),
            "override": override,
            "continued_decoder": kept,
            "options": asdict(opts),
            "train_images": n,
            "train_seconds": round(seconds, 1),
            "threads": torch.get_num_threads(),
            "valid": {k: round(v, 4) for k, v in figures.items()},
        },
    }
    codec.save(out)
    print(f"saved {out} after {seconds / 60:.1f} min: valid psnr={figures['psnr']:.3f}")
    return codec
