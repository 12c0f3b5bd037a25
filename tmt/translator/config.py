"""Translator architecture: one keyword-only dataclass, named presets as functions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from tmt.errors import TmtError
from tmt.validate import check_fields


@dataclass(kw_only=True)
class TranslatorConfig:
    """A BERT-shaped encoder-decoder (post-LayerNorm, GELU, learned absolute positions)."""

    model_dim: int = 256
    """Width of embeddings and hidden states."""

    num_encoder_layers: int = 4
    num_decoder_layers: int = 4

    num_attn_heads: int = 4
    """Attention heads in every self- and cross-attention."""

    ffn_inner_dim: int = 1024
    """Inner width of the feed-forward networks."""

    max_seq_len: int = 512
    """Learned position table size of each side (BERT: 512)."""

    num_types: int = 3
    """Modality-type embedding rows (text=0, speech=1, image=2)."""

    image_grid: tuple[int, int] | None = None
    """``(rows, cols)`` of the image codec's codes when they are a raster of picture regions
    (tmt-shapes' codec: 8 × 4): image tokens then get learned row and column embeddings as
    well as the shared positions. ``None``: positions only (SEED's global queries)."""

    dropout_p: float = 0.1
    """Dropout on embeddings, attention outputs and FFN outputs (BERT's hidden dropout)."""

    attn_dropout_p: float = 0.1
    """Dropout on attention weights (BERT's attention-probs dropout)."""

    layer_norm_eps: float = 1e-12
    """BERT's LayerNorm epsilon."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranslatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TmtError(f"unknown translator config keys: {', '.join(unknown)}")
        data = dict(data)
        if data.get("image_grid") is not None:
            grid = data["image_grid"]
            if len(grid) != 2 or not all(isinstance(n, int) and n > 0 for n in grid):
                raise TmtError(f"image_grid must be two positive integers [rows, cols], got {grid!r}")
            data["image_grid"] = (grid[0], grid[1])
        config = cls(**data)
        check_fields(config, "translator config")
        for name in ("model_dim", "num_encoder_layers", "num_decoder_layers", "num_attn_heads",
                     "ffn_inner_dim", "max_seq_len", "num_types"):
            if getattr(config, name) < 1:
                raise TmtError(f"translator config: {name} must be at least 1, got {getattr(config, name)}")
        if config.model_dim % config.num_attn_heads:
            raise TmtError(f"translator config: model_dim {config.model_dim} is not a multiple of "
                           f"num_attn_heads {config.num_attn_heads}")
        if not (0 <= config.dropout_p < 1 and 0 <= config.attn_dropout_p < 1):
            raise TmtError("translator config: dropout probabilities must be in [0, 1)")
        return config


def paper() -> TranslatorConfig:
    """The official TMT code's setting: both sides built from the bert-base-uncased config."""
    return TranslatorConfig(
        model_dim=768,
        num_encoder_layers=12,
        num_decoder_layers=12,
        num_attn_heads=12,
        ffn_inner_dim=3072,
        max_seq_len=512,
    )


def tiny() -> TranslatorConfig:
    """A CPU-sized model for the embedded tmt-shapes corpus."""
    return TranslatorConfig(
        model_dim=256,
        num_encoder_layers=4,
        num_decoder_layers=4,
        num_attn_heads=4,
        ffn_inner_dim=1024,
        max_seq_len=512,
    )


PRESETS = {"paper": paper, "tiny": tiny}


def preset(name: str) -> TranslatorConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise TmtError(f"unknown preset {name!r} (expected one of: {', '.join(PRESETS)})") from None
