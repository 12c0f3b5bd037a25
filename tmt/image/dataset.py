"""Image sets for training and measuring the codec: a corpus directory with ``manifest.jsonl``.

Each manifest line is a JSON object with at least ``"split"`` and ``"image"`` (a path relative to
the corpus directory), as the tmt-shapes corpus writes it. Images are kept as one uint8 tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tmt.errors import TmtError
from tmt.image.io import load_image


def read_manifest(
    corpus: str | Path, splits: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Records of ``corpus/manifest.jsonl`` whose ``split`` is in ``splits`` (all if None)."""
    path = Path(corpus) / "manifest.jsonl"
    if not path.is_file():
        raise TmtError(f"{corpus} is not a corpus directory (no manifest.jsonl)")
    records = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise TmtError(f"{path}:{number} is not valid JSON") from None
            if "image" not in record:
                raise TmtError(f"{path}:{number} has no 'image' field")
            if splits is None or record.get("split") in splits:
                records.append(record)
    return records


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


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)
