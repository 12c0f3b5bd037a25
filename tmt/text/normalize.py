"""Caption normalization as the paper's data preparation does it: lower-case, no punctuation."""

from __future__ import annotations

import re
import unicodedata

# Apostrophes inside words are deleted rather than turned into a space, so that
# "don't" -> "dont" and "dog's" -> "dogs" stay one word (as spoken).
_APOSTROPHES = re.compile(r"['\u2019\u02bc\u2018`]")


def _is_separator(char: str) -> bool:
    # Unicode categories P* (punctuation), S* (symbols: $ + = emoji ...) and C* (control,
    # format) carry no words: each becomes a space so that "black-and-white" -> "black and white".
    return unicodedata.category(char)[0] in "PSCZ"


def normalize_text(text: str) -> str:
    """Lower-case, strip punctuation and symbols, collapse whitespace.

    ``normalize_text("A Dog's  red-ball!")`` -> ``"a dogs red ball"``. Letters and digits of
    every script are kept (accents too; the WordPiece tokenizer strips accents itself, as
    BERT-uncased does). The result may be empty.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = _APOSTROPHES.sub("", text)
    text = "".join(" " if _is_separator(c) else c for c in text)
    return " ".join(text.split())
