"""Readers of the two paired captioning corpora: COCO (+ SpokenCOCO) and Flickr8k (+ Flickr8k
Audio), with the Karpathy splits the paper evaluates on.

How examples are formed (one example = one caption, with its image and, when recorded, its
spoken version; the translator then trains the six directions from it):

* COCO: the Karpathy ``dataset_coco.json`` gives every image its split (``restval`` joins
  ``train``, ``val`` becomes ``valid``) and its written captions. With SpokenCOCO, an image's
  examples are its *spoken* captions — one per ``captions[]`` entry, text = the prompt the
  speaker read (so text and speech always match), id ``COCOID#UTTID``. An image SpokenCOCO
  lacks keeps its written captions (image + text, id ``COCOID#K``). SpokenCOCO's own
  train/val files follow COCO's 2014 split, not Karpathy's, so the split comes from the
  Karpathy file; spoken captions of images it does not list are counted and logged.
* Flickr8k: one example per Karpathy sentence ``K`` of an image (id ``IMAGESTEM#K``), with the
  Flickr8k Audio wav whose ``wav2capt.txt`` line names that image and ``#K`` (Karpathy's
  sentence order is the order of ``Flickr8k.token.txt``, which ``#K`` indexes). A second
  recording of the same caption becomes an extra example (``IMAGESTEM#K.2``).

Files are not opened here: a missing or corrupt image or wav fails when ``tmt tokenize``
encodes it, and is logged and counted there.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tmt.data.records import RawExample
from tmt.errors import TmtError

log = logging.getLogger(__name__)

#: Karpathy split name -> store split name.
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "valid", "test": "test"}


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TmtError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TmtError(f"{path}: not valid JSON ({error})") from None


def _first_existing(candidates: list[Path], what: str) -> Path:
    for path in candidates:
        if path.exists():
            return path
    raise TmtError(f"{what} not found (looked for {', '.join(str(p) for p in candidates)})")


def read_karpathy(path: Path) -> list[dict[str, Any]]:
    """The ``images`` list of a Karpathy split file, checked for the fields the readers use."""
    data = _read_json(path, "Karpathy split file")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise TmtError(f"{path}: expected a Karpathy split file with an 'images' list")
    for i, image in enumerate(images):
        if not isinstance(image, dict) or "filename" not in image or "sentences" not in image:
            raise TmtError(f"{path}: images[{i}] lacks 'filename' or 'sentences'")
        if image.get("split") not in KARPATHY_SPLITS:
            raise TmtError(f"{path}: images[{i}] has unknown split {image.get('split')!r}")
    return images


def _spoken_coco(spoken: Path) -> dict[str, list[dict[str, Any]]]:
    """Image file name -> its SpokenCOCO captions (``text``, ``wav`` made absolute, ``uttid``)."""
    files = sorted(spoken.glob("SpokenCOCO_*.json"))
    if not files:
        raise TmtError(f"no SpokenCOCO_*.json in {spoken}")
    by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in files:
        data = _read_json(path, "SpokenCOCO file")
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise TmtError(f"{path}: expected a SpokenCOCO file with a 'data' list")
        for entry in entries:
            try:
                name = Path(entry["image"]).name
                for caption in entry["captions"]:
                    by_image[name].append({
                        "text": caption["text"],
                        "wav": spoken / caption["wav"],
                        "uttid": caption.get("uttid") or Path(caption["wav"]).stem,
                    })
            except (KeyError, TypeError) as error:
                raise TmtError(f"{path}: malformed entry (missing {error})") from None
    return by_image


def coco_examples(
    root: str | Path,
    *,
    spoken: str | Path | None = None,
    karpathy: str | Path | None = None,
    images: str | Path | None = None,
) -> Iterator[RawExample]:
    """COCO captions with the Karpathy splits, with SpokenCOCO speech when present.

    ``root`` holds ``dataset_coco.json`` (or ``annotations/dataset_coco.json``, ``dataset.json``)
    and the image folders it names (``train2014/``, ``val2014/``); ``karpathy`` and ``images``
    override those two. ``spoken`` is the
    SpokenCOCO folder (``SpokenCOCO_{train,val}.json`` + ``wavs/``; default ``ROOT/SpokenCOCO``
    when it exists, else text and images only).
    """
    root = Path(root)
    split_file = Path(karpathy) if karpathy else _first_existing(
        [root / "dataset_coco.json", root / "annotations" / "dataset_coco.json",
         root / "dataset.json"],
        "Karpathy split file dataset_coco.json")
    image_root = Path(images) if images else root
    spoken_dir = Path(spoken) if spoken else root / "SpokenCOCO"
    if spoken and not spoken_dir.is_dir():
        raise TmtError(f"SpokenCOCO folder not found: {spoken_dir}")
    by_image = _spoken_coco(spoken_dir) if spoken_dir.is_dir() else {}
    used = 0
    for image in read_karpathy(split_file):
        name = image["filename"]
        path = image_root / image.get("filepath", "") / name
        split = KARPATHY_SPLITS[image["split"]]
        key = str(image.get("cocoid", image.get("imgid", Path(name).stem)))
        captions = by_image.get(name)
        if captions:
            used += 1
            for caption in captions:
                yield RawExample(id=f"{key}#{caption['uttid']}", split=split, source="coco",
                                 speech=caption["wav"], image=path, text=caption["text"])
        else:
            for k, sentence in enumerate(image["sentences"]):
                yield RawExample(id=f"{key}#{k}", split=split, source="coco", image=path,
                                 text=sentence["raw"])
    if len(by_image) > used:
        log.warning("coco: %d SpokenCOCO images are not in %s; their captions are not used",
                    len(by_image) - used, split_file)


def _flickr_audio(audio: Path) -> dict[tuple[str, int], list[Path]]:
    """(image file name, caption index) -> its wavs, from ``wav2capt.txt``."""
    table = audio / "wav2capt.txt"
    if not table.is_file():
        raise TmtError(f"Flickr8k Audio table not found: {table}")
    wavs = audio / "wavs" if (audio / "wavs").is_dir() else audio
    by_caption: dict[tuple[str, int], list[Path]] = defaultdict(list)
    for n, line in enumerate(table.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("#") or not parts[2][1:].isdigit():
            raise TmtError(f"{table}:{n}: expected 'WAV IMAGE #K', got {line!r}")
        by_caption[(parts[1], int(parts[2][1:]))].append(wavs / parts[0])
    return by_caption


def flickr8k_examples(
    root: str | Path,
    *,
    audio: str | Path | None = None,
    karpathy: str | Path | None = None,
    images: str | Path | None = None,
) -> Iterator[RawExample]:
    """Flickr8k captions with the Karpathy splits, with the Flickr8k Audio wavs when present.

    ``root`` holds ``dataset_flickr8k.json`` (or ``dataset.json``) and the image folder
    (``Flicker8k_Dataset/``, as the official archive spells it, or ``Flickr8k_Dataset/``,
    ``Images/``, ``images/``);
    ``audio`` is the Flickr8k Audio Caption Corpus folder (``wav2capt.txt``, ``wav2spk.txt``,
    ``wavs/``; default ``ROOT/flickr_audio`` when it exists, else text and images only).
    """
    root = Path(root)
    split_file = Path(karpathy) if karpathy else _first_existing(
        [root / "dataset_flickr8k.json", root / "dataset.json"],
        "Karpathy split file dataset_flickr8k.json")
    image_dir = Path(images) if images else _first_existing(
        [root / d for d in ("Flicker8k_Dataset", "Flickr8k_Dataset/Flicker8k_Dataset",
                            "Flickr8k_Dataset", "Images", "images")],
        "Flickr8k image folder")
    audio_dir = Path(audio) if audio else root / "flickr_audio"
    if audio and not audio_dir.is_dir():
        raise TmtError(f"Flickr8k Audio folder not found: {audio_dir}")
    by_caption = _flickr_audio(audio_dir) if audio_dir.is_dir() else {}
    used = 0
    for image in read_karpathy(split_file):
        name = image["filename"]
        split = KARPATHY_SPLITS[image["split"]]
        for k, sentence in enumerate(image["sentences"]):
            wavs = by_caption.get((name, k), [])
            used += len(wavs)
            for j, wav in enumerate(wavs or [None]):
                yield RawExample(id=f"{Path(name).stem}#{k}" + (f".{j + 1}" if j else ""),
                                 split=split, source="flickr8k", speech=wav,
                                 image=image_dir / name, text=sentence["raw"])
    total = sum(len(w) for w in by_caption.values())
    if total > used:
        log.warning("flickr8k: %d wavs of wav2capt.txt name no caption of %s; not used",
                    total - used, split_file)
