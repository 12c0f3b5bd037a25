"""Corpus readers that yield :class:`RawExample` records for ``tmt tokenize``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tmt.data.readers_captions import coco_examples, flickr8k_examples
from tmt.data.readers_cc import cc3m_examples, cc12m_examples
from tmt.data.records import RawExample
from tmt.data.unpaired import commonvoice_examples, imagenet_examples
from tmt.errors import TmtError

#: Source name of the extra examples that carry tmt-shapes' random input voices.
SHAPES_INPUT_VOICES = "shapes-input-voices"


def shapes_examples(root: str | Path, *, input_voices: bool = True) -> Iterator[RawExample]:
    """tmt-shapes: one example per item in the output voice (all six directions), plus, with
    ``input_voices``, one per extra utterance in a random voice (source ``shapes-input-voices``;
    training uses those as speech *input* only, so that generated speech keeps one voice)."""
    from tmt.data.shapes import read_corpus

    for item in read_corpus(root):
        if not item.speech:
            raise TmtError(f"tmt-shapes item {item.id} has no speech")
        first = item.speech[0]
        yield RawExample(id=item.id, split=item.split, source="shapes", speech=first.path,
                         reference_voice=True,
                         image=item.image, text=first.text)
        if input_voices:
            for k, ref in enumerate(item.speech[1:], start=1):
                yield RawExample(id=f"{item.id}.v{k}", split=item.split,
                                 source=SHAPES_INPUT_VOICES, speech=ref.path,
                                 image=item.image, text=ref.text)


READERS: dict[str, Callable[..., Iterator[RawExample]]] = {
    "shapes": shapes_examples,
    "coco": coco_examples,
    "flickr8k": flickr8k_examples,
    "cc3m": cc3m_examples,
    "cc12m": cc12m_examples,
    "imagenet": imagenet_examples,
    "commonvoice": commonvoice_examples,
}

#: Corpora without speech: ``tmt tokenize`` synthesizes it (see :mod:`tmt.data.tts`).
SYNTHESIZED_SPEECH = frozenset({"cc3m", "cc12m"})


def read_dataset(name: str, root: str | Path, **options: Any) -> Iterator[RawExample]:
    """The examples of corpus ``name`` at ``root``; ``options`` are the reader's keyword
    arguments (e.g. ``spoken=DIR`` for coco, ``audio=DIR`` for flickr8k)."""
    try:
        reader = READERS[name]
    except KeyError:
        raise TmtError(f"unknown dataset {name!r} (known: {', '.join(sorted(READERS))})") from None
    if not Path(root).is_dir():
        raise TmtError(f"{name} corpus directory not found: {root}")
    try:
        # Readers are generators: a bad keyword fails here, before any file is read.
        return reader(root, **options)
    except TypeError as error:
        raise TmtError(f"dataset {name!r} does not take these options "
                       f"({', '.join(sorted(options))}): {error}") from None
