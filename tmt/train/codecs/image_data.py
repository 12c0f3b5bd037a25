"""The image trainers' data: a corpus's images as one uint8 tensor, and the caches that runs
share through ``image_cache`` (a split's decoded images, and a frozen trunk's feature maps of
them under a digest of its weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tmt.data.manifest import read_manifest
from tmt.errors import TmtError
from tmt.files import save_torch
from tmt.image.codec import ImageCodec
from tmt.image.io import load_image
from tmt.train.codecs.image_alignment import conv_encoder, trunk_features


def image_records(corpus: str | Path, splits: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Manifest records (each with an ``image`` path relative to the corpus) of ``splits``."""
    return read_manifest(corpus, splits, require=("image",))


def load_images_uint8(
    corpus: str | Path, records: list[dict[str, Any]], size: int, progress: bool = False
) -> torch.Tensor:
    """The records' images as a uint8 tensor (N, 3, size, size)."""
    out = torch.empty(len(records), 3, size, size, dtype=torch.uint8)
    items: Any = records
    if progress:
        from tqdm import tqdm

        items = tqdm(records, desc="loading images", unit="img", mininterval=5)
    for i, record in enumerate(items):
        image = load_image(Path(corpus) / record["image"], size)
        out[i] = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return out


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
    records = image_records(corpus, (split,))[:limit]
    if not records:
        raise TmtError(f"{corpus} has no images in split {split!r}")
    images = load_images_uint8(corpus, records, size, progress=True)
    save_torch(images, cache)  # runs may share the directory: whole files only
    return images


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
    save_torch(features, cache)
    return features
