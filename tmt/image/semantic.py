"""Stage 1 of the image codec (SEED's order): teach the encoder what captions say, before any code.

    python -m tmt.image.semantic --corpus work/shapes-20k --out work/image-encoder --seed 0

SEED starts from a frozen, caption-trained (BLIP-2) ViT; no such network can be downloaded here,
so this stage trains our own. The ``cnn`` encoder's feature map is max- and mean-pooled over the
picture and a small MLP predicts which caption words occur (multi-label bag of words). Pooling
makes what an object looks like the same wherever it lies, so every object of every picture
teaches it; through the Q-Former's attention the same supervision reached object shape only
slowly (``recipes/shapes/README.md``). The head is dropped; the whole codec is saved with this
encoder (Q-Former, codebook and decoder untrained) for ``python -m tmt.image.train --init``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tmt.cli_help import HelpFormatter
from tmt.errors import TmtError
from tmt.image.alignment import caption_targets
from tmt.image.cache import (
    add_image_cache_option,
    cached_images,
    image_cache_dir,
)
from tmt.image.codec import ImageCodec
from tmt.image.config import PRESETS, ImageCodecConfig
from tmt.image.dataset import read_manifest, to_unit_range
from tmt.image.modules import ConvEncoder
from tmt.image.train import (
    TrainOptions,
    add_bf16_option,
    batch_indices,
    bf16_from_args,
    lr_at,
    run_cli,
    save_checkpoint,
)
from tmt.precision import bf16_autocast


class PooledWordHead(nn.Module):
    """Feature map (B, C, s, s) → max- and mean-pooled (B, 2C) → MLP → caption-word logits (B, V)."""

    def __init__(self, channels: int, vocab_size: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * channels, hidden), nn.ReLU(), nn.Linear(hidden, vocab_size)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([features.amax(dim=(2, 3)), features.mean(dim=(2, 3))], dim=1)
        return self.net(pooled)


@torch.inference_mode()
def word_scores(
    encoder: ConvEncoder, head: PooledWordHead, images: torch.Tensor, targets: torch.Tensor
) -> dict[str, float]:
    """Word-level F1 and the share of images whose predicted word set is exactly right."""
    encoder.eval()
    head.eval()
    predicted = torch.cat([
        head(encoder.feature_map(to_unit_range(images[i : i + 128]))) > 0
        for i in range(0, len(images), 128)
    ])
    truth = targets.bool()
    hits = (predicted & truth).sum().item()
    f1 = 2 * hits / max(1, predicted.sum().item() + truth.sum().item())
    exact = (predicted == truth).all(dim=1).float().mean().item()
    return {"word_f1": f1, "exact_sets": exact}


def pretrain(args: argparse.Namespace) -> ImageCodec:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = bf16_from_args(args, "cpu")
    cfg = PRESETS[args.preset]()
    override = json.loads(args.override or "{}")
    cfg = ImageCodecConfig.from_dict({**cfg.to_dict(), "encoder": "cnn", **override})
    if cfg.encoder != "cnn":
        raise TmtError("stage 1 trains the 'cnn' encoder; drop encoder from --override")
    corpus, work = Path(args.corpus), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cache = image_cache_dir(args)
    images = cached_images(corpus, "train", cfg.image_size, cache, args.limit)
    valid = cached_images(corpus, "valid", cfg.image_size, cache, 512)
    records = read_manifest(corpus, ("train",))[: args.limit]
    vocab, targets = caption_targets([r.get("caption", "") for r in records])
    valid_records = read_manifest(corpus, ("valid",))[:512]
    _, valid_targets = caption_targets([r.get("caption", "") for r in valid_records], vocab)

    codec = ImageCodec(cfg)
    encoder = codec.encoder
    assert isinstance(encoder, ConvEncoder)
    head = PooledWordHead(encoder.channels, len(vocab))
    params = [*encoder.trunk.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    opts = TrainOptions(steps=args.steps, lr=args.lr, warmup=args.warmup)
    step, checkpoint = 0, work / "semantic.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        codec.load_state_dict(state["codec"])
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        print(f"resumed from {checkpoint} at step {step}")

    from tqdm import tqdm

    bar = tqdm(
        total=args.steps, initial=step, desc="image encoder (captions)", unit="step", mininterval=10
    )
    start = time.time()
    while step < args.steps:
        encoder.train()
        head.train()
        batch = batch_indices(len(images), args.batch_size, args.seed, step)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, opts)
        with bf16_autocast(bf16, torch.device("cpu")):
            logits = head(encoder.feature_map(to_unit_range(images[batch]))).float()
        loss = F.binary_cross_entropy_with_logits(logits, targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if step % args.eval_every == 0 or step == args.steps:
            figures = word_scores(encoder, head, valid, valid_targets)
            bar.write(f"step {step}: valid " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
            state = {"codec": codec.state_dict(), "head": head.state_dict(),
                     "optimizer": optimizer.state_dict(), "step": step}
            save_checkpoint(state, checkpoint)
    bar.close()
    figures = word_scores(encoder, head, valid, valid_targets)
    codec.config.extra = {
        "stage1": {
            "recipe": "python -m tmt.image.semantic",
            "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "bf16": bf16,
            "train_images": len(images), "train_seconds": round(time.time() - start, 1),
            "valid": {k: round(v, 4) for k, v in figures.items()},
        }
    }
    codec.save(args.out, dtype=torch.float32)
    print(f"saved {args.out}: " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    return codec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tmt.image.semantic",
        description="Stage 1 of the image codec: train the CNN encoder to tell which words a "
        "picture's caption uses; saves a codec to continue with python -m tmt.image.train --init.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--corpus", required=True, help="corpus directory (manifest.jsonl + images)")
    parser.add_argument("--out", required=True, help="where the codec with this encoder is saved")
    parser.add_argument("--work", default="work/image-encoder-train", help="checkpoint and image caches")
    add_image_cache_option(parser)
    add_bf16_option(parser)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--override", default="", help="JSON of config fields for the whole codec")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(pretrain, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
