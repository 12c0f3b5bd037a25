"""Architecture of the SEED-style image codec: one keyword-only dataclass, two presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from tmt.errors import TmtError


@dataclass(kw_only=True)
class ImageCodecConfig:
    """Sizes of the image tokenizer (ViT → causal Q-Former → VQ) and of its pixel decoder."""

    image_size: int = 64
    """Side of the square RGB input and output, in pixels."""

    patch_size: int = 8
    """ViT patch side; the encoder sees ``(image_size / patch_size) ** 2`` patches."""

    vit_dim: int = 96
    """Width of the ViT patch encoder."""

    encoder: str = "vit"
    """``vit``: the ViT patch encoder (optionally hybrid, see ``stem_channels``). ``cnn``: a
    convolutional trunk with coordinate channels (:class:`tmt.image.modules.ConvEncoder`) whose
    ``image_size / 2 ** len(cnn_channels)`` square feature map becomes the Q-Former's memory;
    ``patch_size`` and the ``vit_*`` layer settings are then unused, ``vit_dim`` is its width."""

    cnn_channels: tuple[int, ...] = (32, 64, 96)
    """Widths of the ``cnn`` encoder's stages; each stage is a 3×3 conv and a stride-2 3×3 conv."""

    stem_channels: tuple[int, ...] = ()
    """Convolutional stem before the patch projection (a hybrid ViT): per entry a 3×3 conv and a
    stride-2 3×3 conv of that width, each with BatchNorm and GELU, so the patch projection then covers ``patch_size / 2 ** len(stem_channels)`` of
    the stem's pixels. Empty = the plain linear ViT patch projection."""

    vit_layers: int = 2
    """Transformer layers of the ViT patch encoder."""

    vit_heads: int = 4
    """Attention heads of the ViT patch encoder."""

    num_queries: int = 32
    """Learned Q-Former queries = image tokens per image (SEED: 32)."""

    qformer_dim: int = 96
    """Width of the causal Q-Former."""

    qformer_layers: int = 2
    """Q-Former layers (causal self-attention among queries, cross-attention to patches, MLP)."""

    qformer_heads: int = 4
    """Attention heads of the Q-Former."""

    code_dim: int = 32
    """Dimension of the low-dimensional projection the codebook lives in (SEED: 32)."""

    local_queries: bool = False
    """Each query cross-attends only to its own run of ``num_patches / num_queries`` memory cells
    (raster order), and the decoder puts its code back there (:class:`tmt.image.decoder.LocalBridge`):
    32 codes that each describe one region of the picture, like a VQ-VAE's grid, in the causal
    Q-Former's left-to-right order. Global queries (False, SEED) must learn where to look and the
    decoder where to draw; on tmt-shapes that took thousands of steps (recipes/shapes/README.md)."""

    codebook_size: int = 512
    """Number of discrete codes = the image vocabulary size."""

    commitment: float = 0.25
    """β of the VQ commitment loss (straight-through estimator)."""

    quantizer: str = "vq"
    """``vq``: a learned codebook of ``codebook_size`` vectors of ``code_dim`` (cosine VQ with
    commitment loss and dead-code restarts). ``fsq``: finite scalar quantization (Mentzer et al.
    2023): ``code_dim`` bounded scalars, each rounded to one of ``fsq_levels[i]`` values, so the
    codebook is the implicit grid of ``prod(fsq_levels)`` points and cannot collapse."""

    fsq_levels: tuple[int, ...] = ()
    """Levels per dimension for ``quantizer="fsq"``; their product must equal ``codebook_size``
    and their count ``code_dim``."""

    bridge_dim: int = 96
    """Width of the transformer that turns the 32 code embeddings into a spatial latent."""

    bridge_layers: int = 1
    """Layers of that transformer (latent-position queries attend to the code embeddings)."""

    bridge_heads: int = 4
    """Attention heads of that transformer."""

    latent_channels: int = 32
    """Channels of the spatial latent fed to the diffusers VAE ``Decoder``."""

    decoder_channels: tuple[int, ...] = (32, 64)
    """``block_out_channels`` of the diffusers ``Decoder`` (high to low resolution); the latent side
    is ``image_size / pixel_shuffle / 2 ** (len(decoder_channels) - 1)``."""

    pixel_shuffle: int = 4
    """The diffusers ``Decoder`` stops at ``image_size / pixel_shuffle`` and emits
    ``3 * pixel_shuffle ** 2`` channels that a pixel shuffle rearranges into full-size RGB: the
    full-resolution conv stage would cost ~4× the rest of the decoder on a CPU."""

    decoder_layers_per_block: int = 1
    """``layers_per_block`` of the diffusers ``Decoder`` (it uses one more ResNet per up block)."""

    decoder_norm_groups: int = 16
    """GroupNorm groups in the diffusers ``Decoder``; must divide every decoder channel count."""

    mlp_ratio: int = 4
    """Hidden width of every transformer MLP, as a multiple of its model width."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes saved with the config (e.g. training recipe and measured figures)."""

    def __post_init__(self) -> None:
        self.decoder_channels = tuple(int(c) for c in self.decoder_channels)
        self.stem_channels = tuple(int(c) for c in self.stem_channels)
        self.fsq_levels = tuple(int(c) for c in self.fsq_levels)
        self.cnn_channels = tuple(int(c) for c in self.cnn_channels)
        if self.encoder not in ("vit", "cnn"):
            raise TmtError(f"encoder must be 'vit' or 'cnn', got {self.encoder!r}")
        if self.encoder == "cnn" and (
            not self.cnn_channels or self.image_size % 2 ** len(self.cnn_channels)
        ):
            raise TmtError(
                f"cnn_channels {self.cnn_channels} must be non-empty and halve image_size "
                f"{self.image_size} evenly at every stage"
            )
        if self.patch_size % 2 ** len(self.stem_channels):
            raise TmtError(
                f"patch_size {self.patch_size} is not divisible by the stem's downsampling "
                f"{2 ** len(self.stem_channels)}"
            )
        if self.quantizer not in ("vq", "fsq"):
            raise TmtError(f"quantizer must be 'vq' or 'fsq', got {self.quantizer!r}")
        if self.quantizer == "fsq":
            if len(self.fsq_levels) != self.code_dim or min(self.fsq_levels, default=0) < 2:
                raise TmtError(
                    f"fsq needs code_dim ({self.code_dim}) levels >= 2, got {self.fsq_levels}"
                )
            if math.prod(self.fsq_levels) != self.codebook_size:
                raise TmtError(
                    f"fsq levels {self.fsq_levels} make {math.prod(self.fsq_levels)} codes, "
                    f"not codebook_size {self.codebook_size}"
                )
        if self.image_size % self.patch_size:
            raise TmtError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        if self.image_size % self.latent_scale:
            raise TmtError(
                f"image_size {self.image_size} is not divisible by the decoder's upsampling {self.latent_scale}"
            )
        for name in ("vit", "qformer", "bridge"):
            dim, heads = getattr(self, f"{name}_dim"), getattr(self, f"{name}_heads")
            if dim % heads:
                raise TmtError(f"{name}_dim {dim} is not divisible by {name}_heads {heads}")
        if any(c % self.decoder_norm_groups for c in self.decoder_channels):
            raise TmtError(
                f"decoder_norm_groups {self.decoder_norm_groups} must divide {self.decoder_channels}"
            )
        if self.local_queries and (
            self.num_patches % self.num_queries
            or self.latent_size**2 != self.num_patches
        ):
            raise TmtError(
                f"local_queries needs num_patches ({self.num_patches}) divisible by num_queries "
                f"({self.num_queries}) and a decoder latent of the same grid "
                f"({self.latent_size}x{self.latent_size})"
            )
        if self.codebook_size < 2 or self.num_queries < 1:
            raise TmtError("codebook_size must be >= 2 and num_queries >= 1")

    @property
    def num_patches(self) -> int:
        """Length of the Q-Former's memory: ViT patches, or cells of the CNN's feature map."""
        if self.encoder == "cnn":
            return (self.image_size // 2 ** len(self.cnn_channels)) ** 2
        return (self.image_size // self.patch_size) ** 2

    @property
    def latent_scale(self) -> int:
        """Upsampling from latent to pixels: ×2 per diffusers up block but the last, then the shuffle."""
        return 2 ** (len(self.decoder_channels) - 1) * self.pixel_shuffle

    @property
    def latent_size(self) -> int:
        return self.image_size // self.latent_scale

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["decoder_channels"] = list(self.decoder_channels)
        data["stem_channels"] = list(self.stem_channels)
        data["fsq_levels"] = list(self.fsq_levels)
        data["cnn_channels"] = list(self.cnn_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageCodecConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TmtError(f"image codec config has unknown fields: {', '.join(unknown)}")
        return cls(**data)


def tiny() -> ImageCodecConfig:
    """The CPU-trainable default for the 64×64 tmt-shapes images (1.08 M parameters): the
    caption-trained CNN encoder (an 8×8 feature map) and local queries, two cells per code.
    ``ImageCodecConfig()`` alone is the SEED layout at this size (ViT, global queries)."""
    return ImageCodecConfig(encoder="cnn", local_queries=True)


def paper() -> ImageCodecConfig:
    """SEED's scale: 224 px input, ViT-B/14-sized encoder, 12-layer causal Q-Former, 32 codes of
    dimension 32 in a codebook of 8192, and an SD-VAE-sized pixel decoder from a 28×28 latent.

    (SEED itself decodes through unCLIP Stable Diffusion; our decoder is the deterministic
    diffusers VAE ``Decoder`` conditioned on the 32 code embeddings.)
    """
    return ImageCodecConfig(
        image_size=224,
        patch_size=14,
        vit_dim=768,
        vit_layers=12,
        vit_heads=12,
        num_queries=32,
        qformer_dim=768,
        qformer_layers=12,
        qformer_heads=12,
        code_dim=32,
        codebook_size=8192,
        bridge_dim=512,
        bridge_layers=4,
        bridge_heads=8,
        latent_channels=4,
        decoder_channels=(128, 256, 512, 512),
        pixel_shuffle=1,
        decoder_layers_per_block=2,
        decoder_norm_groups=32,
    )


PRESETS = {"tiny": tiny, "paper": paper}
