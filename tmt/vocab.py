"""The unified vocabulary: the union of speech units, image codes and text word-pieces.

Layout of the id space (one contiguous range per modality, shared specials first)::

    0 PAD  1 BOS  2 EOS  3 UNK  4 <speech>  5 <image>  6 <text>  | speech | image | text

The three ``<modality>`` tags are the decoder's first token: they tell it which modality to
produce, like a target-language tag in multilingual NMT. Each id also has a modality-type id
(text=0 so that BERT's token-type row 0 maps onto text; speech=1; image=2); the shared
specials and the text tag count as text, the other tags as their own modality.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from tmt.errors import TmtError
from tmt.modality import MODALITIES, Modality

SPECIALS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3

#: Modality-type ids. Text is 0 so that BERT's ``token_type_embeddings[0]`` maps onto it.
TYPE_IDS: dict[Modality, int] = {Modality.TEXT: 0, Modality.SPEECH: 1, Modality.IMAGE: 2}


@dataclass(frozen=True, kw_only=True)
class Vocabulary:
    """Id layout of the union vocabulary. Build it with :meth:`from_sizes`."""

    speech_size: int
    """Number of speech units (paper: 200)."""

    image_size: int
    """Number of image codes (paper: 8192)."""

    text_size: int
    """Number of text word-pieces (paper: 30522, bert-base-uncased)."""

    @classmethod
    def from_sizes(cls, sizes: Mapping[Modality | str, int]) -> Vocabulary:
        """Build from per-modality sizes, e.g. those of the codecs' ``vocab_size``."""
        parsed = {Modality.parse(m): int(n) for m, n in sizes.items()}
        missing = [m.value for m in MODALITIES if m not in parsed]
        if missing:
            raise TmtError(f"vocabulary sizes missing for: {', '.join(missing)}")
        for m, n in parsed.items():
            if n < 1:
                raise TmtError(f"vocabulary size of {m.value} must be positive, got {n}")
        return cls(
            speech_size=parsed[Modality.SPEECH],
            image_size=parsed[Modality.IMAGE],
            text_size=parsed[Modality.TEXT],
        )

    # -- layout ---------------------------------------------------------------------------

    @property
    def num_specials(self) -> int:
        return len(SPECIALS) + len(MODALITIES)

    def size_of(self, modality: Modality) -> int:
        return {
            Modality.SPEECH: self.speech_size,
            Modality.IMAGE: self.image_size,
            Modality.TEXT: self.text_size,
        }[modality]

    def offset(self, modality: Modality) -> int:
        """First id of ``modality``'s range."""
        start = self.num_specials
        for m in MODALITIES:
            if m is modality:
                return start
            start += self.size_of(m)
        raise AssertionError(modality)

    def id_range(self, modality: Modality) -> range:
        start = self.offset(modality)
        return range(start, start + self.size_of(modality))

    def tag(self, modality: Modality) -> int:
        """The decoder's first token when it is to produce ``modality``."""
        return len(SPECIALS) + MODALITIES.index(modality)

    @property
    def size(self) -> int:
        return self.num_specials + self.speech_size + self.image_size + self.text_size

    # -- conversion -----------------------------------------------------------------------

    def to_unified(self, modality: Modality, ids: torch.Tensor) -> torch.Tensor:
        """Codec-local ids ``[0, size_of(modality))`` → unified ids."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        n = self.size_of(modality)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise TmtError(
                f"{modality.value} ids must lie in [0, {n}), got range "
                f"[{int(ids.min())}, {int(ids.max())}]"
            )
        return ids + self.offset(modality)

    def to_local(self, modality: Modality, ids: torch.Tensor) -> torch.Tensor:
        """Unified ids → codec-local ids; specials and other modalities' ids are dropped."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        r = self.id_range(modality)
        keep = (ids >= r.start) & (ids < r.stop)
        return ids[keep] - r.start

    def type_ids(self) -> torch.Tensor:
        """Modality-type id of every unified id, shape ``(size,)``."""
        types = torch.full((self.size,), TYPE_IDS[Modality.TEXT], dtype=torch.long)
        for m in MODALITIES:
            types[self.tag(m)] = TYPE_IDS[m]
            r = self.id_range(m)
            types[r.start : r.stop] = TYPE_IDS[m]
        return types

    def allowed_mask(self, modality: Modality) -> torch.Tensor:
        """Boolean mask ``(size,)`` of the ids a decoder may emit for ``modality`` (+ EOS)."""
        mask = torch.zeros(self.size, dtype=torch.bool)
        r = self.id_range(modality)
        mask[r.start : r.stop] = True
        mask[EOS] = True
        return mask

    # -- persistence ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        return {
            "speech_size": self.speech_size,
            "image_size": self.image_size,
            "text_size": self.text_size,
            "specials": list(SPECIALS),
            "tags": [f"<{m.value}>" for m in MODALITIES],
            "size": self.size,
            "offsets": {m.value: self.offset(m) for m in MODALITIES},
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            vocab = cls(
                speech_size=int(data["speech_size"]),
                image_size=int(data["image_size"]),
                text_size=int(data["text_size"]),
            )
        except FileNotFoundError:
            raise TmtError(f"vocabulary file not found: {path}") from None
        except (KeyError, ValueError, TypeError) as error:
            raise TmtError(f"invalid vocabulary file {path}: {error}") from None
        if "size" in data and int(data["size"]) != vocab.size:
            raise TmtError(f"invalid vocabulary file {path}: size {data['size']} != {vocab.size}")
        return vocab

    @classmethod
    def paper(cls) -> Vocabulary:
        """The paper's union: 200 HuBERT units + 8192 SEED codes + 30522 BERT word-pieces."""
        return cls(speech_size=200, image_size=8192, text_size=30522)
