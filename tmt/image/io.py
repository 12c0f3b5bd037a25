"""Reading images from any common source into the RGB square the image codec expects."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from tmt.errors import TmtError

ImageSource = str | Path | bytes | Image.Image

#: Transparent pixels are composited onto white: the shapes corpus draws on light backgrounds.
_BACKGROUND = (255, 255, 255)

#: Largest picture read (pixels): 64 MP, checked from the header before any pixel is decoded.
MAX_PIXELS = 64_000_000
#: Widest aspect ratio read: a centre crop of anything wider would keep almost nothing.
MAX_ASPECT = 8.0


def _open(source: ImageSource) -> tuple[Image.Image, str]:
    """Open ``source`` fully (decoding every pixel) and return it with a name for messages."""
    if isinstance(source, Image.Image):
        return source, "image"
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, stream = "image bytes", io.BytesIO(bytes(source))
    elif isinstance(source, (str, Path)):
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise TmtError(f"image file not found: {path}")
        stream = io.BytesIO(path.read_bytes())
    else:
        raise TmtError(f"cannot read an image from a {type(source).__name__}")
    try:
        image = Image.open(stream)
        check_dimensions(image.size, name)  # from the header, before decoding any pixel
        image.load()  # decode now so truncated files fail here, not later
    except UnidentifiedImageError:
        raise TmtError(f"{name} is not an image (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise TmtError(f"{name} has too many pixels to read safely") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise TmtError(f"{name} is a corrupt image ({error})") from None
    return image, name


def check_dimensions(size: tuple[int, int], name: str) -> None:
    """Refuse pictures beyond :data:`MAX_PIXELS` or :data:`MAX_ASPECT` (one line each)."""
    width, height = size
    if width <= 0 or height <= 0:
        raise TmtError(f"{name} has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise TmtError(f"{name} is {width}x{height} pixels, more than tmt reads "
                       f"({MAX_PIXELS // 1_000_000} MP): scale it down first")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise TmtError(f"{name} is {width}x{height}: an aspect ratio beyond {MAX_ASPECT:g}:1 "
                       "would lose most of the picture to the centre crop")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (RGBA, LA, P with transparency, L, 1, I;16, CMYK, ...) → RGB."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit / float grayscale: rescale to 8 bits before converting.
        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(array.min()), float(array.max())
        array = (array - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(array)
        image = Image.fromarray(array.astype(np.uint8), mode="L")
    return image.convert("RGB")


def load_image(source: ImageSource, size: int) -> Image.Image:
    """Load ``source`` (a path, encoded bytes or a PIL image) as a ``size`` × ``size`` RGB image.

    The shorter side is resized to ``size`` (bicubic) and the centre is cropped, so the aspect
    ratio is kept. Raises :class:`TmtError` with one line for missing files, non-images, corrupt
    files and zero-size images.
    """
    if size <= 0:
        raise TmtError(f"image size must be positive, got {size}")
    image, name = _open(source)
    width, height = image.size
    if width == 0 or height == 0:
        raise TmtError(f"{name} has zero size ({width}x{height})")
    image = to_rgb(image)
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image → float tensor (3, H, W) in [-1, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)


def tensor_to_image(pixels: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) in [-1, 1] (values outside are clipped) → RGB PIL image."""
    array = pixels.detach().float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return Image.fromarray(array.to(torch.uint8).permute(1, 2, 0).cpu().numpy(), mode="RGB")


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float in [-1, 1] (the codec's pixel range)."""
    return images.float().div(127.5).sub(1.0)
