"""Minimal reader of a speech manifest (the tmt-shapes ``manifest.jsonl`` format).

The codec package must not import ``tmt.data``, so the few fields the speech recipes need
are read here: one JSON object per example with ``id``, ``split`` and ``speech``: a list of
``{"path", "voice", "text"}`` whose first entry is in the output voice (``meta.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tmt.errors import TmtError


@dataclass(frozen=True, kw_only=True)
class SpeechItem:
    example_id: str
    split: str
    path: Path
    voice: str
    text: str
    is_output_voice: bool
    """True for the first utterance of an example (spoken in the corpus's output voice)."""


def read_manifest(corpus: str | Path, splits: tuple[str, ...] | None = None) -> list[SpeechItem]:
    """All utterances of ``corpus`` (optionally only ``splits``), in manifest order."""
    root = Path(corpus)
    manifest = root / "manifest.jsonl"
    if not manifest.exists():
        raise TmtError(f"no manifest.jsonl in {root}")
    output_voice = None
    if (root / "meta.json").exists():
        output_voice = json.loads((root / "meta.json").read_text()).get("output_voice")
    items: list[SpeechItem] = []
    with manifest.open() as handle:
        for line in handle:
            if not line.strip():
                continue
            ex = json.loads(line)
            if splits is not None and ex["split"] not in splits:
                continue
            for j, sp in enumerate(ex.get("speech", [])):
                is_out = j == 0 and (output_voice is None or sp.get("voice") == output_voice)
                items.append(
                    SpeechItem(
                        example_id=str(ex["id"]),
                        split=ex["split"],
                        path=root / sp["path"],
                        voice=str(sp.get("voice", "")),
                        text=str(sp.get("text", ex.get("caption", ""))),
                        is_output_voice=is_out,
                    )
                )
    return items
