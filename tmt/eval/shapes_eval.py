"""Six-task evaluation of a bundle on a tmt-shapes split, scored by the corpus judges.

| direction      | metric                                                                 |
| -------------- | ---------------------------------------------------------------------- |
| speech→text    | WER against the spoken caption                                          |
| image→text     | BLEU-4 and CIDEr against all reference captions; attribute accuracy     |
| text→speech    | WER of the speech judge's transcript (+ its attribute accuracy)         |
| image→speech   | same as text→speech                                                     |
| text→image     | image judge attribute accuracy (all attributes right, and per attribute) |
| speech→image   | same as text→image                                                      |

Speech input is each item's utterance in a random *input* voice (the last in its list), so the
speech directions are measured across voices, not on the vocoder's training voice. Their
reports add ``exact_by_voice``: all attributes right, per input voice.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tmt.bundle import Bundle
from tmt.data.shapes import ShapesExample, SpeechRef, read_corpus
from tmt.data.shapes_world import (
    attribute_accuracy,
    canonical_caption,
    error_kinds,
    exact_by_group,
    exact_by_object_count,
    parse_caption,
)
from tmt.errors import TmtError
from tmt.eval.benchmark import save_index, save_media
from tmt.modality import DIRECTIONS, Modality
from tmt.paths import JUDGES
from tmt.progress import bar_off
from tmt.translator.generate import DecodingOptions, generate

S, IM, T = Modality.SPEECH, Modality.IMAGE, Modality.TEXT
JUDGE_DIR = JUDGES / "image"
#: The judge also fine-tuned on rendered scenes of the held-out colour-shape pairs: the plain
#: judge, which never saw them, reads ground-truth compositional images at only ~94% exact.
ALLPAIRS_JUDGE_DIR = JUDGES / "image-allpairs"


def default_judge(split: str) -> Path:
    if split == "compositional" and ALLPAIRS_JUDGE_DIR.is_dir():
        return ALLPAIRS_JUDGE_DIR
    return JUDGE_DIR


def caption_metrics(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """BLEU-1..4 and CIDEr (pycocoevalcap; captions are already lower-case, no punctuation).
    Without the ``eval`` extra: empty, with a note on stderr (the judges' metrics still run)."""
    from tmt.eval.captioning import pycocoevalcap_missing

    if (reason := pycocoevalcap_missing()) is not None:
        print(f"tmt eval: no BLEU/CIDEr: {reason}", file=sys.stderr)
        return {}
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [hyp if hyp.strip() else "<empty>"] for i, hyp in enumerate(hypotheses)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu1": bleu[0], "bleu4": bleu[3], "cider": float(cider)}


def _wer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    from tmt.eval.speech_judge import word_error_rate

    return word_error_rate(hypotheses, references)


def _input_utterance(item: ShapesExample) -> SpeechRef:
    return item.speech[-1]


def evaluate_shapes(
    bundle: Bundle,
    corpus: str | Path,
    split: str = "test",
    *,
    limit: int | None = None,
    options: DecodingOptions | None = None,
    directions: Sequence[tuple[Modality, Modality]] = DIRECTIONS,
    judge_dir: str | Path | None = None,
    batch_size: int = 32,
    cascade: bool = False,
    save_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Translate every item of ``split`` in each direction and score it. Returns a JSON-able
    report with the metrics, the number of items and the seconds each direction took.
    ``save_dir`` also keeps every output (txt/wav/png) per direction, with an ``outputs.json``
    index of item ids, reference captions and output texts (or the judge's transcripts)."""
    items = read_corpus(corpus, split)[:limit]
    if not items:
        raise TmtError(f"split {split!r} of {corpus} is empty")
    options = options or bundle.default_options
    judge_dir = judge_dir or default_judge(split)
    sources: dict[Modality, list[Any]] = {
        S: [_input_utterance(x).path for x in items],
        IM: [x.image for x in items],
        T: [x.caption for x in items],
    }
    needed = {s for s, _ in directions} | ({S} if cascade else set())
    encoded = {
        m: [bundle.encode(m, raw) for raw in tqdm(sources[m], desc=f"encode {m.value}",
                                                 disable=bar_off(not progress), leave=False)]
        for m in needed
    }
    refs = [x.attributes for x in items]
    report: dict[str, Any] = {"split": split, "items": len(items), "corpus": str(corpus),
                              "image_judge": str(judge_dir),
                              "decoding": options.__dict__, "directions": {}}
    judges: dict[str, Any] = {}

    def translate(src: Modality, tgt: Modality, inputs: list[Any]) -> list[Any]:
        ids = []
        for k in tqdm(range(0, len(inputs), batch_size), desc=f"{src.value}->{tgt.value}",
                      disable=bar_off(not progress), leave=False):
            chunk = [(src, e) for e in inputs[k : k + batch_size]]
            ids.extend(generate(bundle.translator, chunk, tgt, options, batch_size=batch_size))
        return ids

    def keep(name: str, target: Modality, outputs: list[Any], texts: list[str]) -> None:
        if save_dir is not None:
            directory = Path(save_dir) / name
            rate = int(getattr(bundle.codec(S), "sample_rate", 16_000))
            save_media(directory, target, outputs, 0, rate)
            save_index(directory, [x.id for x in items], texts, [x.caption for x in items])

    for src, tgt in directions:
        start = time.perf_counter()
        outputs = [bundle.decode(tgt, x) for x in translate(src, tgt, encoded[src])]
        scores, scored = score_outputs(tgt, outputs, items, refs, judges, judge_dir, by_voice=src is S)
        keep(f"{src.value}-{tgt.value}", tgt, outputs, scored)
        scores["seconds"] = round(time.perf_counter() - start, 1)
        report["directions"][f"{src.value}-{tgt.value}"] = scores
    if cascade:
        # The paper's question: speech -> text -> image with the same model, vs direct.
        start = time.perf_counter()
        texts = translate(S, T, encoded[S])
        kept = [t if t.numel() else t.new_zeros(1) for t in texts]  # an empty text stays scorable
        images = [bundle.decode(IM, x) for x in translate(T, IM, kept)]
        scores, _ = score_outputs(IM, images, items, refs, judges, judge_dir, by_voice=True)
        keep("speech-text-image", IM, images, [])
        scores["seconds"] = round(time.perf_counter() - start, 1)
        report["directions"]["speech-text-image (cascade)"] = scores
    return report


def score_outputs(
    target: Modality,
    outputs: list[Any],
    items: list[ShapesExample],
    refs: list[dict[str, Any]],
    judges: dict[str, Any],
    judge_dir: str | Path,
    *,
    by_voice: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """The scores, and the texts scored (text outputs, or the speech judge's transcripts).
    ``by_voice``: also ``exact_by_voice`` (the source was each item's input-voice utterance)."""
    voices = [_input_utterance(x).voice for x in items] if by_voice else None
    if target is T:
        out: dict[str, Any] = {"wer": _wer(outputs, [x.caption for x in items])}
        out.update(caption_metrics(outputs, [x.captions for x in items]))
        parsed = [parse_caption(h) for h in outputs]
        out["attributes"] = attribute_accuracy(parsed, refs)
        out["exact_by_objects"] = exact_by_object_count(parsed, refs)
        out["errors"] = error_kinds(parsed, refs)
        if voices is not None:
            out["exact_by_voice"] = exact_by_group(parsed, refs, voices)
        out["examples"] = outputs[:3]
        return out, outputs
    if target is S:
        if "speech" not in judges:
            from tmt.eval.speech_judge import SpeechJudge

            judges["speech"] = SpeechJudge(Path(items[0].image).parents[1] / "grammar.jsgf")
        transcripts = [judges["speech"].transcribe(w, 16000) for w in outputs]
        parsed = [parse_caption(h) for h in transcripts]
        return {
            "judge_wer": _wer(transcripts, [x.caption for x in items]),
            "attributes": attribute_accuracy(parsed, refs),
            "exact_by_objects": exact_by_object_count(parsed, refs),
            "errors": error_kinds(parsed, refs),
            "examples": transcripts[:3],
        }, transcripts
    if "image" not in judges:
        from tmt.eval.image_judge import ImageJudge

        judges["image"] = ImageJudge.load(judge_dir)
    judged = judges["image"].predict(outputs)
    out = {"attributes": attribute_accuracy(judged, refs),
           "exact_by_objects": exact_by_object_count(judged, refs),
           "errors": error_kinds(judged, refs)}
    if voices is not None:
        out["exact_by_voice"] = exact_by_group(judged, refs, voices)
    readings = [canonical_caption(r) if r is not None else "(unreadable)" for r in judged]
    return out, readings
