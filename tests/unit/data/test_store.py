"""Token store: sharded atomic writes, resume, memory-mapped read-back, views, bits report."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tmt.data.report import bits_report, format_bits_report
from tmt.data.store import TokenExample, TokenStore, TokenStoreWriter
from tmt.errors import TmtError

VOCAB = {"speech": 200, "image": 64, "text": 100}


def make_example(i: int, *, split: str = "train", pseudo: bool = False) -> TokenExample:
    """Deterministic example i; every third lacks speech, every fourth lacks an image."""
    g = torch.Generator().manual_seed(i)
    return TokenExample(
        id=f"ex{i:04d}",
        split=split,
        source="pseudo" if pseudo else "real",
        pseudo=pseudo,
        speech=None if i % 3 == 0 else torch.randint(0, 200, (5 + i % 7,), generator=g),
        image=None if i % 4 == 0 else torch.randint(0, 64, (32,), generator=g),
        text=torch.randint(0, 100, (1 + i % 5,), generator=g),
        raw_bytes={"text": 10 + i, "image": 1000},
    )


def assert_same(a: TokenExample, b: TokenExample) -> None:
    assert (a.id, a.split, a.source, a.pseudo) == (b.id, b.split, b.source, b.pseudo)
    for name in ("speech", "image", "text"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == torch.long and torch.equal(x, y), name


def test_memmap_read_back_equals_written(tmp_path: Path) -> None:
    written = [make_example(i, split="valid" if i % 5 == 0 else "train") for i in range(23)]
    with TokenStoreWriter(tmp_path, shard_size=10, vocab_sizes=VOCAB) as writer:
        for ex in written:
            writer.add(ex)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "shard-00000",
        "shard-00001",
        "shard-00002",
    ]
    store = TokenStore(tmp_path)
    assert len(store) == 23 and store.vocab_sizes == VOCAB
    for ex, back in zip(written, store, strict=True):
        assert_same(ex, back)
    assert_same(store[-1], written[-1])
    assert store[3].raw_bytes == {"text": 13, "image": 1000}
    with pytest.raises(IndexError):
        store[23]
    # The token arrays are memory maps, not loaded copies.
    flat, _ = store._shards[0].arrays("speech")
    assert isinstance(flat, np.memmap)

    valid = store.split("valid")
    assert [e.id for e in valid] == [e.id for e in written if e.split == "valid"]
    assert len(store.filter(has=["speech", "image"])) == sum(
        e.speech is not None and e.image is not None for e in written
    )
    with pytest.raises(TmtError, match="no split 'test'"):
        store.split("test")

    stats = store.stats()
    assert stats["examples"] == 23 and stats["splits"] == {"train": 18, "valid": 5}
    speech = [e.speech for e in written if e.speech is not None]
    assert stats["modalities"]["speech"]["examples"] == len(speech)
    assert stats["modalities"]["speech"]["tokens"] == sum(len(s) for s in speech)
    # A pickled view (DataLoader workers with spawn) reads the same examples.
    again = pickle.loads(pickle.dumps(valid))
    assert_same(again[1], valid[1])


def test_interrupted_write_loses_only_the_shard_in_progress(tmp_path: Path) -> None:
    writer = TokenStoreWriter(tmp_path, shard_size=4, vocab_sizes=VOCAB)
    with pytest.raises(RuntimeError, match="killed"):
        for i in range(100):
            if i == 10:  # the process dies with 2 complete shards and 2 examples queued
                raise RuntimeError("killed")
            writer.add(make_example(i))
    del writer
    store = TokenStore(tmp_path)
    assert [e.id for e in store] == [f"ex{i:04d}" for i in range(8)]

    # Resume: a new writer knows the stored ids, the caller skips them, nothing is doubled.
    with TokenStoreWriter(tmp_path, shard_size=4) as writer:
        assert writer.done_ids == {f"ex{i:04d}" for i in range(8)}
        for i in range(14):
            if f"ex{i:04d}" not in writer:
                writer.add(make_example(i))
        with pytest.raises(TmtError, match="duplicate"):
            writer.add(make_example(3))
    store = TokenStore(tmp_path)
    assert sorted(store.ids) == [f"ex{i:04d}" for i in range(14)]
    assert_same(store[9], make_example(9))


def test_crash_while_writing_a_shard_leaves_no_partial_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = TokenStoreWriter(tmp_path, shard_size=3)
    for i in range(3):
        writer.add(make_example(i))
    real_save = np.save
    calls = {"n": 0}

    def failing_save(file: object, array: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # dies midway through the second shard's files
            raise OSError("disk full")
        real_save(file, array)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        for i in range(3, 6):
            writer.add(make_example(i))
    monkeypatch.undo()
    assert len(TokenStore(tmp_path)) == 3  # the half-written shard is invisible
    with TokenStoreWriter(tmp_path, shard_size=3) as again:
        assert not list(tmp_path.glob(".tmp-*"))  # its leftovers are cleaned
        for i in range(6):
            if f"ex{i:04d}" not in again:
                again.add(make_example(i))
    assert sorted(TokenStore(tmp_path).ids) == [f"ex{i:04d}" for i in range(6)]


def test_writer_rejects_bad_examples_and_mismatched_vocab(tmp_path: Path) -> None:
    writer = TokenStoreWriter(tmp_path, vocab_sizes=VOCAB)
    with pytest.raises(TmtError, match="out of range"):
        writer.add(TokenExample(id="a", speech=torch.tensor([3, 200])))
    with pytest.raises(TmtError, match="no tokens"):
        writer.add(TokenExample(id="b"))
    with pytest.raises(TmtError, match="1-D integer"):
        writer.add(TokenExample(id="c", text=torch.zeros(2, 2, dtype=torch.long)))
    writer.close()
    with pytest.raises(TmtError, match="vocabulary size 8192 differs"):
        TokenStoreWriter(tmp_path, vocab_sizes={"image": 8192})
    with pytest.raises(TmtError, match="not a token store"):
        TokenStore(tmp_path / "nowhere")


def test_concatenated_real_and_pseudo_stores(tmp_path: Path) -> None:
    with TokenStoreWriter(tmp_path / "real", vocab_sizes=VOCAB) as w:
        for i in range(5):
            w.add(make_example(i))
    with TokenStoreWriter(tmp_path / "pseudo", vocab_sizes=VOCAB, prefix="bt") as w:
        for i in range(5, 12):
            w.add(make_example(i, pseudo=True))
    both = TokenStore([tmp_path / "real", tmp_path / "pseudo"])
    assert len(both) == 12
    assert [e.pseudo for e in both] == [False] * 5 + [True] * 7
    assert len(both.filter(pseudo=True)) == 7 and both.stats()["pseudo"] == 7
    assert both.stats()["sources"] == {"real": 5, "pseudo": 7}


def test_bits_report(tmp_path: Path) -> None:
    examples = [make_example(i) for i in range(12)]
    with TokenStoreWriter(tmp_path, vocab_sizes=VOCAB) as w:
        for ex in examples:
            w.add(ex)
    report = bits_report(TokenStore(tmp_path), raw_bits={"image": 64 * 64 * 3 * 8})
    text = [len(e.text) for e in examples if e.text is not None]
    row = report["modalities"]["text"]
    assert row["mean_tokens"] == pytest.approx(np.mean(text))
    assert row["token_bits"] == pytest.approx(np.mean(text) * math.log2(100))
    assert row["raw_bits"] == pytest.approx(np.mean([(10 + i) * 8 for i in range(12)]))
    image = report["modalities"]["image"]
    assert image["token_bits"] == pytest.approx(32 * 6)  # 32 codes x log2(64)
    assert image["compression"] == pytest.approx(64 * 64 * 3 * 8 / (32 * 6))
    assert report["modalities"]["speech"]["raw_bits"] is None  # never recorded
    table = format_bits_report(report)
    assert "512x" in table and "unknown" in table
    with pytest.raises(TmtError, match="speech vocabulary size is unknown"):
        bits_report(TokenStore(_store_without_vocab(tmp_path / "novocab")))


def _store_without_vocab(path: Path) -> Path:
    with TokenStoreWriter(path) as w:
        w.add(TokenExample(id="x", speech=torch.tensor([1, 2, 3])))
    return path


def test_cli_data_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tmt.cli import main

    with TokenStoreWriter(tmp_path / "s", vocab_sizes={"image": 64}) as w:
        for i in range(3):
            w.add(TokenExample(id=str(i), image=torch.arange(32)))
    assert main(["data", "report", str(tmp_path / "s"), "--raw-bits", "image=98304"]) == 0
    out = capsys.readouterr().out
    assert "3 examples" in out and "512x" in out
    assert main(["data", "report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tmt: error:") and "not a token store" in err and "\n" not in err
    assert main(["data", "report", str(tmp_path / "s"), "--raw-bits", "image"]) == 2
    assert "MODALITY=NUMBER" in capsys.readouterr().err
