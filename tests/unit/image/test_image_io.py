"""load_image: any format and mode → RGB square; one clear TmtError for bad inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tmt.errors import TmtError
from tmt.image.io import image_to_tensor, load_image, tensor_to_image


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_formats_and_modes_become_rgb_squares(fmt: str, mode: str, tmp_path: Path) -> None:
    if fmt == "JPEG" and mode in ("RGBA", "P"):
        pytest.skip("JPEG has no alpha or palette")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(_encoded(image, fmt))
    for source in (path, str(path), path.read_bytes()):
        out = load_image(source, 16)
        assert out.mode == "RGB" and out.size == (16, 16)


def test_aspect_kept_by_centre_crop() -> None:
    # left third red, middle third green, right third blue: the crop keeps only the green middle.
    array = np.zeros((20, 60, 3), dtype=np.uint8)
    array[:, :20, 0] = array[:, 20:40, 1] = array[:, 40:, 2] = 255
    out = np.asarray(load_image(Image.fromarray(array), 10), dtype=int)
    assert out[:, 2:8, 1].min() > 200 and out[:, 2:8, [0, 2]].max() < 60


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert load_image(image, 8).getpixel((3, 3)) == (255, 255, 255)


def test_16bit_grayscale_is_rescaled() -> None:
    array = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    out = np.asarray(load_image(_encoded(Image.fromarray(array), "PNG"), 8))
    assert out.min() == 0 and out.max() == 255


def test_bad_inputs_raise_one_line_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(_encoded(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")[:60])
    cases = [
        (tmp_path / "missing.png", "not found"),
        (text, "not an image"),
        (truncated, "corrupt"),
        (b"", "not an image"),
        (Image.new("RGB", (0, 0)), "zero size"),
    ]
    for source, words in cases:
        with pytest.raises(TmtError, match=words) as info:
            load_image(source, 8)
        assert "\n" not in str(info.value)
    with pytest.raises(TmtError):
        load_image(3.5, 8)  # type: ignore[arg-type]


def test_tensor_round_trip_is_exact() -> None:
    array = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    back = tensor_to_image(image_to_tensor(Image.fromarray(array)))
    assert np.array_equal(np.asarray(back), array)
