"""Caches of the image trainers, shared between runs through ``--image-cache``: a split's decoded
images (uint8), and a frozen trunk's feature maps of them under a digest of its weights."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import torch

from tmt.errors import TmtError
from tmt.image.alignment import conv_encoder, trunk_features
from tmt.image.codec import ImageCodec
from tmt.image.dataset import load_images_uint8, read_manifest


def add_image_cache_option(parser: argparse.ArgumentParser) -> None:
    """``--image-cache DIR`` of the image trainers (stage 1, stage 2, the decoder refit)."""
    parser.add_argument(
        "--image-cache", default=None,
        help="directory of the decoded-image caches, shareable between runs (default: --work)",
    )


def image_cache_dir(args: argparse.Namespace) -> Path:
    """Where :func:`cached_images` keeps the decoded images: ``--image-cache``, else ``--work``."""
    return Path(args.image_cache or args.work)


def image_set_name(split: str, size: int, limit: int | None) -> str:
    """The name under which a split's decoded images, and what is computed from them, are cached."""
    return f"{split}-{size}-{limit or 'all'}"


def cached_images(
    corpus: Path, split: str, size: int, directory: Path, limit: int | None
) -> torch.Tensor:
    """The split's images as uint8 (N, 3, size, size), decoded once into `directory`."""
    cache = directory / f"images-{image_set_name(split, size, limit)}.pt"
    if cache.is_file():
        return torch.load(cache, weights_only=True)
    records = read_manifest(corpus, (split,))[:limit]
    if not records:
        raise TmtError(f"{corpus} has no images in split {split!r}")
    images = load_images_uint8(corpus, records, size, progress=True)
    save_to_cache(images, cache)
    return images


def save_to_cache(tensor: torch.Tensor, path: Path) -> None:
    """Write a cache file whole or not at all; runs may share a cache directory, so each writes
    through a file of its own process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    torch.save(tensor, partial)
    partial.replace(path)


def cached_trunk_features(
    codec: ImageCodec, images: torch.Tensor, bf16: bool, directory: Path, name: str
) -> torch.Tensor:
    """:func:`trunk_features` of ``images`` (the cached image set ``name``), kept in
    ``directory`` under a digest of the trunk's weights and statistics: runs with the same
    frozen trunk share them (the recipe's stage 2b, 2c and refit; 2a's trunk is stage 1's
    float32 one, which the codecs then save in float16)."""
    digest = hashlib.sha256(f"{name} bf16={bf16}".encode())
    for key, tensor in sorted(conv_encoder(codec).trunk.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    cache = directory / f"trunk-{name}-{digest.hexdigest()[:16]}.pt"
    if cache.is_file():
        features = torch.load(cache, weights_only=True)
        if len(features) == len(images):
            return features
    features = trunk_features(codec, images, bf16)
    save_to_cache(features, cache)
    return features
