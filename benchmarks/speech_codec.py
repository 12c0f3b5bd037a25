"""Speech codec speed figures (CPU). Prints, does not assert.

    python benchmarks/speech_codec.py --corpus work/shapes-20k --tokenizer tmt/assets/codecs/speech/tokenizer

1. units per second of speech before / after merging consecutive duplicates (shipped tokenizer);
2. k-means (faiss) fit and assignment time, K=200, on MFCC frames and on 768-d frames;
3. tokenization real-time factor of the paper-size HuBERT-Base config (random weights,
   layer 6, K=200), batched vs one-by-one.
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
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}")
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
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    feats_model = HubertFeatures(HubertModel(HubertConfig()), layer=6)
    sub = waves[: args.hubert_utterances]
    sub_s = sum(len(w) for w in sub) / 16000
    dense = torch.cat(feats_model.forward_batch([torch.from_numpy(w) for w in sub[:4]]))
    quant = KMeansQuantizer(dense[torch.randperm(dense.shape[0])[:200]])
    for batch_size in (1, 8):
        paper = SpeechTokenizer(feats_model, quant, batch_size=batch_size)
        paper.encode_batch(sub[:2])  # warm-up
        t0 = time.perf_counter()
        paper.encode_batch(sub)
        rtf = (time.perf_counter() - t0) / sub_s
        print(f"HuBERT-Base layer 6 (random weights) tokenization, batch {batch_size}: RTF {rtf:.3f} "
              f"({1 / rtf:.1f}x real time) on {sub_s:.0f} s of audio")


if __name__ == "__main__":
    main()
