"""SentencePiece backend: the alternative for languages BERT's vocabulary does not cover."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import sentencepiece

from tmt.errors import TmtError

MODEL_FILE = "spm.model"


class SentencePieceBackend:
    """A SentencePiece model (unigram or BPE); ids are the model's piece ids."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes) -> None:
        proc = sentencepiece.SentencePieceProcessor()
        try:
            proc.LoadFromSerializedProto(model_proto)
        except (RuntimeError, OSError) as error:
            raise TmtError(f"not a SentencePiece model ({error})") from None
        self._proto = model_proto
        self._sp = proc
        # Role -> id, as for BERT; BOS/EOS play CLS/SEP. A role the model lacks has id -1.
        roles = {
            "pad": proc.pad_id(),
            "unk": proc.unk_id(),
            "cls": proc.bos_id(),
            "sep": proc.eos_id(),
        }
        self.special_ids = {role: int(i) for role, i in roles.items() if i >= 0}
        self._drop_on_decode = frozenset(self.special_ids.values())

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int,
        model_type: str,
        character_coverage: float,
    ) -> SentencePieceBackend:
        model = io.BytesIO()
        texts = (t for t in texts if t)  # SentencePiece rejects empty sentences
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=texts,
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                pad_id=0,
                unk_id=1,
                bos_id=2,
                eos_id=3,
                # A small corpus may not support vocab_size pieces: take what it has.
                hard_vocab_limit=False,
                num_threads=1,
                minloglevel=2,
            )
        except RuntimeError as error:
            raise TmtError(f"cannot train a SentencePiece model: {error}") from None
        return cls(model.getvalue())

    @classmethod
    def from_path(cls, path: str | Path) -> SentencePieceBackend:
        path = Path(path)
        if path.is_dir():
            path = path / MODEL_FILE
        try:
            return cls(path.read_bytes())
        except OSError as error:
            raise TmtError(f"{path}: cannot read SentencePiece model ({error})") from None

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def encode_ids(self, text: str) -> list[int]:
        return list(self._sp.encode(text))

    def decode_ids(self, ids: list[int]) -> str:
        return str(self._sp.decode([i for i in ids if i not in self._drop_on_decode]))

    def id_to_token(self, i: int) -> str:
        return str(self._sp.id_to_piece(i))

    def token_to_id(self, token: str) -> int | None:
        i = int(self._sp.piece_to_id(token))
        return None if i == self._sp.unk_id() and token != self._sp.id_to_piece(i) else i

    def save(self, directory: Path) -> str:
        (directory / MODEL_FILE).write_bytes(self._proto)
        return MODEL_FILE
