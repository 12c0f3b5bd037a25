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
    if args.max_len:
        changes.update(max_text_len=args.max_len, max_speech_len=args.max_len)
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
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
