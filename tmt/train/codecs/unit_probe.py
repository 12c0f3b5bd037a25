"""The unit probe: compare unit inventories by how much of *what was said* they keep.

    tmt codec train unit-probe --corpus DIR --tokenizer work/tok_a --tokenizer work/tok_b

Two criteria, both on test-split utterances of every voice:

1. PNMI and phone purity (HuBERT paper, sec. 4): frame-level phone labels come from
   PocketSphinx forced alignment of the known caption (its en-us acoustic model and CMU
   dictionary; utterances it cannot align are skipped and counted). PNMI = I(phone; unit) /
   H(phone) over 20 ms frames before deduplication; purity = P(most likely phone | unit).
2. A word probe (a cheap stand-in for "speech→text error at equal training"): a linear probe
reads the deduplicated unit sequence of an utterance as a bag of unit 1-3-grams (TF-IDF)
and predicts, for each caption word, whether the word was spoken (one logistic regression
per word). Trained on train-split utterances of every voice, scored on test-split
utterances of every voice (held-out captions): macro-F1 over words. Units that encode the
speaker instead of the content, or too few distinctions, score low; the figure is
comparable between tokenizers because the probe, data and budget are the same.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tmt.speech.tokenizer import SpeechTokenizer
from tmt.train.codecs.speech_data import SpeechItem, read_manifest


def unit_strings(tokenizer: SpeechTokenizer, items: list[SpeechItem]) -> tuple[list[str], float, float]:
    """Unit sequences as 'u1 u7 ...' strings, plus units/s before and after deduplication."""
    out, frames, units, seconds = [], 0, 0, 0.0
    for start in range(0, len(items), 16):
        chunk = items[start : start + 16]
        for units_i, durs in tokenizer.encode_batch_with_durations([it.path for it in chunk]):
            out.append(" ".join(f"u{int(u)}" for u in units_i))
            frames += int(durs.sum())
            units += len(units_i)
            seconds += int(durs.sum()) * 0.02
    return out, frames / seconds, units / seconds


_PAD = 4000  # 0.25 s of silence around the audio helps the aligner settle


def phone_frames(wave: np.ndarray, text: str) -> np.ndarray | None:
    """Phone label per 10 ms frame of ``wave`` from PocketSphinx forced alignment, or None."""
    from pocketsphinx import Decoder

    padded = np.concatenate([np.zeros(_PAD, np.float32), wave, np.zeros(_PAD, np.float32)])
    pcm = (np.clip(padded, -1, 1) * 32767).astype("<i2").tobytes()
    decoder = Decoder(samprate=16000, loglevel="FATAL", bestpath=False)
    decoder.set_align_text(text)
    try:
        for first in (True, False):  # pass 1: word alignment; pass 2: phones within words
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            if first:
                decoder.set_alignment()
        labels = np.full(len(padded) // 160 + 1, "SIL", dtype=object)
        for word in decoder.get_alignment():
            for phone in word:
                labels[phone.start : phone.start + phone.duration] = phone.name
        return labels
    except RuntimeError:
        return None


def pnmi(tokenizer: SpeechTokenizer, items: list[SpeechItem]) -> dict[str, float]:
    """Phone-normalized mutual information and phone purity of frame-level units."""
    from tmt.speech.audio import load_audio

    pairs: list[tuple[int, str]] = []
    skipped = 0
    for it in items:
        wave = load_audio(it.path)
        labels = phone_frames(wave, it.text)
        if labels is None:
            skipped += 1
            continue
        units = tokenizer.frame_units(wave).tolist()
        for j, u in enumerate(units):
            # centre of unit frame j (20 ms hop, 25 ms window) → 10 ms alignment frame
            k = min(len(labels) - 1, (320 * j + 200 + _PAD) // 160)
            pairs.append((u, labels[k]))
    phones = sorted({p for _, p in pairs})
    joint = np.zeros((tokenizer.vocab_size, len(phones)))
    index = {p: i for i, p in enumerate(phones)}
    for u, p in pairs:
        joint[u, index[p]] += 1
    pj = joint / joint.sum()
    pu, pp = pj.sum(1, keepdims=True), pj.sum(0, keepdims=True)
    nz = pj > 0
    mi = float((pj[nz] * np.log(pj[nz] / (pu @ pp)[nz])).sum())
    h_phone = float(-(pp[pp > 0] * np.log(pp[pp > 0])).sum())
    return {
        "pnmi": mi / h_phone,
        "phone_purity": float(pj.max(1).sum()),
        "aligned_utts": float(len(items) - skipped),
        "skipped_utts": float(skipped),
    }


def probe(
    tokenizer: SpeechTokenizer, train: list[SpeechItem], test: list[SpeechItem]
) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    t0 = time.perf_counter()
    x_train, _, _ = unit_strings(tokenizer, train)
    x_test, fps, ups = unit_strings(tokenizer, test)
    encode_s = time.perf_counter() - t0
    vocab = sorted({w for it in train for w in it.text.split()})
    y_train = np.array([[w in it.text.split() for w in vocab] for it in train])
    y_test = np.array([[w in it.text.split() for w in vocab] for it in test])
    keep = [j for j in range(len(vocab)) if 0.02 < y_train[:, j].mean() < 0.98]
    vec = TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    a_train, a_test = vec.fit_transform(x_train), vec.transform(x_test)
    scores = []
    for j in keep:
        clf = LogisticRegression(C=4.0, max_iter=300).fit(a_train, y_train[:, j])
        scores.append(f1_score(y_test[:, j], clf.predict(a_test), zero_division=0.0))
    return {
        "word_f1": float(np.mean(scores)),
        "words": float(len(keep)),
        "frames_per_s": fps,
        "units_per_s": ups,
        "encode_s": encode_s,
    }


@dataclass(kw_only=True)
class UnitProbeOptions:
    """A comparison of speech tokenizers."""

    corpus: Path
    """tmt-shapes corpus directory."""
    tokenizers: list[Path]
    """The speech tokenizer directories to compare."""
    train_utterances: int = 3000
    test_utterances: int = 600
    pnmi_utterances: int = 300
    seed: int = 0
    device: str = "cpu"
    """Torch device the tokenizers' features run on."""


def probe_units(options: UnitProbeOptions) -> dict[str, dict[str, float]]:
    """PNMI, phone purity and the word probe's F1 of each tokenizer (printed as they come)."""
    import torch

    torch.set_num_threads(1)
    rng = random.Random(options.seed)
    train = read_manifest(options.corpus, ("train",))
    test = read_manifest(options.corpus, ("test",))
    train = rng.sample(train, min(options.train_utterances, len(train)))
    test = rng.sample(test, min(options.test_utterances, len(test)))
    results = {}
    for path in options.tokenizers:
        tokenizer = SpeechTokenizer.load(Path(path), options.device)
        result = pnmi(tokenizer, test[: options.pnmi_utterances]) | probe(tokenizer, train, test)
        print(path, {k: round(v, 4) for k, v in result.items()}, flush=True)
        results[str(path)] = result
    return results
