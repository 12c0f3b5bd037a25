"""`tmt codec train image-semantic | image | image-refit`: the image codec's three stages."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tmt.cli.help import HelpFormatter
from tmt.errors import TmtError

PRESETS = ("paper", "tiny")
"""tmt.image.config.PRESETS, repeated so that ``tmt --help`` imports nothing heavy."""
BF16_CHOICES = ("none", "bf16", "auto")
COMPILE_CHOICES = ("no", "yes", "auto")


def parse_json(text: str, flag: str) -> dict[str, Any]:
    """A JSON object given on the command line ('' is empty), or a one-line error."""
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        raise TmtError(f"{flag} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise TmtError(f"{flag} must be a JSON object, e.g. '{{\"code_dim\": 16}}'")
    return value


def _add_common(p: argparse.ArgumentParser, work: str, threads: int, compile: bool = True) -> None:
    """Data, outputs and precision options of every image stage."""
    p.add_argument("--corpus", type=Path, required=True, help="corpus directory (manifest.jsonl + images)")
    p.add_argument("--work", type=Path, default=Path(work), help="checkpoint and image caches")
    p.add_argument("--image-cache", type=Path, default=None,
                   help="directory of the decoded-image caches, shareable between runs (default: --work)")
    p.add_argument("--bf16", nargs="?", const="bf16", default="none", choices=BF16_CHOICES,
                   help="forward passes under bfloat16 autocast (float32 weights): '--bf16' always, "
                   "'--bf16 auto' only where the device computes bf16 natively (CPU: AMX or AVX-512 "
                   "bf16; elsewhere it is emulated and many times slower)")
    if compile:
        p.add_argument("--compile", default="no", choices=COMPILE_CHOICES,
                       help="run each step's forward and loss compiled by torch.compile: the same "
                       "step, 1.1x faster on 2 CPU threads and 1.3x on 1 after a minute or two of "
                       "compiling; 'auto' where a C++ compiler is found")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--threads", type=int, default=threads, help="torch CPU threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _step_options(args: argparse.Namespace) -> Any:
    from tmt.train.codecs.image_steps import TrainOptions

    keys = ("steps", "batch_size", "lr", "seed", "fg_weight", "perceptual_weight",
            "checkpoint_every", "eval_every", "caption_weight", "caption_loss", "freeze_encoder")
    return TrainOptions(**{k: getattr(args, k) for k in keys if hasattr(args, k)})


def _cmd_semantic(args: argparse.Namespace) -> None:
    from tmt.train.codecs.image_semantic import SemanticOptions, train_image_semantic

    train_image_semantic(SemanticOptions(
        corpus=args.corpus, out=args.out, work=args.work, image_cache=args.image_cache,
        bf16=args.bf16, preset=args.preset, override=parse_json(args.override, "--override"),
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
        eval_every=args.eval_every, seed=args.seed, limit=args.limit, threads=args.threads,
    ))


def _cmd_image(args: argparse.Namespace) -> None:
    from tmt.train.codecs.image import ImageCodecOptions, train_image_codec

    train_image_codec(ImageCodecOptions(
        corpus=args.corpus, out=args.out, work=args.work, image_cache=args.image_cache,
        preset=args.preset, codebook_size=args.codebook_size,
        override=parse_json(args.override, "--override"), init=args.init, limit=args.limit,
        threads=args.threads, device=args.device, bf16=args.bf16, compile=args.compile,
        train=_step_options(args),
    ))


def _cmd_refit(args: argparse.Namespace) -> None:
    from tmt.train.codecs.image_refit import RefitOptions, refit_decoder

    refit_decoder(RefitOptions(
        codec=args.codec, corpus=args.corpus, out=args.out, work=args.work,
        image_cache=args.image_cache, override=parse_json(args.override, "--override"),
        limit=args.limit, threads=args.threads, device=args.device, bf16=args.bf16,
        compile=args.compile, train=_step_options(args),
    ))


def add_commands(sub: argparse._SubParsersAction) -> None:
    # Defaults below are those of the options dataclasses (TrainOptions: steps 6000, batch 64,
    # lr 1e-3, fg-weight 4, checkpoint every 250, eval every 500), written out so that
    # `tmt --help` imports no torch.
    p = sub.add_parser(
        "image-semantic", formatter_class=HelpFormatter,
        help="image codec stage 1: the CNN encoder learns which words a caption uses",
        description="Stage 1 of the image codec: train the CNN encoder to tell which words a "
        "picture's caption uses; saves a codec to continue with `tmt codec train image --init`.")
    p.add_argument("--out", type=Path, required=True, help="where the codec with this encoder is saved")
    _add_common(p, "work/image-encoder-train", threads=1, compile=False)
    p.add_argument("--preset", choices=PRESETS, default="tiny", help="architecture preset")
    p.add_argument("--override", default="", help="JSON of config fields for the whole codec")
    p.add_argument("--steps", type=int, default=800, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=64, help="images per step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    p.add_argument("--eval-every", type=int, default=100, help="validation and checkpoint interval")
    p.add_argument("--device", default="cpu", help="torch device")
    p.set_defaults(handler=_cmd_semantic)

    p = sub.add_parser(
        "image", formatter_class=HelpFormatter,
        help="image codec stage 2: Q-Former, codebook and pixel decoder (torchrun for several "
        "processes)",
        description="Train the SEED-style image codec (32 codes per image) on a corpus with "
        "manifest.jsonl. Rerun to resume from --work. Several processes: torchrun "
        "--nproc-per-node N -m tmt codec train image ...")
    p.add_argument("--out", type=Path, required=True, help="where the trained codec is saved")
    _add_common(p, "work/image-codec-train", threads=2)
    p.add_argument("--preset", choices=PRESETS, default="tiny", help="architecture preset")
    p.add_argument("--codebook-size", type=int, default=0,
                   help="override the preset's codebook size (0: the preset's)")
    p.add_argument("--override", default="", help="JSON of config fields, e.g. '{\"code_dim\": 16}'")
    p.add_argument("--init", type=Path, default=None, help="start from this saved codec's weights")
    p.add_argument("--steps", type=int, default=6000, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (over all processes)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--caption-weight", type=float, default=0.0,
                   help="weight of the caption alignment loss (0: off)")
    p.add_argument("--caption-loss", choices=("bow", "lm"), default="bow",
                   help="caption alignment: bag of words, or the caption generated from the codes")
    p.add_argument("--fg-weight", type=float, default=4.0, help="extra loss weight on foreground pixels")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="keep the --init codec's encoder fixed (SEED's frozen pretrained encoder)")
    p.add_argument("--perceptual-weight", type=float, default=0.0,
                   help="weight of the feature loss through the frozen caption-trained CNN encoder")
    p.add_argument("--checkpoint-every", type=int, default=250, help="checkpoint interval (steps)")
    p.add_argument("--eval-every", type=int, default=500, help="validation interval (steps)")
    p.add_argument("--device", default="cpu", help="torch device")
    p.set_defaults(handler=_cmd_image)

    p = sub.add_parser(
        "image-refit", formatter_class=HelpFormatter,
        help="image codec stage 3: retrain the pixel decoder on the frozen codes",
        description="Retrain (and optionally resize) an image codec's pixel decoder while its "
        "encoder and codebook stay fixed, so the codes, and the token stores and translators "
        "made with them, stay valid. Rerun to resume from --work.")
    p.add_argument("--codec", type=Path, required=True, help="the image codec whose codes are kept")
    p.add_argument("--out", type=Path, required=True, help="where the codec with the new decoder is saved")
    _add_common(p, "work/image-decoder-refit", threads=2)
    p.add_argument("--override", default="",
                   help="JSON of decoder fields, e.g. '{\"decoder_channels\": [64, 128]}' (a resized "
                   "decoder starts afresh; without it the old decoder continues)")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=32, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--fg-weight", type=float, default=4.0, help="extra loss weight on foreground pixels")
    p.add_argument("--perceptual-weight", type=float, default=0.3, help="weight of the feature loss")
    p.add_argument("--checkpoint-every", type=int, default=250, help="checkpoint interval (steps)")
    p.add_argument("--eval-every", type=int, default=500, help="validation interval (steps)")
    p.add_argument("--device", default="cpu", help="torch device")
    p.set_defaults(handler=_cmd_refit)
