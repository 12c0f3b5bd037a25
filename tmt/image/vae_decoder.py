"""The convolutional VAE decoder of diffusers (``diffusers.models.autoencoders.vae.Decoder`` with
``UpDecoderBlock2D`` blocks, group norm, SiLU), written out here with the same parameter names.

Why not import it: ``import diffusers.models.autoencoders.vae`` runs the package's ``__init__``,
which imports every autoencoder and, through them, transformers, scipy and scikit-learn — seconds
of start-up for every ``tmt translate`` that writes an image. The layer graph and state-dict keys
are diffusers', so weights move either way; ``tests/unit/test_image_codec.py`` checks that both
give the same output for the same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6  # diffusers' resnet_eps / norm eps in the VAE decoder


class ResnetBlock(nn.Module):
    """GN → SiLU → conv3×3 → GN → SiLU → conv3×3, plus a (1×1-projected) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=EPS)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=EPS)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class SpatialSelfAttention(nn.Module):
    """Single-head self-attention over the H·W positions of a feature map, with a residual."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = self.group_norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
        q, k, v = (proj(seq).unsqueeze(1) for proj in (self.to_q, self.to_k, self.to_v))
        y = F.scaled_dot_product_attention(q, k, v).squeeze(1)  # (B, H*W, C)
        y = self.to_out[0](y).transpose(1, 2).reshape(b, c, h, w)
        return x + y


class MidBlock(nn.Module):
    """resnet → attention → resnet at the lowest resolution."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        # Created in diffusers' order (resnet, attention, resnet) so that a seeded init matches.
        first = ResnetBlock(channels, channels, groups)
        self.attentions = nn.ModuleList([SpatialSelfAttention(channels, groups)])
        self.resnets = nn.ModuleList([first, ResnetBlock(channels, channels, groups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        return self.resnets[1](self.attentions[0](x))


class Upsample(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpBlock(nn.Module):
    """``num_layers`` resnets, then (except for the last block) a ×2 upsample."""

    def __init__(
        self, in_channels: int, out_channels: int, num_layers: int, groups: int, upsample: bool
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups)
            for i in range(num_layers)
        )
        self.upsamplers = nn.ModuleList([Upsample(out_channels)] if upsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        for upsampler in self.upsamplers:
            x = upsampler(x)
        return x


class VAEDecoder(nn.Module):
    """Latent (B, in_channels, h, w) → (B, out_channels, h·2^(n-1), w·2^(n-1)) for
    ``n = len(block_out_channels)`` (channels listed from high to low resolution, as diffusers)."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        block_out_channels: tuple[int, ...],
        layers_per_block: int,
        norm_num_groups: int,
    ) -> None:
        super().__init__()
        widths = list(reversed(block_out_channels))
        self.conv_in = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.mid_block = MidBlock(widths[0], norm_num_groups)
        self.up_blocks = nn.ModuleList(
            UpBlock(
                widths[max(0, i - 1)],
                width,
                layers_per_block + 1,
                norm_num_groups,
                upsample=i < len(widths) - 1,
            )
            for i, width in enumerate(widths)
        )
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, widths[-1], eps=EPS)
        self.conv_out = nn.Conv2d(widths[-1], out_channels, 3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(latent))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))
