"""The translator: vocabulary + fairseq2 ``TransformerModel``, with six-direction batching and loss.

Sequences (unified ids)::

    encoder input   BOS x_1 … x_n EOS              (BOS/EOS play BERT's [CLS]/[SEP])
    decoder input   <tgt> y_1 … y_m                (<tgt>: the target modality's tag)
    decoder target  y_1 … y_m EOS
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from fairseq2.models.transformer import TransformerModel
from fairseq2.nn import BatchLayout
from torch import Tensor, nn
from torch.nn import functional as F

from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, MODALITIES, Modality
from tmt.translator.checkpoint import load_state, read_checkpoint, save_translator
from tmt.translator.config import TranslatorConfig
from tmt.translator.factory import LMHead, create_translator
from tmt.vocab import BOS, EOS, PAD, Vocabulary

Example = Mapping[Modality, Tensor]
"""One example: codec-local ids per available modality (any subset of the three)."""


@dataclass
class Seq2SeqBatch:
    """A padded batch of (source, target) pairs, possibly of several directions."""

    source: Tensor  # (N, S) unified ids, PAD-padded
    source_lens: list[int]
    decoder_input: Tensor  # (N, T)
    target: Tensor  # (N, T), PAD where padded
    target_lens: list[int]
    direction: Tensor  # (N,) index into DIRECTIONS

    @property
    def source_layout(self) -> BatchLayout:
        return BatchLayout.of(self.source, self.source_lens)

    @property
    def target_layout(self) -> BatchLayout:
        return BatchLayout.of(self.decoder_input, self.target_lens)

    def to(self, device: torch.device) -> Seq2SeqBatch:
        return Seq2SeqBatch(
            self.source.to(device),
            self.source_lens,
            self.decoder_input.to(device),
            self.target.to(device),
            self.target_lens,
            self.direction.to(device),
        )


@dataclass
class TargetGroup:
    """Pairs of a :class:`SharedSourceBatch` with one target modality: each reads the encoding
    of source row ``index[i]``."""

    index: Tensor  # (n,) rows of the shared sources
    decoder_input: Tensor  # (n, T)
    target: Tensor  # (n, T), PAD where padded
    target_lens: list[int]
    direction: Tensor  # (n,) index into DIRECTIONS

    def to(self, device: torch.device) -> TargetGroup:
        return TargetGroup(self.index.to(device), self.decoder_input.to(device),
                           self.target.to(device), self.target_lens, self.direction.to(device))


@dataclass
class SharedSourceBatch:
    """Distinct sources, encoded once, and the target groups that read them."""

    source: Tensor  # (M, S) unified ids, PAD-padded
    source_lens: list[int]
    groups: list[TargetGroup]

    def to(self, device: torch.device) -> SharedSourceBatch:
        return SharedSourceBatch(self.source.to(device), self.source_lens,
                                 [g.to(device) for g in self.groups])


def pad_stack(seqs: Sequence[Tensor], pad: int = PAD) -> tuple[Tensor, list[int]]:
    """Right-pad 1-D sequences into ``(N, max_len)``; returns the lengths too."""
    lens = [int(s.numel()) for s in seqs]
    out = torch.full((len(seqs), max(lens)), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : lens[i]] = s
    return out, lens


class Translator(nn.Module):
    """One encoder-decoder serving all six directions with fully shared weights."""

    _allowed: Tensor  # (3, V) ids each target modality may emit (+ EOS)
    _direction_target: Tensor  # (6,) target modality row of each direction

    def __init__(self, config: TranslatorConfig, vocab: Vocabulary) -> None:
        super().__init__()
        self.config = config
        self.vocab = vocab
        self.model: TransformerModel = create_translator(config, vocab)
        # Per target modality: which unified ids the decoder may emit (+ EOS). (3, V)
        masks = torch.stack([vocab.allowed_mask(m) for m in MODALITIES])
        self.register_buffer("_allowed", masks, persistent=False)
        # Per direction index: the target modality's row in ``_allowed``. (6,)
        slots = torch.tensor([MODALITIES.index(t) for _, t in DIRECTIONS])
        self.register_buffer("_direction_target", slots, persistent=False)

    # -- sequences ------------------------------------------------------------------------

    def source_ids(self, modality: Modality, ids: Tensor) -> Tensor:
        """Codec-local ids → encoder input ``BOS x EOS`` (truncated to the position table)."""
        body = self.vocab.to_unified(modality, ids)[: self.config.max_seq_len - 2]
        return torch.cat([torch.tensor([BOS]), body, torch.tensor([EOS])])

    def target_ids(self, modality: Modality, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Codec-local ids → (decoder input ``<tgt> y``, target ``y EOS``)."""
        body = self.vocab.to_unified(modality, ids)[: self.config.max_seq_len - 1]
        tag = torch.tensor([self.vocab.tag(modality)])
        return torch.cat([tag, body]), torch.cat([body, torch.tensor([EOS])])

    def make_batch(
        self,
        examples: Iterable[Example],
        directions: Sequence[tuple[Modality, Modality]] = DIRECTIONS,
    ) -> Seq2SeqBatch | None:
        """Expand examples into every direction whose two modalities they both have."""
        return self.batch_from_pairs(
            (example, d) for example in examples for d in available_directions(example, directions)
        )

    def batch_from_pairs(
        self, pairs: Iterable[tuple[Example, tuple[Modality, Modality]]]
    ) -> Seq2SeqBatch | None:
        """Pad (example, direction) pairs into one batch; ``None`` when there are none."""
        sources, inputs, targets, dirs = [], [], [], []
        for example, (src, tgt) in pairs:
            sources.append(self.source_ids(src, example[src]))
            dec_in, dec_out = self.target_ids(tgt, example[tgt])
            inputs.append(dec_in)
            targets.append(dec_out)
            dirs.append(DIRECTIONS.index((src, tgt)))
        if not sources:
            return None
        source, source_lens = pad_stack(sources)
        decoder_input, target_lens = pad_stack(inputs)
        target, _ = pad_stack(targets)
        return Seq2SeqBatch(
            source, source_lens, decoder_input, target, target_lens, torch.tensor(dirs)
        )

    def shared_source_batch(
        self, items: Sequence[tuple[Example, Modality, Sequence[Modality]]]
    ) -> SharedSourceBatch:
        """``(example, source modality, target modalities)`` items → one encoder row per item
        and, per target modality (in ``MODALITIES`` order), a group of the pairs that read it."""
        sources, source_lens = pad_stack([self.source_ids(src, ex[src]) for ex, src, _ in items])
        groups = []
        for tgt in MODALITIES:
            rows = [i for i, (_, _, targets) in enumerate(items) if tgt in targets]
            if not rows:
                continue
            inputs, outputs = zip(*(self.target_ids(tgt, items[i][0][tgt]) for i in rows))
            decoder_input, target_lens = pad_stack(inputs)
            dirs = [DIRECTIONS.index((items[i][1], tgt)) for i in rows]
            groups.append(TargetGroup(torch.tensor(rows), decoder_input, pad_stack(outputs)[0],
                                      target_lens, torch.tensor(dirs)))
        return SharedSourceBatch(sources, source_lens, groups)

    # -- loss -----------------------------------------------------------------------------

    def forward(
        self, batch: Seq2SeqBatch | SharedSourceBatch, label_smoothing: float = 0.1
    ) -> tuple[Tensor, Tensor]:
        """Loss summed over the directions present (each the mean over its target tokens).

        Logits are restricted to the target modality's ids (+ EOS), as at decode time, and
        label smoothing spreads over that same set. Returns ``(loss, per_direction_loss (6,))``
        where absent directions hold NaN; for a :class:`SharedSourceBatch`, the per-direction
        loss sums and token counts of :meth:`loss_sums` (so that a DDP wrapper sees the call).
        """
        if isinstance(batch, SharedSourceBatch):
            return self.loss_sums(batch, label_smoothing)
        logits = self._logits(batch)
        sums, counts = self._loss_sums(logits, batch.target, batch.direction, label_smoothing)
        present = counts > 0
        per_direction = torch.where(present, sums / counts.clamp(min=1), float("nan"))
        return per_direction[present].sum(), per_direction.detach()

    def loss_sums(
        self, batch: SharedSourceBatch, label_smoothing: float = 0.1
    ) -> tuple[Tensor, Tensor]:
        """Per direction, the summed token loss and the target-token count ``((6,), (6,))`` of a
        batch whose target groups share the encoder pass of its sources (one encoding serves
        every target drawn for a source)."""
        layout = BatchLayout.of(batch.source, batch.source_lens)
        seqs, layout = self.model.encoder_frontend(batch.source, layout)
        encoded = self.model.encoder(seqs, layout)
        sums = counts = torch.zeros(len(DIRECTIONS), device=encoded.device)
        for group in batch.groups:
            memory = encoded.index_select(0, group.index)
            lens = [batch.source_lens[i] for i in group.index.tolist()]
            target_layout = BatchLayout.of(group.decoder_input, group.target_lens)
            tseqs, target_layout = self.model.decoder_frontend(group.decoder_input, target_layout)
            decoded = self.model.decoder(tseqs, target_layout, memory, BatchLayout.of(memory, lens))
            group_sums, group_counts = self._group_loss_sums(decoded, group, label_smoothing)
            sums, counts = sums + group_sums, counts + group_counts
        return sums, counts

    def _group_loss_sums(
        self, decoded: Tensor, group: TargetGroup, label_smoothing: float
    ) -> tuple[Tensor, Tensor]:
        """:meth:`_loss_sums` of a target group's ``(n, T, M)`` decoder states. A group has one
        target modality, so the head projects onto its ids (+ EOS) only, ``(n, T, K)``: the same
        loss as masking the other ids of full-vocabulary logits, for a fraction of the head's
        work (K is 154-513 of the shipped model's 872 ids)."""
        head = self.model.final_proj
        assert isinstance(head, LMHead)
        allowed = self._allowed[self._direction_target[group.direction[0]]]  # (V,)
        lprobs = F.log_softmax(head.project_rows(decoded, allowed.nonzero()[:, 0]).float(), -1)
        compact = (allowed.cumsum(0) - 1)[group.target].clamp(min=0)  # (n, T); PAD -> 0
        return self._token_loss_sums(lprobs, compact, group.target != PAD, group.direction,
                                     label_smoothing)

    def _loss_sums(
        self, logits: Tensor, target: Tensor, direction: Tensor, label_smoothing: float
    ) -> tuple[Tensor, Tensor]:
        """Label-smoothed token losses of ``(N, T, V)`` logits, summed per direction, and each
        direction's target-token count."""
        lprobs, allowed = self._restrict(logits, direction)
        # ids outside each pair's modality score -inf: zero them out of the smoothing sum
        return self._token_loss_sums(lprobs.masked_fill(~allowed[:, None, :], 0.0), target,
                                     target != PAD, direction, label_smoothing,
                                     allowed.sum(-1, keepdim=True))

    def _token_loss_sums(
        self, lprobs: Tensor, target: Tensor, mask: Tensor, direction: Tensor,
        label_smoothing: float, num_allowed: Tensor | int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Label-smoothed token losses summed per direction, and each direction's token count,
        from ``(N, T, K)`` log-probabilities whose entries outside the allowed ids are 0,
        ``(N, T)`` target indices into K and the ``(N, T)`` mask of real target tokens;
        ``num_allowed``: the allowed ids per pair (default: all K)."""
        nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N, T)
        smooth = -lprobs.sum(-1) / (lprobs.shape[-1] if num_allowed is None else num_allowed)
        token_loss = (1.0 - label_smoothing) * nll + label_smoothing * smooth
        per_example = torch.where(mask, token_loss, 0.0).sum(-1)  # (N,); PAD positions drop out
        zeros = torch.zeros(len(DIRECTIONS), device=per_example.device)
        return (
            zeros.index_add(0, direction, per_example),
            zeros.index_add(0, direction, mask.sum(-1).float()),
        )

    def _restrict(self, logits: Tensor, direction: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, T, V)`` logits → log-probabilities over each pair's target modality (+ EOS),
        and the ``(N, V)`` mask of those ids; ids outside the modality score -inf."""
        allowed = self._allowed[self._direction_target[direction]]  # (N, V)
        logits = logits.float().masked_fill(~allowed[:, None, :], float("-inf"))
        return F.log_softmax(logits, dim=-1), allowed

    def _restricted_log_probs(self, batch: Seq2SeqBatch) -> tuple[Tensor, Tensor]:
        """Teacher-forced log-probabilities over each example's target modality (+ EOS):
        ``(lprobs (N, T, V), allowed (N, V))``; ids outside the modality score -inf."""
        return self._restrict(self._logits(batch), batch.direction)

    def _logits(self, batch: Seq2SeqBatch) -> Tensor:
        """Teacher-forced ``(N, T, V)`` logits over the whole vocabulary."""
        return self.model(batch.source, batch.source_layout, batch.decoder_input, batch.target_layout)

    def mean_log_prob(self, batch: Seq2SeqBatch) -> Tensor:
        """Each pair's mean log-probability per target token (EOS included), ``(N,)``: how
        well the model predicts the target from the source, unsmoothed."""
        lprobs, _ = self._restricted_log_probs(batch)
        token = lprobs.gather(-1, batch.target.unsqueeze(-1)).squeeze(-1)  # (N, T)
        mask = batch.target != PAD
        return torch.where(mask, token, 0.0).sum(-1) / mask.sum(-1)

    @contextmanager
    def output_restricted_to(self, target: Modality) -> Iterator[None]:
        """Within the block, the output head computes only ``target``'s rows (+ EOS); every
        other logit is -inf (see :class:`~tmt.translator.factory.LMHead`)."""
        head = self.model.final_proj
        assert isinstance(head, LMHead)
        head.restrict_to = (self.vocab.id_range(target), EOS)
        try:
            yield
        finally:
            head.restrict_to = None

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    # -- initialisation -------------------------------------------------------------------

    @torch.no_grad()
    def init_code_embeddings(self, modality: Modality, vectors: Tensor, seed: int = 0) -> None:
        """Start ``modality``'s rows of the shared embedding table (inputs, and the tied output
        layer) from its codec's code vectors ``(codes, dim)``, e.g. an image codebook: a fixed
        random orthonormal map to ``model_dim`` keeps their angles, and each row keeps the norm
        of the random initialisation. Codes the codec treats as alike then start alike, instead
        of as unrelated symbols the model must learn one by one from their contexts."""
        modality = Modality.parse(modality)
        rows = self.vocab.id_range(modality)
        codes, dim = vectors.shape
        model_dim = self.config.model_dim
        if codes != len(rows):
            raise TmtError(
                f"{codes} {modality.value} code vectors for a vocabulary of {len(rows)} "
                f"{modality.value} ids"
            )
        if dim > model_dim:
            raise TmtError(f"code vectors of dimension {dim} exceed model_dim {model_dim}")
        generator = torch.Generator().manual_seed(seed)
        basis, _ = torch.linalg.qr(torch.randn(model_dim, dim, generator=generator))
        mapped = F.normalize(vectors.float(), dim=-1) @ basis.T  # (codes, model_dim), unit rows
        weight: Tensor = self.model.encoder_frontend.embed.weight  # type: ignore[union-attr,assignment]
        norm = weight[rows.start : rows.stop].norm(dim=-1, keepdim=True)
        weight[rows.start : rows.stop] = (mapped * norm).to(weight.dtype)

    # -- persistence ----------------------------------------------------------------------

    def save(self, directory: str | Path, *, fp16: bool = False) -> None:
        """Write ``config.json``, ``vocab.json`` and ``model.safetensors`` into ``directory``."""
        save_translator(self, directory, fp16=fp16)

    @classmethod
    def load(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> Translator:
        """Rebuild a translator saved by :meth:`save`."""
        config, vocab, state = read_checkpoint(directory)
        translator = cls(config, vocab)
        load_state(translator, state, source=str(directory))
        return translator.to(device)


def available_directions(
    example: Example, directions: Sequence[tuple[Modality, Modality]] = DIRECTIONS
) -> list[tuple[Modality, Modality]]:
    """The directions whose two modalities the example both has (non-empty)."""
    have = {m for m, ids in example.items() if ids is not None and ids.numel() > 0}
    return [(s, t) for s, t in directions if s in have and t in have]


def check_modalities(source: Modality, target: Modality) -> None:
    if source is target:
        raise TmtError(
            f"source and target modality are both {source.value}: tmt translates between "
            "different modalities"
        )
