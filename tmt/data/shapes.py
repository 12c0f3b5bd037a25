"""tmt-shapes: the embedded tri-modal corpus (images, speech, captions), writer and reader.

Layout of a corpus directory::

    manifest.jsonl   one JSON object per example (id, split, caption, captions, attributes,
                     image, speech = [{path, voice, text}, ...]; the output voice first)
    meta.json        seed, size, image_size, voices, output_voice, versions
    grammar.jsgf     the caption language (for the PocketSphinx speech judge)
    images/ID.png    RGB, image_size × image_size
    speech/ID_K.wav  16 kHz mono PCM16

Every example is drawn from its own random stream ``(seed, index)``, so an example does not
depend on the others or on the order of processing; espeak-ng runs in a forked child per
utterance (see :mod:`tmt.data.shapes_tts`), so a rerun is byte-identical.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tmt.data.shapes_render import render_scene
from tmt.data.shapes_tts import (
    ESPEAK_ACCENTS,
    ESPEAK_VARIANTS,
    SAMPLE_RATE,
    TRAIN_FLITE_VOICES,
    UNSEEN_VOICES,
    VoiceDraw,
    draw_training_voice,
    synthesize,
    write_wav,
)
from tmt.data.shapes_world import (
    SPLITS,
    Record,
    assign_splits,
    attribute_accuracy,
    canonical_caption,
    captions,
    compare_records,
    jsgf_grammar,
    parse_caption,
    sample_record,
)
from tmt.errors import TmtError
from tmt.progress import bar_off

__all__ = [
    "OUTPUT_VOICE",
    "ShapesExample",
    "attribute_accuracy",
    "canonical_caption",
    "compare_records",
    "generate_corpus",
    "parse_caption",
    "read_corpus",
]

FORMAT_VERSION = 2
"""2: input voices drawn from a wide espeak-ng/flite pool that excludes UNSEEN_VOICES."""
OUTPUT_VOICE = "flite:kal16"
"""The one voice of every →speech target (and of the vocoder's training audio).
flite kal16 and slt were both transcribed without error by the speech judge on 100
captions; kal16 synthesizes ~5× faster, so it is the output voice."""


@dataclass(frozen=True, kw_only=True)
class SpeechRef:
    path: Path
    """Absolute path of the 16 kHz mono WAV."""
    voice: str
    text: str


@dataclass(frozen=True, kw_only=True)
class ShapesExample:
    """One example of a corpus (paths absolute)."""

    id: str
    split: str
    caption: str
    """The canonical caption."""
    captions: list[str]
    """Every reference caption, the canonical one first."""
    attributes: Record
    image: Path
    speech: list[SpeechRef]
    """speech[0] is in the corpus's output voice; the others in random input voices."""


def _example(index: int, split: str, seed: int, image_size: int, out: Path) -> dict[str, Any]:
    """Draw, render, speak and write one example; returns its manifest entry."""
    rng = np.random.default_rng([seed, index])
    record = sample_record(rng, compositional=split == "compositional")
    refs = captions(record)
    caption = refs[0]
    ex_id = f"{index:06d}"
    image = render_scene(record, rng, image_size)
    image.save(out / "images" / f"{ex_id}.png", format="PNG")

    # speech[0]: the fixed output voice at its default rate/pitch; speech[1]: a random voice of
    # the training pool (never one of UNSEEN_VOICES, which the evaluation keeps for itself).
    output = VoiceDraw(voice=OUTPUT_VOICE, rate=1.0, pitch=1.0)
    speech = []
    for k, draw in enumerate((output, draw_training_voice(rng))):
        utt = synthesize(caption, draw.voice, rate=draw.rate, pitch=draw.pitch,
                         pitch_range=draw.pitch_range, word_gap=draw.word_gap)
        rel = f"speech/{ex_id}_{k}.wav"
        write_wav(out / rel, utt.wave)
        speech.append({"path": rel, "voice": draw.voice, "text": caption,
                       "rate": round(draw.rate, 4), "pitch": round(draw.pitch, 4),
                       "pitch_range": round(draw.pitch_range, 4), "word_gap": draw.word_gap})
    return {
        "id": ex_id,
        "split": split,
        "caption": caption,
        "captions": refs,
        "attributes": record,
        "image": f"images/{ex_id}.png",
        "speech": speech,
    }


def _work(job: tuple[int, str, int, int, str]) -> dict[str, Any]:
    index, split, seed, image_size, out = job
    return _example(index, split, seed, image_size, Path(out))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tmt", "espeakng-loader", "pillow", "numpy", "soxr"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def generate_corpus(
    out: str | Path,
    size: int,
    seed: int = 0,
    image_size: int = 64,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a tmt-shapes corpus of ``size`` examples into ``out``; returns its path.

    ``workers`` processes synthesize in parallel (default: min(2, CPUs)); the output does
    not depend on it. Rerunning with the same arguments reproduces the corpus byte-for-byte.
    """
    if size <= 0:
        raise TmtError(f"--size must be a positive number of examples, got {size}")
    if image_size < 16:
        raise TmtError(f"--image-size must be at least 16 pixels, got {image_size}")
    out = Path(out)
    try:
        for sub in ("images", "speech"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise TmtError(f"cannot write the corpus to {out}: {error.strerror or error}") from None
    if (out / "manifest.jsonl").exists():
        (out / "manifest.jsonl").unlink()  # a stale manifest would pass for a finished corpus

    (out / "grammar.jsgf").write_text(jsgf_grammar())
    splits = assign_splits(size, seed)
    jobs = [(i, splits[i], seed, image_size, str(out)) for i in range(size)]
    workers = workers or min(2, os.cpu_count() or 1)

    from tqdm import tqdm

    entries: list[dict[str, Any]] = []
    if workers == 1:
        with tqdm(total=size, desc="tmt-shapes", unit="ex", disable=bar_off(not progress)) as bar:
            for job in jobs:
                entries.append(_work(job))
                bar.update()
    else:
        # fork before tqdm starts its monitor thread; espeak-ng initializes lazily per worker.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            with tqdm(total=size, desc="tmt-shapes", unit="ex", disable=bar_off(not progress)) as bar:
                for entry in pool.imap(_work, jobs, chunksize=8):
                    entries.append(entry)
                    bar.update()

    meta = {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "size": size,
        "image_size": image_size,
        "sample_rate": SAMPLE_RATE,
        "input_voices": {"espeak_accents": list(ESPEAK_ACCENTS),
                         "espeak_variants": list(ESPEAK_VARIANTS),
                         "flite": list(TRAIN_FLITE_VOICES)},
        "unseen_voices": list(UNSEEN_VOICES),
        "output_voice": OUTPUT_VOICE,
        "speech_text": "canonical caption (every utterance)",
        "splits": {name: splits.count(name) for name in SPLITS},
        "versions": _versions(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    # The manifest is written last: its presence marks a complete corpus.
    tmp = out / "manifest.jsonl.tmp"
    with tmp.open("w") as f:
        for entry in entries:
            f.write(json.dumps(entry) + "\n")
    tmp.replace(out / "manifest.jsonl")
    return out


def read_corpus(directory: str | Path, split: str | None = None) -> list[ShapesExample]:
    """Read a corpus's manifest (optionally one split) with absolute paths."""
    directory = Path(directory).resolve()
    manifest = directory / "manifest.jsonl"
    if not manifest.is_file():
        raise TmtError(f"{directory} is not a tmt-shapes corpus (no manifest.jsonl)")
    if split is not None and split not in SPLITS:
        raise TmtError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    examples = []
    with manifest.open() as f:
        for line in f:
            e = json.loads(line)
            if split is not None and e["split"] != split:
                continue
            examples.append(
                ShapesExample(
                    id=e["id"],
                    split=e["split"],
                    caption=e["caption"],
                    captions=e["captions"],
                    attributes=e["attributes"],
                    image=directory / e["image"],
                    speech=[
                        SpeechRef(path=directory / s["path"], voice=s["voice"], text=s["text"])
                        for s in e["speech"]
                    ],
                )
            )
    return examples


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The corpus's meta.json."""
    path = Path(directory) / "meta.json"
    if not path.is_file():
        raise TmtError(f"{directory} is not a tmt-shapes corpus (no meta.json)")
    return json.loads(path.read_text())

