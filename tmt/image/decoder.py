"""Pixel decoder of the image codec: 32 code embeddings → spatial latent → diffusers-style VAE decoder."""

from __future__ import annotations

import torch
from torch import nn

from tmt.image.config import ImageCodecConfig
from tmt.image.modules import Block
from tmt.image.vae_decoder import VAEDecoder


class CodeBridge(nn.Module):
    """Learned latent-position queries and the 32 code embeddings share a bidirectional transformer;
    the queries' outputs become the (C, h, w) latent. This lets every pixel region read any code,
    since the Q-Former is free to put an object's attributes in whichever code it likes."""

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        self.side = cfg.latent_size
        self.code_in = nn.Linear(cfg.code_dim, cfg.bridge_dim)
        self.code_pos = nn.Parameter(torch.randn(1, cfg.num_queries, cfg.bridge_dim) * 0.02)
        self.latent_queries = nn.Parameter(torch.randn(1, self.side**2, cfg.bridge_dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(cfg.bridge_dim, cfg.bridge_heads, cfg.mlp_ratio) for _ in range(cfg.bridge_layers)
        )
        self.norm = nn.LayerNorm(cfg.bridge_dim)
        self.out = nn.Linear(cfg.bridge_dim, cfg.latent_channels)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        b = codes.shape[0]
        n = self.latent_queries.shape[1]
        x = torch.cat(
            [self.latent_queries.expand(b, -1, -1), self.code_in(codes) + self.code_pos], dim=1
        )
        for block in self.blocks:
            x = block(x)  # (B, h*w + Q, bridge_dim)
        latent = self.out(self.norm(x[:, :n]))  # (B, h*w, C)
        return latent.transpose(1, 2).reshape(b, -1, self.side, self.side)  # (B, C, h, w)


class LocalBridge(nn.Module):
    """For ``local_queries``: each code embedding becomes the latent of the cells its query read,
    (B, Q, code_dim) → (B, Q·k, C) in raster order → (B, C, side, side)."""

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        self.side = cfg.latent_size
        self.cells = cfg.num_patches // cfg.num_queries
        self.channels = cfg.latent_channels
        self.out = nn.Linear(cfg.code_dim, self.cells * cfg.latent_channels)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        b = codes.shape[0]
        latent = self.out(codes).reshape(b, -1, self.channels)  # (B, side², C)
        return latent.transpose(1, 2).reshape(b, self.channels, self.side, self.side)


class PixelDecoder(nn.Module):
    """Code embeddings (B, Q, code_dim) → pixels (B, 3, H, W), roughly in [-1, 1]."""

    def __init__(self, cfg: ImageCodecConfig) -> None:
        super().__init__()
        self.bridge: CodeBridge | LocalBridge = (
            LocalBridge(cfg) if cfg.local_queries else CodeBridge(cfg)
        )
        self.vae_decoder = VAEDecoder(
            in_channels=cfg.latent_channels,
            out_channels=3 * cfg.pixel_shuffle**2,
            block_out_channels=cfg.decoder_channels,
            layers_per_block=cfg.decoder_layers_per_block,
            norm_num_groups=cfg.decoder_norm_groups,
        )
        self.shuffle = nn.PixelShuffle(cfg.pixel_shuffle)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.vae_decoder(self.bridge(codes)))  # (B, 3, H, W)
