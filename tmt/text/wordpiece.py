"""WordPiece backend (HF ``tokenizers``), id-compatible with a BERT ``vocab.txt``.

The pipeline is the one ``transformers.BertTokenizerFast`` builds for an uncased vocabulary
(BertNormalizer + BertPreTokenizer + WordPiece with ``##`` continuation), so that for a BERT
``vocab.txt`` the id of every token is its line number, exactly as in BERT: the translator maps
BERT's embedding rows by these ids.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
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
        """Learn a vocabulary the way HF's ``WordPieceTrainer`` does (BPE merges with ``##``
        continuation pieces), but deterministically: HF's trainer breaks ties between equally
        frequent pairs in hash-map order, which changes from process to process (on the
        tmt-shapes captions two runs gave different vocabularies), so a fixed-seed recipe
        would not reproduce its text ids. See :func:`learn_wordpiece`."""
        pre = _bert_pipeline(models.WordPiece(unk_token=BERT_SPECIALS["unk"]))
        assert pre.normalizer is not None and pre.pre_tokenizer is not None
        words: Counter[str] = Counter()
        for text in texts:
            normalized = pre.normalizer.normalize_str(text)
            words.update(w for w, _ in pre.pre_tokenizer.pre_tokenize_str(normalized))
        if not words:
            raise TmtError("cannot train a WordPiece vocabulary: no caption has any word")
        specials = list(BERT_SPECIALS.values())
        pieces = learn_wordpiece(
            words, size=vocab_size - len(specials), min_frequency=min_frequency
        )
        return cls(specials + [p for p in pieces if p not in specials])

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


def learn_wordpiece(words: Mapping[str, int], *, size: int, min_frequency: int = 1) -> list[str]:
    """Word-piece vocabulary of at most ``size`` pieces from word counts: every character
    (a word's first as itself, the others as ``##c``), sorted, then BPE merges in order. Each
    merge joins the most frequent adjacent pair (ties: the alphabetically first pair) and
    stops at ``size`` pieces or when no pair occurs ``min_frequency`` times."""
    cont = "##"
    spelled = {
        word: [word[0]] + [cont + ch for ch in word[1:]] for word in sorted(words) if word
    }
    vocab = sorted({piece for parts in spelled.values() for piece in parts})[: max(0, size)]
    known = set(vocab)
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[str]] = {}
    for word, parts in spelled.items():
        for pair in zip(parts, parts[1:], strict=False):
            pairs[pair] += words[word]
            where.setdefault(pair, set()).add(word)
    heap = [(-count, pair) for pair, count in pairs.items()]  # stale entries skipped below
    heapq.heapify(heap)
    while len(vocab) < size and heap:
        negative, pair = heapq.heappop(heap)
        count = pairs.get(pair, 0)
        if count != -negative:  # stale: the pair's count changed (its fresh entry is queued)
            continue
        if count < min_frequency:
            break
        left, right = pair
        merged = left + right.removeprefix(cont)
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
        changed: set[tuple[str, str]] = set()
        for word in sorted(where.pop(pair, ())):
            parts, freq = spelled[word], words[word]
            for old in zip(parts, parts[1:], strict=False):  # take the word's pairs out...
                pairs[old] -= freq
                if pairs[old] <= 0:
                    del pairs[old]
            joined: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                    joined.append(merged)
                    i += 2
                else:
                    joined.append(parts[i])
                    i += 1
            spelled[word] = joined
            for new in zip(joined, joined[1:], strict=False):  # ...and its new pairs in
                pairs[new] += freq
                where.setdefault(new, set()).add(word)
                changed.add(new)
            changed.update(zip(parts, parts[1:], strict=False))
        pairs.pop(pair, None)
        for other in changed:
            if other in pairs and other != pair:
                heapq.heappush(heap, (-pairs[other], other))
    return vocab


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
