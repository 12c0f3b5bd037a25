"""CLIP score of generated images, with a CLIP model loaded from a local directory.

Two variants, both the mean cosine similarity of CLIP embeddings (raw cosine in [-1, 1], not
scaled by 100, as the official TMT scoring script prints it):

- ``text_image``: generated image vs the caption it should show (the paper's CLIP score);
- ``image_image``: generated image vs the reference image (what the official ``test_gen.py``
  computes, with ``openai/clip-vit-large-patch14``).

The directory is a HuggingFace ``CLIPModel`` saved with ``save_pretrained`` together with its
``CLIPProcessor`` (tokenizer + image processor); nothing is fetched from a hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from tmt.errors import TmtError
from tmt.eval.local_models import load_pretrained

ImageLike = Image.Image | str | Path


def _as_rgb(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    path = Path(image)
    if not path.is_file():
        raise TmtError(f"CLIP score: image not found: {path}")
    with Image.open(path) as img:
        return img.convert("RGB")


class ClipScorer:
    """Embed images and texts with CLIP and compare them by cosine similarity."""

    def __init__(self, model: Any, processor: Any, *, device: str | torch.device = "cpu",
                 batch_size: int = 32, name: str = "clip") -> None:
        self.name = name
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.max_text_len = int(model.config.text_config.max_position_embeddings)

    @classmethod
    def load(cls, directory: str | Path, *, device: str | torch.device = "cpu",
             batch_size: int = 32) -> ClipScorer:
        """Load ``CLIPModel`` + ``CLIPProcessor`` from a local directory (no hub access)."""
        from transformers import CLIPModel, CLIPProcessor

        directory = Path(directory)
        model, processor = load_pretrained(directory, "CLIP model", CLIPModel, CLIPProcessor)
        return cls(model, processor, device=device, batch_size=batch_size, name=f"clip:{directory}")

    @torch.inference_mode()
    def embed_images(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """L2-normalized image embeddings, (N, D)."""
        out = []
        for k in range(0, len(images), self.batch_size):
            chunk = [_as_rgb(x) for x in images[k : k + self.batch_size]]
            pixels = self.processor(images=chunk, return_tensors="pt")["pixel_values"]
            out.append(self.model.get_image_features(pixel_values=pixels.to(self.device)).float())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1).cpu()

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalized text embeddings, (N, D); texts longer than CLIP's context are cut."""
        out = []
        for k in range(0, len(texts), self.batch_size):
            batch = self.processor(text=list(texts[k : k + self.batch_size]), return_tensors="pt",
                                   padding=True, truncation=True, max_length=self.max_text_len)
            out.append(self.model.get_text_features(
                input_ids=batch["input_ids"].to(self.device),
                attention_mask=batch["attention_mask"].to(self.device),
            ).float())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1).cpu()

    def compare(
        self,
        images: Sequence[ImageLike],
        *,
        texts: Sequence[str] | None = None,
        references: Sequence[ImageLike] | None = None,
    ) -> dict[str, list[float]]:
        """Both variants with each generated image embedded once: ``{"text_image": [...],
        "image_image": [...]}`` (a key only when its counterpart is given)."""
        for name, other in (("texts", texts), ("references", references)):
            if other is not None and len(other) != len(images):
                raise TmtError(f"CLIP score: {len(images)} images for {len(other)} {name}")
        if not images:
            return {k: [] for k, v in (("text_image", texts), ("image_image", references)) if v is not None}
        generated = self.embed_images(images)
        out = {}
        if texts is not None:
            out["text_image"] = (generated * self.embed_texts(texts)).sum(-1).tolist()
        if references is not None:
            out["image_image"] = (generated * self.embed_images(references)).sum(-1).tolist()
        return out

    def text_image(self, images: Sequence[ImageLike], texts: Sequence[str]) -> list[float]:
        """Cosine between each image and its text, one value per pair."""
        if len(images) != len(texts):
            raise TmtError(f"CLIP score: {len(images)} images for {len(texts)} texts")
        if not images:
            return []
        return (self.embed_images(images) * self.embed_texts(texts)).sum(-1).tolist()

    def image_image(self, images: Sequence[ImageLike], references: Sequence[ImageLike]) -> list[float]:
        """Cosine between each generated image and its reference image, one value per pair."""
        if len(images) != len(references):
            raise TmtError(f"CLIP score: {len(images)} images for {len(references)} references")
        if not images:
            return []
        return (self.embed_images(images) * self.embed_images(references)).sum(-1).tolist()


__all__ = ["ClipScorer"]
