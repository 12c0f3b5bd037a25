"""The unseen-voice set: held-out voices only, every condition, reproducible, readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tmt.data.shapes import generate_corpus
from tmt.data.shapes_tts import UNSEEN_VOICES
from tmt.data.unseen import read_unseen_set, write_unseen_set
from tmt.errors import TmtError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_corpus(tmp_path_factory.mktemp("unseen") / "c", 40, seed=2, workers=1, progress=False)


def test_rows_voices_and_conditions(corpus: Path, tmp_path: Path) -> None:
    out = write_unseen_set(corpus, tmp_path / "u", split="train", limit=2,
                           conditions=("clean", "white20", "speed1.1"), progress=False)
    rows = read_unseen_set(out)
    clean = [r for r in rows if r["condition"] == "clean"]
    assert len(clean) == 2 * len(UNSEEN_VOICES)  # every caption by every voice
    for condition in ("white20", "speed1.1"):
        chosen = [r for r in rows if r["condition"] == condition]
        assert len(chosen) == 2 and len({r["voice"] for r in chosen}) == 2  # voices take turns
    assert {r["voice"] for r in rows} == set(UNSEEN_VOICES)
    for r in rows:
        assert r["wav"].is_file() and r["image"].is_file()
        source = corpus / "speech" / f"{r['example']}_0.wav"  # the output voice's utterance
        assert r["reference"].read_bytes() == source.read_bytes()
    assert (out / "grammar.jsgf").read_text() == (corpus / "grammar.jsgf").read_text()
    # the corpus never spoke with the held-out voices
    for line in (corpus / "manifest.jsonl").read_text().splitlines():
        assert not {s["voice"] for s in json.loads(line)["speech"]} & set(UNSEEN_VOICES)


def test_rerun_is_byte_identical(corpus: Path, tmp_path: Path) -> None:
    kw = dict(split="train", limit=1, conditions=("babble10", "reverb0.4"), progress=False)
    a = write_unseen_set(corpus, tmp_path / "a", **kw)  # type: ignore[arg-type]
    b = write_unseen_set(corpus, tmp_path / "b", **kw)  # type: ignore[arg-type]
    for wav in sorted((a / "speech").iterdir()):
        assert wav.read_bytes() == (b / "speech" / wav.name).read_bytes()


def test_refuses_voices_the_corpus_trained_on_and_old_corpora(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(TmtError, match="not held out"):
        write_unseen_set(corpus, tmp_path / "x", split="train", limit=1, voices=("flite:kal16",),
                         progress=False)
    old = tmp_path / "old"
    old.mkdir()
    meta = json.loads((corpus / "meta.json").read_text())
    del meta["unseen_voices"]
    (old / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TmtError, match="predates held-out voices"):
        write_unseen_set(old, tmp_path / "y", progress=False)
    with pytest.raises(TmtError, match="unknown condition"):
        write_unseen_set(corpus, tmp_path / "z", conditions=("underwater",), progress=False)
    with pytest.raises(TmtError, match="not an unseen-voice set"):
        read_unseen_set(tmp_path)
