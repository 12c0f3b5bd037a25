"""BERT-style embedding front-end with a modality-type embedding."""

from __future__ import annotations

from typing import final

import torch
from fairseq2.models.transformer import TransformerFrontend
from fairseq2.nn import (
    BatchLayout,
    IncrementalStateBag,
    LearnedPositionEncoder,
    StandardEmbedding,
    StandardLayerNorm,
)
from torch import Tensor, nn

from tmt.modality import Modality
from tmt.vocab import TYPE_IDS


@final
class ModalityEmbeddingFrontend(TransformerFrontend):
    """``LayerNorm(token + position + modality type)`` then dropout, as BERT's embeddings.

    The modality type of each token is looked up from its id (``type_ids``, one entry per
    unified-vocabulary id), so incremental decoding needs no extra input.

    With ``image_grid=(rows, cols)``, image tokens also get ``row + column`` embeddings: the
    i-th image id of a sequence (position i + 1, after BOS or the target tag) is the code of
    grid cell ``(i // cols, i % cols)`` in raster order. Shared learned positions make "which
    column" a period-``cols`` function of the position to learn; the factored table gives it
    directly.
    """

    type_ids: Tensor  # (V,) modality-type id of every unified id

    def __init__(
        self,
        embed: StandardEmbedding,
        pos_encoder: LearnedPositionEncoder,
        type_ids: Tensor,
        num_types: int,
        *,
        layer_norm_eps: float,
        dropout_p: float,
        image_grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        model_dim = embed.embed_dim
        self.embed = embed
        self.pos_encoder = pos_encoder
        self.type_embed = nn.Embedding(num_types, model_dim)
        self.register_buffer("type_ids", type_ids.clone(), persistent=False)
        self.image_grid = image_grid
        if image_grid is not None:
            rows, cols = image_grid
            self.row_embed = nn.Embedding(rows, model_dim)
            self.col_embed = nn.Embedding(cols, model_dim)
        self.layer_norm = StandardLayerNorm(model_dim, bias=True, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout_p) if dropout_p > 0.0 else None

    def forward(
        self,
        seqs: Tensor,
        seqs_layout: BatchLayout,
        *,
        state_bag: IncrementalStateBag | None = None,
    ) -> tuple[Tensor, BatchLayout]:
        types: Tensor = self.type_ids[seqs]  # (N, S)
        x = self.embed(seqs) + self.type_embed(types)  # (N, S, M)
        x = self.pos_encoder(x, seqs_layout, state_bag=state_bag)
        if self.image_grid is not None:
            x = x + self.grid_embeddings(types, seqs_layout, state_bag)
        x = self.layer_norm(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return x, seqs_layout

    def grid_embeddings(
        self, types: Tensor, seqs_layout: BatchLayout, state_bag: IncrementalStateBag | None
    ) -> Tensor:
        """``row + column`` embedding of every image token, zero elsewhere. (N, S, M)"""
        assert self.image_grid is not None
        rows, cols = self.image_grid
        positions = seqs_layout.position_indices  # (N, S), -1 on padding
        if not self.training and state_bag is not None:
            positions = positions + state_bag.step_nr
        cells = positions - 1  # position 0 is BOS or the target tag
        keep = (types == TYPE_IDS[Modality.IMAGE]) & (cells >= 0) & (cells < rows * cols)
        cells = torch.where(keep, cells, 0)
        grid = self.row_embed(cells // cols) + self.col_embed(cells % cols)
        return grid * keep.unsqueeze(-1).to(grid.dtype)


def init_bert_normal(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm; PAD row zero."""
    for sub in module.modules():
        weight = getattr(sub, "weight", None)
        bias = getattr(sub, "bias", None)
        with torch.no_grad():
            if isinstance(sub, (nn.LayerNorm, StandardLayerNorm)):
                if weight is not None:
                    weight.fill_(1.0)
                if bias is not None:
                    bias.zero_()
            elif isinstance(weight, nn.Parameter) and weight.dim() >= 2:
                weight.normal_(0.0, std)
                if isinstance(bias, nn.Parameter):
                    bias.zero_()
            if isinstance(sub, StandardEmbedding) and sub.pad_idx is not None:
                sub.weight[sub.pad_idx].zero_()
            if isinstance(sub, LearnedPositionEncoder):
                sub.weight.normal_(0.0, std)
                sub.weight[0].zero_()  # row 0 is fairseq2's padding position
