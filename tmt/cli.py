"""The ``tmt`` console script: thin argparse subcommands over the public API.

Heavy libraries (torch, fairseq2, transformers) are imported inside the handlers so that
``tmt --help`` stays fast. A :class:`TmtError` is printed as one line on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from tmt.errors import TmtError

Handler = Callable[[argparse.Namespace], int | None]


def _cmd_data_shapes(args: argparse.Namespace) -> None:
    from tmt.data.shapes import generate_corpus

    generate_corpus(out=args.out, size=args.size, seed=args.seed, image_size=args.image_size)


def _cmd_data_report(args: argparse.Namespace) -> None:
    import json

    from tmt.data.report import bits_report, format_bits_report, parse_modality_values
    from tmt.data.store import TokenStore

    vocab = parse_modality_values(args.vocab_size, "--vocab-size")
    report = bits_report(
        TokenStore(args.store),
        vocab_sizes={m: int(v) for m, v in vocab.items()},
        raw_bits=parse_modality_values(args.raw_bits, "--raw-bits"),
    )
    print(json.dumps(report, indent=2) if args.json else format_bits_report(report))


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="tmt",
        description="Translate between speech, images and text, each modality treated as a "
        "language of discrete tokens (TMT).",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # -- data ------------------------------------------------------------------------------
    data = sub.add_parser("data", help="generate or inspect corpora", formatter_class=fmt)
    data_sub = data.add_subparsers(dest="data_command", metavar="CORPUS", required=True)
    shapes = data_sub.add_parser(
        "shapes",
        help="write the embedded tri-modal tmt-shapes corpus (wav, png, captions)",
        formatter_class=fmt,
    )
    shapes.add_argument("--out", required=True, help="output directory")
    shapes.add_argument("--size", type=int, default=20000, help="number of examples")
    shapes.add_argument("--seed", type=int, default=0, help="random seed")
    shapes.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    shapes.set_defaults(handler=_cmd_data_shapes)
    report = data_sub.add_parser(
        "report",
        help="bits per example of a token store against the raw media (the paper's Table 1)",
        formatter_class=fmt,
    )
    report.add_argument("store", nargs="+", help="token store directory (several: concatenated)")
    report.add_argument(
        "--vocab-size",
        action="append",
        metavar="MODALITY=N",
        help="codec vocabulary size (default: as recorded in the store); repeatable",
    )
    report.add_argument(
        "--raw-bits",
        action="append",
        metavar="MODALITY=BITS",
        help="raw bits per example instead of the recorded file sizes, e.g. image=98304 "
        "(64x64x3 pixels x 8 bits); repeatable",
    )
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(handler=_cmd_data_report)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return int(handler(args) or 0)
    except TmtError as error:
        print(f"tmt: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tmt: interrupted", file=sys.stderr)
        return 130
