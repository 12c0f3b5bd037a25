"""A fast incremental decoder over the translator's own parameters, at a chosen precision.

fairseq2's decoder is the reference; this module computes the same function with less work
per step: plain tensor code per layer, cross-attention keys/values computed once per source,
one preallocated self-attention cache for every layer (reordered with one ``index_select`` per
step), and the output head over the target modality's rows only (``(N, K)`` logits, K = the
modality's ids + EOS, EOS last).

Small-batch decoding is bound by streaming the weights, so precision decides the speed:

- ``fp32``: the model's parameters: the same outputs as the reference (to float32 rounding). On
  a CPU with AVX2 the decoder step's products run through ``tmt.kernels.skinny_linear`` (a
  packed copy of the decoder's weights, read once per step for every beam row); elsewhere the
  parameters are used in place.
- ``int8``: every linear layer's weight quantized per output row to int8 and prepacked for
  fbgemm; activations are quantized per call (dynamic quantization). A quarter of the bytes;
  CPU only.
- ``bf16``: bfloat16 copies of the linear weights; activations cast around each matmul. Fast
  where the device computes bf16 natively (``tmt.precision.native_bf16``), emulated elsewhere.

LayerNorms, softmaxes and the residual stream stay float32 in every precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from fairseq2.models.transformer import (
    StandardFeedForwardNetwork,
    StandardMultiheadAttention,
    StandardTransformerDecoderLayer,
    StandardTransformerEncoderLayer,
)
from torch import Tensor, nn
from torch.nn import functional as F

from tmt.kernels import skinny_linear
from tmt.modality import Modality
from tmt.precision import LinearFn, check_weight_precision, linear_at
from tmt.translator.factory import LMHead
from tmt.translator.frontend import ModalityEmbeddingFrontend
from tmt.translator.model import Translator
from tmt.vocab import EOS, TYPE_IDS


def _linear(module: nn.Module, precision: str, step: bool = False) -> LinearFn:
    """``module``'s product at ``precision``; ``step``: it multiplies a decoder step's few rows,
    where float32 goes through the native kernel if there is one (a packed copy)."""
    bias = getattr(module, "bias", None)
    return _weights_at(module.weight, bias, precision, step)  # type: ignore[arg-type]


def _weights_at(weight: Tensor, bias: Tensor | None, precision: str, step: bool) -> LinearFn:
    if step and precision == "fp32" and (fn := skinny_linear(weight, bias)) is not None:
        return fn
    return linear_at(weight, bias, precision)


@dataclass
class _Attention:
    q: LinearFn
    k: LinearFn
    v: LinearFn
    out: LinearFn

    @classmethod
    def of(cls, attn: nn.Module, precision: str, step: bool, cross: bool = False) -> _Attention:
        """``step``: a decoder layer's (queries, output, and self-attention keys/values see one
        token per row); ``cross``: keys/values over the source, computed once per source."""
        assert isinstance(attn, StandardMultiheadAttention)
        kv_step = step and not cross
        return cls(_linear(attn.q_proj, precision, step), _linear(attn.k_proj, precision, kv_step),
                   _linear(attn.v_proj, precision, kv_step), _linear(attn.output_proj, precision, step))


@dataclass
class _Layer:
    """One post-LayerNorm transformer layer's parts (``cross`` is ``None`` in the encoder)."""

    self_attn: _Attention
    self_norm: nn.Module
    cross: _Attention | None
    cross_norm: nn.Module | None
    ffn_in: LinearFn
    ffn_out: LinearFn
    ffn_norm: nn.Module

    @classmethod
    def of(cls, layer: nn.Module, precision: str) -> _Layer:
        assert isinstance(layer, (StandardTransformerEncoderLayer, StandardTransformerDecoderLayer))
        ffn = layer.ffn
        assert isinstance(ffn, StandardFeedForwardNetwork)
        cross = norm = None
        step = isinstance(layer, StandardTransformerDecoderLayer)
        if isinstance(layer, StandardTransformerDecoderLayer):
            cross = _Attention.of(layer.encoder_decoder_attn, precision, step, cross=True)
            norm = layer.encoder_decoder_attn_layer_norm
        return cls(_Attention.of(layer.self_attn, precision, step), layer.self_attn_layer_norm,
                   cross, norm, _linear(ffn.inner_proj, precision, step),
                   _linear(ffn.output_proj, precision, step), layer.ffn_layer_norm)

    def ffn(self, x: Tensor) -> Tensor:
        return self.ffn_norm(x + self.ffn_out(F.gelu(self.ffn_in(x))))


@dataclass
class Memory:
    """What the decoder reads of a batch of P sources: per layer, cross-attention keys and
    values ``(P, H, S, hd)``, and the ``(P, 1, 1, S)`` additive mask of the source positions
    (0 where real, -inf on padding: cheaper in ``scaled_dot_product_attention`` than a bool)."""

    keys: list[Tensor]
    values: list[Tensor]
    mask: Tensor

    def select(self, prompts: Tensor) -> Memory:
        """Keep the sources ``prompts`` (when some have finished decoding)."""
        return Memory([k.index_select(0, prompts) for k in self.keys],
                      [v.index_select(0, prompts) for v in self.values],
                      self.mask.index_select(0, prompts))


class DecoderState:
    """The self-attention cache of N decoding rows, for every layer in one tensor:
    ``(L, 2, layers, N, M)`` (time-major, so that the first ``t`` steps are contiguous and a
    beam reorder is one ``index_select`` into a second buffer of the same shape)."""

    def __init__(self, memory: Memory, rows: int, max_len: int, num_layers: int,
                 model_dim: int, device: torch.device) -> None:
        self.memory = memory
        self.max_len = max_len
        self.steps = 0  # tokens already in the cache
        self._shape = (max_len, 2, num_layers, rows, model_dim)
        self.cache = torch.empty(self._shape, device=device)
        self._spare = torch.empty_like(self.cache)

    @property
    def rows(self) -> int:
        return self.cache.shape[3]

    def reorder(self, order: Tensor, prompts: Tensor | None = None) -> None:
        """Row i continues from old row ``order[i]``; ``prompts``: the sources still decoding
        (``None``: all of them)."""
        t = self.steps
        if order.numel() != self.rows:  # fewer rows (or the first beam expansion): new buffers
            self.cache = self.cache[:t].index_select(3, order)
            self._shape = (self.max_len, *self.cache.shape[1:])
            grown = torch.empty(self._shape, device=self.cache.device)
            grown[:t] = self.cache
            self.cache, self._spare = grown, torch.empty_like(grown)
        else:
            torch.index_select(self.cache[:t], 3, order, out=self._spare[:t])
            self.cache, self._spare = self._spare, self.cache
        if prompts is not None:
            self.memory = self.memory.select(prompts)


class IncrementalDecoder:
    """The translator's encoder and one-token decoder step, over its own parameters."""

    def __init__(self, translator: Translator, precision: str = "fp32") -> None:
        device = next(translator.parameters()).device
        check_weight_precision(precision, device)
        model = translator.model
        self.translator = translator
        self.precision = precision
        self.device = device
        self.num_heads = translator.config.num_attn_heads
        self.model_dim = translator.config.model_dim
        self.encoder = [_Layer.of(layer, precision) for layer in model.encoder.layers]
        self.decoder = [_Layer.of(layer, precision) for layer in model.decoder.layers]
        head = model.final_proj
        assert isinstance(head, LMHead)
        self.head = head
        self.head_dense = _linear(head.dense, precision, step=True)
        self._rows: dict[Modality, LinearFn] = {}

    # -- encoder ---------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, source: Tensor, lens: list[int]) -> Memory:
        """``(P, S)`` unified source ids → the decoder's cross-attention memory."""
        model = self.translator.model
        positions = torch.arange(source.shape[1], device=source.device)
        valid = positions[None, :] < torch.tensor(lens, device=source.device)[:, None]  # (P, S)
        mask = torch.zeros(valid.shape, device=source.device).masked_fill(~valid, float("-inf"))
        mask = mask[:, None, None, :]  # (P, 1, 1, S): attend to real positions only
        frontend = model.encoder_frontend
        assert isinstance(frontend, ModalityEmbeddingFrontend)
        x = self._embed(frontend, source, positions[None, :].expand_as(source))  # (P, S, M)
        for layer in self.encoder:
            x = layer.self_norm(x + layer.self_attn.out(self._attend(
                layer.self_attn.q(x), layer.self_attn.k(x), layer.self_attn.v(x), mask)))
            x = layer.ffn(x)
        keys, values = [], []
        for layer in self.decoder:
            assert layer.cross is not None
            keys.append(self._heads(layer.cross.k(x)))  # (P, H, S, hd)
            values.append(self._heads(layer.cross.v(x)))
        return Memory(keys, values, mask)

    def _heads(self, x: Tensor) -> Tensor:
        """``(P, S, M)`` → ``(P, H, S, hd)``."""
        p, s, _ = x.shape
        return x.view(p, s, self.num_heads, -1).transpose(1, 2)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Full attention of ``(P, S, M)`` projections → ``(P, S, M)``."""
        out = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v),
                                             attn_mask=mask)
        return out.transpose(1, 2).flatten(2)

    def _embed(self, frontend: ModalityEmbeddingFrontend, ids: Tensor, positions: Tensor) -> Tensor:
        """``LayerNorm(token + type + position [+ grid])`` of ids at 0-based ``positions``
        (fairseq2's position table keeps row 0 for padding, hence ``+ 1``)."""
        types = frontend.type_ids[ids]
        x = (frontend.embed.weight[ids] + frontend.type_embed.weight[types]
             + frontend.pos_encoder.weight[positions + 1])
        if frontend.image_grid is not None:
            rows, cols = frontend.image_grid
            cells = positions - 1  # position 0 is BOS or the target tag
            keep = (types == TYPE_IDS[Modality.IMAGE]) & (cells >= 0) & (cells < rows * cols)
            cells = torch.where(keep, cells, 0)
            grid = frontend.row_embed.weight[cells // cols] + frontend.col_embed.weight[cells % cols]
            x = x + grid * keep.unsqueeze(-1).to(grid.dtype)
        return frontend.layer_norm(x)

    # -- decoder ---------------------------------------------------------------------------

    def start(self, memory: Memory, max_len: int) -> DecoderState:
        """An empty cache for one row per source (beam search widens it on its first step)."""
        rows = memory.mask.shape[0]
        return DecoderState(memory, rows, max_len, len(self.decoder), self.model_dim, self.device)

    @torch.inference_mode()
    def step(self, state: DecoderState, tokens: Tensor, target: Modality) -> Tensor:
        """Feed each row's last token ``(N,)``; returns ``(N, K)`` logits over ``target``'s
        ids, EOS last. Rows are grouped by source: ``N = P x beam`` with P sources in memory."""
        t = state.steps
        frontend = self.translator.model.decoder_frontend
        assert isinstance(frontend, ModalityEmbeddingFrontend)
        positions = torch.full_like(tokens, t)
        x = self._embed(frontend, tokens, positions)  # (N, M)
        n, m = x.shape
        p = state.memory.mask.shape[0]
        h = self.num_heads
        for i, layer in enumerate(self.decoder):
            attn, cross = layer.self_attn, layer.cross
            assert cross is not None and layer.cross_norm is not None
            kv = state.cache[t, :, i]  # (2, N, M)
            kv[0], kv[1] = attn.k(x), attn.v(x)
            past = state.cache[: t + 1, :, i].view(t + 1, 2, n, h, -1).permute(1, 2, 3, 0, 4)
            q = attn.q(x).view(n, h, 1, -1)
            out = F.scaled_dot_product_attention(q, past[0], past[1])  # (N, H, 1, hd)
            x = layer.self_norm(x + attn.out(out.view(n, m)))
            # cross-attention: the beams of a source share its keys, (P, H, beam, hd)
            q = cross.q(x).view(p, n // p, h, -1).transpose(1, 2)
            out = F.scaled_dot_product_attention(q, state.memory.keys[i], state.memory.values[i],
                                                 attn_mask=state.memory.mask)
            x = layer.cross_norm(x + cross.out(out.transpose(1, 2).reshape(n, m)))
            x = layer.ffn(x)
        state.steps = t + 1
        return self._logits(x, target)

    def _logits(self, x: Tensor, target: Modality) -> Tensor:
        """BERT's prediction transform, then ``target``'s output rows and EOS's: ``(N, K)``."""
        x = self.head.layer_norm(F.gelu(self.head_dense(x)))
        if target not in self._rows:
            ids = self.translator.vocab.id_range(target)
            weight, bias = self.head.embed.weight, self.head.bias
            if self.precision == "fp32" and (packed := self._packed_rows(weight, bias, ids)):
                self._rows[target] = packed
            elif self.precision == "fp32":
                # a view of the target's rows; EOS's row alone beside it
                rows = linear_at(weight[ids.start : ids.stop], bias[ids.start : ids.stop], "fp32")
                eos_row = linear_at(weight[EOS : EOS + 1], bias[EOS : EOS + 1], "fp32")
                self._rows[target] = lambda y: torch.cat([rows(y), eos_row(y)], dim=-1)
            else:
                index = torch.cat([torch.arange(ids.start, ids.stop), torch.tensor([EOS])])
                index = index.to(weight.device)
                self._rows[target] = linear_at(weight[index], bias[index], self.precision)
        return self._rows[target](x).float()

    @staticmethod
    def _packed_rows(weight: Tensor, bias: Tensor, ids: range) -> LinearFn | None:
        """The target's rows + EOS's in one native product (a packed copy), where it runs."""
        index = torch.cat([torch.arange(ids.start, ids.stop), torch.tensor([EOS])]).to(weight.device)
        return skinny_linear(weight.detach()[index], bias.detach()[index])


def step_parameters(translator: Translator, target: Modality) -> int:
    """The weights one decoder step reads (whatever the number of rows): every decoder layer's
    but its cross-attention key/value projections (computed once per source), the head's dense
    layer and ``target``'s output rows + EOS. Benchmarks turn it into bytes per step."""
    config = translator.config
    layer = sum(p.numel() for n, p in translator.model.decoder.layers[0].named_parameters()
                if "encoder_decoder_attn.k_proj" not in n and "encoder_decoder_attn.v_proj" not in n)
    return (config.num_decoder_layers * layer + config.model_dim ** 2
            + (translator.vocab.size_of(target) + 1) * config.model_dim)
