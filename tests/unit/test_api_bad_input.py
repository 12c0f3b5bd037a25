"""The Python API's side of bad input: every mistake is one TmtError with a one-line message
(tests/integration/test_bad_input.py runs the CLI's side)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import tmt
from tmt.errors import TmtError
from tmt.paths import EXAMPLES

WAV = EXAMPLES / "speech.wav"


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model():
    return tmt.load_model()


CASES = {
    "same modality": (("hi", "text", "text"), {}),
    "unknown modality": (("hi", "smell", "text"), {}),
    "empty text": (("   ", "text", "image"), {}),
    "no known word": (("xylophone quantum zebra", "text", "image"), {}),
    "emoji only": (("🙂🙂🙂", "text", "image"), {}),
    "text too long": ((" ".join(["a small red circle"] * 2500), "text", "image"), {}),
    "beam 0": (("a small red circle", "text", "image"), {"beam_size": 0}),
    "beam 1000": (("a small red circle", "text", "image"), {"beam_size": 1000}),
    "temperature nan": (("a small red circle", "text", "image"), {"temperature": float("nan")}),
    "top-k -3": (("a small red circle", "text", "image"), {"top_k": -3}),
    "max text len 0": ((str(EXAMPLES / "image.png"), "image", "text"), {"max_text_len": 0}),
    "rerank nan": (("a small red circle", "text", "image"), {"rerank": float("nan")}),
    "unknown option": (("a small red circle", "text", "image"), {"beams": 5}),
    "precision fp16": (("a small red circle", "text", "image"), {"precision": "fp16"}),
    "batch size 0": (("a small red circle", "text", "image"), {"batch_size": 0}),
    "missing wav": (("/no/such.wav", "speech", "text"), {}),
    "wav bytes corrupt": ((b"RIFF1234WAVEfmt nonsense", "speech", "text"), {}),
    "silent array": ((np.zeros(16000, np.float32), "speech", "text"), {}),
    "nan array": ((np.full(16000, np.nan, np.float32), "speech", "text"), {}),
    "2-D array of noise": ((np.zeros((3, 3, 3), np.float32), "speech", "text"), {}),
    "missing image": (("/no/such.png", "image", "text"), {}),
    "image bomb header": ((_png_header(20000, 20000), "image", "text"), {}),
    "image 1x60000": ((_png(60000, 1), "image", "text"), {}),
    "image not an image": ((b"GIF89a broken", "image", "text"), {}),
    "unknown model": None,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_tmt_error(model, name):
    with pytest.raises(TmtError) as caught:
        if CASES[name] is None:
            tmt.load_model("/no/such/bundle")
        else:
            args, kw = CASES[name]
            model.translate(*args, **kw)
    message = str(caught.value)
    assert message and "\n" not in message, message


def test_the_model_still_translates_afterwards(model):
    assert model.translate(WAV, "speech", "text").output == "a large blue hexagon in the middle"
