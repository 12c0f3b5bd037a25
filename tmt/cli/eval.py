"""`tmt eval`: the six-task evaluation; `tmt judge-report`: the tmt-shapes judges measured."""

from __future__ import annotations

import argparse
import sys

from tmt.cli.help import HelpFormatter, add_decoding_arguments, parse_options
from tmt.errors import TmtError
from tmt.paths import JUDGES

#: tmt.eval.captioning.CAPTION_METRICS, repeated so that ``tmt --help`` imports nothing heavy.
CAPTION_METRIC_NAMES = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider", "spice")


def _cmd_eval(args: argparse.Namespace) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tmt-eval-") as scratch:
        # --report without --save-outputs: the outputs the page shows are kept until it is written
        saves = args.save_outputs or (scratch if args.report else None)
        _evaluate(args, saves)


def _evaluate(args: argparse.Namespace, saves: str | None) -> None:
    import json
    from pathlib import Path

    from tmt.bundle import Bundle
    from tmt.eval.shapes_eval import evaluate_shapes
    from tmt.modality import DIRECTIONS, parse_direction

    directions = [parse_direction(d) for d in args.directions] if args.directions else DIRECTIONS
    bundle = Bundle.load(args.model, device=args.device, precision=args.precision)
    options = parse_options(args, bundle.default_options)
    if args.dataset == "shapes" and args.unseen and not args.split:
        reports: dict[str, object] = {}  # only the unseen-voice sets
    elif args.dataset == "shapes":
        corpus = args.corpus or args.root
        if corpus is None:
            raise TmtError("tmt-shapes evaluation needs --corpus DIR")
        reports = {
            split: evaluate_shapes(bundle, corpus, split, limit=args.limit, options=options,
                                   cascade=args.cascade, batch_size=args.batch_size,
                                   judge_dir=args.judge,
                                   directions=directions,
                                   save_dir=Path(saves) / split if saves else None)
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
                save_dir=Path(saves) / split if saves else None)
            for split in args.split or ["test"]
        }
    tables = []
    for directory in args.unseen or ():
        from tmt.eval.unseen_eval import evaluate_unseen, format_rows

        report = evaluate_unseen(bundle, directory, options=options, batch_size=args.batch_size,
                                 judge_dir=args.judge)
        reports[f"unseen:{directory}"] = report
        tables.append(f"{directory}:\n{format_rows(report)}")
    from tmt.bundle import resolve_model
    from tmt.eval.html_report import provenance, write_html_report

    info = provenance(resolve_model(args.model))
    for entry in reports.values():
        if isinstance(entry, dict):
            entry["provenance"] = info
    text = json.dumps(reports, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    if args.report:
        page = write_html_report(args.report, reports, info=info,
                                 saved={s: Path(saves) / s for s in reports} if saves else None)
        print(f"report: {page}", file=sys.stderr)
    for table in tables:
        print(table, file=sys.stderr)


def _cmd_judge_report(args: argparse.Namespace) -> None:
    from tmt.eval.judge_report import print_judge_report

    print_judge_report(args.corpus, image_judge=args.image_judge, split=args.split,
                       max_per_voice=args.max_per_voice, device=args.device)


def add_commands(sub: argparse._SubParsersAction) -> None:
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
        formatter_class=HelpFormatter,
    )
    ev.add_argument("--dataset", default="shapes",
                    help="corpus reader of tmt.data.readers (shapes, coco, flickr8k, ...)")
    ev.add_argument("--corpus", default=None, help="tmt-shapes corpus directory")
    ev.add_argument("--root", default=None, help="dataset directory (--dataset other than shapes)")
    ev.add_argument("--split", nargs="+", default=None,
                    help="split(s) to score (default: test compositional for shapes, else test)")
    ev.add_argument("--model", default="shapes", help="bundle name or path")
    ev.add_argument("--report", default=None, metavar="FILE.html",
                    help="also write a page to look at: output grids beside the references with "
                    "the judges' readings, attribute accuracy and confusions, audio players, "
                    "provenance (one self-contained HTML file)")
    ev.add_argument("--judge", default=None, metavar="DIR",
                    help="tmt-shapes image judge directory (default: the built-in judge; on the "
                    "compositional split the one that also saw the held-out pairs)")
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
    ev.add_argument("--unseen", nargs="+", metavar="DIR", default=None,
                    help="also score unseen-voice sets (tmt data unseen): speech->text and "
                    "speech->image per voice and condition, with text->image on the same captions "
                    "and the unit error rate against the reference voice (alone unless --split)")
    ev.add_argument("--cascade", action="store_true",
                    help="also score speech->text->image through the same model")
    ev.add_argument("--directions", nargs="+", metavar="SRC-TGT",
                    help="score only these directions, e.g. speech-text text-image (default: all six)")
    ev.add_argument("--batch-size", type=int, default=32)
    add_decoding_arguments(ev)
    ev.set_defaults(handler=_cmd_eval)

    jr = sub.add_parser(
        "judge-report", formatter_class=HelpFormatter,
        help="measure the three tmt-shapes judges on a corpus's ground-truth held-out data",
        description="The image judge's per-attribute accuracy on the test and compositional "
        "images, the speech judge's WER per voice on the test audio, and the text parser's "
        "accuracy on every reference caption of the split.")
    jr.add_argument("--corpus", required=True, help="tmt-shapes corpus directory")
    jr.add_argument("--image-judge", default=str(JUDGES / "image"), help="image judge directory (default: the built-in one)")
    jr.add_argument("--split", default="test", help="split for speech and text figures")
    jr.add_argument("--max-per-voice", type=int, default=None, help="cap on utterances per voice")
    jr.add_argument("--device", default="cpu", help="torch device of the image judge")
    jr.set_defaults(handler=_cmd_judge_report)
