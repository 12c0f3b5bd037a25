"""tmt-shapes corpus: layout, reproducibility, splits, caption grammar and parser, CLI errors."""

from __future__ import annotations

import hashlib
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tmt.cli import main as cli_main
from tmt.data.shapes import OUTPUT_VOICE, generate_corpus, read_corpus, read_meta
from tmt.data.shapes_world import (
    HELD_OUT_PAIRS,
    PAIR_TEMPLATES,
    SINGLE_TEMPLATES,
    attribute_accuracy,
    captions,
    compare_records,
    error_kinds,
    exact_by_group,
    exact_by_object_count,
    is_compositional,
    jsgf_grammar,
    parse_caption,
    sample_record,
)
from tmt.errors import TmtError

SIZE = 12


def _hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shapes") / "c"
    return generate_corpus(out, SIZE, seed=3, workers=1, progress=False)


def test_layout(corpus: Path) -> None:
    lines = (corpus / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == SIZE
    meta = read_meta(corpus)
    assert meta["size"] == SIZE and meta["seed"] == 3 and meta["output_voice"] == OUTPUT_VOICE
    assert (corpus / "grammar.jsgf").read_text() == jsgf_grammar()
    for line in lines:
        entry = json.loads(line)
        assert entry["caption"] == entry["captions"][0]
        assert parse_caption(entry["caption"]) == entry["attributes"]
        with Image.open(corpus / entry["image"]) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
        assert len(entry["speech"]) >= 2
        assert entry["speech"][0]["voice"] == OUTPUT_VOICE
        # the input voice comes from the training pool, never from the held-out voices
        engine, _, name = entry["speech"][1]["voice"].partition(":")
        accent, _, variant = name.partition("+")
        pool = meta["input_voices"]
        if engine == "espeak":
            assert accent in pool["espeak_accents"] and variant in pool["espeak_variants"]
        else:
            assert engine == "flite" and name in pool["flite"]
        assert entry["speech"][1]["voice"] not in meta["unseen_voices"]
        for utt in entry["speech"]:
            with wave.open(str(corpus / utt["path"])) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
                assert w.getnframes() > 16000 * 0.8  # a caption lasts about 2-4 s


def test_rerun_is_byte_identical_whatever_the_workers(corpus: Path, tmp_path: Path) -> None:
    again = generate_corpus(tmp_path / "again", SIZE, seed=3, workers=2, progress=False)
    assert _hashes(again) == _hashes(corpus)


def test_other_seed_gives_other_corpus(corpus: Path, tmp_path: Path) -> None:
    other = generate_corpus(tmp_path / "other", 2, seed=4, workers=1, progress=False)
    first = read_corpus(corpus)[:2]
    assert [e.caption for e in read_corpus(other)] != [e.caption for e in first]


def test_read_corpus_splits_and_paths(corpus: Path) -> None:
    everything = read_corpus(corpus)
    assert [e.id for e in everything] == [f"{i:06d}" for i in range(SIZE)]
    by_split = {s: read_corpus(corpus, s) for s in ("train", "valid", "test", "compositional")}
    assert sum(len(v) for v in by_split.values()) == SIZE
    assert all(len(v) >= 1 for v in by_split.values())
    for split, examples in by_split.items():
        for ex in examples:
            assert ex.image.is_absolute() and ex.image.is_file()
            assert all(s.path.is_file() for s in ex.speech)
            assert is_compositional(ex.attributes) == (split == "compositional")
    with pytest.raises(TmtError):
        read_corpus(corpus, "nope")


def test_compositional_pairs_never_sampled_outside_compositional() -> None:
    rng = np.random.default_rng(0)
    seen = {
        (o["colour"], o["shape"])
        for _ in range(3000)
        for o in sample_record(rng, compositional=False)["objects"]
    }
    assert not seen & HELD_OUT_PAIRS
    assert len(seen) == 64 - len(HELD_OUT_PAIRS)  # every other pair does occur
    assert all(is_compositional(sample_record(rng, compositional=True)) for _ in range(200))


def test_parse_caption_round_trip_on_every_template() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        record = sample_record(rng, compositional=False)
        refs = captions(record)
        n_templates = len(SINGLE_TEMPLATES) if len(record["objects"]) == 1 else len(PAIR_TEMPLATES)
        assert len(set(refs)) == n_templates
        for caption in refs:
            parsed = parse_caption(caption)
            assert parsed is not None, caption
            scores = compare_records(parsed, record)
            assert all(c == t for c, t in scores.values()), caption
    assert parse_caption("A Large BLUE star, at the top.") == {
        "objects": [{"size": "large", "colour": "blue", "shape": "star"}],
        "position": "at the top",
    }
    assert parse_caption("a blue star at the top") is None  # no size
    assert parse_caption("") is None


def test_compare_records_scores_each_attribute() -> None:
    ref = {
        "objects": [
            {"size": "small", "colour": "red", "shape": "circle"},
            {"size": "large", "colour": "blue", "shape": "star"},
        ],
        "relation": "above",
    }
    inverse = {"objects": ref["objects"][::-1], "relation": "below"}
    assert attribute_accuracy([inverse], [ref])["exact"] == 1.0
    wrong_colour = json.loads(json.dumps(ref))
    wrong_colour["objects"][1]["colour"] = "green"
    acc = attribute_accuracy([wrong_colour, None], [ref, ref])
    assert acc["colour"] == 1 / 4 and acc["shape"] == 2 / 4 and acc["relation"] == 1 / 2
    assert acc["exact"] == 0.0
    one = {"objects": [ref["objects"][0]], "position": "at the top"}
    by = exact_by_object_count([inverse, wrong_colour, one, None], [ref, ref, one, one])
    assert by == {"1": 0.5, "2": 0.5}
    by_voice = exact_by_group([inverse, wrong_colour, one, None], [ref, ref, one, one],
                              ["flite:slt", "espeak:en", "flite:slt", "flite:slt"])
    assert by_voice == {"espeak:en": 0.0, "flite:slt": 2 / 3}
    assert list(by_voice) == ["espeak:en", "flite:slt"]
    with pytest.raises(ValueError, match="3 groups"):
        exact_by_group([one] * 4, [one] * 4, ["a"] * 3)
    # the blue star on top (its keys in another order: the same object)
    swapped = {"objects": [dict(reversed(ref["objects"][1].items())), ref["objects"][0]],
               "relation": "above"}
    repeated = {"objects": [ref["objects"][0]] * 2, "relation": "above"}
    other_axis = {"objects": ref["objects"], "relation": "to the right of"}
    preds = [inverse, swapped, repeated, other_axis, wrong_colour, one, None]
    kinds = error_kinds(preds, [ref] * 7)
    assert kinds == {"unparsed": 1, "count": 1, "swapped": 1, "repeated object": 1,
                     "relation": 1, "attributes": 1}


def test_cli_size_zero_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["data", "shapes", "--out", str(tmp_path / "x"), "--size", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--size" in err


def test_cli_unwritable_directory_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = cli_main(["data", "shapes", "--out", str(blocker / "corpus"), "--size", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err
