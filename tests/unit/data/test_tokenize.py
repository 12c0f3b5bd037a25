"""tokenize_corpus with fake codecs: counts, failures, resume, shard splitting."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tmt.data.records import RawExample
from tmt.data.store import TokenStore, TokenStoreWriter
from tmt.data.tokenize import parse_shard, shard_of, tokenize_corpus
from tmt.errors import TmtError
from tmt.modality import Modality


class FakeCodec:
    """A codec whose encode is a tiny function; counts its calls."""

    def __init__(self, modality: Modality, vocab_size: int, fn: Callable[[Any], torch.Tensor]):
        self.modality = modality
        self._vocab_size = vocab_size
        self.fn = fn
        self.calls = 0

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def encode(self, raw: Any) -> torch.Tensor:
        self.calls += 1
        return self.fn(raw)

    def decode(self, ids: torch.Tensor) -> Any:
        raise NotImplementedError

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError


def _file_ids(path: Path) -> torch.Tensor:
    # A "bad file" is one the codec cannot parse: it raises, like a real decoder would.
    data = Path(path).read_bytes()
    if data.startswith(b"BAD"):
        raise ValueError(f"{path}: not a valid media file")
    return torch.tensor(list(data), dtype=torch.long) % 50


def make_codecs() -> dict[Modality, FakeCodec]:
    return {
        Modality.SPEECH: FakeCodec(Modality.SPEECH, 50, _file_ids),
        Modality.IMAGE: FakeCodec(Modality.IMAGE, 50, lambda p: _file_ids(p)[:4]),
        Modality.TEXT: FakeCodec(
            Modality.TEXT, 30, lambda s: torch.tensor([len(w) for w in s.split()])
        ),
    }


def make_corpus(root: Path, n: int, bad: Collection[int] = ()) -> list[RawExample]:
    root.mkdir(parents=True, exist_ok=True)
    corpus = []
    for i in range(n):
        wav = root / f"{i}.wav"
        wav.write_bytes(b"BAD" if i in bad else bytes(range(i % 7 + 3)))
        png = root / f"{i}.png"
        png.write_bytes(bytes(range(10, 20)))
        corpus.append(
            RawExample(
                id=f"u{i}",
                split="valid" if i % 4 == 0 else "train",
                source="fake",
                speech=wav,
                image=None if i % 2 else png,
                text=f"a caption number {i}",
            )
        )
    return corpus


def test_tokenize_counts_tokens_and_failures(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "raw", 10, bad={3, 7})
    codecs = make_codecs()
    with TokenStoreWriter(tmp_path / "store", shard_size=4) as writer:
        summary = tokenize_corpus(corpus, codecs, writer, progress=False)
    assert (summary.examples, summary.written, summary.failed, summary.skipped) == (10, 8, 2, 0)
    assert [f[:2] for f in summary.failures] == [("u3", "speech"), ("u7", "speech")]
    assert "not a valid media file" in summary.failures[0][2]

    store = TokenStore(tmp_path / "store")
    assert store.vocab_sizes == {"speech": 50, "image": 50, "text": 30}
    good = [ex for i, ex in enumerate(corpus) if i not in (3, 7)]
    assert [e.id for e in store] == [ex.id for ex in good]
    assert summary.tokens["speech"] == sum(len(e.speech) for e in store)
    assert summary.media["image"] == sum(ex.image is not None for ex in good)
    first = store[0]
    assert torch.equal(first.speech, _file_ids(corpus[0].speech))
    assert first.text.tolist() == [1, 7, 6, 1]
    assert first.raw_bytes["speech"] == corpus[0].speech.stat().st_size
    assert first.raw_bytes["text"] == len(corpus[0].text.encode())
    assert store[1].image is None
    assert store.split("valid").ids == [ex.id for ex in good if ex.split == "valid"]


def test_resume_skips_finished_ids(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "raw", 12, bad={5})
    # First run is interrupted after 7 examples: every finished one is kept (one shard of 4 and
    # the 2 queued ones; example 5 failed), and the message says so.
    codecs = make_codecs()
    writer = TokenStoreWriter(tmp_path / "store", shard_size=4)
    with pytest.raises(KeyboardInterrupt, match="6 new examples kept"):
        tokenize_corpus(_die_after(corpus, 7), codecs, writer, progress=False)
    del writer
    assert len(TokenStore(tmp_path / "store")) == 6

    (tmp_path / "raw" / "5.wav").write_bytes(b"\x01\x02")  # the bad file got fixed meanwhile
    codecs = make_codecs()
    with TokenStoreWriter(tmp_path / "store", shard_size=4) as writer:
        summary = tokenize_corpus(corpus, codecs, writer, progress=False)
    assert (summary.examples, summary.skipped, summary.written, summary.failed) == (12, 6, 6, 0)
    assert codecs[Modality.SPEECH].calls == 6  # stored examples are not encoded again
    assert sorted(TokenStore(tmp_path / "store").ids) == sorted(ex.id for ex in corpus)


def _die_after(corpus: list[RawExample], n: int) -> Iterator[RawExample]:
    for i, ex in enumerate(corpus):
        if i == n:
            raise KeyboardInterrupt
        yield ex


def test_codec_with_other_vocab_is_refused_and_bad_ids_are_failures(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "raw", 3)
    with TokenStoreWriter(tmp_path / "store", vocab_sizes={"speech": 200}) as writer:
        with pytest.raises(TmtError, match="speech vocabulary size 50 differs"):
            tokenize_corpus(corpus, make_codecs(), writer, progress=False)
    broken = {Modality.TEXT: FakeCodec(Modality.TEXT, 5, lambda s: torch.tensor([7]))}
    with TokenStoreWriter(tmp_path / "store2") as writer:
        summary = tokenize_corpus(corpus, broken, writer, progress=False)
    assert summary.failed == 3 and "outside [0, 5)" in summary.failures[0][2]


def test_shard_of_covers_every_id_once() -> None:
    ids = [f"img_{i}" for i in range(500)]
    parts = [list(shard_of(ids, i, 4)) for i in range(4)]
    assert sorted(x for p in parts for x in p) == sorted(ids)
    assert all(60 < len(p) < 190 for p in parts)  # roughly balanced
    # Depends on the ids, not their order.
    assert sorted(shard_of(reversed(ids), 2, 4)) == sorted(parts[2])
    records = [RawExample(id=i, text="x") for i in ids]
    assert [r.id for r in shard_of(records, 1, 4)] == parts[1]
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(TmtError, match="bad shard"):
            parse_shard(bad)
