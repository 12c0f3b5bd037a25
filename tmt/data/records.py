"""The two example records of the data pipeline: raw media in, codec-local token ids out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from tmt.modality import MODALITIES, Modality


@dataclass(kw_only=True, frozen=True)
class RawExample:
    """One corpus item before tokenization: any subset of a wav, an image and a caption."""

    id: str
    """Unique within a corpus (the token store refuses duplicates; resuming skips by id)."""
    split: str = "train"
    """``train`` / ``valid`` / ``test`` (any name)."""
    source: str = ""
    """The corpus it came from (``shapes``, ``coco``, ``imagenet``...)."""
    speech: Path | None = None
    """A wav file."""
    image: Path | None = None
    """An image file (png, jpg)."""
    text: str | None = None
    """The caption, as written (the text codec normalizes it)."""
    pseudo: bool = False
    """True for back-translated (synthetic) media."""
    reference_voice: bool = False
    """True when the speech is in the speech codec's reference voice (tmt-shapes' output voice):
    it is encoded by the k-means tokenizer whose units the vocoder speaks, not by the codec's
    unit normalizer, so that →speech targets are exactly the vocoder's units."""

    def media(self, modality: Modality) -> Path | str | None:
        return {Modality.SPEECH: self.speech, Modality.IMAGE: self.image, Modality.TEXT: self.text}[
            Modality.parse(modality)
        ]


@dataclass(kw_only=True)
class TokenExample:
    """One pre-tokenized example: codec-LOCAL ids (not unified-vocabulary ids), so that the
    vocabulary layout can change without re-tokenizing.

    Token fields are 1-D int64 ``torch.Tensor`` (or None when the example lacks the
    modality). :class:`~tmt.data.store.TokenStoreWriter` also accepts numpy arrays or lists.
    """

    id: str
    split: str = "train"
    source: str = ""
    pseudo: bool = False
    speech: torch.Tensor | None = None
    """Speech unit ids, deduplicated, in ``[0, speech vocab)``."""
    image: torch.Tensor | None = None
    """Image code ids (32 per image), in ``[0, image vocab)``."""
    text: torch.Tensor | None = None
    """Word-piece ids without [CLS]/[SEP], in ``[0, text vocab)``."""
    raw_bytes: dict[str, int] = field(default_factory=dict)
    """Size of the raw media per modality name (wav/png file bytes, caption UTF-8 bytes),
    when known: the bits-per-example report compares tokens against it."""

    def tokens(self, modality: Modality | str) -> torch.Tensor | None:
        return getattr(self, Modality.parse(modality).value)  # type: ignore[no-any-return]

    @property
    def modalities(self) -> tuple[Modality, ...]:
        """The modalities this example has, in ``MODALITIES`` order."""
        return tuple(m for m in MODALITIES if self.tokens(m) is not None)
