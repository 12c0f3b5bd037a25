"""Seconds per step of the image codec's frozen-trunk trainers, with the trunk run on every batch
against the trunk's feature maps computed once per image (``trunk_features``), and the latter
with the step's forward and loss compiled (``--compile``, :mod:`tmt.compiling`).

Stage 2 (``tmt codec train image --freeze-encoder --perceptual-weight W``) runs the frozen
CNN trunk twice per batch on the same images: in the encoder and for the perceptual loss's
reference; the decoder refit (``tmt codec train image-refit``) once, for the reference.
All three compute the same step (tests/unit/test_image_semantic.py, tests/unit/test_compiling.py);
the cache costs one trunk pass over the training images and compiling about a minute per
trainer, both printed below. The ways take turns step by step, from the same codec and batches,
so a change of machine load hits them alike.

    python benchmarks/image_train_step.py --codec tmt/assets/codecs/image \
        --images work/image-cache/images-train-64-all.pt [--steps 20] [--threads 2] [--bf16]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import time
from collections.abc import Callable

import torch

from tmt.image.codec import ImageCodec
from tmt.image.io import to_unit_range
from tmt.train.codecs.image_alignment import trunk_features
from tmt.train.codecs.image_refit import DecoderTrainer, image_ids
from tmt.train.codecs.image_steps import Trainer, TrainOptions
from tmt.train.sampling import batch_indices


def timed(step: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    step(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", default="tmt/assets/codecs/image")
    parser.add_argument("--images", default="work/image-cache/images-train-64-all.pt",
                        help="uint8 training images (N, 3, 64, 64), as the trainers cache them")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per way and trainer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="under bfloat16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.load(args.images, weights_only=True)
    codec = ImageCodec.load(args.codec)
    opts = TrainOptions(steps=10_000, batch_size=args.batch_size, lr=5e-4, freeze_encoder=True,
                        perceptual_weight=1.0, bf16=args.bf16)
    start = time.perf_counter()
    features = trunk_features(codec, images, args.bf16)
    cache_seconds = time.perf_counter() - start
    ids = image_ids(codec, images[:4096])
    n = len(ids)

    ways = {"trunk": opts, "cached": opts, "compiled": dataclasses.replace(opts, compile=True)}
    stage2 = {way: Trainer(copy.deepcopy(codec), o) for way, o in ways.items()}
    refit = {way: DecoderTrainer(copy.deepcopy(codec), o) for way, o in ways.items()}
    times: dict[str, list[float]] = {f"{t} {w}": [] for t in ("stage 2", "refit") for w in ways}
    compile_seconds: dict[str, float] = {}
    for step in range(args.steps + 1):  # step 0 warms up (and compiles), untimed
        index = batch_indices(n, args.batch_size, step, 0)
        batch = to_unit_range(images[index])
        for way in ways:
            given = None if way == "trunk" else features[index]
            seconds = timed(stage2[way].train_step, batch, None, given)
            refit_seconds = timed(refit[way].train_step, ids[index], batch, given)
            if step:
                times[f"stage 2 {way}"].append(seconds)
                times[f"refit {way}"].append(refit_seconds)
            elif way == "compiled":
                compile_seconds = {"stage 2": seconds, "refit": refit_seconds}
    print(f"{args.codec}: batch {args.batch_size}, {args.steps} steps each, {torch.get_num_threads()} "
          f"threads, {'bf16 autocast' if args.bf16 else 'float32'}")
    print(f"trunk features of {len(images)} images, once: {cache_seconds:.1f} s "
          f"({features.numel() * features.element_size() / 2**20:.0f} MiB)")
    print("| trainer | trunk on every batch (s/step) | cached features (s/step) | speed-up | "
          "cached + compiled (s/step) | speed-up over cached | first compiled step (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for trainer in ("stage 2", "refit"):
        plain, cached, compiled = (statistics.median(times[f"{trainer} {way}"]) for way in ways)
        print(f"| {trainer} | {plain:.3f} | {cached:.3f} | {plain / cached:.2f}x | {compiled:.3f} | "
              f"{cached / compiled:.2f}x | {compile_seconds[trainer]:.0f} |")


if __name__ == "__main__":
    main()
