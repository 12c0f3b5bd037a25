"""`tmt codec train ...` (every codec and judge trainer), `tmt speech`, `tmt text`: the codecs.

Each trainer is a function over an options dataclass in :mod:`tmt.train.codecs`; a handler here
only turns flags into those options. The defaults shown are the dataclasses' own, written out so
that ``tmt --help`` imports no torch (tests/unit/cli checks that they agree).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tmt.cli import codec_image
from tmt.cli.help import HelpFormatter
from tmt.errors import TmtError


def _cmd_speech_encode(args: argparse.Namespace) -> None:
    from tmt.speech.codec import SpeechCodec

    units = SpeechCodec.load(args.codec, args.device).encode(args.audio)
    print(" ".join(str(int(u)) for u in units))


def _cmd_speech_resynth(args: argparse.Namespace) -> None:
    from tmt.speech.audio import save_audio
    from tmt.speech.codec import SpeechCodec

    codec = SpeechCodec.load(args.codec, args.device)
    units = codec.encode(args.audio)
    save_audio(args.out, codec.decode(units), codec.sample_rate)
    print(f"{len(units)} units -> {args.out}")


def _cmd_convert_km(args: argparse.Namespace) -> None:
    from tmt.speech.quantizer import KMeansQuantizer

    if args.out.suffix != ".safetensors":
        raise TmtError(f"--out must end in .safetensors, got {args.out.name!r}")
    quantizer = KMeansQuantizer.from_sklearn(args.km_bin, trust_pickle=args.trust_pickle)
    print(f"{quantizer.k} centroids of dimension {quantizer.dim} -> {quantizer.save(args.out)}")


def _cmd_text_train(args: argparse.Namespace) -> None:
    from tmt.data.shapes import read_corpus
    from tmt.text import TextTokenizer

    captions = [c for item in read_corpus(args.corpus, "train") for c in item.captions]
    tokenizer = TextTokenizer.train(captions, vocab_size=args.vocab_size, min_frequency=1)
    tokenizer.save(args.out)
    print(f"{args.out}: WordPiece vocabulary of {tokenizer.vocab_size} from {len(captions)} captions")


def _cmd_speech_units(args: argparse.Namespace) -> None:
    from tmt.train.codecs.speech_units import SpeechUnitsOptions, train_speech_units

    train_speech_units(SpeechUnitsOptions(**_fields(args)))


def _cmd_hubert(args: argparse.Namespace) -> None:
    from tmt.train.codecs.hubert import HubertOptions, pretrain_hubert

    pretrain_hubert(HubertOptions(**_fields(args)))


def _cmd_vocoder(args: argparse.Namespace) -> None:
    from tmt.train.codecs.vocoder import VocoderOptions, train_vocoder

    train_vocoder(VocoderOptions(**_fields(args)))


def _cmd_normalizer(args: argparse.Namespace) -> None:
    from tmt.train.codecs.normalizer import NormalizerOptions, train_normalizer

    fields: dict[str, Any] = {k: (str(v) if isinstance(v, Path) else v) for k, v in _fields(args).items()}
    print(train_normalizer(NormalizerOptions(**fields)))


def _cmd_hifigan(args: argparse.Namespace) -> None:
    from tmt.train.codecs.hifigan import HifiganOptions, train_hifigan

    train_hifigan(HifiganOptions(**_fields(args)))


def _cmd_judge(args: argparse.Namespace) -> None:
    from tmt.train.codecs.judge import JudgeOptions, train_judge

    train_judge(JudgeOptions(**_fields(args)))


def _cmd_unit_probe(args: argparse.Namespace) -> None:
    from tmt.train.codecs.unit_probe import UnitProbeOptions, probe_units

    probe_units(UnitProbeOptions(**_fields(args)))


def _cmd_unit_bpe(args: argparse.Namespace) -> None:
    from tmt.train.codecs.unit_bpe import UnitBpeOptions, fit_unit_bpe

    fit_unit_bpe(UnitBpeOptions(**_fields(args)))


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags, minus argparse's own bookkeeping: the options dataclass's fields."""
    return {k: v for k, v in vars(args).items() if k not in ("handler", "command", "codec_command",
                                                              "trainer", "quiet")}


def _check_inputs(args: argparse.Namespace) -> None:
    """Input directories that do not exist: one line now, not a traceback deep in a trainer."""
    for name in ("corpus", "tokenizer", "targets", "codec", "init", "teacher", "hubert_dir"):
        value = getattr(args, name, None)
        if value is not None and not Path(value).exists():
            raise TmtError(f"--{name.replace('_', '-')} {value}: no such directory")
    for value in getattr(args, "tokenizers", None) or ():
        if not Path(value).exists():
            raise TmtError(f"--tokenizer {value}: no such directory")


def _checked(handler: object) -> object:
    def run(args: argparse.Namespace) -> None:
        _check_inputs(args)
        handler(args)  # type: ignore[operator]

    return run


def _speech_parsers(sub: argparse._SubParsersAction) -> None:
    """The speech codec's trainers (the image stages are in :mod:`tmt.cli.codec_image`)."""
    fmt = HelpFormatter
    p = sub.add_parser("speech-units", formatter_class=fmt,
                       help="speech units: k-means of MFCC or HuBERT features (all voices)",
                       description="Fit the k-means of a speech tokenizer on frames of random "
                       "train utterances of every voice, so that the units describe what is said "
                       "rather than who says it.")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--out", type=Path, required=True, help="tokenizer directory to write")
    p.add_argument("--features", choices=("mfcc", "hubert"), default="mfcc", help="frame features")
    p.add_argument("--hubert-dir", type=Path, default=None,
                   help="HuBERT directory (HF format, or a `tmt codec train hubert` output)")
    p.add_argument("--layer", type=int, default=6, help="HuBERT layer whose output is clustered")
    p.add_argument("--k", type=int, default=200, help="number of units")
    p.add_argument("--utterances", type=int, default=3000, help="utterances drawn")
    p.add_argument("--frames-per-utt", type=int, default=60, help="frames kept per utterance")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--examples", type=int, default=None,
                   help="draw only from the corpus's first N examples (the shipped tokenizer: "
                   "3994, the corpus written so far when it was fitted)")
    p.add_argument("--output-voice-only", action="store_true",
                   help="fit on the output voice's utterances only (a unit normalizer's teacher)")
    p.add_argument("--device", default="cpu", help="torch device of the HuBERT features (cpu, cuda, ...)")
    p.set_defaults(handler=_cmd_speech_units)

    p = sub.add_parser("normalizer", formatter_class=fmt,
                       help="the unit normalizer: any voice -> the output voice's units (CTC)",
                       description="Train a unit normalizer (Lee et al. 2022): from an utterance in "
                       "any training voice, through random speed, rooms, band limits, noise and "
                       "VTLP, emit the units the teacher tokenizer reads from the same caption in "
                       "the output voice. A rerun resumes from --work.\n\n"
                       "  tmt codec train normalizer --corpus work/shapes-20k --teacher "
                       "work/speech/tokenizer --out work/speech/normalizer --work "
                       "work/speech/normalizer-train --codec work/speech/codec --codec-out "
                       "tmt/assets/codecs/speech")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--teacher", type=Path, required=True, help="speech tokenizer whose units are learnt")
    p.add_argument("--out", type=Path, required=True, help="normalizer directory to write")
    p.add_argument("--work", type=Path, required=True, help="scratch: teacher units, checkpoints, log")
    p.add_argument("--steps", type=int, default=4000, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=24, help="utterances per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, default=300, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--output-voice-share", type=float, default=0.25,
                   help="chance that an utterance is the output voice's own")
    p.add_argument("--augment", type=float, default=0.8, help="chance of a random signal chain")
    p.add_argument("--vtlp", type=float, default=0.5, help="chance of a vocal-tract-length warp")
    p.add_argument("--vtlp-range", type=float, nargs=2, default=(0.85, 1.18), metavar=("LOW", "HIGH"),
                   help="the warp factor is drawn uniformly in [LOW, HIGH]")
    p.add_argument("--test-warps", type=float, nargs="+", default=(1.0,), metavar="FACTOR",
                   help="test-time VTLN: read each utterance under these warps and keep the most "
                   "confident reading (saved in the normalizer's config; 1.0 alone: as it is)")
    p.add_argument("--spec-augment", action=argparse.BooleanOptionalAction, default=True,
                   help="SpecAugment masks")
    p.add_argument("--valid-every", type=int, default=500, help="steps between validations")
    p.add_argument("--valid-utterances", type=int, default=200, help="valid utterances scored")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--architecture", default="{}",
                   help='JSON overrides of NormalizerConfig, e.g. \'{"dim": 256, "layers": 4}\'')
    p.add_argument("--hubert-dir", type=Path, default=None,
                   help="fine-tune this HuggingFace HubertModel directory (the paper setting)")
    p.add_argument("--codec", type=Path, default=None, help="speech codec to add the normalizer to")
    p.add_argument("--codec-out", type=Path, default=None, help="where that codec is written")
    p.set_defaults(handler=_cmd_normalizer)

    p = sub.add_parser("hubert", formatter_class=fmt,
                       help="pretrain a small HuBERT (masked prediction of MFCC units)",
                       description="HuBERT iteration 1 on CPU: masked spans of the conv features, "
                       "predicting the MFCC k-means unit of each masked frame. Saved with "
                       "save_pretrained (loads as any HuggingFace HuBERT). A rerun resumes from --work.")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--targets", type=Path, required=True,
                   help="fitted MFCC speech tokenizer (the iteration-1 labels)")
    p.add_argument("--out", type=Path, required=True, help="HuBERT directory to write")
    p.add_argument("--minutes", type=float, default=30.0,
                   help="wall-time budget (a resumed run counts the earlier runs' time)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--work", type=Path, default=Path("work/hubert-train"),
                   help="checkpoint directory: a rerun of the same command resumes from it")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="steps between checkpoints (also at the end and on SIGTERM or Ctrl-C)")
    p.add_argument("--layers", type=int, default=4, help="transformer layers")
    p.add_argument("--batch-size", type=int, default=8, help="utterances per step")
    p.add_argument("--crop-seconds", type=float, default=2.0, help="audio crop per utterance")
    p.add_argument("--max-utterances", type=int, default=6000, help="utterances labelled")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.set_defaults(handler=_cmd_hubert)

    p = sub.add_parser("vocoder", formatter_class=fmt,
                       help="the units->mel vocoder on the corpus's output voice",
                       description="Train the units->mel vocoder (L1 on log-mel + MSE on log "
                       "durations). --out receives the best vocoder on the valid split during "
                       "training; --codec-out, at the end, the complete speech codec. A rerun resumes "
                       "from --work.")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--tokenizer", type=Path, required=True, help="speech tokenizer directory")
    p.add_argument("--out", type=Path, required=True, help="vocoder directory to write")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (the recipe's setting: reproducible with --seed)")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-time budget, alone or as a cap on --steps (not reproducible)")
    p.add_argument("--work", type=Path, default=Path("work/vocoder-train"),
                   help="checkpoint directory: a rerun of the same command resumes from it")
    p.add_argument("--checkpoint-every", type=int, default=100,
                   help="steps between checkpoints (also at the end and on SIGTERM or Ctrl-C)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--max-utterances", type=int, default=4000, help="training utterances")
    p.add_argument("--dim", type=int, default=192, help="model width")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per step")
    p.add_argument("--cache", type=Path, default=None,
                   help="torch.save file for prepared examples (reused if present)")
    p.add_argument("--init", type=Path, default=None, help="continue from a saved vocoder directory")
    p.add_argument("--codec-out", type=Path, default=None,
                   help="write tokenizer + best vocoder as one speech codec here")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.set_defaults(handler=_cmd_vocoder)

    p = sub.add_parser("hifigan", formatter_class=fmt,
                       help="a unit HiFi-GAN vocoder (CodeHiFiGAN) on the corpus's output voice",
                       description="Train CodeHiFiGAN (HiFi-GAN losses, multi-period and multi-"
                       "scale discriminators, duration predictor) on segments of the output "
                       "voice's utterances; the generator is saved to --out at the end. A rerun "
                       "resumes from --work.")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--tokenizer", type=Path, required=True, help="speech tokenizer directory")
    p.add_argument("--out", type=Path, required=True, help="vocoder directory to write")
    p.add_argument("--steps", type=int, default=1000, help="GAN steps (discriminator + generator)")
    p.add_argument("--batch-size", type=int, default=8, help="segments per step")
    p.add_argument("--segment-units", type=int, default=32, help="unit frames per segment")
    p.add_argument("--max-utterances", type=int, default=2000, help="training utterances")
    p.add_argument("--lr", type=float, default=2e-4, help="learning rate (both optimizers)")
    p.add_argument("--preset", choices=("tiny", "paper"), default="tiny",
                   help="generator size (paper: the speech-resynthesis CodeHiFiGAN)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--work", type=Path, default=Path("work/hifigan-train"),
                   help="checkpoint directory: a rerun of the same command resumes from it")
    p.add_argument("--checkpoint-every", type=int, default=100,
                   help="steps between checkpoints (also at the end and on SIGTERM or Ctrl-C)")
    p.add_argument("--codec-out", type=Path, default=None,
                   help="write tokenizer + this vocoder as one speech codec here")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.set_defaults(handler=_cmd_hifigan)



def _measure_parsers(sub: argparse._SubParsersAction) -> None:
    """The image judge, the unit probe and unit BPE."""
    fmt = HelpFormatter
    p = sub.add_parser("judge", formatter_class=fmt,
                       help="the image judge (tmt-shapes attributes) on ground-truth train images",
                       description="Train the image judge on a tmt-shapes corpus's ground-truth "
                       "TRAIN images only; the valid split picks the best epoch, the test and "
                       "compositional splits are never seen. A rerun resumes from --work.")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--out", type=Path, required=True, help="where to write the judge")
    p.add_argument("--epochs", type=int, default=10, help="passes over the train split")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--max-train", type=int, default=None, help="cap on train examples")
    p.add_argument("--init", type=Path, default=None, help="start from this trained judge")
    p.add_argument("--extra-heldout", type=int, default=0,
                   help="also train on this many freshly rendered scenes with the held-out pairs")
    p.add_argument("--work", type=Path, default=Path("work/judge-train"),
                   help="checkpoint directory (every epoch, and on SIGTERM or Ctrl-C after the "
                   "current batch): a rerun of the same command resumes from it")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.set_defaults(handler=_cmd_judge)

    p = sub.add_parser("unit-probe", formatter_class=fmt,
                       help="compare speech tokenizers: PNMI, phone purity, word probe F1",
                       description="Measure how much of what was said each tokenizer's units keep: "
                       "PNMI and phone purity against PocketSphinx forced alignments, and a "
                       "linear word probe over bags of unit n-grams (test-split utterances).")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--tokenizer", dest="tokenizers", type=Path, action="append", required=True,
                   help="speech tokenizer directory; repeat to compare several")
    p.add_argument("--train-utterances", type=int, default=3000, help="probe training utterances")
    p.add_argument("--test-utterances", type=int, default=600, help="probe test utterances")
    p.add_argument("--pnmi-utterances", type=int, default=300, help="utterances aligned for PNMI")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.set_defaults(handler=_cmd_unit_probe)

    p = sub.add_parser("unit-bpe", formatter_class=fmt,
                       help="add unit BPE (merged runs of units) to a speech codec",
                       description="Learn unit BPE merges on the units of a corpus's train "
                       "utterances and write them into the speech codec directory (bpe.json): the "
                       "codec then encodes to pieces and decodes pieces. Optional; the shipped "
                       "codec has none (see benchmarks/README.md, \"Unit BPE\").")
    p.add_argument("--corpus", type=Path, required=True, help="tmt-shapes corpus directory")
    p.add_argument("--codec", type=Path, required=True,
                   help="speech codec directory; the merges are added to it (bpe.json)")
    p.add_argument("--vocab-size", type=int, default=1000, help="units + merged pieces")
    p.add_argument("--examples", type=int, default=4000,
                   help="train examples whose utterances (in the --voices) the merges are learned on")
    p.add_argument("--voices", choices=("all", "input"), default="all",
                   help="learn on the utterances in every voice, or in the random input voices only")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(handler=_cmd_unit_bpe)


def add_commands(sub: argparse._SubParsersAction) -> None:
    codec = sub.add_parser(
        "codec", formatter_class=HelpFormatter,
        help="train the codecs and judges (speech units, HuBERT, vocoders, image stages, ...)",
        description="Codec and judge trainers. A rerun of an image stage resumes from its --work.")
    codec_sub = codec.add_subparsers(dest="codec_command", metavar="ACTION", required=True)
    train = codec_sub.add_parser(
        "train", formatter_class=HelpFormatter, help="train one codec part or judge",
        description="Train one codec part or judge; `tmt codec train TRAINER --help` lists its "
        "options. recipes/shapes/run.sh runs them in the recipe's order.")
    trainers = train.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    _speech_parsers(trainers)
    codec_image.add_commands(trainers)
    _measure_parsers(trainers)
    for parser in trainers.choices.values():
        parser.set_defaults(handler=_checked(parser.get_default("handler")))
    km = codec_sub.add_parser(
        "convert-km", formatter_class=HelpFormatter,
        help="convert a fairseq/GSLM km.bin (a pickle) into safetensors centroids, once",
        description="Read a joblib-saved scikit-learn KMeans (km.bin) and write its centroids as "
        "safetensors, which tmt then reads without unpickling. Unpickling RUNS THE CODE inside the "
        "file: --trust-pickle says you trust its source.")
    km.add_argument("km_bin", type=Path, help="the km.bin file")
    km.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    km.add_argument("--trust-pickle", action="store_true",
                    help="required: unpickle the file (runs any code inside it)")
    km.set_defaults(handler=_cmd_convert_km)

    # -- speech codec ----------------------------------------------------------------------
    speech = sub.add_parser("speech", help="speech codec: audio <-> discrete units", formatter_class=HelpFormatter)
    speech_sub = speech.add_subparsers(dest="speech_command", metavar="ACTION", required=True)
    codec_help = "speech codec directory (default: the built-in speech codec)"
    enc = speech_sub.add_parser("encode", help="print the unit ids of an audio file", formatter_class=HelpFormatter)
    enc.add_argument("audio", help="audio file (wav/flac/ogg/...; any rate, any channels)")
    enc.add_argument("--codec", default=None, help=codec_help)
    enc.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    enc.set_defaults(handler=_cmd_speech_encode)
    res = speech_sub.add_parser("resynth", help="audio -> units -> audio", formatter_class=HelpFormatter)
    res.add_argument("audio", help="input audio file")
    res.add_argument("--out", required=True, help="output wav")
    res.add_argument("--codec", default=None, help=codec_help)
    res.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    res.set_defaults(handler=_cmd_speech_resynth)

    # -- text codec ------------------------------------------------------------------------
    text = sub.add_parser("text", help="text codec: train a WordPiece vocabulary", formatter_class=HelpFormatter)
    text_sub = text.add_subparsers(dest="text_command", metavar="ACTION", required=True)
    ttrain = text_sub.add_parser("train", help="WordPiece on a tmt-shapes corpus's training captions",
                                 formatter_class=HelpFormatter)
    ttrain.add_argument("--corpus", required=True, help="tmt-shapes corpus directory")
    ttrain.add_argument("--out", required=True, help="codec directory to write (e.g. tmt/assets/codecs/text)")
    ttrain.add_argument("--vocab-size", type=int, default=1000, help="upper bound on the vocabulary")
    ttrain.set_defaults(handler=_cmd_text_train)

