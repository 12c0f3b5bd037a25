"""ImageNet / Common Voice readers on real-format fixtures, and back-translation into a pseudo
token store (marked, resumable, idempotent, shardable) with a tiny random bundle."""

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from tmt.backtranslate import backtranslate_dataset, backtranslate_examples
from tmt.bundle import Bundle
from tmt.cli import main
from tmt.data.readers import read_dataset
from tmt.data.records import RawExample
from tmt.data.store import TokenStore, TokenStoreWriter
from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.speech.audio import load_audio
from tmt.translator.generate import DecodingOptions

sys.path.insert(0, str(Path(__file__).parent))
from speech_fixtures import utterance  # noqa: E402
from test_bundle import bundle_dir  # noqa: E402,F401  (the tiny random bundle fixture)

GREEDY = DecodingOptions(strategy="greedy", max_speech_len=6, max_text_len=5)
CV_HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
             "down_votes", "age", "gender", "accents", "variant", "locale", "segment"]


def make_imagenet(root: Path) -> list[str]:
    """ILSVRC layout: train/<wnid>/<wnid>_<n>.JPEG, val/<wnid>/ILSVRC2012_val_*.JPEG."""
    rng = np.random.default_rng(0)
    ids = []
    for split, wnid, name in [("train", "n01440764", "n01440764_10026"),
                              ("train", "n01440764", "n01440764_10027"),
                              ("train", "n01443537", "n01443537_2"),
                              ("val", "n01443537", "ILSVRC2012_val_00000001"),
                              ("val", "n01440764", "ILSVRC2012_val_00000002")]:
        folder = root / split / wnid
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (20 + len(ids), 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.JPEG", format="JPEG")
        ids.append(name)
    (root / "train" / "n01440764" / "notes.txt").write_text("not an image")
    return ids


def make_commonvoice(root: Path) -> None:
    """validated.tsv + test.tsv + clips/*.mp3 (48 kHz mono, as Common Voice ships them)."""
    (root / "clips").mkdir(parents=True)
    rows = [("a1", "common_voice_en_1.mp3", 'a small red circle "on" the left'),
            ("b2", "common_voice_en_2.mp3", "a large blue square at the top"),
            ("c3", "common_voice_en_3.mp3", ""),  # no sentence: skipped
            ("d4", "common_voice_en_4.mp3", "a small green star")]
    for k, (_, clip, _) in enumerate(rows):
        wave = utterance(k)  # 16 kHz float32
        up = np.interp(np.arange(len(wave) * 3) / 3, np.arange(len(wave)), wave)
        sf.write(root / "clips" / clip, up.astype(np.float32), 48000, format="MP3")

    def tsv(chosen):
        lines = ["\t".join(CV_HEADER)]
        for client, clip, sentence in chosen:
            lines.append("\t".join([client, clip, "sid", sentence, "", "2", "0", "", "", "", "", "en", ""]))
        return "\n".join(lines) + "\n"

    (root / "validated.tsv").write_text(tsv(rows))
    (root / "test.tsv").write_text(tsv(rows[1:2]))


def store_digest(path: Path) -> str:
    """Hash of every shard file (names and bytes): equal digests = identical stores."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def store_content(path: Path) -> dict:
    return {e.id: (e.source, e.pseudo, *(None if t is None else t.tolist()
                                         for t in (e.speech, e.image, e.text)))
            for e in TokenStore(path)}


# -- readers ---------------------------------------------------------------------------------

def test_imagenet_reader_yields_images_only(tmp_path):
    ids = make_imagenet(tmp_path / "in")
    examples = list(read_dataset("imagenet", tmp_path / "in"))
    assert sorted(e.id for e in examples) == sorted(ids)
    assert {e.id: e.split for e in examples}["ILSVRC2012_val_00000001"] == "valid"
    assert all(e.image.is_file() and e.speech is None and e.text is None for e in examples)
    with pytest.raises(TmtError, match="not an ImageNet"):
        list(read_dataset("imagenet", tmp_path))


def test_commonvoice_reader_and_mp3_clips(tmp_path):
    make_commonvoice(tmp_path / "cv")
    examples = {e.id: e for e in read_dataset("commonvoice", tmp_path / "cv")}
    assert sorted(examples) == ["common_voice_en_1", "common_voice_en_2", "common_voice_en_4"]
    first = examples["common_voice_en_1"]
    assert first.text == 'a small red circle "on" the left' and first.image is None
    assert examples["common_voice_en_2"].split == "test" and first.split == "train"
    # our speech loader reads Common Voice's mp3 (libsndfile) and resamples 48 kHz -> 16 kHz
    wave = load_audio(first.speech)
    assert abs(len(wave) - len(utterance(0))) < 0.05 * len(utterance(0))


# -- back-translation -----------------------------------------------------------------------

def test_imagenet_backtranslation_is_pseudo_and_idempotent(tmp_path, bundle_dir):  # noqa: F811
    ids = make_imagenet(tmp_path / "in")
    out = tmp_path / "store"
    model = bundle_dir / "model"
    summary = backtranslate_dataset("imagenet", tmp_path / "in", model, out, options=GREEDY,
                                    batch_size=2, shard_size=2, progress=False)
    assert (summary.written, summary.failed) == (len(ids), 0)
    assert summary.generated == {"image-text": len(ids), "image-speech": len(ids)}
    store = TokenStore(out)
    bundle = Bundle.load(model)
    for example in store:
        assert example.pseudo and example.source == "imagenet:pseudo-speech+text"
        assert 1 <= len(example.text) <= 5 and 1 <= len(example.speech) <= 6
        real = next(p for p in (tmp_path / "in").rglob(f"{example.id}.JPEG"))
        assert torch.equal(example.image, bundle.encode(Modality.IMAGE, real))
    digest = store_digest(out)
    again = backtranslate_dataset("imagenet", tmp_path / "in", model, out, options=GREEDY,
                                  batch_size=2, shard_size=2, progress=False)
    assert (again.written, again.skipped) == (0, len(ids))
    assert store_digest(out) == digest


def test_interrupted_run_resumes_to_the_same_store(tmp_path, bundle_dir):  # noqa: F811
    make_imagenet(tmp_path / "in")
    bundle = Bundle.load(bundle_dir / "model")
    examples = list(read_dataset("imagenet", tmp_path / "in"))

    def run(out: Path, stream) -> None:
        with TokenStoreWriter(out, shard_size=2**62) as writer:
            backtranslate_examples(stream, bundle, writer, options=GREEDY, batch_size=2,
                                   shard_size=2, progress=False)

    def dies_after(n: int) -> Iterator[RawExample]:
        yield from examples[:n]
        raise KeyboardInterrupt

    run(tmp_path / "straight", examples)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", dies_after(3))
    assert 0 < len(TokenStore(tmp_path / "resumed")) < len(examples)
    run(tmp_path / "resumed", examples)
    assert store_content(tmp_path / "resumed") == store_content(tmp_path / "straight")


def test_commonvoice_shards_cover_every_clip_once(tmp_path, bundle_dir):  # noqa: F811
    make_commonvoice(tmp_path / "cv")
    out = tmp_path / "store"
    for part in ("0/2", "1/2"):
        backtranslate_dataset("commonvoice", tmp_path / "cv", bundle_dir / "model", out,
                              shard=part, options=GREEDY, progress=False)
    content = store_content(out)
    assert sorted(content) == ["common_voice_en_1", "common_voice_en_2", "common_voice_en_4"]
    for source, pseudo, _, image, _ in content.values():
        assert source == "commonvoice:pseudo-image" and pseudo and len(image) == 32
    whole = tmp_path / "whole"
    summary = backtranslate_dataset("commonvoice", tmp_path / "cv", bundle_dir / "model", whole,
                                    options=GREEDY, image_from="speech", progress=False)
    assert summary.generated == {"speech-image": 3}
    assert {k: v[2] for k, v in store_content(whole).items()} == {k: v[2] for k, v in content.items()}


def test_cli_backtranslate_drop_and_ids(tmp_path, bundle_dir, capsys):  # noqa: F811
    make_commonvoice(tmp_path / "cv")
    (tmp_path / "ids.txt").write_text("common_voice_en_1\ncommon_voice_en_4\n")
    code = main(["backtranslate", "commonvoice", "--root", str(tmp_path / "cv"),
                 "--model", str(bundle_dir / "model"), "--out", str(tmp_path / "s"),
                 "--ids", str(tmp_path / "ids.txt"), "--drop", "text", "--strategy", "greedy",
                 "--max-len", "5"])
    assert code in (0, None)
    assert "2 written" in capsys.readouterr().out
    # text dropped: the real speech generates both the image and the caption
    store = TokenStore(tmp_path / "s")
    assert {e.source for e in store} == {"commonvoice:pseudo-image+text"}
    assert main(["backtranslate", "nosuch", "--root", str(tmp_path), "--model",
                 str(bundle_dir / "model"), "--out", str(tmp_path / "x")]) == 2
