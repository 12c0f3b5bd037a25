"""Tiny corpora in the exact real formats (COCO + SpokenCOCO, Flickr8k + Flickr8k Audio,
CC3M), plus tiny random codecs, for tests and for the recipes' ``--smoke`` runs.

None of the real corpora can be downloaded on a machine without internet, so every reader is
exercised on these: a few PIL-drawn JPEGs, a few short synthetic wavs (voiced "syllables", no
TTS needed) and the json / txt / tsv files laid out as the real distributions lay them out.

    python -m tmt.data.fixtures --out work/fixtures     # all three corpora + codecs/
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tmt.data.shapes_tts import write_wav

SAMPLE_RATE = 16_000
COLORS = ("red", "blue", "green", "yellow", "purple", "orange")
THINGS = ("dog", "cat", "bus", "bird", "horse", "kite")
PLACES = ("on the grass", "near a road", "in a park", "by the water", "under a tree")


def caption(i: int) -> str:
    """A short, distinct, deterministic English caption."""
    return (f"a {COLORS[i % len(COLORS)]} {THINGS[(i // 2) % len(THINGS)]} "
            f"{PLACES[i % len(PLACES)]}")


def write_image(path: Path, seed: int, size: int = 32) -> Path:
    """A JPEG of a few random coloured boxes and ellipses on a random background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
        x1, y1 = x0 + int(rng.integers(4, size // 2)), y0 + int(rng.integers(4, size // 2))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90)
    return path


def utterance(seed: int, seconds: float = 0.6) -> np.ndarray:
    """Speech-like audio: voiced segments of changing pitch and formants, with pauses."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(0.04 * SAMPLE_RATE), np.float32)]
    while sum(len(p) for p in parts) < seconds * SAMPLE_RATE:
        t = np.arange(int(rng.uniform(0.1, 0.2) * SAMPLE_RATE)) / SAMPLE_RATE
        f0, formant = rng.uniform(100, 220), rng.choice([500.0, 900.0, 1500.0, 2300.0])
        wave = sum(np.exp(-(((h * f0 - formant) / 150.0) ** 2)) * np.sin(2 * np.pi * h * f0 * t) / h
                   for h in range(1, 25))
        parts += [np.asarray(wave, np.float32), np.zeros(int(0.03 * SAMPLE_RATE), np.float32)]
    wave = np.concatenate(parts)[: int(seconds * SAMPLE_RATE)]
    wave += 0.003 * rng.standard_normal(wave.shape).astype(np.float32)
    return (0.9 * wave / np.abs(wave).max()).astype(np.float32)


def write_utterance(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, utterance(seed), SAMPLE_RATE)
    return path


def _karpathy_image(imgid: int, filename: str, split: str, texts: list[str], sentid: int,
                    **extra: object) -> dict:
    sentences = [{"tokens": t.lower().split(), "raw": t, "imgid": imgid, "sentid": sentid + k}
                 for k, t in enumerate(texts)]
    return {**extra, "filename": filename, "imgid": imgid, "split": split,
            "sentids": [s["sentid"] for s in sentences], "sentences": sentences}


#: Karpathy splits of the fixture images (every split name the real files use).
FIXTURE_SPLITS = ("train", "train", "restval", "val", "val", "test")


def write_coco(root: str | Path, *, captions_per_image: int = 2, spoken: bool = True,
               unspoken: int = 0) -> Path:
    """COCO as distributed: ``train2014/``, ``val2014/`` JPEGs, the Karpathy
    ``dataset_coco.json`` and, with ``spoken``, ``SpokenCOCO/`` (``SpokenCOCO_{train,val}.json``
    + ``wavs/{train,val}/0/*.wav``); the last ``unspoken`` images have no spoken captions."""
    root = Path(root)
    images: list[dict] = []
    spoken_entries: dict[str, list[dict]] = {"train": [], "val": []}
    for i, split in enumerate(FIXTURE_SPLITS):
        cocoid = 100 + 7 * i
        folder = "train2014" if split == "train" else "val2014"  # restval/val/test: val2014
        filename = f"COCO_{folder}_{cocoid:012d}.jpg"
        write_image(root / folder / filename, seed=cocoid)
        texts = [caption(i * captions_per_image + k) for k in range(captions_per_image)]
        images.append(_karpathy_image(i, filename, split, [t.capitalize() + "." for t in texts],
                                      i * captions_per_image, filepath=folder, cocoid=cocoid))
        if not spoken or i >= len(FIXTURE_SPLITS) - unspoken:
            continue
        part = folder[:-4]  # train / val
        entry_captions: list[dict[str, str]] = []
        entry = {"image": f"{folder}/{filename}", "captions": entry_captions}
        for k, text in enumerate(texts):
            # as in SpokenCOCO: SPEAKER-HITID_COCOID_CAPTIONID
            speaker = f"m{k:09d}gb9vo0w5xq3"
            uttid = f"{speaker}-3LUY3GC63Z0R9PYEETJGN5HO4UEP{k:02d}_{cocoid}_{i * 50 + k}"
            wav = f"wavs/{part}/0/{uttid}.wav"
            write_utterance(root / "SpokenCOCO" / wav, seed=cocoid * 10 + k)
            # SpokenCOCO's text is the prompt the speaker read, upper-cased.
            entry_captions.append({"text": text.upper(), "speaker": speaker,
                                      "uttid": uttid, "wav": wav})
        spoken_entries[part].append(entry)
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    if spoken:
        for part, entries in spoken_entries.items():
            (root / "SpokenCOCO" / f"SpokenCOCO_{part}.json").write_text(
                json.dumps({"data": entries}))
    return root


def write_flickr8k(root: str | Path, *, captions_per_image: int = 2, audio: bool = True) -> Path:
    """Flickr8k as distributed: ``Flicker8k_Dataset/*.jpg``, ``dataset_flickr8k.json`` and,
    with ``audio``, ``flickr_audio/`` (``wav2capt.txt``, ``wav2spk.txt``, ``wavs/``)."""
    root = Path(root)
    images, wav2capt, wav2spk = [], [], []
    for i, split in enumerate(s for s in FIXTURE_SPLITS if s != "restval"):
        stem = f"{1000268201 + 1111 * i}_{i:02d}b08cb0e"
        write_image(root / "Flicker8k_Dataset" / f"{stem}.jpg", seed=500 + i)
        texts = [caption(3 + i * captions_per_image + k) for k in range(captions_per_image)]
        images.append(_karpathy_image(i, f"{stem}.jpg", split, [t + " ." for t in texts],
                                      i * captions_per_image))
        for k in range(captions_per_image if audio else 0):
            wav = f"{stem}_{k}.wav"
            write_utterance(root / "flickr_audio" / "wavs" / wav, seed=5000 + 10 * i + k)
            wav2capt.append(f"{wav} {stem}.jpg #{k}\n")
            wav2spk.append(f"{wav} {1 + (i + k) % 3}\n")
    (root / "dataset_flickr8k.json").write_text(json.dumps({"images": images,
                                                            "dataset": "flickr8k"}))
    if audio:
        (root / "flickr_audio" / "wav2capt.txt").write_text("".join(wav2capt))
        (root / "flickr_audio" / "wav2spk.txt").write_text("".join(wav2spk))
    return root


def write_cc3m(root: str | Path, *, count: int = 5, img2dataset: bool = False) -> Path:
    """CC3M downloaded locally: ``images/NNNNNN.jpg`` + ``captions.tsv`` (``image``, ``caption``
    header), or with ``img2dataset`` its layout (``00000/000000NNN.jpg`` + ``.txt``)."""
    root = Path(root)
    rows = []
    for i in range(count):
        text = caption(20 + i)
        if img2dataset:
            path = write_image(root / "00000" / f"{i:09d}.jpg", seed=900 + i)
            path.with_suffix(".txt").write_text(text + "\n")
        else:
            write_image(root / "images" / f"{i:06d}.jpg", seed=900 + i)
            rows.append((f"images/{i:06d}.jpg", text))
    if rows:
        with (root / "captions.tsv").open("w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerows([("image", "caption"), *rows])
    return root


def fixture_captions() -> list[str]:
    """Every caption the fixtures use (to train the fixture text codec)."""
    return [caption(i) for i in range(40)]


def write_tiny_codecs(out: str | Path, *, seed: int = 0) -> Path:
    """Random tiny codecs in the real formats: ``out/speech`` (MFCC + k-means K=20, tiny
    unit-to-mel vocoder), ``out/image`` (16 px, 24 codes), ``out/text`` (WordPiece on the
    fixture captions). Untrained: they tokenize deterministically, nothing more."""
    import torch

    from tmt.image.codec import ImageCodec
    from tmt.image.config import ImageCodecConfig
    from tmt.speech import KMeansQuantizer, MfccFeatures, SpeechCodec, SpeechTokenizer
    from tmt.speech.unit_mel import UnitMelConfig, UnitMelModel, UnitMelVocoder
    from tmt.text import TextTokenizer

    out = Path(out)
    torch.manual_seed(seed)
    features = MfccFeatures()
    frames = torch.cat(features.forward_batch([torch.from_numpy(utterance(s)) for s in range(28)]))
    quantizer = KMeansQuantizer.fit(frames, k=20, niter=5, seed=seed)
    vocoder = UnitMelVocoder(UnitMelModel(UnitMelConfig.tiny()))
    SpeechCodec(SpeechTokenizer(features, quantizer), vocoder).save(out / "speech")
    image_config = ImageCodecConfig(
        image_size=16, patch_size=8, vit_dim=16, vit_layers=1, vit_heads=2, qformer_dim=16,
        qformer_layers=1, qformer_heads=2, code_dim=8, codebook_size=24, bridge_dim=16,
        bridge_layers=1, bridge_heads=2, latent_channels=8, decoder_channels=(8, 16),
        decoder_norm_groups=4, pixel_shuffle=2)
    ImageCodec(image_config).save(out / "image")
    TextTokenizer.train(fixture_captions(), vocab_size=200, min_frequency=1).save(out / "text")
    return out


def write_tiny_bundle(out: str | Path, codecs: str | Path, *, name: str = "test",
                      seed: int = 0) -> Path:
    """A random one-layer translator (d=32) over the :func:`write_tiny_codecs` in ``codecs``,
    packed as a bundle in ``out``: loads and translates like a real one, nothing more."""
    import torch

    from tmt.bundle import write_bundle
    from tmt.modality import Modality
    from tmt.text import TextTokenizer
    from tmt.translator.config import TranslatorConfig
    from tmt.translator.model import Translator
    from tmt.vocab import Vocabulary

    codecs = Path(codecs)
    torch.manual_seed(seed)
    text = TextTokenizer.load(codecs / "text")
    vocab = Vocabulary(speech_size=20, image_size=24, text_size=text.vocab_size)
    config = TranslatorConfig(model_dim=32, num_encoder_layers=1, num_decoder_layers=1,
                              num_attn_heads=2, ffn_inner_dim=64, max_seq_len=600)
    write_bundle(out, Translator(config, vocab), {m: codecs / m.value for m in Modality}, name=name)
    return Path(out)


@dataclass(frozen=True)
class FixturePaths:
    coco: Path
    flickr8k: Path
    cc3m: Path
    codecs: Path


def write_all(out: str | Path, *, codecs: bool = True) -> FixturePaths:
    """The three corpora (``out/coco``, ``out/flickr8k``, ``out/cc3m``) and ``out/codecs``;
    parts already written are kept (rerunning is cheap)."""
    out = Path(out)
    paths = FixturePaths(out / "coco", out / "flickr8k", out / "cc3m", out / "codecs")
    if not (paths.coco / "dataset_coco.json").is_file():
        write_coco(paths.coco)
    if not (paths.flickr8k / "dataset_flickr8k.json").is_file():
        write_flickr8k(paths.flickr8k)
    if not (paths.cc3m / "captions.tsv").is_file():
        write_cc3m(paths.cc3m)
    if codecs and not (paths.codecs / "text").is_dir():
        write_tiny_codecs(paths.codecs)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write coco/ flickr8k/ cc3m/ codecs/")
    parser.add_argument("--no-codecs", action="store_true", help="corpora only")
    args = parser.parse_args(argv)
    paths = write_all(args.out, codecs=not args.no_codecs)
    print(f"fixtures in {Path(args.out)}: {', '.join(p.name for p in vars(paths).values())}")


if __name__ == "__main__":
    main()
