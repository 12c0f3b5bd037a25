"""Tokenizer half of the image codec: ViT patch encoder → causal Q-Former → VQ codebook."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tmt.image.config import ImageCodecConfig


class Attention(nn.Module):
    """Multi-head attention (self- or cross-) on ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        causal: bool = False,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``mask``: (T, S) bool, True where a position may attend (cross-attention only)."""
        memory = x if memory is None else memory
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)  # (B, h, T, d/h)
        k, v = self.kv(memory).view(b, memory.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # (B, h, T, d/h)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


def sincos_2d(side: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position code (1, side*side, dim), row-major (MAE). Used to initialise
    the learned position tables: with a tiny random init every position starts out alike and the
    model spends thousands of steps producing position-independent blobs before breaking the tie."""
    quarter = dim // 4
    freqs = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / max(1, quarter)))
    coords = torch.arange(side, dtype=torch.float32)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    parts = []
    for c in (ys.flatten(), xs.flatten()):
        angles = c[:, None] * freqs[None, :]  # (side*side, quarter)
        parts += [angles.sin(), angles.cos()]
    table = torch.cat(parts, dim=1)
    return F.pad(table, (0, dim - table.shape[1])).unsqueeze(0)


def mlp(dim: int, ratio: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, ratio * dim), nn.GELU(), nn.Linear(ratio * dim, dim))


class Block(nn.Module):
    """Pre-LN transformer layer: self-attention (optionally causal), optional cross-attention, MLP."""

    def __init__(
        self, dim: int, heads: int, ratio: int, cross_dim: int | None = None, causal: bool = False
    ) -> None:
        super().__init__()
        self.causal = causal
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.cross: Attention | None = None
        if cross_dim is not None:
            self.norm_x = nn.LayerNorm(dim)
            self.cross = Attention(dim, heads, kv_dim=cross_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = mlp(dim, ratio)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), causal=self.causal)
        if self.cross is not None:
            x = x + self.cross(self.norm_x(x), memory, mask=memory_mask)
        return x + self.mlp(self.norm2(x))


def conv_stages(
    channels: int, widths: tuple[int, ...], activation: type[nn.Module]
) -> tuple[list[nn.Module], int]:
    """Per width a 3×3 conv and a stride-2 3×3 conv, each with BatchNorm and ``activation``
    (BatchNorm, not GroupNorm: a per-image norm would erase an image's flat colours).
    Returns the layers and the output channel count."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [
            nn.Conv2d(channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            activation(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            activation(),
        ]
        channels = width
    return layers, channels


class PatchEncoder(nn.Module):
    """ViT: non-overlapping patches → linear embedding + learned positions → transformer layers."""

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        # Optional conv stem: each stage halves the resolution, so that the patch projection sees
        # local edge/corner features instead of raw pixels at arbitrary offsets in the patch.
        stem, channels = conv_stages(3, cfg.stem_channels, nn.GELU)
        self.stem = nn.Sequential(*stem)
        kernel = cfg.patch_size // 2 ** len(cfg.stem_channels)
        self.patch = nn.Conv2d(channels, cfg.vit_dim, kernel_size=kernel, stride=kernel)
        side = cfg.image_size // cfg.patch_size
        self.pos = nn.Parameter(
            sincos_2d(side, cfg.vit_dim)
        )  # (1, N, vit_dim), learned from sin-cos
        self.blocks = nn.ModuleList(
            Block(cfg.vit_dim, cfg.vit_heads, cfg.mlp_ratio) for _ in range(cfg.vit_layers)
        )
        self.norm = nn.LayerNorm(cfg.vit_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch(self.stem(pixels)).flatten(2).transpose(1, 2) + self.pos  # (B, N, vit_dim)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def with_coordinates(pixels: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C + 2, H, W): x then y, each from -1 to 1 across the picture
    (CoordConv), so that convolutions know where they are."""
    b, _, h, w = pixels.shape
    ys = torch.linspace(-1, 1, h, device=pixels.device).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=pixels.device).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([pixels, xs, ys], dim=1)


class ConvEncoder(nn.Module):
    """Convolutional trunk → its feature map as a sequence (B, side², vit_dim) for the Q-Former.

    Two coordinate channels (x, y) join the RGB input, so where a thing is stays explicit to the
    convolutions. Each stage is a 3×3 conv and a stride-2 3×3 conv with BatchNorm (not a per-image
    norm, which would erase an image's flat colours) and ReLU; a last 3×3 conv at the lowest
    resolution gives a receptive field as wide as a large object. Unlike the small ViT, it learns
    object shape within a few hundred steps of caption supervision (see
    :mod:`tmt.train.codecs.image_semantic`)."""

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        layers, channels = conv_stages(5, cfg.cnn_channels, nn.ReLU)  # RGB + (x, y)
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.channels = channels
        self.proj = nn.Linear(channels, cfg.vit_dim)
        # The raw pixels of each cell, projected beside the trunk's features: the trunk is
        # trained on caption words and then frozen, so exact colours and outlines that no caption
        # names reach the Q-Former this way.
        scale = 2 ** len(cfg.cnn_channels)
        self.pixels = nn.Conv2d(3, cfg.vit_dim, kernel_size=scale, stride=scale)
        side = cfg.image_size // scale
        self.pos = nn.Parameter(sincos_2d(side, cfg.vit_dim))  # (1, side², vit_dim)
        self.norm = nn.LayerNorm(cfg.vit_dim)

    def feature_map(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, H, W) in [-1, 1] → (B, C, side, side) trunk features."""
        return self.trunk(with_coordinates(pixels))

    def forward(self, pixels: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """``features``: the trunk's :meth:`feature_map` of ``pixels`` when already known (a
        frozen trunk's, computed once per image: :func:`tmt.train.codecs.image_alignment.trunk_features`)."""
        if features is None:
            features = self.feature_map(pixels)
        cells = features.flatten(2).transpose(1, 2)  # (B, side², C)
        raw = self.pixels(pixels).flatten(2).transpose(1, 2)  # (B, side², vit_dim)
        return self.norm(self.proj(cells) + raw + self.pos)


class CausalQFormer(nn.Module):
    """32 learned queries with causal self-attention among themselves (query i sees queries ≤ i,
    as in SEED, so the code sequence has a left-to-right order) and cross-attention to the patches."""

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, cfg.num_queries, cfg.qformer_dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(
                cfg.qformer_dim,
                cfg.qformer_heads,
                cfg.mlp_ratio,
                cross_dim=cfg.vit_dim,
                causal=True,
            )
            for _ in range(cfg.qformer_layers)
        )
        self.norm = nn.LayerNorm(cfg.qformer_dim)
        self.regions: torch.Tensor | None
        self.register_buffer("regions", None, persistent=False)
        if cfg.local_queries:
            # query q reads only memory cells [q*k, (q+1)*k) in raster order (k = cells per query)
            k = cfg.num_patches // cfg.num_queries
            cells = torch.arange(cfg.num_patches)
            regions = (cells // k).unsqueeze(0) == torch.arange(cfg.num_queries).unsqueeze(1)
            self.regions = regions  # (Q, N) bool, a buffer: moves with the module

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.queries.expand(patches.shape[0], -1, -1)  # (B, Q, qformer_dim)
        for block in self.blocks:
            x = block(x, patches, self.regions)
        return self.norm(x)


class VectorQuantizer(nn.Module):
    """Cosine-similarity VQ: vectors and codes are L2-normalised (ViT-VQGAN), which keeps far more
    of the codebook in use than raw Euclidean VQ. Straight-through gradients, commitment β."""

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        self.commitment = cfg.commitment
        self.codebook = nn.Parameter(torch.randn(cfg.codebook_size, cfg.code_dim))

    def codes(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1)  # (K, code_dim)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, Q) → normalised code embeddings (B, Q, code_dim)."""
        return F.embedding(ids, self.codes())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, Q, code_dim) → (straight-through quantised z, ids (B, Q), VQ loss)."""
        z = F.normalize(z, dim=-1)
        codes = self.codes()
        ids = (z @ codes.t()).argmax(dim=-1)  # max cosine = min distance on the sphere
        zq = F.embedding(ids, codes)
        loss = F.mse_loss(zq, z.detach()) + self.commitment * F.mse_loss(z, zq.detach())
        return z + (zq - z).detach(), ids, loss

    @torch.no_grad()
    def restart(
        self, dead: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator | None = None
    ) -> int:
        """Re-seed the codes where ``dead`` (bool, (K,)) is true with random rows of ``candidates``
        (recent encoder outputs, (M, code_dim)), plus a little noise. Returns how many were reset."""
        n = int(dead.sum())
        if n == 0 or candidates.numel() == 0:
            return 0
        pick = torch.randint(0, candidates.shape[0], (n,), generator=generator, device="cpu").to(
            candidates.device
        )
        noise = torch.randn(n, candidates.shape[1], generator=generator, device="cpu").to(
            candidates.device
        )
        self.codebook[dead] = F.normalize(candidates[pick], dim=-1) + 0.01 * noise
        return n


class ScalarQuantizer(nn.Module):
    """Finite scalar quantization: each of the ``code_dim`` dimensions is squashed into a bounded
    range and rounded to one of ``fsq_levels[i]`` integers (straight-through). The id is the
    mixed-radix number of the per-dimension levels, so every one of ``prod(levels)`` ids is a grid
    point: no codebook to collapse, no auxiliary loss, no restarts."""

    levels: torch.Tensor
    basis: torch.Tensor

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        levels = torch.tensor(cfg.fsq_levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor([1, *cfg.fsq_levels[:-1]]), dim=0)
        self.register_buffer("levels", levels, persistent=False)
        self.register_buffer("basis", basis, persistent=False)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        """z → values in (-L//2, L//2 - 1 + (L odd)) whose rounding gives L integers."""
        half = (self.levels - 1) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def _scale(self) -> torch.Tensor:
        return torch.div(self.levels, 2, rounding_mode="floor")

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, Q) → grid points scaled to [-1, 1] (B, Q, code_dim)."""
        digits = torch.div(ids.unsqueeze(-1), self.basis, rounding_mode="floor") % self.levels.long()
        return (digits - self._scale()) / self._scale()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, Q, code_dim) → (straight-through grid points, ids (B, Q), zero loss)."""
        bounded = self._bound(z)
        rounded = bounded + (bounded.round() - bounded).detach()
        digits = (bounded.round() + self._scale()).long()  # (B, Q, code_dim) in [0, L)
        ids = (digits * self.basis).sum(-1)
        return rounded / self._scale(), ids, z.new_zeros(())

    def restart(self, *args: object, **kwargs: object) -> int:
        return 0  # an implicit grid has no dead codes to re-seed
