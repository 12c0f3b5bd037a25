"""Stage 1 of the image codec (SEED's order): teach the encoder what captions say, before any code.

    tmt codec train image-semantic --corpus work/shapes-20k --out work/image-encoder --seed 0

SEED starts from a frozen, caption-trained (BLIP-2) ViT; no such network can be downloaded here,
so this stage trains our own. The ``cnn`` encoder's feature map is max- and mean-pooled over the
picture and a small MLP predicts which caption words occur (multi-label bag of words). Pooling
makes what an object looks like the same wherever it lies, so every object of every picture
teaches it; through the Q-Former's attention the same supervision reached object shape only
slowly (``recipes/shapes/README.md``). The head is dropped; the whole codec is saved with this
encoder (Q-Former, codebook and decoder untrained) for ``tmt codec train image --init``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tmt.errors import TmtError
from tmt.files import save_torch
from tmt.image.codec import ImageCodec
from tmt.image.config import PRESETS, ImageCodecConfig
from tmt.image.io import to_unit_range
from tmt.image.modules import ConvEncoder
from tmt.precision import bf16_autocast
from tmt.train.codecs.image_alignment import caption_targets
from tmt.train.codecs.image_data import cached_images, image_records
from tmt.train.codecs.image_steps import resolve_precision
from tmt.train.run_state import StepStop
from tmt.train.sampling import batch_indices
from tmt.train.schedule import warmup_cosine


@dataclass(kw_only=True)
class SemanticOptions:
    """A stage 1 run."""

    corpus: Path
    """Corpus directory (``manifest.jsonl`` + images)."""
    out: Path
    """Where the codec with this encoder is saved."""
    work: Path = Path("work/image-encoder-train")
    """The checkpoint, and the image caches unless ``image_cache`` is given."""
    image_cache: Path | None = None
    """Directory of the decoded-image caches, shareable between runs."""
    bf16: str = "none"
    """``none``, ``bf16`` or ``auto`` (where the CPU computes bfloat16 natively)."""
    preset: str = "tiny"
    """Architecture preset (:data:`tmt.image.config.PRESETS`)."""
    override: dict[str, Any] = field(default_factory=dict)
    """Config fields of the whole codec."""
    steps: int = 800
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 100
    eval_every: int = 100
    """Validation figures and a checkpoint every this many steps (and a checkpoint after the
    current step on SIGTERM or Ctrl-C: a rerun resumes from it)."""
    seed: int = 0
    limit: int | None = None
    """Use only the first N training images."""
    threads: int = 1
    """Torch CPU threads (0: torch's default)."""
    device: str = "cpu"
    """Torch device the encoder trains on (cpu, cuda, cuda:1, ...)."""


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
    device = next(head.parameters()).device
    with torch.no_grad():
        predicted = torch.cat([
            head(encoder.feature_map(to_unit_range(images[i : i + 128].to(device)))).cpu() > 0
            for i in range(0, len(images), 128)
        ])
    truth = targets.bool()
    hits = (predicted & truth).sum().item()
    f1 = 2 * hits / max(1, predicted.sum().item() + truth.sum().item())
    exact = (predicted == truth).all(dim=1).float().mean().item()
    return {"word_f1": f1, "exact_sets": exact}


def train_image_semantic(options: SemanticOptions) -> ImageCodec:
    """Train the CNN encoder on caption words; saves the codec holding it to ``options.out``."""

    torch.manual_seed(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    device = torch.device(options.device)
    bf16, _ = resolve_precision(options.bf16, None, options.device)
    cfg = PRESETS[options.preset]()
    cfg = ImageCodecConfig.from_dict({**cfg.to_dict(), "encoder": "cnn", **options.override})
    if cfg.encoder != "cnn":
        raise TmtError("stage 1 trains the 'cnn' encoder; drop encoder from --override")
    corpus, work = Path(options.corpus), Path(options.work)
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(options.image_cache or work)
    images = cached_images(corpus, "train", cfg.image_size, cache, options.limit)
    valid = cached_images(corpus, "valid", cfg.image_size, cache, 512)
    records = image_records(corpus, ("train",))[: options.limit]
    vocab, targets = caption_targets([r.get("caption", "") for r in records])
    valid_records = image_records(corpus, ("valid",))[:512]
    _, valid_targets = caption_targets([r.get("caption", "") for r in valid_records], vocab)

    codec = ImageCodec(cfg, device=device)
    encoder = codec.encoder
    assert isinstance(encoder, ConvEncoder)
    head = PooledWordHead(encoder.channels, len(vocab)).to(device)
    params = [*encoder.trunk.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=1e-4)
    step, checkpoint = 0, work / "semantic.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        codec.load_state_dict(state["codec"])
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        if "torch_rng" in state:  # (older checkpoints have none)
            torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {checkpoint} at step {step}")

    def save() -> None:
        save_torch({"codec": codec.state_dict(), "head": head.state_dict(),
                    "optimizer": optimizer.state_dict(), "step": step,
                    "torch_rng": torch.get_rng_state()}, checkpoint)

    from tqdm import tqdm

    bar = tqdm(
        total=options.steps, initial=step, desc="image encoder (captions)", unit="step", mininterval=10
    )
    start = time.time()
    with StepStop() as stop:  # SIGTERM / Ctrl-C: checkpoint after the current step
        while step < options.steps and not stop():
            encoder.train()
            head.train()
            batch = batch_indices(len(images), options.batch_size, step, options.seed)
            for group in optimizer.param_groups:
                group["lr"] = options.lr * warmup_cosine(step, warmup=options.warmup,
                                                      total=options.steps, floor=0.05)
            with bf16_autocast(bf16, device):
                logits = head(encoder.feature_map(to_unit_range(images[batch].to(device)))).float()
            loss = F.binary_cross_entropy_with_logits(logits, targets[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            if step % options.eval_every == 0 or step == options.steps:
                figures = word_scores(encoder, head, valid, valid_targets)
                bar.write(f"step {step}: valid " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
                save()
        if stop.stopped:
            bar.close()
            save()
            stop.interrupt(step, checkpoint)
    bar.close()
    figures = word_scores(encoder, head, valid, valid_targets)
    codec.config.extra = {
        "stage1": {
            "recipe": "tmt codec train image-semantic",
            "steps": options.steps, "batch_size": options.batch_size, "lr": options.lr, "seed": options.seed, "bf16": bf16,
            "train_images": len(images), "train_seconds": round(time.time() - start, 1),
            "valid": {k: round(v, 4) for k, v in figures.items()},
        }
    }
    codec.save(options.out, dtype=torch.float32)
    print(f"saved {options.out}: " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    return codec
