"""The speech units: k-means of a speech tokenizer fitted on corpus audio (all voices).

    tmt codec train speech-units --corpus DIR --features mfcc --out tmt/assets/codecs/speech
    tmt codec train speech-units --corpus DIR --features hubert --hubert-dir H --layer 4 --out OUT

Frames are sampled from the train split across every voice, so that the units describe
what is said rather than who says it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tmt.errors import TmtError
from tmt.speech.audio import load_audio
from tmt.speech.features import FeatureExtractor, HubertFeatures, MfccFeatures
from tmt.speech.quantizer import KMeansQuantizer
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.train.codecs.speech_data import read_manifest


def sample_features(
    features: FeatureExtractor, paths: list[Path], frames_per_utt: int = 60, seed: int = 0
) -> torch.Tensor:
    """Features of ``paths`` → (N, D) with at most ``frames_per_utt`` random frames each."""
    gen = torch.Generator().manual_seed(seed)
    rows: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, len(paths), 8):
            waves = [torch.from_numpy(load_audio(p)) for p in paths[start : start + 8]]
            for f in features.forward_batch(waves):
                keep = torch.randperm(f.shape[0], generator=gen)[:frames_per_utt]
                rows.append(f[keep].float().cpu())
    return torch.cat(rows)


def fit_tokenizer(
    corpus: str | Path,
    features: FeatureExtractor,
    *,
    k: int = 200,
    utterances: int = 3000,
    frames_per_utt: int = 60,
    seed: int = 0,
    examples: int | None = None,
    output_voice_only: bool = False,
) -> tuple[SpeechTokenizer, dict[str, float]]:
    """Fit k-means on frames of ``utterances`` random train utterances; returns timings too.

    ``examples`` restricts the draw to the corpus's first N examples (manifest order);
    ``output_voice_only`` to the output voice's utterances (units that describe one voice
    finely, for a unit normalizer to map every other voice onto)."""
    items = read_manifest(corpus)
    if output_voice_only:
        items = [it for it in items if it.is_output_voice]
    if examples is not None:
        first = set(list(dict.fromkeys(it.example_id for it in items))[:examples])
        items = [it for it in items if it.example_id in first]
    items = [it for it in items if it.split == "train"]
    if not items:
        raise TmtError(f"no train utterances to fit on in {corpus}")
    rng = random.Random(seed)
    chosen = rng.sample(items, min(utterances, len(items)))
    t0 = time.perf_counter()
    x = sample_features(features, [it.path for it in chosen], frames_per_utt, seed)
    t1 = time.perf_counter()
    quantizer = KMeansQuantizer.fit(x, k=k, seed=seed, max_frames=None)
    t2 = time.perf_counter()
    stats = {"frames": float(x.shape[0]), "feature_s": t1 - t0, "kmeans_fit_s": t2 - t1}
    return SpeechTokenizer(features, quantizer), stats


@dataclass(kw_only=True)
class SpeechUnitsOptions:
    """A k-means fit of speech units."""

    corpus: Path
    """tmt-shapes corpus directory."""
    out: Path
    """Tokenizer directory to write."""
    features: str = "mfcc"
    """``mfcc``, or ``hubert`` (the layer ``layer`` of the HuBERT in ``hubert_dir``)."""
    hubert_dir: Path | None = None
    """HuBERT directory (HF format, or a ``tmt codec train hubert`` output)."""
    layer: int = 6
    k: int = 200
    """Number of units."""
    utterances: int = 3000
    frames_per_utt: int = 60
    seed: int = 0
    examples: int | None = None
    """Draw only from the corpus's first N examples (the shipped tokenizer: 3994, the corpus
    written so far when it was fitted)."""
    output_voice_only: bool = False
    """Fit on the output voice's utterances only (the teacher units of a unit normalizer)."""
    device: str = "cpu"
    """Torch device the HuBERT features run on (MFCCs are computed on the CPU)."""


def train_speech_units(options: SpeechUnitsOptions) -> SpeechTokenizer:
    """Fit the units as ``options`` say and save the tokenizer to ``options.out``."""
    torch.set_num_threads(1)
    feats: FeatureExtractor
    if options.features == "mfcc":
        feats = MfccFeatures()
    elif options.hubert_dir is None:
        raise TmtError("--features hubert needs --hubert-dir")
    else:
        feats = HubertFeatures.from_pretrained(options.hubert_dir, layer=options.layer).to(options.device)
    tok, stats = fit_tokenizer(
        options.corpus, feats, k=options.k, utterances=options.utterances,
        frames_per_utt=options.frames_per_utt, seed=options.seed, examples=options.examples,
        output_voice_only=options.output_voice_only,
    )
    tok.save(options.out)
    print({k: round(v, 2) for k, v in stats.items()}, "->", options.out)
    return tok
