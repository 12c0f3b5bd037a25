"""`tmt tokenize` on the real-format fixtures with tiny random codecs: failures, resume,
sharding, cached speech synthesis for CC3M."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tmt.cli import main
from tmt.data import fixtures
from tmt.data.store import TokenStore
from tmt.data.tokenize import tokenize_dataset


@pytest.fixture(scope="module")
def codecs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixtures.write_tiny_codecs(tmp_path_factory.mktemp("codecs"))


def test_bad_files_are_counted_logged_and_retried(tmp_path: Path, codecs: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    root = fixtures.write_coco(tmp_path / "coco")
    wav = next((root / "SpokenCOCO" / "wavs" / "train").rglob("*.wav"))
    wav.rename(wav.with_suffix(".moved"))  # a missing wav
    image = root / "val2014" / "COCO_val2014_000000000128.jpg"
    good_image = image.read_bytes()
    image.write_bytes(good_image[:40])  # a truncated jpeg: 2 examples use it
    store = tmp_path / "store"
    summary = tokenize_dataset("coco", root, store, codecs_dir=codecs, progress=False)
    assert (summary.examples, summary.written, summary.failed) == (12, 9, 3)
    assert {f[1] for f in summary.failures} == {"speech", "image"}
    assert sum("skipping" in r.message for r in caplog.records) == 3
    listed = (store / "failures-shard.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in listed) == sorted(f[0] for f in summary.failures)
    assert len(TokenStore(store)) == 9

    # Fix the files and rerun: finished examples are skipped, the failed ones retried.
    wav.with_suffix(".moved").rename(wav)
    image.write_bytes(good_image)
    again = tokenize_dataset("coco", root, store, codecs_dir=codecs, progress=False)
    assert (again.examples, again.skipped, again.written, again.failed) == (12, 9, 3, 0)
    assert not (store / "failures-shard.tsv").exists()
    store_ids = TokenStore(store).ids
    assert len(store_ids) == 12 == len(set(store_ids))


def test_shards_split_a_corpus_exactly(tmp_path: Path, codecs: Path) -> None:
    root = fixtures.write_flickr8k(tmp_path / "f8k")
    whole = tokenize_dataset("flickr8k", root, tmp_path / "whole", codecs_dir=codecs,
                             progress=False)
    assert whole.written == 10
    parts = []
    for i in range(3):  # three "machines", each with its own store
        tokenize_dataset("flickr8k", root, tmp_path / f"part{i}", codecs_dir=codecs,
                         shard=f"{i}/3", progress=False)
        parts.append(set(TokenStore(tmp_path / f"part{i}").ids))
    assert sum(len(p) for p in parts) == 10 and set().union(*parts) == set(TokenStore(tmp_path / "whole").ids)
    # ... or all writing into one store: shard names never clash, every id is there once
    for i in (1, 0, 2):
        tokenize_dataset("flickr8k", root, tmp_path / "shared", codecs_dir=codecs,
                         shard=f"{i}/3", progress=False)
    shared = TokenStore(tmp_path / "shared")
    assert sorted(shared.ids) == sorted(TokenStore(tmp_path / "whole").ids)
    index = {e.id: e for e in TokenStore(tmp_path / "whole")}
    for example in shared:  # the same tokens as the unsharded run
        assert np.array_equal(example.speech, index[example.id].speech)
        assert np.array_equal(example.image, index[example.id].image)


class CountingTTS:
    name = "fake:tone"

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def synthesize(self, text: str) -> np.ndarray:
        self.calls += 1
        if text == self.fail_on:
            raise RuntimeError("the voice choked")
        return fixtures.utterance(len(text))


def test_cc3m_speech_is_synthesized_once_and_cached(tmp_path: Path, codecs: Path) -> None:
    root = fixtures.write_cc3m(tmp_path / "cc3m")
    tts = CountingTTS(fail_on=fixtures.caption(22))
    cache = tmp_path / "tts"
    summary = tokenize_dataset("cc3m", root, tmp_path / "a", codecs_dir=codecs, tts=tts,
                               tts_cache=cache, progress=False)
    assert (summary.written, summary.failed, tts.calls) == (4, 1, 5)
    assert summary.failures[0][1:] == ("prepare", "RuntimeError: the voice choked")
    assert summary.media == {"speech": 4, "image": 4, "text": 4}
    assert len(list(cache.rglob("*.wav"))) == 4
    # Another store (or a rerun after losing the store): cached wavs are not synthesized again.
    tts.fail_on = None
    again = tokenize_dataset("cc3m", root, tmp_path / "b", codecs_dir=codecs, tts=tts,
                             tts_cache=cache, progress=False)
    assert (again.written, again.failed, tts.calls) == (5, 0, 6)


def test_cli_tokenizes_with_espeak_and_reader_options(tmp_path: Path, codecs: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    root = fixtures.write_cc3m(tmp_path / "cc3m", count=2)
    store = tmp_path / "store"
    code = main(["tokenize", "cc3m", "--root", str(root), "--out", str(store),
                 "--codecs", str(codecs), "--split", "valid"])
    out, err = capsys.readouterr()
    assert code in (0, None), err
    assert "2 examples: 2 written, 0 already stored, 0 failed" in out
    assert TokenStore(store).split("valid").ids == ["images/000000", "images/000001"]
    assert len(list(Path(f"{store}-tts").rglob("*.wav"))) == 2  # espeak-ng by default

    coco = fixtures.write_coco(tmp_path / "coco")
    spoken = tmp_path / "elsewhere"
    shutil.move(coco / "SpokenCOCO", spoken)
    code = main(["tokenize", "coco", "--root", str(coco), "--out", str(tmp_path / "c"),
                 "--codecs", str(codecs), "--spoken", str(spoken), "--shard", "0/1"])
    out, _ = capsys.readouterr()
    assert "12 written" in out and "speech: 12" in out
    code = main(["tokenize", "flickr8k", "--root", str(coco), "--out", str(tmp_path / "d"),
                 "--spoken", str(spoken)])
    _, err = capsys.readouterr()
    assert code == 2 and "does not take these options (spoken)" in err


def test_speech_units_are_stored_even_when_the_codec_has_unit_bpe(tmp_path: Path, codecs: Path) -> None:
    import shutil

    from tmt.speech.codec import SpeechCodec
    from tmt.speech.unit_bpe import UnitBPE

    root = fixtures.write_flickr8k(tmp_path / "f8k")
    tokenize_dataset("flickr8k", root, tmp_path / "units", codecs_dir=codecs, progress=False)
    units = {e.id: e.speech for e in TokenStore(tmp_path / "units")}
    with_bpe = tmp_path / "codecs"
    shutil.copytree(codecs, with_bpe)
    speech = SpeechCodec.load(with_bpe / "speech")
    speech.with_bpe(UnitBPE.learn(list(units.values()), speech.vocab_size, speech.vocab_size + 8)).save(
        with_bpe / "speech")
    tokenize_dataset("flickr8k", root, tmp_path / "pieces", codecs_dir=with_bpe, progress=False)
    tokenize_dataset("flickr8k", root, tmp_path / "kept", codecs_dir=with_bpe, progress=False,
                     speech_units=True)
    assert TokenStore(tmp_path / "pieces").vocab_sizes["speech"] == speech.vocab_size + 8
    kept = TokenStore(tmp_path / "kept")
    assert kept.vocab_sizes["speech"] == speech.vocab_size
    assert all(np.array_equal(e.speech, units[e.id]) for e in kept) and len(kept) == len(units)
