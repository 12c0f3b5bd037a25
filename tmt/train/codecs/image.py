"""Stage 2 of the image codec: the Q-Former queries, the codebook and the pixel decoder, trained
on a corpus (``tmt codec train image``; stage 1 is :mod:`tmt.train.codecs.image_semantic`).

A checkpoint (model, optimiser, step, RNG) is written every ``checkpoint_every`` steps to
``work``, and after the current step on SIGTERM or Ctrl-C; running the same command again
resumes from it. The final codec is saved to ``out`` as fp16 ``model.safetensors`` +
``config.json``. Under torchrun each process steps on its share of ``batch_size`` and the
gradients are averaged (:class:`tmt.train.distributed.Dist`); a signal to any of them stops
them all after the same step.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tmt.errors import TmtError
from tmt.image.codec import ImageCodec
from tmt.image.config import PRESETS, ImageCodecConfig
from tmt.image.io import to_unit_range
from tmt.image.modules import ConvEncoder
from tmt.progress import bar_off
from tmt.train.codecs.image_alignment import caption_sequences, caption_targets
from tmt.train.codecs.image_data import (
    cached_images,
    cached_trunk_features,
    image_records,
    image_set_name,
)
from tmt.train.codecs.image_steps import (
    RECIPE,
    Trainer,
    TrainOptions,
    evaluate,
    provenance,
    resolve_precision,
    save_checkpoint,
    validate_and_checkpoint,
)
from tmt.train.distributed import Dist, local_device
from tmt.train.run_state import StepStop
from tmt.train.sampling import batch_indices


@dataclass(kw_only=True)
class ImageCodecOptions:
    """A stage 2 run: its data, its outputs, the codec it starts from, and how it trains."""

    corpus: Path
    """Corpus directory (``manifest.jsonl`` + images)."""
    out: Path
    """Where the trained codec is saved."""
    work: Path = Path("work/image-codec-train")
    """Checkpoints, and the image caches unless ``image_cache`` is given."""
    image_cache: Path | None = None
    """Directory of the decoded-image caches, shareable between runs."""
    preset: str = "tiny"
    """Architecture preset of a new codec (:data:`tmt.image.config.PRESETS`)."""
    codebook_size: int = 0
    """Override of the preset's codebook size (0: the preset's)."""
    override: dict[str, Any] = field(default_factory=dict)
    """Config fields of a new codec, e.g. ``{"code_dim": 16}``."""
    init: Path | None = None
    """Start from this saved codec's weights (and config)."""
    limit: int | None = None
    """Use only the first N training images."""
    threads: int = 2
    """Torch CPU threads (0: torch's default)."""
    device: str = "cpu"
    bf16: str = "none"
    """``none``, ``bf16`` or ``auto`` (where the device computes bfloat16 natively)."""
    compile: str = "no"
    """``no``, ``yes`` or ``auto`` (where a C++ compiler is found)."""
    train: TrainOptions = field(default_factory=TrainOptions)
    """The step's hyper-parameters (its ``bf16`` and ``compile`` are set from the choices above)."""


def train_image_codec(options: ImageCodecOptions) -> ImageCodec:
    """Train (or continue) a codec as ``options`` say; returns it (saved to ``options.out``)."""
    dist = Dist.from_env(options.device)  # torchrun: each rank steps on its share of the batch
    torch.manual_seed(options.train.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    cfg = PRESETS[options.preset]()
    if options.codebook_size:
        cfg = dataclasses.replace(cfg, codebook_size=options.codebook_size)
    if options.override:
        cfg = ImageCodecConfig.from_dict({**cfg.to_dict(), **options.override})
    bf16, compiled = resolve_precision(options.bf16, options.compile, options.device)
    opts = dataclasses.replace(options.train, bf16=bf16, compile=compiled)
    work, out, corpus = Path(options.work), Path(options.out), Path(options.corpus)
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(options.image_cache or work)
    if opts.batch_size % dist.world_size:
        raise TmtError(f"--batch-size {opts.batch_size} does not split into {dist.world_size} ranks")
    with dist.main_first():
        train_images = cached_images(corpus, "train", cfg.image_size, cache, options.limit)
        valid_images = cached_images(corpus, "valid", cfg.image_size, cache, 512)

    words: torch.Tensor | None = None
    vocab: list[str] = []
    if opts.caption_weight > 0:
        records = image_records(corpus, ("train",))[: options.limit]
        make = caption_sequences if opts.caption_loss == "lm" else caption_targets
        vocab, words = make([r.get("caption", "") for r in records])
    if options.init:
        codec = ImageCodec.load(options.init, device=options.device)
        cfg = codec.config
    else:
        codec = ImageCodec(cfg, device=options.device)
    trainer = Trainer(codec, opts, len(vocab), dist)
    features = None
    if opts.freeze_encoder and isinstance(codec.encoder, ConvEncoder):
        # the frozen trunk's view of every training image, computed once (not twice per step)
        with dist.main_first():
            features = cached_trunk_features(codec, train_images, opts.bf16, cache,
                                             image_set_name("train", cfg.image_size, options.limit))
    checkpoint = work / "checkpoint.pt"
    elapsed = 0.0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True, map_location=options.device)
        trainer.load_state_dict(state)
        elapsed = state.get("elapsed", 0.0)
        print(f"resumed from {checkpoint} at step {trainer.step}")

    from tqdm import tqdm

    n = len(train_images)
    bar = tqdm(
        total=opts.steps, initial=trainer.step, desc="image codec", unit="step", mininterval=10,
        disable=bar_off(not dist.is_main),
    )
    start = time.time() - elapsed
    share = opts.batch_size // dist.world_size
    # SIGTERM / Ctrl-C: every rank stops after the same step, the main rank checkpoints it
    with StepStop(dist, local_device(options.device, dist)) as stop:
        while trainer.step < opts.steps and not stop():
            index = batch_indices(n, share, trainer.step, opts.seed, rank=dist.rank,
                                  world_size=dist.world_size)
            batch_words = None if words is None else words[index].to(options.device)
            stats = trainer.train_step(
                to_unit_range(train_images[index]).to(options.device), batch_words,
                None if features is None else features[index].to(options.device),
            )
            bar.update(1)
            bar.set_postfix(
                loss=f"{stats['loss']:.4f}", psnr=f"{stats['psnr']:.2f}",
                perc=f"{stats['perceptual']:.3f}", align=f"{stats['align']:.3f}", refresh=False,
            )
            if dist.is_main:  # the others wait for it in the next step's gradient average
                validate_and_checkpoint(
                    trainer.step, opts, codec, valid_images, bar.write, trainer.state_dict,
                    checkpoint, time.time() - start,
                )
        if stop.stopped:
            bar.close()
            if dist.is_main:
                save_checkpoint(trainer.state_dict, checkpoint, time.time() - start)
            dist.barrier()  # no rank exits (torchrun would stop the rest) before it is written
            dist.close()
            stop.interrupt(trainer.step, checkpoint)
    bar.close()
    seconds = time.time() - start
    if not dist.is_main:
        dist.close()
        return codec
    figures = evaluate(codec, valid_images)
    codec.config.extra = {
        **provenance(codec.config.extra),
        "recipe": RECIPE,
        "init": None if options.init is None else str(options.init),
        "train_options": dataclasses.asdict(opts),
        "train_images": n,
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "processes": dist.world_size,
        "valid": {k: round(v, 4) for k, v in figures.items()},
    }
    codec.save(out)
    dist.close()
    print(
        f"saved {out} after {seconds / 60:.1f} min: "
        + " ".join(f"{k}={v:.3f}" for k, v in figures.items())
    )
    return codec
