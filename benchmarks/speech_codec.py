"""Speech codec speed figures (CPU). Prints, does not assert.

    python benchmarks/speech_codec.py --corpus work/shapes-20k --tokenizer tmt/assets/codecs/speech/tokenizer
    python benchmarks/speech_codec.py --hubert-only --threads 2   (part 3 only; no corpus needed)

1. units per second of speech before / after merging consecutive duplicates (shipped tokenizer);
2. k-means (faiss) fit and assignment time, K=200, on MFCC frames and on 768-d frames;
3. tokenization real-time factor of the paper-size HuBERT-Base config (random weights,
   layer 6, K=200), batched vs one-by-one (the corpus's test utterances, or with
   ``--hubert-only`` seeded noise of 1-6 s: the speed does not depend on the sound).
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
import torch

from tmt.speech.audio import load_audio
from tmt.speech.features import HubertFeatures
from tmt.speech.quantizer import KMeansQuantizer, time_fit_and_assign
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.train.codecs.speech_data import read_manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="work/shapes-20k")
    p.add_argument("--tokenizer", default="tmt/assets/codecs/speech/tokenizer")
    p.add_argument("--utterances", type=int, default=200)
    p.add_argument("--hubert-utterances", type=int, default=16)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    p.add_argument("--hubert-only", action="store_true", help="only part 3, on seeded noise")
    p.add_argument("--batch-size", type=int, default=8, help="batch of the batched HuBERT run")
    p.add_argument("--precisions", nargs="+", default=["fp32", "int8"],
                   help="HuBERT weight precisions (tmt.precision.WEIGHT_PRECISIONS)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.hubert_only:
        noise = np.random.default_rng(0)
        waves = [(0.1 * noise.standard_normal(int(16000 * noise.uniform(1, 6)))).astype(np.float32)
                 for _ in range(args.hubert_utterances)]
        bench_hubert(waves, args.batch_size, args.precisions)
        return
    rng = random.Random(0)
    items = rng.sample(read_manifest(args.corpus, ("test",)), args.utterances)
    waves = [load_audio(it.path) for it in items]
    seconds = sum(len(w) for w in waves) / 16000

    # 1. units per second before / after dedup
    tok = SpeechTokenizer.load(args.tokenizer)
    t0 = time.perf_counter()
    encoded = tok.encode_batch_with_durations(waves)
    enc_s = time.perf_counter() - t0
    frames = sum(int(d.sum()) for _, d in encoded)
    units = sum(len(u) for u, _ in encoded)
    print(f"[{args.tokenizer}] {len(waves)} test utterances, {seconds:.0f} s: "
          f"{frames / seconds:.1f} units/s before dedup, {units / seconds:.1f} after "
          f"({100 * units / frames:.0f}% kept); encode RTF {enc_s / seconds:.4f}")

    # 2. k-means fit / assignment
    feats = torch.cat(tok.frame_features(waves)).numpy()
    fit_s, assign_s, _ = time_fit_and_assign(feats, k=200, niter=20)
    print(f"k-means K=200 on {feats.shape[0]}x{feats.shape[1]} frames: fit {fit_s:.2f} s (20 iter), "
          f"assign {assign_s * 1000:.1f} ms ({feats.shape[0] / assign_s / 1e6:.2f} M frames/s)")
    big = np.random.default_rng(0).standard_normal((20000, 768)).astype(np.float32)
    fit_s, assign_s, _ = time_fit_and_assign(big, k=200, niter=20)
    print(f"k-means K=200 on 20000x768 frames (HuBERT-Base size): fit {fit_s:.2f} s, assign {assign_s * 1000:.1f} ms")

    # 3. paper-size HuBERT-Base, layer 6, random weights: batched vs one by one
    bench_hubert(waves[: args.hubert_utterances], args.batch_size, args.precisions)


def bench_hubert(waves: list[np.ndarray], batch: int, precisions: list[str], repeat: int = 2) -> None:
    """Tokenization RTF of HuBERT-Base (random weights, layer 6, K=200) per weight precision,
    one by one and in length-sorted batches, side by side (best of ``repeat``)."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    exact = HubertFeatures(HubertModel(HubertConfig()), layer=6)
    seconds = sum(len(w) for w in waves) / 16000
    dense = torch.cat(exact.forward_batch([torch.from_numpy(w) for w in waves[:4]]))
    quant = KMeansQuantizer(dense[torch.randperm(dense.shape[0])[:200]])
    for precision in precisions:
        feats = exact.at_precision(precision)
        rtfs = {}
        for batch_size in (1, batch):
            tokenizer = SpeechTokenizer(feats, quant, batch_size=batch_size)
            tokenizer.encode_batch(waves[:2])  # warm-up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                tokenizer.encode_batch(waves)
                times.append(time.perf_counter() - t0)
            rtfs[batch_size] = min(times) / seconds
            print(f"HuBERT-Base layer 6 (random weights) tokenization, {precision}, batch "
                  f"{batch_size}: RTF {rtfs[batch_size]:.3f} ({1 / rtfs[batch_size]:.1f}x real time) "
                  f"on {len(waves)} utterances, {seconds:.0f} s of audio")
        print(f"{precision}: batched / one by one {rtfs[1] / rtfs[batch]:.2f}x; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
