"""Build the translator from fairseq2 building blocks (the ``fairseq2.models.nllb`` pattern)."""

from __future__ import annotations

from typing import final

import torch
from fairseq2.gang import create_fake_gangs
from fairseq2.models.transformer import (
    StandardFeedForwardNetwork,
    StandardMultiheadAttention,
    StandardTransformerDecoder,
    StandardTransformerDecoderLayer,
    StandardTransformerEncoder,
    StandardTransformerEncoderLayer,
    TransformerModel,
    TransformerNormOrder,
    create_default_sdpa,
)
from fairseq2.models.transformer.attention_bias import CausalAttentionBias, IdentityBias
from fairseq2.nn import (
    LearnedPositionEncoder,
    Linear,
    Projection,
    StandardEmbedding,
    StandardLayerNorm,
)
from torch import Tensor, nn
from torch.nn import functional as F

from tmt.translator.config import TranslatorConfig
from tmt.translator.frontend import ModalityEmbeddingFrontend, init_bert_normal
from tmt.vocab import PAD, Vocabulary


@final
class LMHead(Projection):
    """BERT's prediction head: dense → GELU → LayerNorm → tied output embedding + bias."""

    def __init__(self, embed: StandardEmbedding, layer_norm_eps: float) -> None:
        model_dim, vocab_size = embed.embed_dim, embed.num_embeddings
        super().__init__(model_dim, vocab_size)
        self.dense = Linear(model_dim, model_dim, bias=True)
        self.layer_norm = StandardLayerNorm(model_dim, bias=True, eps=layer_norm_eps)
        self.embed = embed  # shared with the front-ends, not a copy
        self.bias = nn.Parameter(embed.weight.new_zeros(vocab_size))
        self.restrict_to: tuple[range, int] | None = None
        """At decode time: (the target modality's id range, EOS). Only those rows are
        projected; the rest of the (N, S, V) logits are -inf. With the paper's 38921-id
        union this skips ~99% of the head's work for speech and ~80% for images."""

    def transform(self, x: Tensor) -> Tensor:
        """BERT's prediction transform before the output rows: ``(N, S, M)`` → ``(N, S, M)``."""
        return self.layer_norm(F.gelu(self.dense(x)))

    def project_rows(self, x: Tensor, ids: Tensor) -> Tensor:
        """Logits of output rows ``ids`` only: ``(N, S, M)`` → ``(N, S, len(ids))`` (training on
        one target modality: the other rows would be masked out of the softmax anyway)."""
        return F.linear(self.transform(x), self.embed.weight[ids], self.bias[ids])

    def forward(self, x: Tensor) -> Tensor:
        x = self.transform(x)  # (N, S, M)
        if self.restrict_to is None:
            return F.linear(x, self.embed.weight, self.bias)  # (N, S, V)
        ids, eos = self.restrict_to
        logits = x.new_full((*x.shape[:-1], self.output_dim), float("-inf"))
        rows = slice(ids.start, ids.stop)
        logits[..., rows] = F.linear(x, self.embed.weight[rows], self.bias[rows])
        logits[..., eos] = F.linear(x, self.embed.weight[eos : eos + 1], self.bias[eos : eos + 1])[..., 0]
        return logits


class UniformMaskDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` whose mask is ``rand >= p`` rather than ``bernoulli_``: the
    same distribution, but ``torch.rand`` is vectorised on CPU and ``bernoulli_`` is not, and
    is slow on bfloat16 tensors (the "bernoulli masks" rows of benchmarks/train_step.py). The
    translator's hidden dropouts are this class."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:
            return torch.zeros_like(x)
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))


def replace_dropouts(model: nn.Module, kind: type[nn.Dropout], make: type[nn.Dropout]) -> None:
    """Replace every submodule of exactly type ``kind`` with ``make(p)`` (same probability)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is kind:
                setattr(parent, name, make(child.p))


class TranslatorFactory:
    def __init__(self, config: TranslatorConfig, vocab: Vocabulary) -> None:
        self._config = config
        self._vocab = vocab
        # Explicit single-process gangs: otherwise every fairseq2 Linear asks the global
        # dependency resolver, whose first use initialises all of fairseq2 (~4 s on 2 cores,
        # it imports transformers and scipy) - too slow for a CLI's cold start. Tensor
        # parallelism is not used; DDP wraps the finished model.
        self._gangs = create_fake_gangs(torch.device("cpu"))
        # Built on the default device (the meta device under ``with torch.device("meta")``).
        self._device = torch.get_default_device()

    def create_model(self) -> TransformerModel:
        config, vocab = self._config, self._vocab
        if config.model_dim % config.num_attn_heads:
            raise ValueError("model_dim must be a multiple of num_attn_heads")
        embed = StandardEmbedding(vocab.size, config.model_dim, PAD)
        model = TransformerModel(
            config.model_dim,
            self.create_frontend(embed),
            StandardTransformerEncoder(
                [self.create_encoder_layer() for _ in range(config.num_encoder_layers)]
            ),
            self.create_frontend(embed),
            StandardTransformerDecoder(
                [self.create_decoder_layer() for _ in range(config.num_decoder_layers)]
            ),
            LMHead(embed, config.layer_norm_eps),
            PAD,
            config.max_seq_len,
            config.max_seq_len,
        )
        init_bert_normal(model)
        replace_dropouts(model, nn.Dropout, UniformMaskDropout)
        return model

    def create_frontend(self, embed: StandardEmbedding) -> ModalityEmbeddingFrontend:
        config = self._config
        return ModalityEmbeddingFrontend(
            embed,
            LearnedPositionEncoder(config.model_dim, config.max_seq_len),
            self._vocab.type_ids(),
            config.num_types,
            layer_norm_eps=config.layer_norm_eps,
            dropout_p=config.dropout_p,
            image_grid=config.image_grid,
        )

    def create_attention(self, causal: bool) -> StandardMultiheadAttention:
        config = self._config
        bias = CausalAttentionBias() if causal else IdentityBias()
        sdpa = create_default_sdpa(bias, dropout_p=config.attn_dropout_p)
        return StandardMultiheadAttention(
            config.model_dim, config.num_attn_heads, sdpa, gangs=self._gangs, device=self._device
        )

    def create_ffn(self) -> StandardFeedForwardNetwork:
        config = self._config
        return StandardFeedForwardNetwork(
            config.model_dim,
            config.ffn_inner_dim,
            bias=True,
            inner_activation=nn.GELU(),
            gangs=self._gangs,
            device=self._device,
        )

    def create_layer_norm(self) -> StandardLayerNorm:
        return StandardLayerNorm(self._config.model_dim, bias=True, eps=self._config.layer_norm_eps)

    def create_encoder_layer(self) -> StandardTransformerEncoderLayer:
        return StandardTransformerEncoderLayer(
            self.create_attention(causal=False),
            self.create_layer_norm(),
            self.create_ffn(),
            self.create_layer_norm(),
            norm_order=TransformerNormOrder.POST,
            dropout_p=self._config.dropout_p,
        )

    def create_decoder_layer(self) -> StandardTransformerDecoderLayer:
        return StandardTransformerDecoderLayer(
            self.create_attention(causal=True),
            self.create_layer_norm(),
            self.create_attention(causal=False),
            self.create_layer_norm(),
            self.create_ffn(),
            self.create_layer_norm(),
            norm_order=TransformerNormOrder.POST,
            dropout_p=self._config.dropout_p,
        )


def create_translator(config: TranslatorConfig, vocab: Vocabulary) -> TransformerModel:
    """A randomly initialised (BERT-style N(0, 0.02)) translator over ``vocab``."""
    return TranslatorFactory(config, vocab).create_model()
