"""Training-only losses that tie the image codes to what the pictures' captions say, and the
perceptual loss through the caption-trained encoder. None of these modules is part of a shipped
codec."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tmt.errors import TmtError
from tmt.image.codec import ImageCodec
from tmt.image.io import to_unit_range
from tmt.image.modules import Block, ConvEncoder
from tmt.precision import bf16_autocast


def conv_encoder(codec: ImageCodec) -> ConvEncoder:
    """The codec's CNN encoder, which the perceptual loss and :func:`trunk_features` need."""
    if not isinstance(codec.encoder, ConvEncoder):
        raise TmtError("the perceptual loss needs the 'cnn' encoder")
    return codec.encoder


def perceptual_loss(
    codec: ImageCodec,
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared difference of the (frozen, caption-trained) CNN encoder's feature maps of the
    reconstruction and of the original, relative to the original's feature energy.

    A perceptual loss with our own caption-trained network in LPIPS's place: pixel losses hardly
    tell a small star from a small hexagon (a few pixels of outline), the caption-trained features
    do, so the decoder must draw the outline and the codes must carry it. ``reference``: the
    original's feature map when already known (:func:`trunk_features`)."""
    encoder = conv_encoder(codec)
    if reference is None:
        with torch.no_grad():
            reference = encoder.feature_map(target)
    features = encoder.feature_map(reconstruction).float()
    reference = reference.float()
    return F.mse_loss(features, reference) / reference.pow(2).mean().clamp_min(1e-6)


@torch.no_grad()
def trunk_features(
    codec: ImageCodec, images: torch.Tensor, bf16: bool = False, batch_size: int = 32
) -> torch.Tensor:
    """uint8 images (N, 3, H, W) → the frozen CNN trunk's feature maps (N, C, side, side), on
    the CPU, computed as a training step would (eval-mode BatchNorm, the same autocast).

    A trainer whose trunk never changes (``--freeze-encoder``, the decoder refit) reads these
    instead of running the trunk on its batch, once for the encoder and once for the perceptual
    reference, on every step: a fifth of a stage-2 step (``benchmarks/image_train_step.py``)."""
    encoder = conv_encoder(codec)
    mode = encoder.trunk.training
    encoder.trunk.eval()
    try:
        with bf16_autocast(bf16, codec.device):
            return torch.cat([
                encoder.feature_map(to_unit_range(images[i : i + batch_size]).to(codec.device)).cpu()
                for i in range(0, len(images), batch_size)
            ])
    finally:
        encoder.trunk.train(mode)


def caption_targets(
    captions: list[str], vocab: list[str] | None = None
) -> tuple[list[str], torch.Tensor]:
    """Word list of ``captions`` (or the given ``vocab``, e.g. the training captions' for
    validation; other words are then left out) and their multi-hot bag-of-words targets (N, V)."""
    if vocab is None:
        vocab = sorted({w for c in captions for w in c.lower().split()})
    index = {w: i for i, w in enumerate(vocab)}
    targets = torch.zeros(len(captions), len(vocab))
    for row, caption in enumerate(captions):
        targets[row, [index[w] for w in caption.lower().split() if w in index]] = 1.0
    return vocab, targets


class CaptionHead(nn.Module):
    """Text alignment (training only, not shipped): predict which caption words occur from the 32
    pre-quantisation vectors, so that the codes must carry what a caption says (SEED aligns its
    Q-Former outputs with captions contrastively; with ~30 caption words a multi-label
    bag-of-words target is the direct form of the same pressure)."""

    def __init__(self, num_queries: int, code_dim: int, vocab_size: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_queries * code_dim, hidden), nn.GELU(), nn.Linear(hidden, vocab_size)
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents.flatten(1))  # (B, V) logits


PAD, BOS, EOS = 0, 1, 2


def caption_sequences(captions: list[str]) -> tuple[list[str], torch.Tensor]:
    """Word list of ``captions`` and their id sequences ``BOS w1 … wn EOS`` padded with PAD (N, T)."""
    vocab = sorted({w for c in captions for w in c.lower().split()})
    index = {w: i + 3 for i, w in enumerate(vocab)}
    rows = [[BOS, *(index[w] for w in c.lower().split()), EOS] for c in captions]
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return ["<pad>", "<s>", "</s>", *vocab], out


class CaptionDecoder(nn.Module):
    """Text alignment by generation (training only, not shipped): a small causal transformer that
    writes the caption while cross-attending to the 32 quantised code vectors. Unlike a bag of
    words it must know which object is which shape, so the codes must carry each object's shape."""

    def __init__(self, code_dim: int, vocab_size: int, dim: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(1, 64, dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(dim, 4, 4, cross_dim=code_dim, causal=True) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, codes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """codes (B, Q, code_dim), tokens (B, T) → mean cross-entropy of tokens[1:] given the rest."""
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        x = self.embed(inputs) + self.pos[:, : inputs.shape[1]]
        for block in self.blocks:
            x = block(x, codes)
        logits = self.out(self.norm(x))  # (B, T-1, V)
        return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD)
