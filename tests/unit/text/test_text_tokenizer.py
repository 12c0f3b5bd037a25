"""Text codec: normalization, WordPiece training, BERT id interop, SentencePiece, save/load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tmt.errors import TmtError
from tmt.modality import Codec, Modality
from tmt.text import TextTokenizer, normalize_text
from tmt.text.wordpiece import learn_wordpiece

CAPTIONS = [
    "A red circle on the left.",
    "Two blue squares, above a green triangle!",
    "The small red square is below the big yellow circle",
    "a green triangle to the right of a blue circle",
    "Three yellow squares; one purple star.",
] * 8

# A tiny BERT-style vocab.txt: specials at BERT's positions relative to [unusedN] rows,
# whole words and ## continuation pieces.
BERT_TOKENS = (
    ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + ["a", "the", "red", "blue", "circle", "square", "##s", "on", "left", "is", "sq", "##uare"]
    + ["cafe", "dog", "##gy", "un", "##believ", "##able", "b", "##lue", "c", "##ircle"]
)


def _write_vocab(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(BERT_TOKENS) + "\n", encoding="utf-8")
    return path


def test_normalize_lowercases_and_strips_punctuation() -> None:
    assert normalize_text("A Dog's  RED-ball!") == "a dogs red ball"
    assert normalize_text("“Quoted”, (parens)… and\ttabs\n") == "quoted parens and tabs"
    assert normalize_text("?!.,;") == ""


def test_train_wordpiece_round_trip() -> None:
    tok = TextTokenizer.train(CAPTIONS, vocab_size=200, min_frequency=1)
    assert isinstance(tok, Codec) and tok.modality is Modality.TEXT
    assert tok.kind == "wordpiece"
    assert tok.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    for caption in CAPTIONS[:5]:
        ids = tok.encode(caption)
        assert ids.dtype == torch.long and ids.dim() == 1
        assert 0 <= int(ids.min()) and int(ids.max()) < tok.vocab_size
        # No [CLS]/[SEP] added.
        assert not set(ids.tolist()) & {tok.special_ids["cls"], tok.special_ids["sep"]}
        assert tok.decode(ids) == normalize_text(caption)
    # Word-pieces are joined back into words: an unseen word made of seen letters.
    assert tok.decode(tok.encode("reds triangles")) == "reds triangles"


def test_wordpiece_merges_are_deterministic_bpe() -> None:
    counts = {"hexagon": 5, "hex": 3, "black": 4, "back": 2}
    pieces = learn_wordpiece(counts, size=100)
    # the sorted alphabet, then merges by count (ties: the alphabetically first pair)
    assert pieces[:11] == ["##a", "##c", "##e", "##g", "##k", "##l", "##n", "##o", "##x", "b", "h"]
    assert pieces[11:14] == ["##ex", "hex", "##ac"]  # h+##e (8) ... then ##a+##c (6) before ##a+##g (5)
    assert {"hexagon", "hex", "black", "back"} <= set(pieces)  # it stops with every word whole
    assert learn_wordpiece(counts, size=12) == pieces[:12]
    assert learn_wordpiece(counts, size=100, min_frequency=6) == pieces[:15]  # counts 8, 8, 6, 6
    assert learn_wordpiece(dict(reversed(list(counts.items()))), size=100) == pieces


def test_wordpiece_training_is_the_same_in_every_process(tmp_path: Path) -> None:
    # HF's WordPieceTrainer broke frequency ties in per-process hash order
    code = ("import sys; from tmt.text import TextTokenizer; "
            "TextTokenizer.train(sys.argv[2:], vocab_size=60, min_frequency=1).save(sys.argv[1])")
    for run in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / run), *CAPTIONS[:5]], check=True)
    vocab = (tmp_path / "a" / "vocab.txt").read_text()
    assert vocab == (tmp_path / "b" / "vocab.txt").read_text() and len(vocab.split()) == 60


def test_empty_text_is_one_line_error() -> None:
    tok = TextTokenizer.train(CAPTIONS, vocab_size=100, min_frequency=1)
    for bad in ("", "   ", "!!!"):
        with pytest.raises(TmtError, match="empty text") as info:
            tok.encode(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(TmtError, match="out of range"):
        tok.decode([tok.vocab_size])


def test_bert_vocab_ids_equal_bert_tokenizer_fast(tmp_path: Path) -> None:
    from transformers import BertTokenizerFast

    vocab = _write_vocab(tmp_path)
    ours = TextTokenizer.from_bert(vocab)
    bert = BertTokenizerFast(vocab_file=str(vocab))
    assert ours.vocab_size == len(BERT_TOKENS)
    assert [ours.token_to_id(t) for t in BERT_TOKENS] == bert.convert_tokens_to_ids(BERT_TOKENS)
    assert ours.special_ids == {
        "pad": bert.pad_token_id,
        "unk": bert.unk_token_id,
        "cls": bert.cls_token_id,
        "sep": bert.sep_token_id,
        "mask": bert.mask_token_id,
    }
    for text in ["The red squares, on the LEFT!", "Café doggy is unbelievable", "a zebra"]:
        expected = bert(normalize_text(text), add_special_tokens=False)["input_ids"]
        assert ours.encode(text).tolist() == expected
    # A tokenizer directory (save_pretrained) loads to the same ids.
    bert.save_pretrained(tmp_path / "bert_dir")
    from_dir = TextTokenizer.from_bert(tmp_path / "bert_dir")
    assert (
        from_dir.encode("unbelievable blue circle").tolist()
        == ours.encode("unbelievable blue circle").tolist()
    )
    assert ours.decode(ours.encode("Unbelievable, doggy.")) == "unbelievable doggy"


def test_bert_tokenizer_json_only_directory(tmp_path: Path) -> None:
    from transformers import BertTokenizerFast

    bert = BertTokenizerFast(vocab_file=str(_write_vocab(tmp_path)))
    bert.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    only_json = tmp_path / "json_dir"
    only_json.mkdir()
    (tmp_path / "tokenizer.json").rename(only_json / "tokenizer.json")
    tok = TextTokenizer.from_bert(only_json)
    assert [tok.token_to_id(t) for t in BERT_TOKENS] == list(range(len(BERT_TOKENS)))


def test_save_load_and_from_path(tmp_path: Path) -> None:
    tok = TextTokenizer.train(CAPTIONS, vocab_size=120, min_frequency=1)
    tok.save(tmp_path / "wp")
    again = TextTokenizer.load(tmp_path / "wp")
    assert again.vocab_size == tok.vocab_size
    assert [again.id_to_token(i) for i in range(tok.vocab_size)] == [
        tok.id_to_token(i) for i in range(tok.vocab_size)
    ]
    assert (
        TextTokenizer.from_path(tmp_path / "wp").encode(CAPTIONS[1]).equal(tok.encode(CAPTIONS[1]))
    )
    with pytest.raises(TmtError, match="not a saved text tokenizer"):
        TextTokenizer.load(tmp_path)
    # A vocabulary file swapped under the config is caught.
    (tmp_path / "wp" / "vocab.txt").write_text("[UNK]\na\n")
    with pytest.raises(TmtError, match="config.json says"):
        TextTokenizer.load(tmp_path / "wp")


def test_sentencepiece_round_trip(tmp_path: Path) -> None:
    tok = TextTokenizer.train_sentencepiece(CAPTIONS, vocab_size=60)
    assert tok.kind == "sentencepiece"
    assert tok.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3}
    for caption in CAPTIONS[:5]:
        ids = tok.encode(caption)
        assert 0 <= int(ids.min()) and int(ids.max()) < tok.vocab_size
        assert not set(ids.tolist()) & {0, 2, 3}
        assert tok.decode(ids) == normalize_text(caption)
    tok.save(tmp_path / "sp")
    again = TextTokenizer.load(tmp_path / "sp")
    assert again.encode(CAPTIONS[2]).equal(tok.encode(CAPTIONS[2]))
    model = tmp_path / "sp" / "spm.model"
    assert TextTokenizer.from_path(model).vocab_size == tok.vocab_size
