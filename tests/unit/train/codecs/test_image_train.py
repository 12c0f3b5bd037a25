"""The training recipe runs end to end on a tiny corpus, saves a loadable codec and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tmt.cli import main as cli_main
from tmt.image.codec import ImageCodec
from tmt.train.codecs.image_steps import foreground_weights


def main(argv: list[str]) -> int:
    return cli_main(["codec", "train", "image", *argv])


@pytest.fixture(autouse=True, scope="module")
def one_thread():  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny_corpus(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(n):
        array = np.full((64, 64, 3), 240, dtype=np.uint8)
        x, y = rng.integers(0, 48, 2)
        array[y : y + 16, x : x + 16] = rng.integers(0, 200, 3)
        Image.fromarray(array).save(root / "images" / f"{i}.png")
        split = "train" if i < 8 else "valid"
        lines.append(json.dumps({"id": str(i), "split": split, "image": f"images/{i}.png"}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_train_saves_codec_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tiny_corpus(tmp_path / "corpus")
    common = [
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path / "out"),
        "--work",
        str(tmp_path / "work"),
    ]
    common += [
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--checkpoint-every",
        "1",
        "--eval-every",
        "100",
    ]
    assert main([*common, "--steps", "1"]) == 0
    assert (tmp_path / "work" / "checkpoint.pt").is_file()
    assert main([*common, "--steps", "2"]) == 0
    assert "resumed from" in capsys.readouterr().out
    codec = ImageCodec.load(tmp_path / "out")
    assert codec.config.extra["train_options"]["steps"] == 2
    assert codec.encode(corpus / "images" / "0.png").shape == (32,)
    assert not list((tmp_path / "out").glob("*.py"))


def test_bad_corpus_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["--corpus", str(tmp_path), "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")]
        )
        == 2
    )
    assert "no manifest.jsonl" in capsys.readouterr().err


def test_foreground_weights_mark_the_object() -> None:
    image = torch.full((1, 3, 16, 16), 0.9)
    image[:, :, 4:8, 4:8] = -0.5
    w = foreground_weights(image, 4.0)
    assert w[0, 0, 5, 5] == 5.0 and w[0, 0, 12, 12] == 1.0 and w[0, 0, 3, 3] == 5.0  # ring included
