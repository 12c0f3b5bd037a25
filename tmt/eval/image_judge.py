"""The image judge: a small CNN that reads a tmt-shapes scene's attributes from a picture.

It is trained only on ground-truth training images (:mod:`tmt.train.codecs.judge`) and
scores text→image and speech→image output: our offline stand-in for the paper's CLIP score.
Two-object scenes are predicted in canonical orientation (``above`` / ``to the left of``,
first object = top / left one); :func:`tmt.data.shapes_world.compare_records` compares
records in that orientation, so ``B below A`` and ``A above B`` score alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from tmt.data.shapes_world import CANONICAL_RELATIONS, COLOURS, POSITIONS, SHAPES, SIZES, Record
from tmt.errors import TmtError
from tmt.files import format_header, load_safetensors, read_config
from tmt.image.modules import with_coordinates


@dataclass(kw_only=True)
class ImageJudgeConfig:
    """Architecture of the image judge."""

    image_size: int = 64
    """Side of the (square) input; other sizes are resized to it."""
    channels: tuple[int, ...] = (16, 32, 64)
    """Conv widths; each stage halves the resolution."""
    hidden: int = 128
    """Width of the layout branch (count, position, relation) and of the object branch."""
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = COLOURS
    sizes: tuple[str, ...] = SIZES
    positions: tuple[str, ...] = POSITIONS
    relations: tuple[str, ...] = CANONICAL_RELATIONS
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form training facts (data, accuracy) kept beside the architecture."""

    def heads(self) -> dict[str, int]:
        """Output head name → number of classes."""
        return {
            "count": 2,
            "shape1": len(self.shapes), "colour1": len(self.colours), "size1": len(self.sizes),
            "shape2": len(self.shapes), "colour2": len(self.colours), "size2": len(self.sizes),
            "position": len(self.positions),
            "relation": len(self.relations),
        }


def layout_index(count: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
    """Layout per scene: 0 one object, 1 vertical pair (above), 2 horizontal pair (left of).

    ``count`` is the count head's class (0 = one object), ``relation`` the canonical
    relation's class (0 = above, 1 = to the left of).
    """
    return torch.where(count == 0, torch.zeros_like(count), 1 + relation)


def _region_masks(side: int) -> torch.Tensor:
    """(3 layouts, 2 slots, side, side) bool: where each object of each layout lies."""
    rows = torch.arange(side).view(side, 1).expand(side, side)
    cols = torch.arange(side).view(1, side).expand(side, side)
    everywhere = torch.ones(side, side, dtype=torch.bool)
    top, left = rows < side // 2, cols < side // 2
    return torch.stack([
        torch.stack([everywhere, everywhere]),  # one object: slot 2 unused
        torch.stack([top, ~top]),  # first object above the second
        torch.stack([left, ~left]),  # first object left of the second
    ])


class ImageJudgeNet(nn.Module):
    """Conv trunk, then two branches.

    * layout branch: flatten → FC → count, position, relation (where things are);
    * object branch: features max- and mean-pooled over each object's region (the whole
      picture, its top/bottom or left/right half, chosen by the layout) → one MLP shared
      by both objects → shape, colour, size. Pooling makes shape recognition the same
      wherever the object is, so it learns from every object of every picture.

    In training the layout comes from the targets; at inference from the layout heads.
    """

    def __init__(self, config: ImageJudgeConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = 5  # RGB + two coordinate channels (x, y): position is explicit to the convs
        for c in config.channels:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            ]
            c_in = c
        # one more conv at the lowest resolution: a receptive field that spans a large object
        layers += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.BatchNorm2d(c_in), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(config.channels)
        self.masks: torch.Tensor
        self.register_buffer("masks", _region_masks(side), persistent=False)
        self.layout = nn.Sequential(
            nn.Conv2d(c_in, 16, 1), nn.ReLU(inplace=True), nn.Flatten(),
            nn.Linear(16 * side * side, config.hidden), nn.ReLU(inplace=True),
        )
        self.object = nn.Sequential(
            nn.Linear(2 * c_in, config.hidden), nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.hidden), nn.ReLU(inplace=True),
        )
        n = config.heads()
        self.layout_heads = nn.ModuleDict(
            {k: nn.Linear(config.hidden, n[k]) for k in ("count", "position", "relation")}
        )
        self.object_heads = nn.ModuleDict(
            {k: nn.Linear(config.hidden, n[f"{k}1"]) for k in ("shape", "colour", "size")}
        )

    def forward(
        self, images: torch.Tensor, layout: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) in [0, 1]; layout: (B,) ids (:func:`layout_index`) or None
        to use the predicted one → logits per head, each (B, classes)."""
        feats = self.features(with_coordinates(images * 2 - 1))  # (B, C, s, s)
        g = self.layout(feats)  # (B, hidden)
        out = {k: head(g) for k, head in self.layout_heads.items()}
        if layout is None:
            layout = layout_index(out["count"].argmax(-1), out["relation"].argmax(-1))
        masks = self.masks[layout].unsqueeze(2)  # (B, 2 slots, 1, s, s)
        f = feats.unsqueeze(1)  # (B, 1, C, s, s)
        peak = f.masked_fill(~masks, float("-inf")).amax(dim=(-2, -1))  # (B, 2, C)
        mean = (f * masks).sum(dim=(-2, -1)) / masks.sum(dim=(-2, -1))  # (B, 2, C)
        obj = self.object(torch.cat([peak, mean], dim=-1))  # (B, 2, hidden)
        for k, head in self.object_heads.items():
            logits = head(obj)  # (B, 2, classes)
            out[f"{k}1"], out[f"{k}2"] = logits[:, 0], logits[:, 1]
        return out


def images_to_tensor(images: list[Image.Image], image_size: int) -> torch.Tensor:
    """PIL images → (B, 3, S, S) float tensor in [0, 1], resized to ``image_size``."""
    arrays = []
    for im in images:
        im = im.convert("RGB")
        if im.size != (image_size, image_size):
            im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def decode_heads(config: ImageJudgeConfig, logits: dict[str, torch.Tensor]) -> list[Record]:
    """Arg-max of every head → attribute records (canonical orientation)."""
    best = {k: v.argmax(dim=-1).tolist() for k, v in logits.items()}
    records: list[Record] = []

    def obj(i: int, n: int) -> dict[str, str]:
        return {
            "size": config.sizes[best[f"size{n}"][i]],
            "colour": config.colours[best[f"colour{n}"][i]],
            "shape": config.shapes[best[f"shape{n}"][i]],
        }

    for i in range(len(best["count"])):
        if best["count"][i] == 0:
            records.append(
                {"objects": [obj(i, 1)], "position": config.positions[best["position"][i]]}
            )
        else:
            records.append(
                {"objects": [obj(i, 1), obj(i, 2)], "relation": config.relations[best["relation"][i]]}
            )
    return records


class ImageJudge:
    """A trained image judge: ``ImageJudge.load(dir).predict(images) -> records``."""

    def __init__(self, model: ImageJudgeNet, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = model.config
        self.device = torch.device(device)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> ImageJudge:
        """Load ``config.json`` + ``model.safetensors`` (fp16 on disk, fp32 in memory)."""

        directory = Path(directory)
        config_path, weights_path = directory / "config.json", directory / "model.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise TmtError(f"{directory} is not an image judge (config.json + model.safetensors)")
        raw = read_config(config_path, "tmt-image-judge")
        for key in ("channels", "shapes", "colours", "sizes", "positions", "relations"):
            raw[key] = tuple(raw[key])
        model = ImageJudgeNet(ImageJudgeConfig(**raw))
        state = {k: v.float() for k, v in load_safetensors(weights_path).items()}
        model.load_state_dict(state)
        return cls(model, device)

    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` and fp16 ``model.safetensors``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps({**format_header("tmt-image-judge"), **asdict(self.config)}, indent=2) + "\n")
        state = {
            k: (v.half() if v.is_floating_point() else v).contiguous()
            for k, v in self.model.state_dict().items()
        }
        save_file(state, str(directory / "model.safetensors"))

    @torch.inference_mode()
    def predict(self, images: list[Image.Image], batch_size: int = 256) -> list[Record]:
        """Attribute records (canonical orientation) read from pictures of any size."""
        out: list[Record] = []
        for start in range(0, len(images), batch_size):
            batch = images_to_tensor(images[start : start + batch_size], self.config.image_size)
            out += decode_heads(self.config, self.model(batch.to(self.device)))
        return out
