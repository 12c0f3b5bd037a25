"""`tmt translate`, `tmt encode`, `tmt decode`, `tmt demo`, `tmt models`: a bundle at work."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tmt.cli.help import HelpFormatter, add_decoding_arguments, parse_options
from tmt.errors import TmtError


def _read_input(modality: str, value: str) -> object:
    """Text is the argument itself (``-``: stdin); speech and image are files."""
    from pathlib import Path

    if value == "-" and sys.stdin.isatty():
        raise TmtError(f"'-' reads the {modality} input from stdin, but stdin is a terminal: "
                       "pipe it in (e.g. echo 'a red circle' | tmt translate --from text ... -)")
    if modality == "text":
        text = sys.stdin.read() if value == "-" else value
        if not text.strip():
            raise TmtError("empty text input: nothing to translate")
        return text
    if value == "-":
        return sys.stdin.buffer.read()
    path = Path(value)
    if not path.is_file():
        raise TmtError(f"input file not found: {value}")
    return path

def check_output(modality: str, out: str | None) -> None:
    """Refuse, before any work, an output path that cannot be written as ``modality``."""
    import os
    from pathlib import Path

    from tmt.bundle import SUFFIXES, check_suffix
    from tmt.modality import Modality

    if out is None:
        return
    path = Path(out)
    target = Modality.parse(modality)
    if path.is_dir() or out.endswith(os.sep):
        raise TmtError(f"output {out} is a directory: give a file name ending in "
                       f"{' or '.join(SUFFIXES[target])}")
    check_suffix(target, path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise TmtError(f"cannot write {out}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK) or str(path.resolve()).startswith(("/proc/", "/sys/")):
        raise TmtError(f"cannot write {out}: {parent} is not writable")


def _write_output(modality: str, output: object, out: str | None) -> None:
    """Text to stdout unless ``-o``; a file's path is printed for speech and images."""
    from tmt.bundle import save_output
    from tmt.modality import Modality

    if not out:
        print(output)
        return
    save_output(Modality.parse(modality), output, out)
    if modality != "text":
        print(out)

def _default_output(source: str, value: str, target: str, raw: object = None) -> str | None:
    """``<input stem>.<target>.wav|png``; a text input's stem is its first words."""
    import re
    from pathlib import Path

    if target == "text":
        return None
    suffix = {"speech": "wav", "image": "png"}[target]
    if source == "text":
        words = re.findall(r"\w+", str(raw if raw is not None else value).lower())
        stem = "_".join(words)[:40].rstrip("_") or "text"
    else:
        stem = "stdin" if value == "-" else Path(value).stem
    return f"{stem}.{target}.{suffix}"

def _cmd_translate(args: argparse.Namespace) -> None:
    from tmt.bundle import Bundle

    if args.source == args.target:
        raise TmtError(f"--from and --to are both {args.source}: choose two different modalities")
    raw = _read_input(args.source, args.input)
    # text output goes to stdout unless -o: _default_output is None for it
    out = args.output or _default_output(args.source, args.input, args.target, raw)
    check_output(args.target, out)
    bundle = Bundle.load(args.model, device=args.device, precision=args.precision)
    options = parse_options(args, bundle.default_options)
    result = bundle.translate(raw, args.source, args.target, options)
    _write_output(args.target, result.output, out)

def _cmd_encode(args: argparse.Namespace) -> None:
    from tmt.bundle import Bundle
    from tmt.modality import Modality

    bundle = Bundle.load(args.model, device=args.device)
    ids = bundle.encode(Modality.parse(args.modality), _read_input(args.modality, args.input))
    if args.json:
        import json

        print(json.dumps({"modality": args.modality, "ids": [int(i) for i in ids]}))
    else:
        print(" ".join(str(int(i)) for i in ids))

def _cmd_decode(args: argparse.Namespace) -> None:
    import torch

    from tmt.bundle import Bundle
    from tmt.modality import Modality

    try:
        ids = torch.tensor([int(x) for x in args.ids], dtype=torch.long)
    except ValueError:
        raise TmtError("ids must be integers") from None
    if args.modality != "text" and not args.output:
        raise TmtError(f"decoding {args.modality} needs an output file (-o OUT)")
    check_output(args.modality, args.output)
    bundle = Bundle.load(args.model, device=args.device)
    _write_output(args.modality, bundle.decode(Modality.parse(args.modality), ids), args.output)

def _cmd_demo(args: argparse.Namespace) -> None:
    from tmt.demo import run_demo

    for line in run_demo(args.out, model=args.model, examples=args.examples, device=args.device):
        print(line)

def _cmd_models(args: argparse.Namespace) -> None:
    import json

    import torch

    from tmt.bundle import available_models
    from tmt.paths import tmt_home
    from tmt.translator.config import PRESETS
    from tmt.translator.model import Translator
    from tmt.vocab import Vocabulary

    presets: list[dict[str, Any]] = []
    for name, make in PRESETS.items():
        config = make()
        with torch.device("meta"):
            n = Translator(config, Vocabulary.paper()).num_parameters()
        presets.append({"name": name, "model_dim": config.model_dim,
                        "encoder_layers": config.num_encoder_layers,
                        "decoder_layers": config.num_decoder_layers,
                        "heads": config.num_attn_heads, "ffn_inner_dim": config.ffn_inner_dim,
                        "parameters": n})
    models = available_models()
    if args.json:
        print(json.dumps({"presets": presets, "bundles": models, "tmt_home": str(tmt_home())},
                         indent=2, default=str))
        return
    print("presets (parameters with the paper's 38921-id union vocabulary):")
    for p in presets:
        print(f"  {p['name']:8s} d={p['model_dim']} layers={p['encoder_layers']}+"
              f"{p['decoder_layers']} heads={p['heads']} ffn={p['ffn_inner_dim']}  "
              f"{p['parameters'] / 1e6:.1f}M")
    print(f"bundles (by name: $TMT_HOME = {tmt_home()}, then built in):"
          if models else f"bundles: none (by name: $TMT_HOME = {tmt_home()}, then built in)")
    for m in models:
        where = f"{m['source']}, {m['path']}" + (", hidden by the user bundle" if m["shadowed"] else "")
        if "error" in m:
            print(f"  {m['name']:8s} unreadable: {m['error']}  ({where})")
            continue
        print(f"  {m['name']:8s} {m['parameters'] / 1e6:.1f}M parameters, vocabulary "
              f"{m['vocab_size']}, codecs: {', '.join(m['codecs'])}  ({where})")


def add_commands(sub: argparse._SubParsersAction) -> None:
    modalities = ["speech", "image", "text"]
    # -- translate -------------------------------------------------------------------------
    tr = sub.add_parser(
        "translate",
        help="translate one input between speech, image and text",
        description="Translate INPUT (a wav or image file, or the text itself; '-' reads "
        "stdin). Text output goes to stdout unless -o; speech/image output goes to -o "
        "(default: <input stem>.<target>.wav|png).",
        formatter_class=HelpFormatter,
    )
    tr.add_argument("--from", dest="source", required=True, choices=modalities,
                    help="modality of the input")
    tr.add_argument("--to", dest="target", required=True, choices=modalities,
                    help="modality of the output (not the input's)")
    tr.add_argument("input", help="wav/image file, or the text itself ('-': stdin)")
    tr.add_argument("-o", "--output", help="output file (text: default stdout)")
    tr.add_argument("--model", default="shapes", help="bundle: a directory, or a name under $TMT_HOME or built in (tmt models)")
    add_decoding_arguments(tr)
    tr.set_defaults(handler=_cmd_translate)

    # -- encode / decode -------------------------------------------------------------------
    enc = sub.add_parser("encode", help="print the token ids of one item", formatter_class=HelpFormatter)
    enc.add_argument("modality", choices=modalities)
    enc.add_argument("input", help="wav/image file, or the text itself ('-': stdin)")
    enc.add_argument("--model", default="shapes", help="bundle whose codecs to use")
    enc.add_argument("--json", action="store_true", help='print {"modality": ..., "ids": [...]}')
    enc.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    enc.set_defaults(handler=_cmd_encode)
    dec = sub.add_parser("decode", help="turn token ids back into a file or text", formatter_class=HelpFormatter)
    dec.add_argument("modality", choices=modalities)
    dec.add_argument("ids", nargs="+", help="codec-local ids, as `tmt encode` prints them")
    dec.add_argument("-o", "--output", help="output file (required for speech and image)")
    dec.add_argument("--model", default="shapes", help="bundle whose codecs to use")
    dec.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    dec.set_defaults(handler=_cmd_decode)

    # -- demo ------------------------------------------------------------------------------
    demo = sub.add_parser("demo", help="translate the bundled examples in all six directions",
                          formatter_class=HelpFormatter)
    demo.add_argument("--out", default="demo_out", help="output directory")
    demo.add_argument("--model", default="shapes", help="bundle name or path")
    demo.add_argument("--examples", default=None, help="folder with speech.wav, image.png, text.txt "
                      "(default: the built-in examples)")
    demo.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    demo.set_defaults(handler=_cmd_demo)

    # -- models ----------------------------------------------------------------------------
    models = sub.add_parser("models", help="list presets and the bundles known by name",
                            formatter_class=HelpFormatter)
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(handler=_cmd_models)
