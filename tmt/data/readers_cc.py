"""Conceptual Captions (CC3M / CC12M) as a local folder of images with captions.

The corpora are distributed as URLs; once downloaded, tmt reads either layout:

* a captions TSV (``--captions FILE``, default ``ROOT/captions.tsv``) whose header names an
  image column (``image``, ``file``, ``filepath`` or ``filename``: a path relative to the
  images folder, default ``ROOT``) and a ``caption`` column, with an optional ``split`` column;
  a TSV without such a header is read as ``IMAGE<TAB>CAPTION`` rows;
* without a TSV, the img2dataset layout: every image under ``ROOT`` (``00000/000000012.jpg``)
  with its caption in the ``.txt`` file beside it.

The examples have an image and a caption but no speech: ``tmt tokenize`` synthesizes it with
a pluggable TTS (:mod:`tmt.data.tts`; espeak-ng by default, VITS in the paper), cached on disk.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from tmt.data.records import RawExample
from tmt.errors import TmtError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
IMAGE_COLUMNS = ("image", "file", "filepath", "filename")


def _tsv_rows(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """(line number, image, caption, split or None) of each row of a captions TSV."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip().lower() for h in header]
        image_col = next((names.index(c) for c in IMAGE_COLUMNS if c in names), None)
        if "caption" in names and image_col is not None:
            caption_col, split_col = names.index("caption"), (
                names.index("split") if "split" in names else None)
            rows = enumerate(reader, start=2)
        else:  # no header: IMAGE<TAB>CAPTION from the first line on
            image_col, caption_col, split_col = 0, 1, None
            rows = enumerate([header, *reader], start=1)
        for n, row in rows:
            if not row or not "".join(row).strip():
                continue
            if len(row) <= max(image_col, caption_col):
                raise TmtError(f"{path}:{n}: expected tab-separated image and caption")
            split = row[split_col].strip() if split_col is not None and split_col < len(row) else None
            yield n, row[image_col].strip(), row[caption_col].strip(), split or None


def cc_examples(
    root: str | Path,
    *,
    captions: str | Path | None = None,
    images: str | Path | None = None,
    split: str = "train",
    source: str = "cc3m",
) -> Iterator[RawExample]:
    """One example (image + caption, no speech) per captioned image; ids are image paths
    relative to the images folder, without suffix. ``split`` applies to rows without one."""
    root = Path(root)
    if not root.is_dir():
        raise TmtError(f"{source} folder not found: {root}")
    table = Path(captions) if captions else root / "captions.tsv"
    image_dir = Path(images) if images else root
    if captions and not table.is_file():
        raise TmtError(f"captions file not found: {table}")
    if table.is_file():
        for n, image, caption, row_split in _tsv_rows(table):
            if not image or not caption:
                raise TmtError(f"{table}:{n}: empty image or caption")
            yield RawExample(id=str(Path(image).with_suffix("")), split=row_split or split,
                             source=source, image=image_dir / image, text=caption)
        return
    # img2dataset layout: IMAGE.jpg + IMAGE.txt side by side.
    found = False
    for path in sorted(image_dir.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        found = True
        text_file = path.with_suffix(".txt")
        # An image whose caption file is missing still becomes an example, with an empty
        # caption: tokenize reports it as a failure (no text tokens) instead of it vanishing.
        caption = text_file.read_text(encoding="utf-8").strip() if text_file.is_file() else ""
        yield RawExample(id=str(path.relative_to(image_dir).with_suffix("")), split=split,
                         source=source, image=path, text=caption)
    if not found:
        raise TmtError(f"no {table.name} and no images in {image_dir}")


def cc3m_examples(root: str | Path, **options: object) -> Iterator[RawExample]:
    """CC3M (see :func:`cc_examples`)."""
    return cc_examples(root, source="cc3m", **options)  # type: ignore[arg-type]


def cc12m_examples(root: str | Path, **options: object) -> Iterator[RawExample]:
    """CC12M (same layout as CC3M; see :func:`cc_examples`)."""
    return cc_examples(root, source="cc12m", **options)  # type: ignore[arg-type]
