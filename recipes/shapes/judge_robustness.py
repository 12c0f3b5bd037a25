"""Image judge accuracy on blurred / down-sampled ground-truth test pictures (README figures).

    python recipes/shapes/judge_robustness.py [CORPUS]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from PIL import Image, ImageFilter

from tmt.data.shapes import read_corpus
from tmt.data.shapes_world import attribute_accuracy
from tmt.eval.image_judge import ImageJudge

DEGRADATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "blur r=1": lambda im: im.filter(ImageFilter.GaussianBlur(1)),
    "blur r=1.5": lambda im: im.filter(ImageFilter.GaussianBlur(1.5)),
    "down-up x2": lambda im: im.resize((32, 32), Image.Resampling.BILINEAR).resize(
        (64, 64), Image.Resampling.BILINEAR
    ),
}


def main() -> None:
    torch.set_num_threads(1)
    corpus = sys.argv[1] if len(sys.argv) > 1 else "work/shapes-20k"
    examples = read_corpus(corpus, "test")
    refs = [e.attributes for e in examples]
    images = [Image.open(e.image).convert("RGB") for e in examples]
    for name in ("image", "image-allpairs"):
        judge = ImageJudge.load(f"tmt/assets/judges/{name}")
        for label, degrade in DEGRADATIONS.items():
            acc = attribute_accuracy(judge.predict([degrade(im) for im in images]), refs)
            print(name, label, " ".join(f"{k} {100 * v:.2f}%" for k, v in acc.items()), flush=True)


if __name__ == "__main__":
    main()
