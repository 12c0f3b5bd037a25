"""Measure the three tmt-shapes judges on a corpus's ground-truth held-out data.

    tmt judge-report --corpus work/shapes-20k --image-judge tmt/assets/judges/image

Prints the image judge's per-attribute accuracy on the test and compositional images, the
speech judge's WER per voice on the test audio, and the text parser's accuracy on every
reference caption of the test split.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from tmt.data.shapes import ShapesExample, read_corpus
from tmt.data.shapes_tts import read_wav
from tmt.data.shapes_world import attribute_accuracy, parse_caption
from tmt.eval.speech_judge import SpeechJudge, word_error_rate
from tmt.paths import JUDGES

if TYPE_CHECKING:
    from tmt.eval.image_judge import ImageJudge


def _fmt(acc: dict[str, float]) -> str:
    return " ".join(f"{k} {100 * v:.2f}%" for k, v in acc.items())


def image_judge_report(judge_dir: str | Path, examples: list[ShapesExample],
                       device: str = "cpu") -> dict[str, float]:
    """Per-attribute accuracy of the image judge on the examples' ground-truth images."""
    from tmt.eval.image_judge import ImageJudge

    return judge_accuracy(ImageJudge.load(judge_dir, device), examples)


def judge_accuracy(judge: ImageJudge, examples: list[ShapesExample]) -> dict[str, float]:
    """Per-attribute accuracy of ``judge`` on the examples' ground-truth images."""
    from PIL import Image

    images = []
    for ex in examples:
        with Image.open(ex.image) as im:
            images.append(im.convert("RGB"))
    return attribute_accuracy(judge.predict(images), [ex.attributes for ex in examples])


def speech_judge_report(
    grammar: str | Path, examples: list[ShapesExample], *, max_per_voice: int | None = None
) -> dict[str, tuple[float, int]]:
    """WER and utterance count per voice of the speech judge on the examples' audio."""
    judge = SpeechJudge(grammar)
    hyps: dict[str, list[str]] = defaultdict(list)
    refs: dict[str, list[str]] = defaultdict(list)
    for ex in examples:
        for utt in ex.speech:
            if max_per_voice is not None and len(refs[utt.voice]) >= max_per_voice:
                continue
            wave, sr = read_wav(utt.path)
            hyps[utt.voice].append(judge.transcribe(wave, sr))
            refs[utt.voice].append(utt.text)
    return {v: (word_error_rate(hyps[v], refs[v]), len(refs[v])) for v in sorted(refs)}


def text_parser_report(examples: list[ShapesExample]) -> dict[str, float]:
    """Accuracy of :func:`parse_caption` on every reference caption of the examples."""
    preds, gold = [], []
    for ex in examples:
        for caption in ex.captions:
            preds.append(parse_caption(caption))
            gold.append(ex.attributes)
    return attribute_accuracy(preds, gold)


def print_judge_report(
    corpus: str | Path, *, image_judge: str | Path = JUDGES / "image",
    split: str = "test", max_per_voice: int | None = None, device: str = "cpu",
) -> None:
    """Print the three judges' figures on the corpus's ground-truth held-out data (see the
    module docstring)."""
    import torch

    torch.set_num_threads(1)
    examples = read_corpus(corpus, split)
    print(f"corpus {corpus}, {split}: {len(examples)} examples")
    for held_split in ("test", "compositional"):
        held = read_corpus(corpus, held_split)
        start = time.time()
        acc = image_judge_report(image_judge, held, device)
        print(f"image judge, {held_split} ({len(held)} images): {_fmt(acc)} "
              f"[{time.time() - start:.0f} s]")
    print(f"text parser, {split} captions: {_fmt(text_parser_report(examples))}")
    start = time.time()
    wer = speech_judge_report(
        Path(corpus) / "grammar.jsgf", examples, max_per_voice=max_per_voice
    )
    print(f"speech judge WER per voice, {split} audio [{time.time() - start:.0f} s]:")
    for voice, (value, n) in wer.items():
        print(f"  {voice:24s} {100 * value:6.2f}%  ({n} utterances)")

