"""The utterances of a corpus that the speech trainers read (tmt-shapes ``manifest.jsonl``).

Each example lists its ``speech`` as ``{"path", "voice", "text"}`` entries, the first in the
corpus's output voice (``meta.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tmt.data.manifest import read_manifest as read_records


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
    records = read_records(root, splits)
    output_voice = None
    if (root / "meta.json").exists():
        output_voice = json.loads((root / "meta.json").read_text()).get("output_voice")
    items: list[SpeechItem] = []
    for ex in records:
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
