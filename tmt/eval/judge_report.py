"""Measure the three tmt-shapes judges on a corpus's ground-truth held-out data.

    python -m tmt.eval.judge_report --corpus work/shapes-20k --image-judge checkpoints/judges/image

Prints the image judge's per-attribute accuracy on the test and compositional images, the
speech judge's WER per voice on the test audio, and the text parser's accuracy on every
reference caption of the test split.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from tmt.cli_help import HelpFormatter
from tmt.data.shapes import ShapesExample, read_corpus
from tmt.data.shapes_tts import read_wav
from tmt.data.shapes_world import attribute_accuracy, parse_caption
from tmt.eval.speech_judge import SpeechJudge, word_error_rate


def _fmt(acc: dict[str, float]) -> str:
    return " ".join(f"{k} {100 * v:.2f}%" for k, v in acc.items())


def image_judge_report(judge_dir: str | Path, examples: list[ShapesExample]) -> dict[str, float]:
    """Per-attribute accuracy of the image judge on the examples' ground-truth images."""
    from tmt.eval.image_judge import ImageJudge
    from tmt.eval.image_judge_train import evaluate

    return evaluate(ImageJudge.load(judge_dir), examples)


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--image-judge", default="checkpoints/judges/image")
    parser.add_argument("--split", default="test", help="split for speech and text figures")
    parser.add_argument("--max-per-voice", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    examples = read_corpus(args.corpus, args.split)
    print(f"corpus {args.corpus}, {args.split}: {len(examples)} examples")
    for split in ("test", "compositional"):
        held = read_corpus(args.corpus, split)
        start = time.time()
        acc = image_judge_report(args.image_judge, held)
        print(f"image judge, {split} ({len(held)} images): {_fmt(acc)} "
              f"[{time.time() - start:.0f} s]")
    print(f"text parser, {args.split} captions: {_fmt(text_parser_report(examples))}")
    start = time.time()
    wer = speech_judge_report(
        Path(args.corpus) / "grammar.jsgf", examples, max_per_voice=args.max_per_voice
    )
    print(f"speech judge WER per voice, {args.split} audio [{time.time() - start:.0f} s]:")
    for voice, (value, n) in wer.items():
        print(f"  {voice:24s} {100 * value:6.2f}%  ({n} utterances)")


if __name__ == "__main__":
    main()
