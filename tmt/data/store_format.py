"""On-disk format of the token store (see :mod:`tmt.data.store` for the layout)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from tmt.errors import TmtError
from tmt.files import atomic_write

FORMAT = "tmt-token-store"
VERSION = 1
MANIFEST = "store.json"
SHARD_RE = re.compile(r"^(?P<prefix>[A-Za-z0-9_]+)-(?P<index>\d{5,})$")
TMP_PREFIX = ".tmp-"
MAX_ID = np.iinfo(np.int32).max


def write_json_atomic(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=1) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TmtError(f"{directory}: not a token store (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise TmtError(f"{directory / MANIFEST}: unreadable ({error})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise TmtError(f"{directory / MANIFEST}: not a version-{VERSION} tmt token store")
    return dict(manifest)


def shard_dirs(directory: Path) -> list[Path]:
    """Complete shards of a store, in (prefix, number) order."""
    found = []
    for path in directory.iterdir():
        match = SHARD_RE.match(path.name)
        if match and path.is_dir() and (path / "meta.json").is_file():
            found.append((match["prefix"], int(match["index"]), path))
    return [path for _, _, path in sorted(found)]


def merge_vocab_sizes(old: dict[str, int], new: dict[str, int], where: Path) -> dict[str, int]:
    merged = dict(old)
    for name, size in new.items():
        if merged.get(name, size) != size:
            raise TmtError(
                f"{where}: {name} vocabulary size {size} differs from the store's {merged[name]} "
                "(tokenized with different codecs?)"
            )
        merged[name] = int(size)
    return merged
