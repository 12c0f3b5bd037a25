"""``TextTokenizer``: the text codec (normalized caption <-> word-piece ids)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from tmt.errors import TmtError
from tmt.files import check_format, format_header
from tmt.modality import Modality
from tmt.text.normalize import normalize_text
from tmt.text.spm import SentencePieceBackend
from tmt.text.wordpiece import WordPieceBackend

CONFIG_FILE = "config.json"
KIND = "tmt-text-tokenizer"


@dataclass(kw_only=True, frozen=True)
class TextTokenizerConfig:
    """What ``config.json`` beside a saved text tokenizer holds."""

    kind: str
    """``"wordpiece"`` or ``"sentencepiece"``."""
    file: str
    """The vocabulary (``vocab.txt``) or model (``spm.model``) file in the same directory."""
    vocab_size: int
    """Checked on load, so that a swapped file is caught."""


class _Backend(Protocol):
    kind: str
    special_ids: dict[str, int]

    @property
    def vocab_size(self) -> int: ...
    def encode_ids(self, text: str) -> list[int]: ...
    def decode_ids(self, ids: list[int]) -> str: ...
    def id_to_token(self, i: int) -> str: ...
    def token_to_id(self, token: str) -> int | None: ...
    def save(self, directory: Path) -> str: ...


_BACKENDS: dict[str, Any] = {"wordpiece": WordPieceBackend, "sentencepiece": SentencePieceBackend}


class TextTokenizer:
    """Text codec: ``encode(str) -> LongTensor`` of word-piece ids, ``decode(ids) -> str``.

    Text is first normalized as the paper's data preparation does (:func:`normalize_text`:
    lower-case, no punctuation). Ids carry no special tokens (no [CLS]/[SEP]) and lie in
    ``[0, vocab_size)``; for a BERT ``vocab.txt`` they are BERT's own ids.

    Build one with :meth:`train` (WordPiece on a caption list, the default),
    :meth:`train_sentencepiece`, :meth:`from_bert` (a local BERT ``vocab.txt`` or tokenizer
    directory), :meth:`from_sentencepiece` (a ``.model`` file) or :meth:`load` (a directory
    written by :meth:`save`).
    """

    modality = Modality.TEXT

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def train(
        cls, captions: Iterable[str], vocab_size: int = 30522, min_frequency: int = 2
    ) -> TextTokenizer:
        """Train a WordPiece vocabulary (HF ``tokenizers``) on normalized ``captions``.

        Ids 0-4 are [PAD] [UNK] [CLS] [SEP] [MASK]. A small corpus may yield fewer than
        ``vocab_size`` tokens (every word it has, plus its characters).
        """
        _check_size(vocab_size)
        texts = (normalize_text(c) for c in captions)
        return cls(
            WordPieceBackend.train(texts, vocab_size=vocab_size, min_frequency=min_frequency)
        )

    @classmethod
    def train_sentencepiece(
        cls,
        captions: Iterable[str],
        vocab_size: int = 8000,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
    ) -> TextTokenizer:
        """Train a SentencePiece model (``unigram`` or ``bpe``) on normalized ``captions``.

        Ids 0-3 are <pad> <unk> <s> </s>. A small corpus may yield fewer pieces.
        """
        _check_size(vocab_size)
        if model_type not in ("unigram", "bpe", "char", "word"):
            raise TmtError(f"unknown SentencePiece model type {model_type!r}")
        texts = (normalize_text(c) for c in captions)
        return cls(
            SentencePieceBackend.train(
                texts,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
            )
        )

    @classmethod
    def from_bert(cls, path: str | Path) -> TextTokenizer:
        """A local BERT ``vocab.txt``, or a tokenizer directory holding ``vocab.txt`` or a
        WordPiece ``tokenizer.json`` (e.g. a downloaded ``bert-base-uncased`` folder)."""
        return cls(WordPieceBackend.from_path(path))

    @classmethod
    def from_sentencepiece(cls, path: str | Path) -> TextTokenizer:
        """A SentencePiece ``.model`` file."""
        return cls(SentencePieceBackend.from_path(path))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> TextTokenizer:
        """Load a directory written by :meth:`save` (``config.json`` + vocabulary/model file).
        ``device`` is accepted for the codec protocol: a text tokenizer has no tensors to move."""
        directory = Path(directory)
        try:
            raw = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
            config = TextTokenizerConfig(**check_format(directory / CONFIG_FILE, raw, KIND))
        except FileNotFoundError:
            raise TmtError(f"{directory}: not a saved text tokenizer (no {CONFIG_FILE})") from None
        except (OSError, ValueError, TypeError) as error:
            raise TmtError(
                f"{directory / CONFIG_FILE}: bad text tokenizer config ({error})"
            ) from None
        if config.kind not in _BACKENDS:
            raise TmtError(f"{directory / CONFIG_FILE}: unknown tokenizer kind {config.kind!r}")
        tokenizer = cls(_BACKENDS[config.kind].from_path(directory / config.file))
        if tokenizer.vocab_size != config.vocab_size:
            raise TmtError(
                f"{directory}: {config.file} has {tokenizer.vocab_size} tokens, "
                f"config.json says {config.vocab_size}"
            )
        return tokenizer

    @classmethod
    def from_path(cls, path: str | Path) -> TextTokenizer:
        """Any of the above, by what ``path`` holds: a saved directory (``config.json``),
        a ``.model`` file, or a BERT ``vocab.txt`` / tokenizer directory."""
        path = Path(path)
        if (path / CONFIG_FILE).is_file() and not (path / "vocab.txt").is_file():
            return cls.load(path)
        if (path / CONFIG_FILE).is_file():
            # A HF tokenizer directory also has a config.json: only ours names a "kind".
            try:
                if "kind" in json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")):
                    return cls.load(path)
            except (OSError, ValueError):
                pass
        if path.suffix == ".model":
            return cls.from_sentencepiece(path)
        return cls.from_bert(path)

    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` and the vocabulary/model file into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        file = self._backend.save(directory)
        config = TextTokenizerConfig(kind=self.kind, file=file, vocab_size=self.vocab_size)
        (directory / CONFIG_FILE).write_text(json.dumps({**format_header(KIND), **asdict(config)}, indent=2) + "\n")

    # -- codec -----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"wordpiece"`` or ``"sentencepiece"``."""
        return self._backend.kind

    @property
    def vocab_size(self) -> int:
        return self._backend.vocab_size

    @property
    def native_size(self) -> None:
        """Text has no fixed raw size (the codec protocol's sample rate / image side)."""
        return None

    @property
    def special_ids(self) -> dict[str, int]:
        """Role -> id of the special tokens this vocabulary has: ``pad``, ``unk``, ``cls``,
        ``sep``, ``mask`` ([PAD] [UNK] [CLS] [SEP] [MASK] for WordPiece; SentencePiece's
        <pad> <unk> <s> </s> as pad/unk/cls/sep, no mask)."""
        return dict(self._backend.special_ids)

    def encode(self, text: str) -> torch.Tensor:
        """Normalize ``text`` and return its word-piece ids, 1-D int64, no special tokens.

        Raises :class:`TmtError` if nothing is left after normalization.
        """
        if not isinstance(text, str):
            raise TmtError(f"text tokenizer expects a string, got {type(text).__name__}")
        normalized = normalize_text(text)
        if not normalized:
            raise TmtError(f"empty text (nothing left after normalization): {text[:40]!r}")
        return torch.tensor(self._backend.encode_ids(normalized), dtype=torch.long)

    def encode_batch(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """:meth:`encode` of each text."""
        return [self.encode(text) for text in texts]

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Join word-pieces back into a normalized string; special tokens are dropped."""
        values = [int(i) for i in torch.as_tensor(ids, dtype=torch.long).reshape(-1).tolist()]
        bad = [i for i in values if not 0 <= i < self.vocab_size]
        if bad:
            raise TmtError(f"text id {bad[0]} out of range [0, {self.vocab_size})")
        return normalize_text(self._backend.decode_ids(values))

    def id_to_token(self, i: int) -> str:
        if not 0 <= int(i) < self.vocab_size:
            raise TmtError(f"text id {i} out of range [0, {self.vocab_size})")
        return self._backend.id_to_token(int(i))

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token`` (a word-piece, e.g. ``"##ing"``), or None if not in the vocabulary."""
        return self._backend.token_to_id(token)

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` (after normalization) that this vocabulary cannot spell: their
        pieces include the unknown token."""
        unk = self.special_ids.get("unk")
        return [w for w in normalize_text(text).split()
                if unk is not None and unk in self._backend.encode_ids(w)]

    def tokens(self, text: str) -> list[str]:
        """The word-pieces of ``text`` (for inspection)."""
        return [self._backend.id_to_token(i) for i in self.encode(text).tolist()]

    def __repr__(self) -> str:
        return f"TextTokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"


def _check_size(vocab_size: int) -> None:
    if vocab_size < 8:
        raise TmtError(f"vocab_size must be at least 8, got {vocab_size}")
