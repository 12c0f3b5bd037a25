"""WordPiece backend (HF ``tokenizers``), id-compatible with a BERT ``vocab.txt``.

The pipeline is the one ``transformers.BertTokenizerFast`` builds for an uncased vocabulary
(BertNormalizer + BertPreTokenizer + WordPiece with ``##`` continuation), so that for a BERT
``vocab.txt`` the id of every token is its line number, exactly as in BERT: the translator maps
BERT's embedding rows by these ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

# mypy (namespace packages on) mistakes the repo-root tokenizers/ asset folder for HF's package.
from tokenizers import (  # type: ignore[attr-defined]
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

from tmt.errors import TmtError

#: BERT's special tokens, by role. A trained vocabulary puts them first (ids 0-4).
BERT_SPECIALS: dict[str, str] = {
    "pad": "[PAD]",
    "unk": "[UNK]",
    "cls": "[CLS]",
    "sep": "[SEP]",
    "mask": "[MASK]",
}

VOCAB_FILE = "vocab.txt"


class WordPieceBackend:
    """A WordPiece vocabulary (list of tokens, id = index) and its BERT pipeline."""

    kind = "wordpiece"

    def __init__(self, tokens: list[str]) -> None:
        if BERT_SPECIALS["unk"] not in tokens:
            raise TmtError(f"WordPiece vocabulary has no {BERT_SPECIALS['unk']} token")
        vocab = {token: i for i, token in enumerate(tokens)}
        if len(vocab) != len(tokens):
            # A duplicate (or blank) line would shift ids away from BERT's row numbers.
            raise TmtError("WordPiece vocabulary has duplicate or blank tokens")
        self._tokens = tokens
        self._vocab = vocab
        self._tok = _bert_pipeline(models.WordPiece(vocab, unk_token=BERT_SPECIALS["unk"]))
        self.special_ids = {role: vocab[t] for role, t in BERT_SPECIALS.items() if t in vocab}
        self._drop_on_decode = frozenset(self.special_ids.values())

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def train(
        cls, texts: Iterable[str], *, vocab_size: int, min_frequency: int
    ) -> WordPieceBackend:
        tok = _bert_pipeline(models.WordPiece(unk_token=BERT_SPECIALS["unk"]))
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(BERT_SPECIALS.values()),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        vocab = tok.get_vocab()
        tokens = sorted(vocab, key=vocab.__getitem__)
        if len(tokens) <= len(BERT_SPECIALS):
            raise TmtError("cannot train a WordPiece vocabulary: no caption has any word")
        return cls(tokens)

    @classmethod
    def from_path(cls, path: str | Path) -> WordPieceBackend:
        """A BERT ``vocab.txt`` file, or a directory with ``vocab.txt`` or ``tokenizer.json``."""
        path = Path(path)
        if path.is_dir():
            if (path / VOCAB_FILE).is_file():
                path = path / VOCAB_FILE
            elif (path / "tokenizer.json").is_file():
                return cls(_tokens_from_tokenizer_json(path / "tokenizer.json"))
            else:
                raise TmtError(f"{path}: no vocab.txt or tokenizer.json in this directory")
        if not path.is_file():
            raise TmtError(f"{path}: no such WordPiece vocabulary file")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise TmtError(f"{path}: cannot read vocabulary ({error})") from None
        # BERT's loader strips the line ending only; a token never holds whitespace.
        return cls([line.strip() for line in lines])

    # -- codec -----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def encode_ids(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode_ids(self, ids: list[int]) -> str:
        kept = [i for i in ids if i not in self._drop_on_decode]
        return str(self._tok.decode(kept, skip_special_tokens=False))

    def id_to_token(self, i: int) -> str:
        return self._tokens[i]

    def token_to_id(self, token: str) -> int | None:
        return self._vocab.get(token)

    def save(self, directory: Path) -> str:
        (directory / VOCAB_FILE).write_text("\n".join(self._tokens) + "\n", encoding="utf-8")
        return VOCAB_FILE


def _bert_pipeline(model: models.WordPiece) -> Tokenizer:
    tok = Tokenizer(model)
    # strip_accents=None follows lowercase=True, as in bert-base-uncased.
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def _tokens_from_tokenizer_json(path: Path) -> list[str]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TmtError(f"{path}: cannot read tokenizer ({error})") from None
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece":
        raise TmtError(f"{path}: not a WordPiece tokenizer (model type {model.get('type')!r})")
    vocab: dict[str, int] = model["vocab"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        raise TmtError(f"{path}: WordPiece ids are not contiguous from 0")
    return tokens
