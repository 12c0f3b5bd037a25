"""The ``tmt`` console script: thin argparse subcommands over the public API, one module per
command group.

Heavy libraries (torch, fairseq2, transformers) are imported inside the handlers so that
``tmt --help`` stays fast. A :class:`TmtError` is printed as one line on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from tmt.cli import codec, data, eval, train, translate
from tmt.cli.help import EXAMPLES, HelpFormatter
from tmt.errors import TmtError
from tmt.version import __version__

Handler = Callable[[argparse.Namespace], int | None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tmt",
        description="Translate between speech, images and text, each modality treated as a "
        "language of discrete tokens (TMT).",
        formatter_class=HelpFormatter,
        epilog="example: tmt translate --from speech --to image in.wav -o out.png   "
        "(tmt COMMAND --help: each command's options and an example)",
    )
    parser.add_argument("--version", action="version", version=f"tmt {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or info messages, only results and errors "
                        "(progress bars also honour TQDM_DISABLE=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (translate, data, train, eval, codec):  # the order of `tmt --help`
        group.add_commands(sub)
    for path, command in commands(parser):
        command.epilog = f"example: {EXAMPLES[path]}" if path in EXAMPLES else command.epilog
    return parser


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every runnable (leaf) subcommand as ("codec train image", parser)."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                path = f"{prefix}{name}"
                nested = commands(child, path + " ")
                out.extend(nested or [(path, child)])
    return out


def _configure_output(quiet: bool) -> None:
    """Info messages (run summaries) to stderr; --quiet keeps warnings and errors only and
    turns the progress bars off (tqdm reads TQDM_DISABLE when it is first imported)."""
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_output(args.quiet)
    handler: Handler = args.handler
    try:
        return int(handler(args) or 0)
    except TmtError as error:
        print(f"tmt: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        detail = f": {stop}" if str(stop) else ""
        print(f"tmt: interrupted{detail}", file=sys.stderr)
        return 130
