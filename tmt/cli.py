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
