"""tmt.image: an image ↔ exactly 32 discrete codes (SEED-style tokenizer) and back to pixels.

from tmt.image import ImageCodec, load_image
codec = ImageCodec.load("tmt/assets/codecs/image")
ids = codec.encode("cat.png")          # LongTensor (32,) in [0, codec.vocab_size)
picture = codec.decode(ids)            # PIL.Image.Image, codec.image_size square
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tmt.image.codec import ImageCodec
    from tmt.image.config import ImageCodecConfig
    from tmt.image.io import load_image

__all__ = ["ImageCodec", "ImageCodecConfig", "load_image"]

_WHERE = {
    "ImageCodec": "tmt.image.codec",
    "ImageCodecConfig": "tmt.image.config",
    "load_image": "tmt.image.io",
}


def __getattr__(name: str) -> Any:
    # Lazy: `tmt.image.io` alone should not pay for importing diffusers.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'tmt.image' has no attribute {name!r}")
