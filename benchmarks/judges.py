"""CPU speed of the paper's evaluation judges at their real sizes, with random weights (the
cost does not depend on the weights): wav2vec2-large-960h-lv60-self (ASR) and CLIP ViT-L/14.

    OMP_NUM_THREADS=1 python benchmarks/judges.py [--threads 1] [--seconds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0, help="utterance length")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_wav2vec2(args)  # one model in memory at a time
    bench_clip(args)


def bench_wav2vec2(args: argparse.Namespace) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    # facebook/wav2vec2-large-960h-lv60-self's architecture.
    w2v = Wav2Vec2ForCTC(Wav2Vec2Config(
        vocab_size=32, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
        conv_bias=True, feat_extract_activation="gelu")).eval()
    wave = torch.randn(1, int(args.seconds * 16000))
    with torch.inference_mode():
        t = best_of(lambda: w2v(wave).logits.argmax(-1), args.repeats)
    params = sum(p.numel() for p in w2v.parameters()) / 1e6
    print(f"wav2vec2-large-lv60 ({params:.0f}M): {t:.2f} s per {args.seconds:g} s utterance "
          f"({args.seconds / t:.1f}x real time, {args.threads} thread(s))")


def bench_clip(args: argparse.Namespace) -> None:
    from transformers import CLIPConfig, CLIPModel

    # openai/clip-vit-large-patch14's architecture.
    clip = CLIPModel(CLIPConfig(
        text_config={"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                     "num_attention_heads": 12, "projection_dim": 768},
        vision_config={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                       "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
                       "projection_dim": 768},
        projection_dim=768)).eval()
    pixels = torch.randn(1, 3, 224, 224)
    ids = torch.randint(0, 49408, (1, 20))
    with torch.inference_mode():
        t_img = best_of(lambda: clip.get_image_features(pixel_values=pixels), args.repeats)
        t_txt = best_of(lambda: clip.get_text_features(input_ids=ids), args.repeats)
    params = sum(p.numel() for p in clip.parameters()) / 1e6
    print(f"CLIP ViT-L/14 ({params:.0f}M): {t_img:.2f} s per image, {t_txt * 1000:.0f} ms per "
          f"20-token caption ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
