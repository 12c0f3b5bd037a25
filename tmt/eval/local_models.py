"""Loading a judge saved with HuggingFace ``save_pretrained`` from a local directory (no hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tmt.errors import TmtError


def load_pretrained(directory: Path, what: str, *classes: Any) -> list[Any]:
    """``cls.from_pretrained(directory, local_files_only=True)`` for each class, or one-line
    errors naming ``what`` (e.g. "wav2vec2 model") when the folder is missing or unreadable."""
    if not (directory / "config.json").is_file():
        raise TmtError(f"no {what} at {directory} (expected config.json from save_pretrained)")
    try:
        return [cls.from_pretrained(directory, local_files_only=True) for cls in classes]
    except (OSError, ValueError) as error:
        raise TmtError(f"cannot load the {what} at {directory}: {error}") from None
