"""Six-task evaluation of a bundle on a real dataset split, with the TMT paper's metrics.

| direction      | metric                                                                    |
| -------------- | ------------------------------------------------------------------------- |
| image→text     | BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE against all captions of the image |
| image→speech   | the same, on the ASR judge's transcript                                   |
| speech→text    | WER against the spoken caption's transcript                               |
| text→speech    | WER of the ASR judge's transcript against the input text                  |
| text→image     | CLIP text–image cosine (vs the input caption) and image–image cosine (vs  |
| speech→image   | the reference image); speech→image compares with the utterance's caption  |

Items come from any :class:`RawExample` iterator (``tmt.data.readers``). Image-source tasks run
once per distinct image; caption-source tasks (text→, speech→) on the first
``captions_per_image`` captions of each image (or on every example of a corpus without
images). A metric whose judge is missing (no ``--clip``, no ``--asr``, no Java for METEOR, no
CoreNLP for SPICE) is ``None`` with the reason under ``"unavailable"``, never 0; a direction none
of whose metrics can run is not translated at all.

    tmt eval --dataset coco --root COCO_DIR --split test --model BUNDLE \
        --clip CLIP_DIR --asr WAV2VEC2_DIR --out report.json

``--captions-per-image 1`` (default) makes one image per test image from its first caption, as
the official ``test.py`` does; ``0`` runs speech↔text on every spoken caption, as its
``test_asr.py`` does. Speech→text WER is reported both corpus-level (``wer``) and as the mean of
per-utterance WERs (``wer_utterance_mean``, what the official speech→text number averages).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tmt.bundle import Bundle
from tmt.data.records import RawExample
from tmt.errors import TmtError
from tmt.eval.asr_judge import AsrJudge, load_asr_judge, wer_scores
from tmt.eval.captioning import CAPTION_METRICS, caption_metrics
from tmt.eval.clip_score import ClipScorer
from tmt.modality import DIRECTIONS, Modality
from tmt.progress import bar_off
from tmt.translator.generate import DecodingOptions, generate

S, IM, T = Modality.SPEECH, Modality.IMAGE, Modality.TEXT


@dataclass
class BenchmarkItems:
    """A split arranged for the six tasks."""

    images: list[Path] = field(default_factory=list)
    """Distinct images, in corpus order (sources of image→text/speech)."""
    image_refs: list[list[str]] = field(default_factory=list)
    """All captions of each image (references for captioning)."""
    captions: list[RawExample] = field(default_factory=list)
    """Caption-source examples (text→, speech→), at most ``captions_per_image`` per image."""

    def sources(self, source: Modality) -> list[Any]:
        if source is IM:
            return list(self.images)
        return [x.media(source) for x in self.caption_items(source)]

    def caption_items(self, source: Modality) -> list[RawExample]:
        return [x for x in self.captions if x.media(source) is not None and x.text]


def arrange_items(
    examples: Iterable[RawExample], *, limit: int | None = None, captions_per_image: int | None = 1
) -> BenchmarkItems:
    """Group examples by image; ``limit`` keeps the first N images (or N examples when the
    corpus has no images); ``captions_per_image=None`` keeps every caption."""
    by_image: dict[Path, list[RawExample]] = {}
    imageless: list[RawExample] = []
    for x in examples:
        if x.image is not None:
            if limit is not None and x.image not in by_image and len(by_image) >= limit:
                continue
            by_image.setdefault(Path(x.image), []).append(x)
        elif limit is None or len(imageless) < limit:
            imageless.append(x)
    items = BenchmarkItems()
    for image, group in by_image.items():
        texts = [x.text for x in group if x.text]
        items.images.append(image)
        items.image_refs.append(list(dict.fromkeys(texts)))  # a caption with 2 voices counts once
        with_caption = [x for x in group if x.text]
        items.captions.extend(with_caption[:captions_per_image] if captions_per_image else with_caption)
    if not by_image:
        items.captions = [x for x in imageless if x.text]
    return items


def evaluate_benchmark(
    bundle: Bundle,
    examples: Iterable[RawExample],
    *,
    clip: ClipScorer | str | Path | None = None,
    asr: AsrJudge | str | Path | None = None,
    directions: Sequence[tuple[Modality, Modality]] = DIRECTIONS,
    limit: int | None = None,
    captions_per_image: int | None = 1,
    options: DecodingOptions | None = None,
    batch_size: int = 32,
    caption_tokenizer: str = "auto",
    metrics: Sequence[str] = CAPTION_METRICS,
    save_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Translate the items in each direction the data supports and score them. Returns a
    JSON-able report (metrics, item counts, seconds per direction, a few text outputs);
    ``save_dir`` also keeps every output (txt/wav/png) per direction."""
    items = arrange_items(examples, limit=limit, captions_per_image=captions_per_image)
    if not items.images and not items.captions:
        raise TmtError("no examples to evaluate (empty split?)")
    options = options or bundle.default_options
    if isinstance(clip, str | Path):
        clip = ClipScorer.load(clip, device=bundle.device)
    if isinstance(asr, str | Path):
        asr = load_asr_judge(asr, device=bundle.device)
    report: dict[str, Any] = {
        "model": bundle.name,
        "images": len(items.images),
        "captions": len(items.captions),
        "decoding": options.__dict__,
        "judges": {"clip": clip.name if clip else None, "asr": asr.name if asr else None},
        "caption_tokenizer": caption_tokenizer,
        "directions": {},
    }
    runner = _Runner(bundle, options, batch_size, progress)
    for src, tgt in directions:
        name = f"{src.value}-{tgt.value}"
        missing = _missing_judge(tgt, clip, asr)
        inputs = items.sources(src)
        if not inputs:
            report["directions"][name] = {"items": 0, "skipped": f"the data has no {src.value}"
                                          + (" with a caption" if src is not IM else "")}
            continue
        if src is IM and not any(items.image_refs):
            report["directions"][name] = {"items": 0, "skipped": "the images have no captions"}
            continue
        if missing is not None:
            report["directions"][name] = {"items": len(inputs), "skipped": missing}
            continue
        start = time.perf_counter()
        scorer = _Scorer(src, tgt, items, clip, asr, runner.sample_rate)
        out_dir = Path(save_dir) / name if save_dir is not None else None
        for offset, outputs in runner.translate(src, tgt, inputs):
            if out_dir is not None:
                save_media(out_dir, tgt, outputs, offset, runner.sample_rate)
            scorer.add(outputs)  # keeps texts / transcripts / cosines, not the media
        if out_dir is not None:
            save_index(out_dir, [str(x) for x in inputs], scorer.texts)
        scores = scorer.result(caption_tokenizer, metrics)
        scores["seconds"] = round(time.perf_counter() - start, 1)
        report["directions"][name] = scores
    return report


def _missing_judge(target: Modality, clip: ClipScorer | None, asr: AsrJudge | None) -> str | None:
    if target is IM and clip is None:
        return "no CLIP model given (--clip DIR)"
    if target is S and asr is None:
        return "no ASR judge given (--asr DIR|pocketsphinx)"
    return None


class _Runner:
    """Encode → translate in batches → decode, for one bundle."""

    def __init__(self, bundle: Bundle, options: DecodingOptions, batch_size: int, progress: bool):
        self.bundle, self.options, self.batch_size, self.progress = bundle, options, batch_size, progress

    @property
    def sample_rate(self) -> int:
        return int(getattr(self.bundle.codec(S), "sample_rate", 16_000))

    def translate(self, source: Modality, target: Modality,
                  inputs: list[Any]) -> Iterator[tuple[int, list[Any]]]:
        """(offset, decoded outputs) per batch, so that a large split never holds all its
        generated media at once."""
        tag = f"{source.value}->{target.value}"
        with torch.inference_mode():
            encoded = [self.bundle.encode(source, x) for x in tqdm(
                inputs, desc=f"encode {tag}", disable=bar_off(not self.progress), leave=False)]
        for k in tqdm(range(0, len(encoded), self.batch_size), desc=tag, disable=bar_off(not self.progress),
                      leave=False):
            chunk = [(source, e) for e in encoded[k : k + self.batch_size]]
            with torch.inference_mode():
                ids = generate(self.bundle.translator, chunk, target, self.options,
                               batch_size=self.batch_size)
                # An empty speech output decodes to silence (the judge then reads nothing).
                yield k, [np.zeros(0, np.float32) if target is S and x.numel() == 0
                          else self.bundle.decode(target, x) for x in ids]


class _Scorer:
    """Accumulates what one direction's metrics need, batch by batch."""

    def __init__(self, source: Modality, target: Modality, items: BenchmarkItems,
                 clip: ClipScorer | None, asr: AsrJudge | None, sample_rate: int) -> None:
        self.source, self.target, self.items = source, target, items
        self.clip, self.asr, self.sample_rate = clip, asr, sample_rate
        self.captions = items.caption_items(source) if source is not IM else []
        self.texts: list[str] = []
        """Text outputs, or the judge's transcripts of speech outputs."""
        self.text_image: list[float] = []
        self.image_image: list[float] = []
        self.count = 0

    def add(self, outputs: list[Any]) -> None:
        if self.target is S:
            assert self.asr is not None
            self.texts.extend(self.asr.transcribe(w, self.sample_rate) for w in outputs)
        elif self.target is T:
            self.texts.extend(str(t) for t in outputs)
        else:
            assert self.clip is not None
            caps = self.captions[self.count : self.count + len(outputs)]
            refs = [x.image for x in caps]
            scores = self.clip.compare(outputs, texts=[str(x.text) for x in caps],
                                       references=refs if all(r is not None for r in refs)
                                       else None)  # type: ignore[arg-type]
            self.text_image += scores["text_image"]
            self.image_image += scores.get("image_image", [])
        self.count += len(outputs)

    def result(self, caption_tokenizer: str, metrics: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"items": self.count}
        if self.target is S:
            assert self.asr is not None
            out["judge"] = self.asr.name
        if self.source is IM and self.target is not IM:
            # Captioning (image→speech after transcription): all captions of the image are refs.
            out.update(caption_metrics(self.texts, self.items.image_refs, metrics=metrics,
                                       tokenizer=caption_tokenizer).to_dict())
        elif self.target is not IM:
            out.update(wer_scores(self.texts, [str(x.text) for x in self.captions]))
        else:
            out["clip_text_image"] = float(np.mean(self.text_image))
            if len(self.image_image) == self.count:
                out["clip_image_image"] = float(np.mean(self.image_image))
            else:
                out["clip_image_image"] = None
                out["unavailable"] = {"clip_image_image": "no reference images"}
            out["clip_scale"] = "cosine"
        if self.target is not IM:
            out["examples"] = self.texts[:3]
        return out


def save_media(directory: Path, target: Modality, outputs: list[Any], offset: int,
                sample_rate: int) -> None:
    if target is T:
        return  # texts go to outputs.json with the index
    directory.mkdir(parents=True, exist_ok=True)
    for k, output in enumerate(outputs, start=offset):
        if target is IM:
            output.save(directory / f"{k:06d}.png")
        else:
            from tmt.speech.audio import save_audio

            save_audio(directory / f"{k:06d}.wav", output, sample_rate)


def save_index(directory: Path, sources: list[str], texts: list[str],
               references: list[str] | None = None) -> None:
    """``outputs.json``: per output index, its source (path or text), the text output or the
    judge's transcript, and (when given) the reference caption."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{"index": k, "source": src, **({"text": texts[k]} if texts else {}),
             **({"reference": references[k]} if references else {})}
            for k, src in enumerate(sources)]
    (directory / "outputs.json").write_text(json.dumps(rows, indent=1) + "\n")


def evaluate_dataset(
    bundle: Bundle,
    dataset: str,
    root: str | Path,
    split: str = "test",
    *,
    reader_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`evaluate_benchmark` on one split of a corpus read by ``tmt.data.readers``
    (``reader_options``: the reader's keyword arguments, e.g. ``spoken=DIR`` for coco)."""
    from tmt.data.readers import read_dataset

    examples = (x for x in read_dataset(dataset, root, **(reader_options or {})) if x.split == split)
    report = evaluate_benchmark(bundle, examples, **kwargs)
    return {"dataset": dataset, "root": str(root), "split": split, **report}


__all__ = ["BenchmarkItems", "arrange_items", "evaluate_benchmark", "evaluate_dataset"]
