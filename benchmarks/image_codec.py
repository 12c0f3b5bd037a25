"""Image codec figures: reconstruction PSNR, codebook usage, judge accuracy, encode/decode speed.

    python benchmarks/image_codec.py --codec tmt/assets/codecs/image --corpus work/shapes-20k --split test \
        --judge tmt/assets/judges/image

Prints one figure per line. The judge's attribute accuracy is measured on the originals and on
their reconstructions (32 codes → pixels) against the ground-truth attributes of the manifest.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image

from tmt.image.codec import ImageCodec
from tmt.image.io import tensor_to_image, to_unit_range
from tmt.image.metrics import codebook_usage, psnr
from tmt.train.codecs.image_data import image_records, load_images_uint8


def reconstruct(
    codec: ImageCodec, images: torch.Tensor, batch_size: int = 128
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 3, H, W) → (ids (N, 32), reconstructions in [-1, 1])."""
    ids, recs = [], []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = to_unit_range(images[start : start + batch_size]).to(codec.device)
            batch_ids = codec.quantize(batch)[1]
            ids.append(batch_ids.cpu())
            recs.append(codec.render(batch_ids).cpu())
    return torch.cat(ids), torch.cat(recs)


def shape_by_size(preds: list, refs: list) -> str:
    """Shape accuracy on reconstructions, per reference object size (slot by slot, canonical)."""
    from tmt.data.shapes_world import canonical_record

    hits: dict[str, list[int]] = {}
    for pred, ref in zip(preds, refs, strict=True):
        ref = canonical_record(ref)
        pred_objs = canonical_record(pred)["objects"] if pred is not None else []
        for i, obj in enumerate(ref["objects"]):
            right = i < len(pred_objs) and pred_objs[i]["shape"] == obj["shape"]
            hits.setdefault(obj["size"], []).append(int(right))
    return "judge shape by size (reconstructions): " + ", ".join(
        f"{size} {100 * sum(v) / len(v):.2f}% of {len(v)}" for size, v in sorted(hits.items())
    )


def save_grid(
    originals: list[Image.Image], reconstructions: list[Image.Image], path: Path, n: int = 16
) -> None:
    """Top row originals, bottom row reconstructions, ×2 nearest-neighbour."""
    size = originals[0].size[0]
    grid = Image.new("RGB", (size * n, size * 2), "white")
    for i, (a, b) in enumerate(zip(originals[:n], reconstructions[:n])):
        grid.paste(a, (i * size, 0))
        grid.paste(b, (i * size, size))
    grid.resize((grid.width * 2, grid.height * 2), Image.Resampling.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--codec", default="tmt/assets/codecs/image")
    parser.add_argument("--corpus", default="work/shapes-20k")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="first N images of the split")
    parser.add_argument(
        "--judge", default=None, help="image judge directory (e.g. tmt/assets/judges/image)"
    )
    parser.add_argument(
        "--speed-images", type=int, default=256, help="images timed for encode/decode speed"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--grid", default=None, help="write originals over reconstructions to this PNG"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    codec = ImageCodec.load(args.codec, device=args.device)
    records = image_records(args.corpus, (args.split,))[: args.limit]
    images = load_images_uint8(args.corpus, records, codec.image_size)
    print(
        f"codec {args.codec}: {sum(p.numel() for p in codec.parameters()) / 1e6:.2f} M parameters, codebook {codec.vocab_size}"
    )
    print(f"split {args.split}: {len(records)} images, threads {torch.get_num_threads()}")

    ids, recs = reconstruct(codec, images)
    scores = psnr(recs, to_unit_range(images))
    print(f"PSNR: {scores.mean():.2f} dB (median {scores.median():.2f})")
    usage = codebook_usage(ids, codec.vocab_size)
    print(
        f"codebook: perplexity {usage.perplexity:.1f}, used {usage.used}/{codec.vocab_size} ({100 * usage.share_used:.1f}%)"
    )
    originals = [tensor_to_image(x) for x in to_unit_range(images)]
    reconstructions = [tensor_to_image(x) for x in recs]
    if args.grid:
        save_grid(originals, reconstructions, Path(args.grid))

    if args.judge:
        from tmt.data.shapes_world import attribute_accuracy
        from tmt.eval.image_judge import ImageJudge

        judge = ImageJudge.load(args.judge)
        refs = [r["attributes"] for r in records]
        rec_preds = judge.predict(reconstructions)
        on_orig = attribute_accuracy(judge.predict(originals), refs)
        on_rec = attribute_accuracy(rec_preds, refs)
        for key in on_orig:
            ratio = on_rec[key] / on_orig[key] if on_orig[key] else float("nan")
            print(
                f"judge {key:9s}: originals {100 * on_orig[key]:6.2f}%  reconstructions {100 * on_rec[key]:6.2f}%  ratio {100 * ratio:6.2f}%"
            )

        print(shape_by_size(rec_preds, refs))

    n = min(args.speed_images, len(originals))
    sample = originals[:n]
    codec.encode_ids(sample[:8])  # warm-up
    t = time.perf_counter()
    sample_ids = codec.encode_ids(sample)
    encode_s = time.perf_counter() - t
    codec.decode_batch(sample_ids[:8])
    t = time.perf_counter()
    codec.decode_batch(sample_ids)
    decode_s = time.perf_counter() - t
    print(
        f"speed ({n} images, batch 64): encode {n / encode_s:.0f} images/s, decode {n / decode_s:.0f} images/s"
    )


if __name__ == "__main__":
    main()
