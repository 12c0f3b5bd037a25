"""COCO/SpokenCOCO, Flickr8k/Flickr8k-Audio and CC3M readers on fixtures in the real formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tmt.data import fixtures
from tmt.data.readers import read_dataset
from tmt.errors import TmtError


def test_coco_pairs_spoken_captions_with_images_and_karpathy_splits(tmp_path: Path) -> None:
    root = fixtures.write_coco(tmp_path / "coco", unspoken=1)
    examples = list(read_dataset("coco", root))
    karpathy = json.loads((root / "dataset_coco.json").read_text())["images"]
    assert len(examples) == 2 * len(karpathy)  # one example per caption
    assert len({e.id for e in examples}) == len(examples)
    # restval joins train, val becomes valid
    expected = {"train": "train", "restval": "train", "val": "valid", "test": "test"}
    by_image = {Path(e.image).name: e.split for e in examples}
    assert by_image == {i["filename"]: expected[i["split"]] for i in karpathy}
    spoken = [e for e in examples if e.speech is not None]
    assert len(spoken) == 10 and all(Path(e.speech).is_file() and e.image.is_file() for e in spoken)
    # the text of a spoken example is what the speaker read (SpokenCOCO's own text)
    entries = {c["uttid"]: (d["image"], c["text"])
               for part in ("train", "val")
               for d in json.loads((root / "SpokenCOCO" / f"SpokenCOCO_{part}.json").read_text())["data"]
               for c in d["captions"]}
    for e in spoken:
        image, text = entries[e.id.split("#")[1]]
        assert (e.text, Path(image).name) == (text, e.image.name)
    # the image SpokenCOCO lacks keeps its written Karpathy captions
    last = karpathy[-1]
    written = [e for e in examples if e.image.name == last["filename"]]
    assert [e.text for e in written] == [s["raw"] for s in last["sentences"]]
    assert all(e.speech is None for e in written)


def test_coco_without_spokencoco_is_image_text_only(tmp_path: Path) -> None:
    root = fixtures.write_coco(tmp_path / "coco", spoken=False)
    examples = list(read_dataset("coco", root))
    assert len(examples) == 12 and all(e.speech is None and e.text for e in examples)
    with pytest.raises(TmtError, match="SpokenCOCO folder not found"):
        list(read_dataset("coco", root, spoken=tmp_path / "nowhere"))


def test_flickr8k_attaches_the_wav_of_caption_k(tmp_path: Path) -> None:
    root = fixtures.write_flickr8k(tmp_path / "f8k")
    examples = list(read_dataset("flickr8k", root))
    karpathy = json.loads((root / "dataset_flickr8k.json").read_text())["images"]
    assert len(examples) == sum(len(i["sentences"]) for i in karpathy) == 10
    for e in examples:
        stem, k = e.id.split("#")
        assert e.speech == root / "flickr_audio" / "wavs" / f"{stem}_{k}.wav"
        assert e.image == root / "Flicker8k_Dataset" / f"{stem}.jpg"
        image = next(i for i in karpathy if i["filename"] == f"{stem}.jpg")
        assert e.text == image["sentences"][int(k)]["raw"]
    assert {e.split for e in examples} == {"train", "valid", "test"}
    # a second recording of a caption is an extra example, not lost
    table = root / "flickr_audio" / "wav2capt.txt"
    first = table.read_text().splitlines()[0].split()
    table.write_text(table.read_text() + f"extra.wav {first[1]} {first[2]}\n")
    again = list(read_dataset("flickr8k", root))
    assert len(again) == 11 and again[1].speech.name == "extra.wav"


def test_flickr8k_rejects_a_malformed_audio_table(tmp_path: Path) -> None:
    root = fixtures.write_flickr8k(tmp_path / "f8k")
    (root / "flickr_audio" / "wav2capt.txt").write_text("a.wav b.jpg 0\n")
    with pytest.raises(TmtError, match=r"wav2capt.txt:1: expected 'WAV IMAGE #K'"):
        list(read_dataset("flickr8k", root))


@pytest.mark.parametrize("layout", ["tsv", "headerless", "img2dataset"])
def test_cc3m_layouts(tmp_path: Path, layout: str) -> None:
    root = fixtures.write_cc3m(tmp_path / "cc", img2dataset=layout == "img2dataset")
    if layout == "headerless":
        table = root / "captions.tsv"
        table.write_text("".join(table.read_text().splitlines(keepends=True)[1:]))
    examples = list(read_dataset("cc3m", root))
    assert [e.text for e in examples] == [fixtures.caption(20 + i) for i in range(5)]
    assert all(e.image.is_file() and e.speech is None and e.split == "train" for e in examples)
    assert {e.source for e in read_dataset("cc12m", root)} == {"cc12m"}


def test_user_mistakes_are_tmt_errors(tmp_path: Path) -> None:
    root = fixtures.write_coco(tmp_path / "coco", spoken=False)
    with pytest.raises(TmtError, match="does not take these options"):
        read_dataset("coco", root, audio=tmp_path)
    (root / "dataset_coco.json").write_text("{not json")
    with pytest.raises(TmtError, match="not valid JSON"):
        list(read_dataset("coco", root))
    with pytest.raises(TmtError, match="coco corpus directory not found"):
        read_dataset("coco", tmp_path / "missing")  # refused before a store is created
    (tmp_path / "empty").mkdir()
    with pytest.raises(TmtError, match="Karpathy split file dataset_coco.json not found"):
        list(read_dataset("coco", tmp_path / "empty"))
    with pytest.raises(TmtError, match="captions file not found"):
        list(read_dataset("cc3m", root, captions=root / "none.tsv"))
