"""Readers of the unpaired corpora used for back-translation: ImageNet (images only) and
Mozilla Common Voice (speech + text, no images)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from tmt.data.records import RawExample
from tmt.errors import TmtError

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}

#: ImageNet folder name -> split name in the token store.
IMAGENET_SPLITS = {"train": "train", "val": "valid", "test": "test"}


def imagenet_examples(root: str | Path) -> Iterator[RawExample]:
    """ImageNet (ILSVRC) in its class-folder layout: ``root/train/<wnid>/*.JPEG``,
    ``root/val/<wnid>/*.JPEG`` (or ``root/val/*.JPEG`` flat), ``root/test/*.JPEG``.

    One image-only example per file, id = the file stem (``n01440764_10026``,
    ``ILSVRC2012_val_00000001``: unique across ImageNet); split ``train`` / ``valid`` / ``test``.
    The class labels are not used. Files are visited in sorted order (stable ids and shards).
    """
    root = Path(root)
    folders = [(root / name, split) for name, split in IMAGENET_SPLITS.items() if (root / name).is_dir()]
    if not folders:
        raise TmtError(f"{root}: not an ImageNet folder (expected train/, val/ or test/)")
    for folder, split in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                yield RawExample(id=path.stem, split=split, source="imagenet", image=path)


#: Common Voice's per-split lists (subsets of validated.tsv) -> split names in the token store.
COMMONVOICE_SPLITS = {"test.tsv": "test", "dev.tsv": "valid"}


def _read_tsv(path: Path) -> list[dict[str, str]]:
    # Sentences may contain quotes: no quoting in Common Voice's TSVs.
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if rows and not {"path", "sentence"} <= set(rows[0]):
        raise TmtError(f"{path}: expected the Common Voice columns 'path' and 'sentence'")
    return rows


def commonvoice_examples(root: str | Path) -> Iterator[RawExample]:
    """Mozilla Common Voice, one language folder: ``validated.tsv`` (columns ``client_id``,
    ``path``, ``sentence``, ...) and ``clips/<path>`` (mp3, read by libsndfile >= 1.1).

    One speech + text example per validated clip, id = the clip's stem
    (``common_voice_en_123``). Clips listed in ``test.tsv`` / ``dev.tsv`` get split ``test`` /
    ``valid``, the rest ``train``. Rows without a sentence are skipped; a missing clip still
    yields its example, so that ``tmt tokenize`` / ``tmt backtranslate`` count it as a failure.
    """
    root = Path(root)
    validated = root / "validated.tsv"
    if not validated.is_file():
        raise TmtError(f"{root}: not a Common Voice folder (no validated.tsv)")
    split_of: dict[str, str] = {}
    for name, split in COMMONVOICE_SPLITS.items():
        if (root / name).is_file():
            split_of.update((row["path"], split) for row in _read_tsv(root / name))
    for row in _read_tsv(validated):
        sentence = (row.get("sentence") or "").strip()
        if not sentence or not row.get("path"):
            continue
        clip = root / "clips" / row["path"]
        yield RawExample(id=Path(row["path"]).stem, split=split_of.get(row["path"], "train"),
                         source="commonvoice", speech=clip, text=sentence)
