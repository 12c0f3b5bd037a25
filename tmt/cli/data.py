"""`tmt data`, `tmt tokenize`, `tmt backtranslate`: corpora and token stores."""

from __future__ import annotations

import argparse
import sys

from tmt.cli.help import HelpFormatter, add_decoding_arguments, parse_options

UNSEEN_VOICES = ("flite:awb", "flite:rms", "flite:slt")
CONDITIONS = ("clean", "white20", "white10", "babble20", "babble10", "reverb0.3", "reverb0.4",
              "reverb0.6", "telephone", "speed0.9", "speed1.1")


def _cmd_data_shapes(args: argparse.Namespace) -> None:
    from tmt.data.shapes import generate_corpus

    generate_corpus(out=args.out, size=args.size, seed=args.seed, image_size=args.image_size)

def _cmd_data_unseen(args: argparse.Namespace) -> None:
    from tmt.data.unseen import write_unseen_set

    out = write_unseen_set(args.corpus, args.out, split=args.split, limit=args.limit,
                           voices=args.voices, conditions=args.conditions, seed=args.seed)
    print(f"unseen-voice set -> {out}")


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

def _cmd_tokenize(args: argparse.Namespace) -> None:
    from tmt.data.tokenize import tokenize_dataset

    options = {k: getattr(args, k) for k in _READER_OPTIONS if getattr(args, k, None) is not None}
    summary = tokenize_dataset(
        args.dataset, args.root, args.out, codecs_dir=args.codecs, shard=args.shard,
        shard_size=args.shard_size, options=options, tts=getattr(args, "tts", None),
        tts_cache=getattr(args, "tts_cache", None), speech_units=args.speech_units,
        device=args.device,
    )
    print(summary)
    if summary.failures:
        print(f"{summary.failed} failures listed in {args.out}/failures-*.tsv", file=sys.stderr)


#: `tmt tokenize` flags passed to the corpus reader as keyword arguments.
_READER_OPTIONS = ("spoken", "audio", "karpathy", "images", "captions", "split")


def _cmd_backtranslate(args: argparse.Namespace) -> None:
    from tmt.backtranslate import backtranslate_dataset
    from tmt.bundle import read_bundle_meta, resolve_model
    from tmt.translator.generate import DecodingOptions

    # The model's decoding defaults (e.g. its length caps), overridden by the flags given.
    meta = read_bundle_meta(resolve_model(args.model))
    options = parse_options(args, DecodingOptions(**meta.get("decoding", {})))
    summary = backtranslate_dataset(
        args.dataset, args.root, args.model, args.out, shard=args.shard,
        drop=[m for m in (args.drop or "").split(",") if m], ids_file=args.ids,
        image_from=args.image_from, options=options, batch_size=args.batch_size,
        shard_size=args.shard_size, device=args.device,
    )
    print(summary)


def add_commands(sub: argparse._SubParsersAction) -> None:
    # -- tokenize --------------------------------------------------------------------------
    tok = sub.add_parser(
        "tokenize",
        help="tokenize a whole corpus into a token store",
        description="Encode every example of a corpus with the codecs and write a sharded, "
        "resumable token store (a restarted run skips finished examples).",
        formatter_class=HelpFormatter,
    )
    tok.add_argument("dataset", help="corpus reader (shapes, coco, flickr8k, cc3m, cc12m)")
    tok.add_argument("--root", required=True, help="corpus directory")
    tok.add_argument("--out", required=True, help="token store directory")
    tok.add_argument("--codecs", default=None,
                     help="directory with speech/ image/ text/ codecs (default: the codecs built into tmt)")
    tok.add_argument("--shard", default=None, metavar="I/N",
                     help="process part I of N (0-based) so that machines can split a corpus")
    tok.add_argument("--shard-size", type=int, default=1000, help="examples per store shard")
    tok.add_argument("--device", default="cpu", help="torch device the codecs run on (cpu, cuda, ...)")
    tok.add_argument("--speech-units", action="store_true",
                     help="store speech as units even if the speech codec has unit BPE (for a "
                     "translator that cuts them into pieces itself: speech_bpe in its config)")
    # Defaults are per corpus (said in each help): SUPPRESS keeps "(default: None)" out of --help.
    rd = tok.add_argument_group("corpus options (coco, flickr8k, cc3m, cc12m)",
                                argument_default=argparse.SUPPRESS)
    rd.add_argument("--spoken", metavar="DIR",
                    help="coco: SpokenCOCO folder (default: ROOT/SpokenCOCO if present)")
    rd.add_argument("--audio", metavar="DIR",
                    help="flickr8k: Flickr8k Audio Caption Corpus folder (default: ROOT/flickr_audio)")
    rd.add_argument("--karpathy", metavar="FILE",
                    help="coco/flickr8k: Karpathy split json (default: ROOT/dataset_{coco,flickr8k}.json)")
    rd.add_argument("--images", metavar="DIR", help="image folder (default: per corpus, under ROOT)")
    rd.add_argument("--captions", metavar="FILE",
                    help="cc3m/cc12m: captions TSV (default: ROOT/captions.tsv, else IMAGE + IMAGE.txt)")
    rd.add_argument("--split", help="cc3m/cc12m: split of rows without one (default: train)")
    rd.add_argument("--tts", metavar="VOICE",
                    help="synthesize speech for examples without it (espeak:NAME, flite:NAME, "
                    "or vits:DIR for a local HuggingFace VITS model; default for cc3m/cc12m: "
                    "espeak:en-us)")
    rd.add_argument("--tts-cache", metavar="DIR",
                    help="where synthesized wavs are kept for reruns (default: OUT-tts)")
    tok.set_defaults(handler=_cmd_tokenize)

    # -- backtranslate ---------------------------------------------------------------------
    bt = sub.add_parser(
        "backtranslate",
        help="generate the missing modalities of unpaired data (pseudo token store)",
        description="Translate each example's real media into its missing modalities with a "
        "model (imagenet: image->text and image->speech; commonvoice: text->image) and write "
        "real + generated tokens, marked pseudo, into a token store that training mixes with "
        "real data. Resumable and idempotent (a rerun skips finished examples).",
        formatter_class=HelpFormatter,
    )
    bt.add_argument("dataset", help="corpus reader (imagenet, commonvoice, shapes, ...)")
    bt.add_argument("--root", required=True, help="corpus directory")
    bt.add_argument("--model", default="shapes",
                    help="bundle that translates: a directory, or a name under $TMT_HOME or built in")
    bt.add_argument("--out", required=True, help="token store directory to write")
    bt.add_argument("--shard", default=None, metavar="I/N",
                    help="process part I of N (0-based) so that machines can split a corpus")
    bt.add_argument("--drop", default=None, metavar="M,M",
                    help="drop these modalities from every example first (simulates unpaired "
                    "data from a paired corpus, e.g. --drop text,speech)")
    bt.add_argument("--ids", default=None, metavar="FILE",
                    help="only the example ids listed in FILE (whitespace-separated)")
    bt.add_argument("--image-from", default=None, choices=["text", "speech"],
                    help="which real modality generates missing images (default: text)")
    bt.add_argument("--batch-size", type=int, default=32, help="examples per generation batch")
    bt.add_argument("--shard-size", type=int, default=1024, help="examples per store shard")
    add_decoding_arguments(bt)
    bt.set_defaults(handler=_cmd_backtranslate)

    # -- data ------------------------------------------------------------------------------
    data = sub.add_parser("data", help="generate or inspect corpora", formatter_class=HelpFormatter)
    data_sub = data.add_subparsers(dest="data_command", metavar="CORPUS", required=True)
    shapes = data_sub.add_parser(
        "shapes",
        help="write the embedded tri-modal tmt-shapes corpus (wav, png, captions)",
        formatter_class=HelpFormatter,
    )
    shapes.add_argument("--out", required=True, help="output directory")
    shapes.add_argument("--size", type=int, default=20000, help="number of examples")
    shapes.add_argument("--seed", type=int, default=0, help="random seed")
    shapes.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    shapes.set_defaults(handler=_cmd_data_shapes)
    # (the defaults repeat tmt.data.shapes_tts.UNSEEN_VOICES and tmt.data.augment.CONDITIONS
    # so that `tmt --help` imports nothing heavy; tests/unit/cli checks that they agree)
    unseen = data_sub.add_parser(
        "unseen",
        help="a corpus split's captions by held-out voices, clean and degraded (for tmt eval --unseen)",
        description="Speak the first --limit captions of --split with every held-out voice (clean), "
        "and once more per degraded condition (the voices taking turns): white and babble noise "
        "at 20/10 dB SNR, synthetic rooms of RT60 0.3/0.4/0.6 s, the 300-3400 Hz telephone band, "
        "speed x0.9/x1.1.\n\n  tmt data unseen --corpus work/shapes-20k --split test --limit 200 "
        "--out work/unseen-test",
        formatter_class=HelpFormatter,
    )
    unseen.add_argument("--corpus", required=True, help="tmt-shapes corpus directory")
    unseen.add_argument("--out", required=True, help="output directory")
    unseen.add_argument("--split", default="test", help="split whose captions are spoken")
    unseen.add_argument("--limit", type=int, default=200, help="first N examples of the split")
    unseen.add_argument("--voices", nargs="+", default=list(UNSEEN_VOICES),
                        help="held-out voices (must be held out by the corpus)")
    unseen.add_argument("--conditions", nargs="+", default=list(CONDITIONS), help="conditions")
    unseen.add_argument("--seed", type=int, default=0, help="random seed of the degradations")
    unseen.set_defaults(handler=_cmd_data_unseen)
    report = data_sub.add_parser(
        "report",
        help="bits per example of a token store against the raw media (the paper's Table 1)",
        formatter_class=HelpFormatter,
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
