"""Decoding restricted to the target modality: our fast beam search, or fairseq2's generators.

Beam search and greedy decoding run :func:`tmt.translator.search.beam_search` over
:class:`~tmt.translator.incremental.IncrementalDecoder` at ``DecodingOptions.precision``
(float32: the same outputs as fairseq2's generator, which stays the reference path). Sampling
runs fairseq2's ``SamplingSeq2SeqGenerator``.

On the reference path the restriction happens in the output head (``LMHead.restrict_to``): only the target
modality's rows (+ EOS) are projected and every other logit is -inf, so the generators'
log-softmax is already the distribution over the target modality. This does the work of a
masking step processor and skips most of the head's matmul (the paper's union has 38921 rows;
a speech target needs 201 of them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from fairseq2.data.tokenizers import VocabularyInfo
from fairseq2.generation import Seq2SeqGenerator
from fairseq2.generation.beam_search import BeamSearchSeq2SeqGenerator
from fairseq2.generation.sampling import (
    Sampler,
    SamplingSeq2SeqGenerator,
    TopKSampler,
    TopPSampler,
)
from fairseq2.nn import BatchLayout
from torch import Tensor

from tmt import kernels
from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.precision import check_weight_precision
from tmt.translator.incremental import IncrementalDecoder
from tmt.translator.model import Translator, pad_stack
from tmt.translator.search import beam_search
from tmt.validate import check_fields
from tmt.vocab import BOS, EOS, PAD, UNK

#: SEED-style images are always exactly this many codes.
IMAGE_TOKENS = 32


@dataclass(frozen=True, kw_only=True)
class DecodingOptions:
    """How to decode; separate from the model (whisper's ``DecodingOptions``)."""

    strategy: Literal["beam", "greedy", "sample"] = "beam"
    beam_size: int = 5
    """Beams for ``strategy="beam"`` (the paper decodes with 5)."""

    temperature: float = 1.0
    """Logit temperature for sampling (and beam search)."""

    top_k: int = 0
    """Sample from the k most likely ids; 0 means the whole target range (``top_p`` if set)."""

    top_p: float = 1.0
    """Nucleus sampling threshold when ``top_k`` is 0 and ``top_p`` < 1."""

    max_text_len: int = 64
    max_speech_len: int = 500
    """Maximum generated tokens for text and speech targets (images are exactly 32)."""

    len_penalty: float = 1.0

    rerank: float = 0.0
    """Weight of the reverse direction in reranking the beam's hypotheses (0: off). Each
    hypothesis y of source x is scored by the same model as
    ``mean log p(y | x) + rerank * mean log p(x | y)`` (per-token means, teacher-forced):
    noisy-channel reranking, so a caption must also explain the image it came from. Only beam
    search returns several hypotheses; greedy and sampling are unaffected."""

    seed: int | None = None
    """Seed for sampling, so that a sampled output is reproducible."""

    precision: str = "fp32"
    """Weights of the beam search's decoder: ``fp32`` (exact), ``int8`` (dynamic quantization
    of every linear layer, CPU only, ~4x less weight traffic) or ``bf16`` (fast only where the
    device has native bf16). Sampling always runs in float32."""

    def __post_init__(self) -> None:
        if self.strategy not in ("beam", "greedy", "sample"):
            raise TmtError(f"unknown decoding strategy {self.strategy!r}")
        check_fields(self, "decoding option")
        if self.top_k < 0:
            raise TmtError(f"top-k must be 0 (off) or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise TmtError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.max_text_len < 1 or self.max_speech_len < 1:
            raise TmtError(f"length caps must be at least 1, got text {self.max_text_len}, "
                           f"speech {self.max_speech_len}")
        if self.beam_size < 1:
            raise TmtError(f"beam size must be at least 1, got {self.beam_size}")
        if self.temperature <= 0:
            raise TmtError(f"temperature must be positive, got {self.temperature}")
        if self.rerank < 0:
            raise TmtError(f"rerank weight must be 0 or more, got {self.rerank}")
        check_weight_precision(self.precision)

    def max_len(self, target: Modality) -> int:
        return {
            Modality.IMAGE: IMAGE_TOKENS,
            Modality.SPEECH: self.max_speech_len,
            Modality.TEXT: self.max_text_len,
        }[target]


def _generator(
    translator: Translator, target: Modality, options: DecodingOptions
) -> Seq2SeqGenerator:
    vocab_info = VocabularyInfo(
        size=translator.vocab.size, unk_idx=UNK, bos_idx=BOS, eos_idx=EOS, pad_idx=PAD
    )
    max_len = options.max_len(target)
    # An image ends with EOS right after its 32 codes: EOS is banned before, forced at 33.
    min_len = IMAGE_TOKENS + 1 if target is Modality.IMAGE else 1
    max_gen_len = (0.0, max_len + 1)
    if options.strategy == "sample":
        sampler: Sampler = TopKSampler(options.top_k) if options.top_k > 0 else TopPSampler(options.top_p)
        return SamplingSeq2SeqGenerator(
            translator.model, vocab_info, sampler, min_gen_len=min_len, max_gen_len=max_gen_len,
            temperature=options.temperature, len_penalty=options.len_penalty,
        )
    beam = 1 if options.strategy == "greedy" else options.beam_size
    return BeamSearchSeq2SeqGenerator(
        translator.model, vocab_info, beam_size=beam, min_gen_len=min_len,
        max_gen_len=max_gen_len, temperature=options.temperature, len_penalty=options.len_penalty,
    )


@torch.inference_mode()
def generate(
    translator: Translator,
    sources: Sequence[tuple[Modality, Tensor]],
    target: Modality,
    options: DecodingOptions | None = None,
    *,
    batch_size: int = 16,
    reference: bool = False,
) -> list[Tensor]:
    """Translate a batch of sources (codec-local ids, any modalities) into ``target``.

    Returns codec-local ids of the best hypothesis per source (an image: exactly 32 codes),
    after reranking when ``options.rerank`` is positive.
    """
    return [ids for ids, _ in generate_scored(translator, sources, target, options,
                                              batch_size=batch_size, reference=reference)]


@torch.inference_mode()
def generate_scored(
    translator: Translator,
    sources: Sequence[tuple[Modality, Tensor]],
    target: Modality,
    options: DecodingOptions | None = None,
    *,
    batch_size: int = 16,
    reference: bool = False,
) -> list[tuple[Tensor, float]]:
    """:func:`generate` with each result's score: the generator's log-probability score of the
    hypothesis (beam search: length-normalised by ``len_penalty``), or, when reranked, the
    reranking score ``mean log p(y|x) + rerank * mean log p(x|y)``. Higher is better.

    ``reference``: decode with fairseq2's generator (float32) instead of the fast path."""
    options = options or DecodingOptions()
    if batch_size < 1:
        raise TmtError(f"batch size must be at least 1, got {batch_size}")
    longest = translator.config.max_seq_len - 2  # BOS x EOS
    for modality, ids in sources:
        if modality is target:
            raise TmtError(f"cannot translate {modality.value} into {target.value}")
        if ids.numel() == 0:
            raise TmtError(f"empty {modality.value} input: nothing to translate")
        if ids.numel() > longest:
            raise TmtError(f"{modality.value} input of {ids.numel()} tokens is longer than the "
                           f"model reads ({longest}): cut it into shorter pieces")
    rows = translator.vocab.size_of(target) + 1  # the target's ids and EOS
    if options.strategy == "beam" and options.beam_size > rows:
        raise TmtError(f"beam size {options.beam_size} is more than the {rows} choices of a "
                       f"{target.value} token")
    translator.eval()
    device = next(translator.parameters()).device
    check_weight_precision(options.precision, device)
    beam = 1 if options.strategy == "greedy" else options.beam_size
    # Our search equals fairseq2's where every step has 2 x beam candidates that are not -inf.
    fast = options.strategy != "sample" and rows >= 2 * beam + 1 and not reference
    if reference and options.precision != "fp32":
        raise TmtError("the reference decoder runs in float32 only")
    nbest: list[list[tuple[Tensor, float]]] = []
    if options.seed is not None:
        torch.manual_seed(options.seed)
    if fast:
        decoder = fast_decoder(translator, options.precision)
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            source, lens = pad_stack([translator.source_ids(m, ids) for m, ids in chunk])
            found = beam_search(
                decoder, source.to(device), lens, target, beam=beam,
                min_len=IMAGE_TOKENS + 1 if target is Modality.IMAGE else 1,
                # + EOS; fairseq2 caps the tag + output at the decoder's position table
                max_len=min(options.max_len(target) + 1, translator.config.max_seq_len - 1),
                temperature=options.temperature,
                len_penalty=options.len_penalty)
            nbest.extend([[(translator.vocab.to_local(target, seq), score) for seq, score in h]
                          for h in found])
    else:
        generator = _generator(translator, target, options)
        with translator.output_restricted_to(target):
            for start in range(0, len(sources), batch_size):
                chunk = sources[start : start + batch_size]
                nbest.extend(_generate_chunk(translator, generator, chunk, target, device))
    if options.rerank <= 0 or all(len(hypotheses) == 1 for hypotheses in nbest):
        return [hypotheses[0] for hypotheses in nbest]  # nothing to rerank (greedy, sampling)
    results: list[tuple[Tensor, float]] = []
    for start in range(0, len(sources), batch_size):
        results.extend(_rerank(translator, sources[start : start + batch_size],
                               nbest[start : start + batch_size], target, options.rerank, device))
    return results


def fast_decoder(translator: Translator, precision: str = "fp32") -> IncrementalDecoder:
    """The translator's :class:`IncrementalDecoder` at ``precision``, built once and kept while
    the weights are unchanged (int8 and bf16 hold converted copies of them, fp32 a packed copy
    of the decoder's where the native kernels run)."""
    version = sum(p._version for p in translator.parameters())  # bumped by in-place updates
    key = (precision, kernels.enabled())
    cache: dict[tuple[str, bool], tuple[int, IncrementalDecoder]] = translator.__dict__.setdefault(
        "_fast_decoders", {})
    if key not in cache or cache[key][0] != version:
        cache[key] = (version, IncrementalDecoder(translator, precision))
    return cache[key][1]


def _generate_chunk(
    translator: Translator,
    generator: Seq2SeqGenerator,
    chunk: Sequence[tuple[Modality, Tensor]],
    target: Modality,
    device: torch.device,
) -> list[list[tuple[Tensor, float]]]:
    """Each source's hypotheses with their scores, best first (codec-local ids)."""
    source, lens = pad_stack([translator.source_ids(m, ids) for m, ids in chunk])
    source = source.to(device)
    tag = translator.vocab.tag(target)
    prompt = torch.full((len(chunk), 1), tag, dtype=torch.long, device=device)
    output = generator(source, BatchLayout.of(source, lens), prompt, BatchLayout.of(prompt))
    results = []
    for hypotheses in output.hypotheses:
        scored = []
        for h in hypotheses:
            seq = h.seq.cpu()
            score = float(h.score) if h.score is not None else math.nan
            scored.append((translator.vocab.to_local(target, seq[seq != EOS]), score))
        results.append(scored)
    return results


def _rerank(
    translator: Translator,
    sources: Sequence[tuple[Modality, Tensor]],
    nbest: Sequence[list[tuple[Tensor, float]]],
    target: Modality,
    weight: float,
    device: torch.device,
) -> list[tuple[Tensor, float]]:
    """Per source, the hypothesis with the best forward + ``weight`` x reverse score."""
    pairs = [({modality: ids, target: hyp}, modality)
             for (modality, ids), hypotheses in zip(sources, nbest) for hyp, _ in hypotheses]
    forward = translator.batch_from_pairs((example, (src, target)) for example, src in pairs)
    reverse = translator.batch_from_pairs((example, (target, src)) for example, src in pairs)
    assert forward is not None and reverse is not None
    scores = (translator.mean_log_prob(forward.to(device))
              + weight * translator.mean_log_prob(reverse.to(device))).cpu()
    results, offset = [], 0
    for hypotheses in nbest:
        best = int(scores[offset : offset + len(hypotheses)].argmax())
        results.append((hypotheses[best][0], float(scores[offset + best])))
        offset += len(hypotheses)
    return results
