"""The unseen-voice evaluation set: a corpus split's captions spoken by voices tmt never trains on,
clean and under fixed degradations.

Layout (a tmt-shapes corpus of its own, readable by :func:`tmt.data.shapes.read_corpus`)::

    manifest.jsonl   one line per utterance: the example's fields (id = EXAMPLE-VOICE-CONDITION),
                     plus "example", "voice", "condition"; speech = [that one utterance]
    meta.json        the source corpus, split, voices, conditions, seed
    grammar.jsgf     copied from the source corpus (the speech judge reads it)
    images/ID.png    the source images of the chosen examples
    speech/*.wav     16 kHz mono PCM16; ``ID-reference.wav`` is the source's output-voice
                     utterance of the caption (what a voice-invariant encoder should match)

Every chosen caption is spoken clean by every voice of :data:`UNSEEN_VOICES`; each degraded
condition takes each caption once, the voices taking turns, so that a condition's row has as
many utterances as there are captions. Babble is mixed from the set's own clean utterances of
other captions. A seed reproduces the set byte for byte.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tmt.data.augment import CONDITIONS, degrade
from tmt.data.shapes import read_corpus, read_meta
from tmt.data.shapes_tts import UNSEEN_VOICES, synthesize, write_wav
from tmt.errors import TmtError
from tmt.progress import bar_off

FORMAT = "tmt-shapes-unseen"


def write_unseen_set(
    corpus: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    limit: int = 200,
    voices: Sequence[str] = UNSEEN_VOICES,
    conditions: Sequence[str] = tuple(CONDITIONS),
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write the set for the first ``limit`` examples of ``split`` of ``corpus``; returns ``out``."""
    from tqdm import tqdm

    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise TmtError(f"unknown condition {unknown[0]!r} (known: {', '.join(CONDITIONS)})")
    if not voices:
        raise TmtError("the unseen-voice set needs at least one voice")
    if limit <= 0:
        raise TmtError(f"--limit must be positive, got {limit}")
    source = Path(corpus)
    meta = read_meta(source)
    trained_on = set(meta.get("unseen_voices", []))
    if not trained_on:
        raise TmtError(f"{source} predates held-out voices (its input voices include every flite "
                       "voice): regenerate it with `tmt data shapes`")
    leaked = [v for v in voices if v not in trained_on]
    if leaked:
        raise TmtError(f"voice {leaked[0]!r} is not held out by {source} (held out: {', '.join(sorted(trained_on))})")
    items = read_corpus(source, split)[:limit]
    if not items:
        raise TmtError(f"split {split!r} of {source} is empty")
    out = Path(out)
    for sub in ("images", "speech"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "grammar.jsgf", out / "grammar.jsgf")

    clean: dict[tuple[str, str], np.ndarray] = {}
    for item in tqdm(items, desc="unseen voices", disable=bar_off(not progress)):
        shutil.copyfile(item.image, out / "images" / f"{item.id}.png")
        shutil.copyfile(item.speech[0].path, out / "speech" / f"{item.id}-reference.wav")
        for voice in voices:
            clean[item.id, voice] = synthesize(item.caption, voice).wave

    rows: list[dict[str, Any]] = []
    for c_index, condition in enumerate(conditions):
        for i, item in enumerate(items):
            chosen = voices if condition == "clean" else [voices[(i + c_index) % len(voices)]]
            for voice in chosen:
                rng = np.random.default_rng([seed, c_index, i])
                # babble: talkers saying other captions (or, in a one-caption set, other voices)
                pool = [clean[o.id, v] for o in items if o.id != item.id for v in voices] or [
                    clean[item.id, v] for v in voices if v != voice]
                wave = degrade(clean[item.id, voice], condition, rng, pool)
                name = f"{item.id}-{voice.replace(':', '_')}-{condition}"
                write_wav(out / "speech" / f"{name}.wav", wave)
                rows.append({
                    "id": name, "example": item.id, "split": split, "voice": voice,
                    "condition": condition, "caption": item.caption, "captions": item.captions,
                    "attributes": item.attributes, "image": f"images/{item.id}.png",
                    "reference": f"speech/{item.id}-reference.wav",
                    "speech": [{"path": f"speech/{name}.wav", "voice": voice, "text": item.caption,
                                "condition": condition}],
                })
    (out / "meta.json").write_text(json.dumps({
        "format": FORMAT, "source": str(source.resolve()), "split": split, "examples": len(items),
        "voices": list(voices), "conditions": list(conditions), "seed": seed,
        "output_voice": meta.get("output_voice"), "utterances": len(rows),
    }, indent=2) + "\n")
    tmp = out / "manifest.jsonl.tmp"  # written last: its presence marks a complete set
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out / "manifest.jsonl")
    return out


def read_unseen_set(directory: str | Path) -> list[dict[str, Any]]:
    """The set's rows with absolute ``image`` and ``wav`` paths."""
    root = Path(directory)
    meta_path = root / "meta.json"
    if not (root / "manifest.jsonl").is_file() or not meta_path.is_file():
        raise TmtError(f"{root} is not an unseen-voice set (write one with `tmt data unseen`)")
    if json.loads(meta_path.read_text()).get("format") != FORMAT:
        raise TmtError(f"{meta_path} is not an unseen-voice set's meta.json")
    rows = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        row["image"] = root / row["image"]
        row["wav"] = root / row["speech"][0]["path"]
        row["reference"] = root / row["reference"]
        rows.append(row)
    return rows

