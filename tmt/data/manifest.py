"""The one reader of a corpus's ``manifest.jsonl``: one JSON object per example, in order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tmt.errors import TmtError

MANIFEST = "manifest.jsonl"


def read_manifest(
    corpus: str | Path, splits: Sequence[str] | None = None, *, require: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Records of ``corpus/manifest.jsonl`` whose ``split`` is in ``splits`` (all if None); a
    record without one of the ``require``d fields is an error naming its line."""
    path = Path(corpus) / MANIFEST
    if not path.is_file():
        raise TmtError(f"{corpus} is not a corpus directory (no {MANIFEST})")
    records = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise TmtError(f"{path}:{number} is not valid JSON") from None
            missing = [name for name in require if name not in record]
            if missing:
                raise TmtError(f"{path}:{number} has no {missing[0]!r} field")
            if splits is None or record.get("split") in splits:
                records.append(record)
    return records
