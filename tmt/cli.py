"""The ``tmt`` console script: thin argparse subcommands over the public API.

Heavy libraries (torch, fairseq2, transformers) are imported inside the handlers so that
``tmt --help`` stays fast. A :class:`TmtError` is printed as one line on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tmt.cli_help import HelpFormatter
from tmt.errors import TmtError

if TYPE_CHECKING:
    from tmt.translator.generate import DecodingOptions

Handler = Callable[[argparse.Namespace], int | None]
#: tmt.eval.captioning.CAPTION_METRICS, repeated so that ``tmt --help`` imports nothing heavy.
CAPTION_METRIC_NAMES = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider", "spice")


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


def _cmd_speech_encode(args: argparse.Namespace) -> None:
    from tmt.speech.codec import SpeechCodec

    units = SpeechCodec.load(args.codec).encode(args.audio)
    print(" ".join(str(int(u)) for u in units))


def _cmd_speech_resynth(args: argparse.Namespace) -> None:
    from tmt.speech.audio import save_audio
    from tmt.speech.codec import SpeechCodec

    codec = SpeechCodec.load(args.codec)
    units = codec.encode(args.audio)
    save_audio(args.out, codec.decode(units), codec.sample_rate)
    print(f"{len(units)} units -> {args.out}")


def _parse_options(args: argparse.Namespace, defaults: DecodingOptions) -> DecodingOptions:
    """The model's decoding defaults, overridden by the flags given."""
    from dataclasses import replace

    changes = dict(strategy=args.strategy, beam_size=args.beam, temperature=args.temperature,
                   top_k=args.top_k, seed=args.seed)
    if args.rerank is not None:
        changes.update(rerank=args.rerank)
    if args.max_len:
        changes.update(max_text_len=args.max_len, max_speech_len=args.max_len)
    return replace(defaults, **changes)


def _read_input(modality: str, value: str) -> object:
    """Text is the argument itself (``-``: stdin); speech and image are files."""
    from pathlib import Path

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


def _write_output(modality: str, output: object, out: str | None) -> None:
    from pathlib import Path

    if modality == "text":
        if out:
            Path(out).write_text(f"{output}\n")
        else:
            print(output)
        return
    assert out is not None
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if modality == "speech":
        from tmt.speech.audio import save_audio

        save_audio(out, output)  # type: ignore[arg-type]
    else:
        output.save(out)  # type: ignore[attr-defined]
    print(out)


def _default_output(source: str, value: str, target: str) -> str | None:
    from pathlib import Path

    if target == "text":
        return None
    suffix = {"speech": "wav", "image": "png"}[target]
    stem = "stdin" if value == "-" or source == "text" else Path(value).stem
    return f"{stem}.{target}.{suffix}"


def _cmd_translate(args: argparse.Namespace) -> None:
    from tmt.bundle import Bundle

    if args.source == args.target:
        raise TmtError(f"--from and --to are both {args.source}: choose two different modalities")
    raw = _read_input(args.source, args.input)
    bundle = Bundle.load(args.model, device=args.device)
    options = _parse_options(args, bundle.default_options)
    (result,) = bundle.translate([raw], args.source, args.target, options)
    out = args.output or _default_output(args.source, args.input, args.target)
    _write_output(args.target, result.output, out)


def _cmd_encode(args: argparse.Namespace) -> None:
    from tmt.bundle import Bundle
    from tmt.modality import Modality

    bundle = Bundle.load(args.model)
    ids = bundle.encode(Modality.parse(args.modality), _read_input(args.modality, args.input))
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
    bundle = Bundle.load(args.model)
    _write_output(args.modality, bundle.decode(Modality.parse(args.modality), ids), args.output)


def _cmd_tokenize(args: argparse.Namespace) -> None:
    from tmt.data.tokenize import tokenize_dataset

    options = {k: getattr(args, k) for k in _READER_OPTIONS if getattr(args, k, None) is not None}
    summary = tokenize_dataset(
        args.dataset, args.root, args.out, codecs_dir=args.codecs, shard=args.shard,
        shard_size=args.shard_size, options=options, tts=getattr(args, "tts", None),
        tts_cache=getattr(args, "tts_cache", None), speech_units=args.speech_units,
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
    options = _parse_options(args, DecodingOptions(**meta.get("decoding", {})))
    summary = backtranslate_dataset(
        args.dataset, args.root, args.model, args.out, shard=args.shard,
        drop=[m for m in (args.drop or "").split(",") if m], ids_file=args.ids,
        image_from=args.image_from, options=options, batch_size=args.batch_size,
        shard_size=args.shard_size, device=args.device,
    )
    print(summary)


def _cmd_train(args: argparse.Namespace) -> None:
    from tmt.train.run import run_training

    result = run_training(args.config, args.set)
    print(f"trained to step {result.step}: train loss {result.train_loss:.4f}, "
          f"{result.tokens_per_second:.0f} tokens/s")


def _cmd_eval(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from tmt.bundle import Bundle
    from tmt.eval.shapes_eval import evaluate_shapes
    from tmt.modality import DIRECTIONS, parse_direction

    directions = [parse_direction(d) for d in args.directions] if args.directions else DIRECTIONS
    bundle = Bundle.load(args.model, device=args.device)
    options = _parse_options(args, bundle.default_options)
    if args.dataset == "shapes":
        corpus = args.corpus or args.root
        if corpus is None:
            raise TmtError("tmt-shapes evaluation needs --corpus DIR")
        reports = {
            split: evaluate_shapes(bundle, corpus, split, limit=args.limit, options=options,
                                   cascade=args.cascade, batch_size=args.batch_size,
                                   directions=directions,
                                   save_dir=Path(args.save_outputs) / split if args.save_outputs else None)
            for split in args.split or ["test", "compositional"]
        }
    else:
        from tmt.eval.benchmark import evaluate_dataset

        if args.root is None:
            raise TmtError(f"--dataset {args.dataset} needs --root DIR")
        reader = {k: getattr(args, k) for k in ("spoken", "audio", "karpathy", "images")
                  if getattr(args, k) is not None}
        reports = {
            split: evaluate_dataset(
                bundle, args.dataset, args.root, split, reader_options=reader,
                clip=args.clip, asr=args.asr, directions=directions,
                limit=args.limit, captions_per_image=args.captions_per_image or None,
                options=options, batch_size=args.batch_size, metrics=args.caption_metrics,
                save_dir=Path(args.save_outputs) / split if args.save_outputs else None)
            for split in args.split or ["test"]
        }
    text = json.dumps(reports, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)


def _cmd_text_train(args: argparse.Namespace) -> None:
    from tmt.data.shapes import read_corpus
    from tmt.text import TextTokenizer

    captions = [c for item in read_corpus(args.corpus, "train") for c in item.captions]
    tokenizer = TextTokenizer.train(captions, vocab_size=args.vocab_size, min_frequency=1)
    tokenizer.save(args.out)
    print(f"{args.out}: WordPiece vocabulary of {tokenizer.vocab_size} from {len(captions)} captions")


def _cmd_pack(args: argparse.Namespace) -> None:
    from pathlib import Path

    from tmt.bundle import REPO_ROOT, Bundle, write_bundle
    from tmt.modality import MODALITIES
    from tmt.translator.generate import DecodingOptions
    from tmt.translator.model import Translator

    translator = Translator.load(args.translator)
    codecs_root = Path(args.codecs) if args.codecs else REPO_ROOT / "tokenizers"
    dirs = {m: codecs_root / m.value for m in MODALITIES if (codecs_root / m.value).is_dir()}
    decoding = {"max_text_len": args.max_text_len, "max_speech_len": args.max_speech_len,
                "rerank": args.rerank}
    DecodingOptions(**decoding)  # refuses a bad value before anything is written
    path = write_bundle(args.out, translator, dirs, name=args.name or Path(args.out).name,
                        decoding=decoding)
    bundle = Bundle.load(path)
    for m in dirs:
        bundle.codec(m)  # checks each codec's vocabulary against the translator's
    print(f"{path}: {bundle.num_parameters() / 1e6:.1f}M parameters, codecs {sorted(d.value for d in dirs)}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from tmt.demo import run_demo

    for line in run_demo(args.out, model=args.model, examples=args.examples):
        print(line)


def _cmd_models(args: argparse.Namespace) -> None:
    from tmt.bundle import available_models
    from tmt.translator.config import PRESETS
    from tmt.translator.model import Translator
    from tmt.vocab import Vocabulary

    print("presets (parameters with the paper's 38921-id union vocabulary):")
    for name, make in PRESETS.items():
        import torch

        config = make()
        with torch.device("meta"):
            n = Translator(config, Vocabulary.paper()).num_parameters()
        print(f"  {name:8s} d={config.model_dim} layers={config.num_encoder_layers}+"
              f"{config.num_decoder_layers} heads={config.num_attn_heads} "
              f"ffn={config.ffn_inner_dim}  {n / 1e6:.1f}M")
    models = available_models()
    print("installed bundles:" if models else "installed bundles: none")
    for m in models:
        print(f"  {m['name']:8s} {m['parameters'] / 1e6:.1f}M parameters, vocabulary "
              f"{m['vocab_size']}, codecs: {', '.join(m['codecs'])}  ({m['path']})")


def _add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    fmt = HelpFormatter
    parser = argparse.ArgumentParser(
        prog="tmt",
        description="Translate between speech, images and text, each modality treated as a "
        "language of discrete tokens (TMT).",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modalities = ["speech", "image", "text"]

    # -- translate -------------------------------------------------------------------------
    tr = sub.add_parser(
        "translate",
        help="translate one input between speech, image and text",
        description="Translate INPUT (a wav or image file, or the text itself; '-' reads "
        "stdin). Text output goes to stdout unless -o; speech/image output goes to -o "
        "(default: <input stem>.<target>.wav|png).",
        formatter_class=fmt,
    )
    tr.add_argument("--from", dest="source", required=True, choices=modalities,
                    help="modality of the input")
    tr.add_argument("--to", dest="target", required=True, choices=modalities,
                    help="modality of the output (not the input's)")
    tr.add_argument("input", help="wav/image file, or the text itself ('-': stdin)")
    tr.add_argument("-o", "--output", help="output file (text: default stdout)")
    tr.add_argument("--model", default="shapes", help="bundle name under checkpoints/ or a path")
    _add_decoding_arguments(tr)
    tr.set_defaults(handler=_cmd_translate)

    # -- encode / decode -------------------------------------------------------------------
    enc = sub.add_parser("encode", help="print the token ids of one item", formatter_class=fmt)
    enc.add_argument("modality", choices=modalities)
    enc.add_argument("input", help="wav/image file, or the text itself ('-': stdin)")
    enc.add_argument("--model", default="shapes", help="bundle whose codecs to use")
    enc.set_defaults(handler=_cmd_encode)
    dec = sub.add_parser("decode", help="turn token ids back into a file or text", formatter_class=fmt)
    dec.add_argument("modality", choices=modalities)
    dec.add_argument("ids", nargs="+", help="codec-local ids, as `tmt encode` prints them")
    dec.add_argument("-o", "--output", help="output file (required for speech and image)")
    dec.add_argument("--model", default="shapes", help="bundle whose codecs to use")
    dec.set_defaults(handler=_cmd_decode)

    # -- tokenize --------------------------------------------------------------------------
    tok = sub.add_parser(
        "tokenize",
        help="tokenize a whole corpus into a token store",
        description="Encode every example of a corpus with the codecs and write a sharded, "
        "resumable token store (a restarted run skips finished examples).",
        formatter_class=fmt,
    )
    tok.add_argument("dataset", help="corpus reader (shapes, coco, flickr8k, cc3m, cc12m)")
    tok.add_argument("--root", required=True, help="corpus directory")
    tok.add_argument("--out", required=True, help="token store directory")
    tok.add_argument("--codecs", default=None,
                     help="directory with speech/ image/ text/ codecs (default: the repo's tokenizers/)")
    tok.add_argument("--shard", default=None, metavar="I/N",
                     help="process part I of N (0-based) so that machines can split a corpus")
    tok.add_argument("--shard-size", type=int, default=1000, help="examples per store shard")
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
        formatter_class=fmt,
    )
    bt.add_argument("dataset", help="corpus reader (imagenet, commonvoice, shapes, ...)")
    bt.add_argument("--root", required=True, help="corpus directory")
    bt.add_argument("--model", required=True, help="bundle name or path that translates")
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
    _add_decoding_arguments(bt)
    bt.set_defaults(handler=_cmd_backtranslate)

    # -- train -----------------------------------------------------------------------------
    train = sub.add_parser(
        "train",
        help="train the translator on token stores (torchrun for several processes)",
        description="Train as FILE.yaml says (keys of tmt.train.config.TrainConfig). A run "
        "resumes from OUT_DIR/last.pt; Ctrl-C or SIGTERM writes a checkpoint. Several processes: "
        "torchrun --nproc_per_node N -m tmt train --config FILE.yaml",
        formatter_class=fmt,
    )
    train.add_argument("--config", required=True, help="YAML training config")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (model.KEY for model fields); repeatable")
    train.set_defaults(handler=_cmd_train)

    # -- eval ------------------------------------------------------------------------------
    ev = sub.add_parser(
        "eval",
        help="six-task evaluation on a tmt-shapes or real dataset split (JSON report)",
        description="Translate every item of the split(s) in all six directions and score the "
        "output. tmt-shapes (--corpus): WER for speech->text; BLEU-4, CIDEr and attribute "
        "accuracy for image->text; the speech judge's WER for ->speech; the image judge's "
        "attribute accuracy for ->image. A real dataset (--dataset NAME --root DIR): BLEU-1..4, "
        "METEOR, ROUGE-L, CIDEr, SPICE for image->text and (transcribed by --asr) image->speech; "
        "WER for speech->text and text->speech; CLIP text-image and image-image cosine (--clip) "
        "for ->image. A metric that cannot run is reported as null with the reason.",
        formatter_class=fmt,
    )
    ev.add_argument("--dataset", default="shapes",
                    help="corpus reader of tmt.data.readers (shapes, coco, flickr8k, ...)")
    ev.add_argument("--corpus", default=None, help="tmt-shapes corpus directory")
    ev.add_argument("--root", default=None, help="dataset directory (--dataset other than shapes)")
    ev.add_argument("--split", nargs="+", default=None,
                    help="split(s) to score (default: test compositional for shapes, else test)")
    ev.add_argument("--model", default="shapes", help="bundle name or path")
    ev.add_argument("--out", help="also write the JSON report here")
    ev.add_argument("--limit", type=int, default=None,
                    help="first N items (real datasets: N images) of each split")
    ev.add_argument("--clip", default=None, help="local CLIP model directory (->image scores)")
    ev.add_argument("--asr", default=None,
                    help="ASR judge for ->speech: a local wav2vec2 CTC directory or 'pocketsphinx'")
    ev.add_argument("--captions-per-image", type=int, default=1,
                    help="captions of each image used as text/speech inputs (0: all)")
    ev.add_argument("--caption-metrics", nargs="+", default=list(CAPTION_METRIC_NAMES),
                    choices=CAPTION_METRIC_NAMES, help="captioning metrics to compute")
    ev.add_argument("--save-outputs", default=None, metavar="DIR",
                    help="also keep every output (txt/wav/png) under DIR/SPLIT/DIRECTION")
    evr = ev.add_argument_group("corpus options (coco, flickr8k), as for tmt tokenize")
    evr.add_argument("--spoken", metavar="DIR", help="coco: SpokenCOCO folder")
    evr.add_argument("--audio", metavar="DIR", help="flickr8k: Flickr8k Audio Caption Corpus folder")
    evr.add_argument("--karpathy", metavar="FILE", help="coco/flickr8k: Karpathy split json")
    evr.add_argument("--images", metavar="DIR", help="image folder")
    ev.add_argument("--cascade", action="store_true",
                    help="also score speech->text->image through the same model")
    ev.add_argument("--directions", nargs="+", metavar="SRC-TGT",
                    help="score only these directions, e.g. speech-text text-image (default: all six)")
    ev.add_argument("--batch-size", type=int, default=32)
    _add_decoding_arguments(ev)
    ev.set_defaults(handler=_cmd_eval)

    # -- demo ------------------------------------------------------------------------------
    demo = sub.add_parser("demo", help="translate the bundled examples in all six directions",
                          formatter_class=fmt)
    demo.add_argument("--out", default="demo_out", help="output directory")
    demo.add_argument("--model", default="shapes", help="bundle name or path")
    demo.add_argument("--examples", default=None, help="folder with speech.wav, image.png, text.txt "
                      "(default: the repo's examples/)")
    demo.set_defaults(handler=_cmd_demo)

    # -- text / pack -----------------------------------------------------------------------
    text = sub.add_parser("text", help="text codec: train a WordPiece vocabulary", formatter_class=fmt)
    text_sub = text.add_subparsers(dest="text_command", metavar="ACTION", required=True)
    ttrain = text_sub.add_parser("train", help="WordPiece on a tmt-shapes corpus's training captions",
                                 formatter_class=fmt)
    ttrain.add_argument("--corpus", required=True, help="tmt-shapes corpus directory")
    ttrain.add_argument("--out", required=True, help="codec directory to write (e.g. tokenizers/text)")
    ttrain.add_argument("--vocab-size", type=int, default=1000, help="upper bound on the vocabulary")
    ttrain.set_defaults(handler=_cmd_text_train)
    pack = sub.add_parser("pack", help="write a model bundle: a trained translator + codec directories",
                          formatter_class=fmt)
    pack.add_argument("translator", help="translator directory (OUT_DIR/model of tmt train)")
    pack.add_argument("--codecs", default=None, help="folder with speech/ image/ text/ (default: tokenizers/)")
    pack.add_argument("--out", required=True, help="bundle directory, e.g. checkpoints/shapes")
    pack.add_argument("--name", default=None, help="bundle name (default: the directory name)")
    pack.add_argument("--max-text-len", type=int, default=64, help="the bundle's text length cap")
    pack.add_argument("--max-speech-len", type=int, default=500,
                      help="the bundle's speech length cap (units)")
    pack.add_argument("--rerank", type=float, default=0.0, metavar="WEIGHT",
                      help="the bundle's reranking weight (see tmt translate --rerank)")
    pack.set_defaults(handler=_cmd_pack)

    # -- models ----------------------------------------------------------------------------
    models = sub.add_parser("models", help="list presets and installed bundles", formatter_class=fmt)
    models.set_defaults(handler=_cmd_models)

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

    # -- speech codec ----------------------------------------------------------------------
    speech = sub.add_parser("speech", help="speech codec: audio <-> discrete units", formatter_class=fmt)
    speech_sub = speech.add_subparsers(dest="speech_command", metavar="ACTION", required=True)
    codec_help = "speech codec directory (default: the shipped tokenizers/speech)"
    enc = speech_sub.add_parser("encode", help="print the unit ids of an audio file", formatter_class=fmt)
    enc.add_argument("audio", help="audio file (wav/flac/ogg/...; any rate, any channels)")
    enc.add_argument("--codec", default=None, help=codec_help)
    enc.set_defaults(handler=_cmd_speech_encode)
    res = speech_sub.add_parser("resynth", help="audio -> units -> audio", formatter_class=fmt)
    res.add_argument("audio", help="input audio file")
    res.add_argument("--out", required=True, help="output wav")
    res.add_argument("--codec", default=None, help=codec_help)
    res.set_defaults(handler=_cmd_speech_resynth)

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
    except KeyboardInterrupt as stop:
        detail = f": {stop}" if str(stop) else ""
        print(f"tmt: interrupted{detail}", file=sys.stderr)
        return 130
