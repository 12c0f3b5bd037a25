"""tmt.text: the text codec (normalization + WordPiece / SentencePiece word-pieces)."""

from tmt.text.normalize import normalize_text
from tmt.text.tokenizer import TextTokenizer, TextTokenizerConfig

__all__ = ["TextTokenizer", "TextTokenizerConfig", "normalize_text"]
