"""`tmt train` and `tmt pack`: the translator trained on token stores, then bundled."""

from __future__ import annotations

import argparse

from tmt.cli.help import HelpFormatter


def _cmd_train(args: argparse.Namespace) -> None:
    from tmt.train.run import run_training

    overrides = [*(args.set or []), *([f"device={args.device}"] if args.device else [])]
    result = run_training(args.config, overrides)
    print(f"trained to step {result.step}: train loss {result.train_loss:.4f}, "
          f"{result.tokens_per_second:.0f} tokens/s")


def _cmd_pack(args: argparse.Namespace) -> None:
    from tmt.bundle import pack_bundle

    decoding = {"max_text_len": args.max_text_len, "max_speech_len": args.max_speech_len,
                "rerank": args.rerank}
    bundle = pack_bundle(args.translator, args.out, codecs_root=args.codecs, name=args.name,
                         decoding=decoding)
    codecs = sorted(m.value for m in bundle.codec_dirs)
    print(f"{args.out}: {bundle.num_parameters() / 1e6:.1f}M parameters, codecs {codecs}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    # -- train -----------------------------------------------------------------------------
    train = sub.add_parser(
        "train",
        help="train the translator on token stores (torchrun for several processes)",
        description="Train as FILE.yaml says (keys of tmt.train.config.TrainConfig). A run "
        "resumes from OUT_DIR/last.pt; Ctrl-C or SIGTERM writes a checkpoint. Several processes: "
        "torchrun --nproc_per_node N -m tmt train --config FILE.yaml",
        formatter_class=HelpFormatter,
    )
    train.add_argument("--config", required=True, help="YAML training config")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (model.KEY for model fields); repeatable")
    train.add_argument("--device", default=None,
                       help="torch device (cpu, cuda, ...; the same as --set device=...; default: the config's)")
    train.set_defaults(handler=_cmd_train)

    pack = sub.add_parser("pack", help="write a model bundle: a trained translator + codec directories",
                          formatter_class=HelpFormatter)
    pack.add_argument("translator", help="translator directory (OUT_DIR/model of tmt train)")
    pack.add_argument("--codecs", default=None, help="folder with speech/ image/ text/ (default: the codecs built into tmt)")
    pack.add_argument("--out", required=True, help="bundle directory to write; under $TMT_HOME (~/.cache/tmt unless set) it loads by name")
    pack.add_argument("--name", default=None, help="bundle name (default: the directory name)")
    pack.add_argument("--max-text-len", type=int, default=64, help="the bundle's text length cap")
    pack.add_argument("--max-speech-len", type=int, default=500,
                      help="the bundle's speech length cap (units)")
    pack.add_argument("--rerank", type=float, default=0.0, metavar="WEIGHT",
                      help="the bundle's reranking weight (see tmt translate --rerank)")
    pack.set_defaults(handler=_cmd_pack)
