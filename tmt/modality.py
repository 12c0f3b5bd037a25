"""The three modalities and the protocol every codec implements."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import torch

from tmt.errors import TmtError


class Modality(StrEnum):
    """A modality is a 'language' of discrete tokens."""

    SPEECH = "speech"
    IMAGE = "image"
    TEXT = "text"

    @classmethod
    def parse(cls, name: str | Modality) -> Modality:
        """``Modality.parse("speech")``; raises :class:`TmtError` with the valid names."""
        if isinstance(name, Modality):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise TmtError(f"unknown modality {name!r} (expected one of: {valid})") from None


#: The fixed order used for modality-type ids, id ranges and direction lists.
MODALITIES: tuple[Modality, ...] = (Modality.SPEECH, Modality.IMAGE, Modality.TEXT)

#: The six translation directions (source, target).
DIRECTIONS: tuple[tuple[Modality, Modality], ...] = tuple(
    (s, t) for s in MODALITIES for t in MODALITIES if s is not t
)


def parse_direction(name: str) -> tuple[Modality, Modality]:
    """``"speech-image"`` → (SPEECH, IMAGE); a one-line error for anything else."""
    parts = name.split("-")
    if len(parts) != 2:
        raise TmtError(f"direction {name!r} is not of the form source-target")
    src, tgt = Modality.parse(parts[0]), Modality.parse(parts[1])
    if src is tgt:
        raise TmtError(f"direction {name!r} has the same source and target")
    return src, tgt


@runtime_checkable
class Codec(Protocol):
    """A tokenizer/detokenizer pair for one modality.

    ``encode`` turns raw input (a path, a waveform, an image, a string) into a 1-D
    ``LongTensor`` of ids in ``[0, vocab_size)``; ``encode_batch`` does the same for a list (a
    list of such tensors, whatever the modality); ``decode`` turns ids back into raw output (a
    waveform, an image, a string). ``load`` rebuilds a codec that ``save`` wrote, with its
    modules on ``device``; ``native_size`` is the raw side's fixed size: the sample rate of
    speech (Hz), the side of an image (pixels), None for text.
    """

    modality: Modality

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> Self: ...

    def save(self, directory: str | Path) -> None: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def native_size(self) -> int | None: ...

    def encode(self, raw: Any) -> torch.Tensor: ...

    def encode_batch(self, raws: Sequence[Any]) -> list[torch.Tensor]: ...

    def decode(self, ids: torch.Tensor) -> Any: ...
