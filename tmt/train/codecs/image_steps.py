"""One step of the image codec's training (stages 2 and 3 share its pieces): the loss (pixels +
VQ + optional caption alignment and perceptual terms), the optimiser, dead-code restarts, and
the validation figures and checkpoints of a run.

Loss = L1 + L2 on pixels + VQ (codebook + 0.25 · commitment). Unused codes are restarted from
recent encoder outputs every ``restart_every`` steps during the first 80 % of training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tmt import compiling
from tmt.errors import TmtError
from tmt.files import save_torch
from tmt.image.codec import CodecOutput, ImageCodec
from tmt.image.io import to_unit_range
from tmt.image.metrics import codebook_usage, psnr
from tmt.image.modules import ConvEncoder, VectorQuantizer
from tmt.precision import bf16_autocast, use_bf16
from tmt.train.codecs.image_alignment import (
    CaptionDecoder,
    CaptionHead,
    perceptual_loss,
)
from tmt.train.distributed import Dist
from tmt.train.schedule import warmup_cosine


@dataclass(kw_only=True)
class TrainOptions:
    """Recipe hyper-parameters (the architecture lives in :class:`ImageCodecConfig`)."""

    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.01
    caption_weight: float = 0.0
    """Weight of the caption alignment loss (0 = off), see :mod:`tmt.image.alignment`."""
    caption_loss: str = "bow"
    """``bow``: multi-label bag of words (:class:`CaptionHead`); ``lm``: the caption generated word
    by word from the codes (:class:`CaptionDecoder`, BLIP-2's image-grounded text generation)."""
    fg_weight: float = 4.0
    """Extra loss weight on foreground (non-background) pixels, see :func:`foreground_weights`."""
    freeze_encoder: bool = False
    """Keep the encoder (the caption-pretrained CNN trunk of :mod:`tmt.image.semantic`) fixed, as
    SEED keeps its pretrained ViT fixed: the Q-Former, the codebook and the decoder learn."""
    perceptual_weight: float = 0.0
    """Weight of :func:`tmt.image.alignment.perceptual_loss` (needs the ``cnn`` encoder; 0 = off)."""
    bf16: bool = False
    """Run the forward passes under bfloat16 autocast (weights, optimiser and the quantiser's
    code choice stay float32); about 1.35x faster on a CPU with AMX/AVX-512 bf16, many times
    slower on one without (``--bf16 auto`` then keeps float32)."""
    compile: bool = False
    """Run the forward and the loss compiled by ``torch.compile`` (:mod:`tmt.compiling`): the same
    step, 1.07-1.13x faster on 2 CPU threads and 1.27-1.32x on 1; the first step compiles."""
    seed: int = 0
    restart_every: int = 100
    checkpoint_every: int = 250
    eval_every: int = 500


def lr_at(step: int, opts: TrainOptions) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    return opts.lr * warmup_cosine(step, warmup=opts.warmup, total=opts.steps, floor=0.05)


def foreground_weights(target: torch.Tensor, weight: float, threshold: float = 0.1) -> torch.Tensor:
    """(B, 1, H, W) per-pixel loss weights: 1 + ``weight`` where a pixel (or its 3×3 neighbour)
    differs from the image's background, estimated as the median colour of its border.

    Small objects cover ~2 % of a tmt-shapes image; unweighted, the loss is all background and the
    decoder learns their colour long before their outline (which tells a star from a cross)."""
    border = torch.cat(
        [target[:, :, 0], target[:, :, -1], target[:, :, :, 0], target[:, :, :, -1]], dim=2
    )
    background = border.median(dim=2).values[:, :, None, None]  # (B, 3, 1, 1)
    mask = ((target - background).abs().amax(dim=1, keepdim=True) > threshold).float()
    mask = F.max_pool2d(mask, 3, stride=1, padding=1)  # include the outline's outer ring
    return 1.0 + weight * mask


def reconstruction_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, fg_weight: float = 0.0
) -> torch.Tensor:
    """Weighted L1 + L2 on pixels, normalised by the mean weight."""
    w = foreground_weights(target, fg_weight) if fg_weight > 0 else torch.ones_like(target[:, :1])
    diff = reconstruction - target
    return ((diff.abs() + diff.pow(2)) * w).mean() / w.mean()


def codec_optimizer(
    params: Sequence[tuple[str, nn.Parameter]], opts: TrainOptions
) -> torch.optim.AdamW:
    """AdamW over named parameters; weight decay on matrices, none on vectors or the codebook."""
    decay = [p for n, p in params if p.dim() >= 2 and "codebook" not in n]
    rest = [p for n, p in params if p.dim() < 2 or "codebook" in n]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": opts.weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ],
        lr=opts.lr,
        betas=(0.9, 0.99),
    )


class Trainer:
    """Holds the model, the optimiser and the restart statistics; one call per step."""

    def __init__(
        self, codec: ImageCodec, opts: TrainOptions, caption_vocab_size: int = 0,
        dist: Dist | None = None,
    ) -> None:
        """``dist``: this process's place in a data-parallel job (torchrun), whose ranks each
        step on their share of the batch and average their gradients (and the statistics of
        BatchNorm layers that train); the main rank re-seeds the dead codes, from the code
        counts of all ranks, and sends the codebook to the others."""
        self.codec, self.opts = codec, opts
        self.dist = dist or Dist.single()
        cfg = codec.config
        self.caption_head: CaptionHead | CaptionDecoder | None = None
        if caption_vocab_size and opts.caption_weight > 0:
            self.caption_head = (
                CaptionDecoder(cfg.code_dim, caption_vocab_size)
                if opts.caption_loss == "lm"
                else CaptionHead(cfg.num_queries, cfg.code_dim, caption_vocab_size)
            )
            self.caption_head.to(codec.device)
        if opts.freeze_encoder:
            self.frozen().requires_grad_(False)
        params = [(n, p) for n, p in codec.named_parameters() if p.requires_grad]
        if self.caption_head is not None:
            params += [(f"caption_head.{n}", p) for n, p in self.caption_head.named_parameters()]
        self.optimizer = codec_optimizer(params, opts)
        self.params = [p for _, p in params]
        # BatchNorm statistics of the layers that train: averaged over the ranks every step
        self.norm_stats = [
            stat for m in codec.modules() if isinstance(m, nn.BatchNorm2d) and m.weight.requires_grad
            for stat in (m.running_mean, m.running_var) if stat is not None
        ]
        self.step = 0
        self.usage = torch.zeros(
            codec.vocab_size, dtype=torch.long
        )  # code counts since last restart
        self.pool: list[torch.Tensor] = []  # recent encoder outputs, candidates for restarts
        self.generator = torch.Generator().manual_seed(opts.seed + 1)
        self.losses = compiling.maybe_compile(self._losses, opts.compile)

    def frozen(self) -> nn.Module:
        """What ``freeze_encoder`` keeps fixed: the CNN encoder's caption-trained trunk (its
        projection and raw-pixel path still learn), or the whole ViT encoder."""
        encoder = self.codec.encoder
        return encoder.trunk if isinstance(encoder, ConvEncoder) else encoder

    def train_step(
        self, batch: torch.Tensor, words: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """batch: (B, 3, H, W) in [-1, 1] on the codec's device; words: the captions as (B, V)
        bag-of-words targets or (B, T) id sequences (see :func:`caption_sequences`); features:
        the frozen trunk's feature maps of ``batch`` (:func:`trunk_features`), with
        ``freeze_encoder`` only."""
        if features is not None and not self.opts.freeze_encoder:
            raise TmtError("cached trunk features need a frozen encoder (freeze_encoder)")
        self.codec.train()
        if self.opts.freeze_encoder:
            self.frozen().eval()  # BatchNorm statistics stay those of the pretrained encoder
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.opts)
        loss, parts, out = self.losses(batch, words, features)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average(p.grad for p in self.params if p.grad is not None)
        torch.nn.utils.clip_grad_norm_(self.codec.parameters(), 1.0)
        self.optimizer.step()
        self.dist.average(self.norm_stats)
        self.step += 1
        self.usage += torch.bincount(out.ids.flatten().cpu(), minlength=self.codec.vocab_size)
        self.pool = [*self.pool[-3:], out.latents.detach().flatten(0, 1)]
        restarted = 0
        if self.step % self.opts.restart_every == 0 and self.step <= 0.8 * self.opts.steps:
            self.dist.sum(self.usage)  # a code is dead when no rank used it
            if self.dist.is_main:
                restarted = self.codec.quantizer.restart(
                    self.usage == 0, torch.cat(self.pool), self.generator
                )
            if isinstance(self.codec.quantizer, VectorQuantizer):
                self.dist.broadcast(self.codec.quantizer.codebook.data)
            self.usage.zero_()
        with torch.no_grad():
            quality = psnr(out.reconstruction, batch).mean().item()
        return {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}, "psnr": quality,
                "restarted": restarted}

    def _losses(
        self, batch: torch.Tensor, words: torch.Tensor | None, features: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], CodecOutput]:
        """The forward and the weighted loss of a step (what ``compile`` compiles), its parts
        (reconstruction, VQ, alignment, perceptual) and the codec's output."""
        with bf16_autocast(self.opts.bf16, batch.device):
            out = self.codec(batch, features)
            rec = reconstruction_loss(out.reconstruction.float(), batch, self.opts.fg_weight)
            loss = rec + out.vq_loss
            perceptual = torch.zeros(())
            if self.opts.perceptual_weight > 0:
                perceptual = perceptual_loss(self.codec, out.reconstruction, batch, features)
                loss = loss + self.opts.perceptual_weight * perceptual
            align = torch.zeros(())
            if self.caption_head is not None and words is not None:
                if isinstance(self.caption_head, CaptionDecoder):
                    # from the quantised codes: what the caption says must survive quantisation
                    align = self.caption_head(out.codes, words)
                else:  # from the pre-quantisation vectors (the shipped codec's stage 2)
                    logits = self.caption_head(out.latents)
                    align = F.binary_cross_entropy_with_logits(logits.float(), words)
                loss = loss + self.opts.caption_weight * align
        return loss, {"rec": rec, "vq": out.vq_loss, "align": align, "perceptual": perceptual}, out

    def state_dict(self) -> dict:
        return {
            "model": self.codec.state_dict(),
            "caption_head": None if self.caption_head is None else self.caption_head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "usage": self.usage,
            "pool": self.pool,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.codec.load_state_dict(state["model"])
        if self.caption_head is not None and state.get("caption_head") is not None:
            self.caption_head.load_state_dict(state["caption_head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.usage, self.pool = state["step"], state["usage"], state["pool"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])


@torch.inference_mode()
def evaluate(codec: ImageCodec, images: torch.Tensor, batch_size: int = 128) -> dict[str, float]:
    """Mean PSNR and codebook usage of ``images`` (uint8 (N, 3, H, W)) through the codec."""
    codec.eval()
    scores, ids = [], []
    for start in range(0, len(images), batch_size):
        batch = to_unit_range(images[start : start + batch_size]).to(codec.device)
        _, batch_ids, _, _ = codec.quantize(batch)
        scores.append(psnr(codec.render(batch_ids), batch).cpu())
        ids.append(batch_ids.cpu())
    usage = codebook_usage(torch.cat(ids), codec.vocab_size)
    return {
        "psnr": torch.cat(scores).mean().item(),
        "perplexity": usage.perplexity,
        "share_used": usage.share_used,
    }


def validate_and_checkpoint(
    step: int,
    opts: TrainOptions,
    codec: ImageCodec,
    valid_images: torch.Tensor,
    write: Callable[[str], object],
    state: Callable[[], dict[str, Any]],
    checkpoint: Path,
    seconds: float,
) -> None:
    """The end of a training step: validation figures every ``eval_every`` steps and a checkpoint
    (``state()`` plus the elapsed ``seconds``) every ``checkpoint_every``, both at the last step."""
    last = step == opts.steps
    if step % opts.eval_every == 0 or last:
        figures = evaluate(codec, valid_images)
        write(f"step {step}: valid " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    if step % opts.checkpoint_every == 0 or last:
        save_checkpoint(state, checkpoint, seconds)


def save_checkpoint(state: Callable[[], dict[str, Any]], checkpoint: Path, seconds: float) -> None:
    """``state()`` plus the elapsed ``seconds``, written atomically to ``checkpoint``."""
    save_torch({**state(), "elapsed": seconds}, checkpoint)


def resolve_precision(
    bf16: str, compile: str | None, device: torch.device | str
) -> tuple[bool, bool]:
    """The ``bf16`` and ``compile`` choices (``auto``, ...) resolved for ``device``, and said on
    stdout (the log names the precision); ``compile=None``: a trainer that never compiles."""
    use = use_bf16(bf16, device)
    print(f"precision: {'bfloat16 autocast' if use else 'float32'} (--bf16 {bf16})")
    if compile is None:
        return use, False
    compiled = compiling.use_compile(compile, device)
    print(f"torch.compile: {'on' if compiled else 'off'} (--compile {compile})")
    return use, compiled


RECIPE = "tmt codec train image"
"""What a stage 2 codec's config records as its recipe (older codecs: ``python -m
tmt.image.train``)."""


def provenance(init_extra: dict[str, Any]) -> dict[str, Any]:
    """What a run started from ``--init`` keeps of that codec's record: stage 1, and every
    earlier stage 2 run in order (``earlier_runs``), so that a continued codec's config says
    how all of it was trained."""
    kept: dict[str, Any] = {k: v for k, v in init_extra.items() if k == "stage1"}
    runs = list(init_extra.get("earlier_runs", []))
    if init_extra.get("recipe") in (RECIPE, "python -m tmt.image.train"):
        runs.append({k: v for k, v in init_extra.items() if k not in ("stage1", "earlier_runs")})
    if runs:
        kept["earlier_runs"] = runs
    return kept
