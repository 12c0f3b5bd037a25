"""The image judge: a small CNN that reads a tmt-shapes scene's attributes from a picture.

It is trained only on ground-truth training images (:mod:`tmt.eval.image_judge_train`) and
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


@dataclass(kw_only=True)
class ImageJudgeConfig:
    """Architecture of the image judge."""

    image_size: int = 64
    """Side of the (square) input; other sizes are resized to it."""
    channels: tuple[int, ...] = (16, 32, 64)
    """Conv widths; each stage halves the resolution."""
    hidden: int = 256
    """Width of the shared fully connected layer before the heads."""
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


class ImageJudgeNet(nn.Module):
    """Conv stages (two 3×3 convs each, the second strided) → flatten → FC → one head per attribute.

    Flattening (rather than global pooling) keeps where things are, which position and
    relation need.
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
        self.features = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(config.channels)
        self.squeeze = nn.Conv2d(c_in, 32, 1)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * side * side, config.hidden), nn.ReLU(inplace=True),
            nn.Dropout(0.1),
        )
        self.heads = nn.ModuleDict({k: nn.Linear(config.hidden, n) for k, n in config.heads().items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) floats in [0, 1] → logits per head, each (B, classes)."""
        b, _, h, w = images.shape
        ys = torch.linspace(-1, 1, h, device=images.device).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=images.device).view(1, 1, 1, w).expand(b, 1, h, w)
        x = torch.cat([images * 2 - 1, xs, ys], dim=1)  # (B, 5, H, W)
        x = self.fc(torch.relu(self.squeeze(self.features(x))))  # (B, hidden)
        return {k: head(x) for k, head in self.heads.items()}


def images_to_tensor(images: list[Image.Image], image_size: int) -> torch.Tensor:
    """PIL images → (B, 3, S, S) float tensor in [0, 1], resized to ``image_size``."""
    arrays = []
    for im in images:
        im = im.convert("RGB")
        if im.size != (image_size, image_size):
            im = im.resize((image_size, image_size), Image.BILINEAR)
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
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / "config.json", directory / "model.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise TmtError(f"{directory} is not an image judge (config.json + model.safetensors)")
        raw = json.loads(config_path.read_text())
        for key in ("channels", "shapes", "colours", "sizes", "positions", "relations"):
            raw[key] = tuple(raw[key])
        model = ImageJudgeNet(ImageJudgeConfig(**raw))
        state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
        model.load_state_dict(state)
        return cls(model, device)

    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` and fp16 ``model.safetensors``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")
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
