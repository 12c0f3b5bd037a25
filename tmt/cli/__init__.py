"""The ``tmt`` console script: thin argparse subcommands over the public API, one module per
command group.

Heavy libraries (torch, fairseq2, transformers) are imported inside the handlers so that
``tmt --help`` stays fast. A :class:`TmtError` is printed as one line on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import typing
from collections.abc import Callable, Sequence

from tmt.cli import codec, data, eval, serve, train, translate
from tmt.cli.help import EXAMPLES, HelpFormatter
from tmt.errors import TmtError
from tmt.version import __version__

Handler = Callable[[argparse.Namespace], int | None]


class Parser(argparse.ArgumentParser):
    """argparse with tmt's error style: one line on stderr, exit code 2 (subcommands inherit it)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    for group in (translate, serve, data, train, eval, codec):  # the order of `tmt --help`
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


def check_device(name: str) -> None:
    """A torch device that exists here, or one TmtError saying why not."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise TmtError(f"unknown device {name!r} (cpu, cuda, cuda:1, mps, ...)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TmtError(f"--device {name}: no CUDA GPU is available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TmtError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise TmtError(f"--device {name}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps", "meta"):
        raise TmtError(f"--device {name}: tmt runs on cpu, cuda or mps")


def _configure_output(quiet: bool) -> None:
    """tmt's info messages (run summaries) to stderr; --quiet keeps warnings and errors only and
    turns the progress bars off (tqdm reads TQDM_DISABLE when it is first imported)."""
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
    # tmt's own info messages (run summaries); other libraries' only from warnings up
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("tmt").setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_output(args.quiet)
    handler: Handler = args.handler
    previous = _terminate_as_interrupt()
    try:
        if getattr(args, "device", None) is not None:
            check_device(args.device)
        return int(handler(args) or 0)
    except TmtError as error:
        print(f"tmt: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        detail = f": {stop}" if str(stop) else ""
        print(f"tmt: interrupted{detail}", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt() -> typing.Any:
    """SIGTERM (``kill``, a scheduler's preemption) unwinds like Ctrl-C: open token-store
    shards and checkpoints are closed by their ``with`` blocks before the process exits, so
    nothing finished is lost (``tmt train``, the codec trainers and ``tmt backtranslate``
    install their own handlers, which stop at a step or chunk boundary and then raise
    KeyboardInterrupt). Returns the previous handler (None off the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    return signal.signal(signal.SIGTERM, interrupt)
