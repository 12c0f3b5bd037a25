"""Retrain, and optionally resize, an image codec's pixel decoder on its frozen codes.

The encoder, Q-Former and codebook of ``--codec`` are kept exactly, so every image keeps its 32
ids: token stores and translators made with the codec stay valid. Only the decoder (code
embeddings → pixels) learns, with the codec's pixel and perceptual losses. It continues from the
old decoder's weights, or starts afresh when ``--override`` resizes it. The ids of the training
images are computed once and cached in ``--work``, so a step never runs the encoder on them.

    python -m tmt.image.refit_decoder --codec tokenizers/image --corpus work/shapes-20k \\
        --out work/codec-wide --override '{"decoder_channels": [64, 128]}' --steps 3000

Rerunning the same command resumes from ``--work``/checkpoint.pt.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tmt import compiling
from tmt.cli_help import HelpFormatter
from tmt.errors import TmtError
from tmt.image.alignment import perceptual_loss
from tmt.image.cache import (
    add_image_cache_option,
    cached_images,
    cached_trunk_features,
    image_cache_dir,
    image_set_name,
)
from tmt.image.codec import ImageCodec
from tmt.image.config import ImageCodecConfig
from tmt.image.dataset import to_unit_range
from tmt.image.train import (
    TrainOptions,
    add_bf16_option,
    add_compile_option,
    batch_indices,
    bf16_from_args,
    codec_optimizer,
    compile_from_args,
    evaluate,
    lr_at,
    reconstruction_loss,
    run_cli,
    validate_and_checkpoint,
)
from tmt.precision import bf16_autocast

DECODER_FIELDS = frozenset(
    {"latent_channels", "decoder_channels", "decoder_layers_per_block", "decoder_norm_groups",
     "bridge_dim", "bridge_layers", "bridge_heads"}
)
"""Config fields that shape only the decoder; every other field would change the codes."""


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


def refit(args: argparse.Namespace) -> ImageCodec:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    opts = TrainOptions(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        fg_weight=args.fg_weight, perceptual_weight=args.perceptual_weight,
        checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        bf16=bf16_from_args(args, args.device),
        compile=compile_from_args(args, args.device),
    )
    try:
        override = json.loads(args.override) if args.override else {}
    except json.JSONDecodeError as error:
        raise TmtError(f"--override is not valid JSON: {error}") from None
    source = ImageCodec.load(args.codec, device=args.device)
    codec, kept = with_new_decoder(source, override)
    del source
    work, out, corpus = Path(args.work), Path(args.out), Path(args.corpus)
    work.mkdir(parents=True, exist_ok=True)
    cache = image_cache_dir(args)
    train_images = cached_images(corpus, "train", codec.image_size, cache, args.limit)
    valid_images = cached_images(corpus, "valid", codec.image_size, cache, 512)
    ids_cache = work / "train-ids.pt"
    ids = torch.load(ids_cache, weights_only=True) if ids_cache.is_file() else None
    # a cache from other images or another codec is recomputed (its first ids would differ)
    if ids is None or len(ids) != len(train_images) or not torch.equal(
        ids[:64], image_ids(codec, train_images[:64])
    ):
        ids = image_ids(codec, train_images)
        torch.save(ids, ids_cache)
    # the perceptual loss's view of every training image, computed once instead of every step
    reference = None
    if opts.perceptual_weight > 0:
        reference = cached_trunk_features(codec, train_images, opts.bf16, cache,
                                          image_set_name("train", codec.image_size, args.limit))

    trainer = DecoderTrainer(codec, opts)
    checkpoint, config = work / "checkpoint.pt", codec.config.to_dict()
    elapsed = 0.0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False, map_location=args.device)
        if state.get("config") != config:
            raise TmtError(f"{checkpoint} is a different decoder; use another --work")
        trainer.load_state_dict(state)
        elapsed = state.get("elapsed", 0.0)
        print(f"resumed from {checkpoint} at step {trainer.step}")

    from tqdm import tqdm

    n = len(train_images)
    bar = tqdm(total=opts.steps, initial=trainer.step, desc="image decoder", unit="step", mininterval=10)
    start = time.time() - elapsed
    while trainer.step < opts.steps:
        index = batch_indices(n, opts.batch_size, opts.seed, trainer.step)
        stats = trainer.train_step(
            ids[index].to(args.device), to_unit_range(train_images[index]).to(args.device),
            None if reference is None else reference[index].to(args.device),
        )
        bar.update(1)
        bar.set_postfix(loss=f"{stats['loss']:.4f}", perc=f"{stats['perceptual']:.3f}", refresh=False)
        validate_and_checkpoint(
            trainer.step, opts, codec, valid_images, bar.write,
            lambda: {**trainer.state_dict(), "config": config}, checkpoint, time.time() - start,
        )
    bar.close()
    seconds = time.time() - start
    figures = evaluate(codec, valid_images)
    codec.config.extra = {
        **codec.config.extra,
        "decoder_refit": {
            "recipe": "python -m tmt.image.refit_decoder",
            "codec": args.codec,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tmt.image.refit_decoder",
        description=(
            "Retrain (and optionally resize) an image codec's pixel decoder while its encoder "
            "and codebook stay fixed, so the codes, and the token stores and translators made "
            "with them, stay valid."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--codec", required=True, help="the image codec whose codes are kept")
    parser.add_argument("--corpus", required=True, help="corpus directory (manifest.jsonl + images)")
    parser.add_argument("--out", required=True, help="where the codec with the new decoder is saved")
    parser.add_argument("--work", default="work/image-decoder-refit", help="checkpoint and caches")
    add_image_cache_option(parser)
    add_bf16_option(parser)
    add_compile_option(parser)
    parser.add_argument(
        "--override", default="",
        help="JSON of decoder fields, e.g. '{\"decoder_channels\": [64, 128]}' (a resized "
        "decoder starts afresh; without it the old decoder continues)",
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=TrainOptions.lr)
    parser.add_argument("--fg-weight", type=float, default=TrainOptions.fg_weight)
    parser.add_argument("--perceptual-weight", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=TrainOptions.seed)
    parser.add_argument("--checkpoint-every", type=int, default=TrainOptions.checkpoint_every)
    parser.add_argument("--eval-every", type=int, default=TrainOptions.eval_every)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(refit, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
