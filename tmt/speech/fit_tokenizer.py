"""Recipe step: fit the K-means of a speech tokenizer on corpus audio (all voices).

    python -m tmt.speech.fit_tokenizer --corpus DIR --features mfcc --out tokenizers/speech
    python -m tmt.speech.fit_tokenizer --corpus DIR --features hubert --hubert-dir H --layer 4 --out OUT

Frames are sampled from the train split across every voice, so that the units describe
what is said rather than who says it.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from tmt.errors import TmtError
from tmt.speech.audio import load_audio
from tmt.speech.corpus import read_manifest
from tmt.speech.features import FeatureExtractor, HubertFeatures, MfccFeatures
from tmt.speech.quantizer import KMeansQuantizer
from tmt.speech.tokenizer import SpeechTokenizer


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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--features", choices=("mfcc", "hubert"), default="mfcc")
    p.add_argument("--hubert-dir", help="HuBERT directory (HF format, or a tmt pretrain output)")
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--k", type=int, default=200)
    p.add_argument("--utterances", type=int, default=3000)
    p.add_argument("--frames-per-utt", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", type=int, default=None,
                   help="draw only from the corpus's first N examples (the shipped tokenizer: "
                   "3994, the corpus written so far when it was fitted)")
    p.add_argument("--output-voice-only", action="store_true",
                   help="fit on the output voice's utterances only")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    feats: FeatureExtractor
    if args.features == "mfcc":
        feats = MfccFeatures()
    else:
        feats = HubertFeatures.from_pretrained(args.hubert_dir, layer=args.layer)
    tok, stats = fit_tokenizer(
        args.corpus, feats, k=args.k, utterances=args.utterances,
        frames_per_utt=args.frames_per_utt, seed=args.seed, examples=args.examples,
        output_voice_only=args.output_voice_only,
    )
    tok.save(args.out)
    print({k: round(v, 2) for k, v in stats.items()}, "->", args.out)


if __name__ == "__main__":
    main()
