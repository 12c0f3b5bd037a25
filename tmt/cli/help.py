"""What the ``tmt`` commands share: the ``--help`` layout (defaults shown) and the decoding flags."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tmt.translator.generate import DecodingOptions


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, unless it has none (None, a flag's False) or its help already
    says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        # identity, not ==: a default of 0 or 0.0 is still shown
        if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or "default" in text:
            return text
        return super()._get_help_string(action)


def parse_options(args: argparse.Namespace, defaults: DecodingOptions) -> DecodingOptions:
    """The model's decoding defaults, overridden by the flags given."""
    from dataclasses import replace

    changes = dict(strategy=args.strategy, beam_size=args.beam, temperature=args.temperature,
                   top_k=args.top_k, seed=args.seed)
    if args.rerank is not None:
        changes.update(rerank=args.rerank)
    if args.max_len is not None:
        changes.update(max_text_len=args.max_len, max_speech_len=args.max_len)
    if args.precision is not None:
        changes.update(precision=args.precision)
    return replace(defaults, **changes)


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """The DecodingOptions flags shared by translate and eval."""
    parser.add_argument("--strategy", default="beam", choices=["beam", "greedy", "sample"],
                        help="beam search, greedy decoding, or sampling (--temperature, --top-k)")
    parser.add_argument("--beam", type=int, default=5, help="beam size")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k best (0: all)")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    parser.add_argument("--rerank", type=float, default=None, metavar="WEIGHT",
                        help="rerank the beam's hypotheses by forward + WEIGHT x reverse-direction "
                        "score (noisy channel; 0: off; default: the model's own setting)")
    parser.add_argument("--max-len", type=int, default=None,
                        help="cap on generated text/speech tokens (default: 64 text, 500 speech)")
    add_precision_argument(parser)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default=None, choices=["fp32", "int8", "bf16"],
                        help="decoder weights for beam search: fp32 (default; exact), int8 "
                        "(CPU only, about 3x faster, approximate) or bf16 (fast only where the "
                        "device has native bf16)")


EXAMPLES: dict[str, str] = {
    "translate": "tmt translate --from speech --to image in.wav -o out.png",
    "encode": "tmt encode text 'a small red circle on the left' --json",
    "decode": "tmt decode image 5 17 ... -o out.png   (the ids tmt encode printed)",
    "demo": "tmt demo --out demo_out",
    "models": "tmt models --json",
    "serve": "tmt serve --port 7860   (then open http://127.0.0.1:7860/)",
    "tokenize": "tmt tokenize shapes --root work/shapes-20k --out work/store-shapes --shard 0/2",
    "backtranslate": "tmt backtranslate imagenet --root data/imagenet --out work/stores/imagenet",
    "data shapes": "tmt data shapes --out work/shapes-20k --size 20000 --seed 0",
    "data unseen": "tmt data unseen --corpus work/shapes-20k --split test --limit 200 "
                   "--out work/unseen-test",
    "data report": "tmt data report work/store-shapes --json",
    "train": "tmt train --config recipes/shapes/translator.yaml --set max_steps=100",
    "pack": "tmt pack work/runs/shapes-translator/model --out ~/.cache/tmt/mine --rerank 1.0",
    "eval": "tmt eval --corpus work/shapes-20k --split test --limit 500 --out report.json",
    "judge-report": "tmt judge-report --corpus work/shapes-20k --split test",
    "codec train speech-units": "tmt codec train speech-units --corpus work/shapes-20k "
                                "--features mfcc --out work/speech/tokenizer --output-voice-only",
    "codec train normalizer": "tmt codec train normalizer --corpus work/shapes-20k --teacher "
                              "work/speech/tokenizer --out work/speech/normalizer --steps 2400",
    "codec train hubert": "tmt codec train hubert --corpus work/shapes-20k --targets "
                          "work/speech/tokenizer --out work/hubert --minutes 30",
    "codec train vocoder": "tmt codec train vocoder --corpus work/shapes-20k --tokenizer "
                           "work/speech/tokenizer --out work/speech/vocoder --steps 1500",
    "codec train hifigan": "tmt codec train hifigan --corpus work/shapes-20k --tokenizer "
                           "work/speech/tokenizer --out work/hifigan --preset tiny",
    "codec train image-semantic": "tmt codec train image-semantic --corpus work/shapes-20k "
                                  "--out work/image-encoder --steps 800",
    "codec train image": "tmt codec train image --corpus work/shapes-20k --init "
                         "work/image-encoder --freeze-encoder --out work/image-codec",
    "codec train image-refit": "tmt codec train image-refit --codec work/image-codec --corpus "
                               "work/shapes-20k --out work/image-codec-refit --steps 3000",
    "codec train judge": "tmt codec train judge --corpus work/shapes-20k --out work/judge",
    "codec train unit-probe": "tmt codec train unit-probe --corpus work/shapes-20k --tokenizer "
                              "work/speech/tokenizer",
    "codec train unit-bpe": "tmt codec train unit-bpe --corpus work/shapes-20k --codec "
                            "work/codecs/speech --vocab-size 1000",
    "codec convert-km": "tmt codec convert-km km.bin --out km.safetensors --trust-pickle",
    "speech encode": "tmt speech encode in.wav",
    "speech resynth": "tmt speech resynth in.wav --out resynth.wav",
    "text train": "tmt text train --corpus work/shapes-20k --out work/codecs/text",
}
"""One example per runnable command, shown at the end of its ``--help``."""
