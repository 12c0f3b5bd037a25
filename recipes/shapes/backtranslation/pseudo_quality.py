"""How good is the pseudo data? The back-translated captions of the unpaired images against
those items' real captions (WER, attributes), and the back-translated images of the
speech–text pairs scored by the image judge against the items' real attributes. The
back-translation never saw these references.

    python recipes/shapes/backtranslation/pseudo_quality.py --out work/bt-shapes --images 500
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jiwer
import torch

from tmt.bundle import load_codec
from tmt.data.shapes import read_corpus
from tmt.data.shapes_world import attribute_accuracy, parse_caption
from tmt.data.store import TokenStore
from tmt.eval.image_judge import ImageJudge
from tmt.eval.shapes_eval import default_judge
from tmt.modality import Modality
from tmt.text.normalize import normalize_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="work/bt-shapes", help="the demo's work directory")
    parser.add_argument("--corpus", default="work/shapes-20k")
    parser.add_argument("--images", type=int, default=500, help="pseudo images to judge")
    args = parser.parse_args()
    out = Path(args.out)
    torch.set_num_threads(1)
    items = {x.id: x for x in read_corpus(args.corpus, "train")}

    text = load_codec(Modality.TEXT, out / "codecs" / "text")
    pseudo = {e.id: text.decode(e.text) for e in TokenStore(out / "store-pseudo-images")
              if e.text is not None}
    ids = sorted(pseudo)
    refs = [normalize_text(items[i].speech[0].text) for i in ids]
    hyps = [normalize_text(pseudo[i]) for i in ids]
    exact = sum(r == h for r, h in zip(refs, hyps)) / len(ids)
    attrs = attribute_accuracy([parse_caption(h) for h in hyps], [items[i].attributes for i in ids])
    print(f"{len(ids)} pseudo captions: WER {100 * jiwer.wer(refs, hyps):.1f}% against the real "
          f"captions, {100 * exact:.1f}% word-for-word; attributes {_fmt(attrs)}")

    image = load_codec(Modality.IMAGE, out / "codecs" / "image")
    store = TokenStore(out / "store-pseudo-speech-text")
    chosen = [store[i] for i in range(min(args.images, len(store)))]
    with torch.inference_mode():
        pictures = [image.decode(e.image) for e in chosen if e.image is not None]
    judged = ImageJudge.load(default_judge("test")).predict(pictures)
    attrs = attribute_accuracy(judged, [items[e.id].attributes for e in chosen])
    print(f"{len(pictures)} pseudo images (image judge): {_fmt(attrs)}")


def _fmt(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {100 * v:.1f}%" for k, v in scores.items())


if __name__ == "__main__":
    main()
