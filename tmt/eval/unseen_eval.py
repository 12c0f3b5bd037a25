"""Speech from voices and rooms tmt never heard: speech→text and speech→image per voice and condition.

Reads an unseen-voice set (:mod:`tmt.data.unseen`) and reports one row per (voice, condition)
group — every voice clean, every degraded condition — with speech→text WER, speech→image
exact (all attributes right) and, for comparison, text→image exact on the *same captions*
(``ratio`` = speech→image / text→image, the issue's yardstick). Scoring is that of
:func:`tmt.eval.shapes_eval.score_outputs` (same judges).

Each row also gives ``unit_error_rate``: the edit distance between the units the bundle's speech
codec reads from the utterance and the units of the same caption in the reference (output)
voice, over the latter's length. It says where a loss comes from: units that differ from the
reference voice's are a different language to the translator.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tmt.bundle import Bundle
from tmt.data.shapes import ShapesExample, SpeechRef
from tmt.data.unseen import read_unseen_set
from tmt.eval.shapes_eval import default_judge, score_outputs
from tmt.eval.speech_judge import unit_error_rate
from tmt.modality import Modality
from tmt.progress import bar_off
from tmt.speech.codec import SpeechCodec
from tmt.translator.generate import DecodingOptions, generate

S, IM, T = Modality.SPEECH, Modality.IMAGE, Modality.TEXT


def _example(row: dict[str, Any]) -> ShapesExample:
    return ShapesExample(id=row["id"], split=row["split"], caption=row["caption"], captions=row["captions"],
                         attributes=row["attributes"], image=Path(row["image"]),
                         speech=[SpeechRef(path=Path(row["wav"]), voice=row["voice"], text=row["caption"])])


def evaluate_unseen(
    bundle: Bundle,
    directory: str | Path,
    *,
    options: DecodingOptions | None = None,
    judge_dir: str | Path | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every (voice, condition) group of the set in ``directory``; JSON-able report."""
    rows = read_unseen_set(directory)
    options = options or bundle.default_options
    judge_dir = judge_dir or default_judge("test")
    judges: dict[str, Any] = {}
    started = time.perf_counter()

    def translate(src: Modality, tgt: Modality, inputs: list[Any], what: str) -> list[Any]:
        ids: list[Any] = []
        for k in tqdm(range(0, len(inputs), batch_size), desc=what, disable=bar_off(not progress), leave=False):
            chunk = [(src, e) for e in inputs[k : k + batch_size]]
            ids.extend(generate(bundle.translator, chunk, tgt, options, batch_size=batch_size))
        return [bundle.decode(tgt, x) for x in ids]

    speech = [bundle.encode(S, r["wav"]) for r in tqdm(rows, desc="encode speech", disable=bar_off(not progress),
                                                      leave=False)]
    codec = bundle.codec(S)
    reference_codec = codec.with_normalizer(None) if isinstance(codec, SpeechCodec) else codec
    references = {r["example"]: r["reference"] for r in rows}
    reference_units = {k: reference_codec.encode(v) for k, v in references.items()}
    texts = translate(S, T, speech, "speech->text")
    images = translate(S, IM, speech, "speech->image")
    # text->image once per caption: the reference each group's speech->image is compared with
    captions = {r["example"]: r for r in rows}
    caption_ids = list(captions)
    text_images = translate(T, IM, [bundle.encode(T, captions[c]["caption"]) for c in caption_ids],
                            "text->image")
    text_judged = dict(zip(caption_ids, text_images, strict=True))

    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r["voice"] if r["condition"] == "clean" else "mixed", r["condition"]].append(i)
    out_rows = []
    for (voice, condition), idx in groups.items():
        items = [_example(rows[i]) for i in idx]
        refs = [x.attributes for x in items]
        st, _ = score_outputs(T, [texts[i] for i in idx], items, refs, judges, judge_dir)
        si, _ = score_outputs(IM, [images[i] for i in idx], items, refs, judges, judge_dir)
        ti, _ = score_outputs(IM, [text_judged[rows[i]["example"]] for i in idx], items, refs, judges,
                              judge_dir)
        s_exact, t_exact = si["attributes"]["exact"], ti["attributes"]["exact"]
        uer = unit_error_rate([speech[i] for i in idx], [reference_units[rows[i]["example"]] for i in idx])
        out_rows.append({
            "voice": voice, "condition": condition, "utterances": len(idx),
            "unit_error_rate": round(uer, 4),
            "speech_text_wer": round(st["wer"], 4),
            "speech_text_exact": round(st["attributes"]["exact"], 4),
            "speech_image_exact": round(s_exact, 4),
            "text_image_exact": round(t_exact, 4),
            "ratio": round(s_exact / t_exact, 3) if t_exact else None,
        })
    return {"set": str(directory), "utterances": len(rows), "rows": out_rows,
            "decoding": options.__dict__, "seconds": round(time.perf_counter() - started, 1)}


def format_rows(report: dict[str, Any]) -> str:
    """The report's rows as a Markdown table."""
    lines = ["| voice | condition | n | unit error | speech→text WER | speech→image | text→image | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["rows"]:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(f"| {r['voice']} | {r['condition']} | {r['utterances']} | {100 * r['unit_error_rate']:.1f}% "
                     f"| {100 * r['speech_text_wer']:.1f}% "
                     f"| {100 * r['speech_image_exact']:.1f}% | {100 * r['text_image_exact']:.1f}% | {ratio} |")
    return "\n".join(lines)
