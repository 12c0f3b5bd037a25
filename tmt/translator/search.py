"""Beam search (and greedy: beam 1) over :class:`~tmt.translator.incremental.IncrementalDecoder`.

The same algorithm as fairseq2's ``BeamSearchSeq2SeqGenerator`` (the reference path, tested
equal), over the target modality's K ids + EOS instead of the whole vocabulary:

- each source starts from one row; every step takes the best ``2 x beam`` (row, id)
  candidates of the source by cumulative log-probability;
- candidates among the first ``beam`` that end in EOS become hypotheses, scored
  ``cumulative / generated_len ** len_penalty`` (EOS counted); a source with ``beam``
  hypotheses is done;
- the first ``beam`` candidates that do not end in EOS continue;
- EOS is banned before ``min_len`` tokens and forced at ``max_len + 1``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from tmt.modality import Modality
from tmt.translator.incremental import IncrementalDecoder

Hypotheses = list[list[tuple[Tensor, float]]]
"""Per source, ``(unified ids without EOS, score)`` best first."""


@torch.inference_mode()
def beam_search(
    decoder: IncrementalDecoder,
    source: Tensor,
    lens: list[int],
    target: Modality,
    *,
    beam: int,
    min_len: int,
    max_len: int,
    temperature: float = 1.0,
    len_penalty: float = 1.0,
) -> Hypotheses:
    """Decode ``(P, S)`` unified source ids (``lens`` real tokens each) into ``target``.

    ``min_len`` / ``max_len``: the fewest and most generated tokens, EOS included."""
    vocab = decoder.translator.vocab
    ids = vocab.id_range(target)
    eos_col = len(ids)  # the K-th column of the decoder's logits
    num_prompts = source.shape[0]
    device = source.device
    state = decoder.start(decoder.encode(source, lens), max_len)
    # Generated unified ids so far, one row per live hypothesis; column 0 is the target tag.
    seqs = torch.full((num_prompts, max_len + 1), vocab.tag(target), dtype=torch.long, device=device)
    scores = torch.zeros(num_prompts, device=device)  # (N,) cumulative log-probabilities
    prompts = list(range(num_prompts))  # source index of each live group of rows
    output: Hypotheses = [[] for _ in range(num_prompts)]
    width = 1  # rows per live source: 1 before the first step, then ``beam``
    for step in range(1, max_len + 1):
        logits = decoder.step(state, seqs[:, step - 1], target)  # (N, K)
        if temperature != 1.0:
            logits = logits / temperature
        lprobs = F.log_softmax(logits, dim=-1)
        if step == max_len:  # the last step: EOS whatever its score
            lprobs[:, :eos_col] = float("-inf")
        elif step < min_len:
            lprobs[:, eos_col] = float("-inf")
        k = lprobs.shape[1]
        # (P, width x K): each source's candidates, cumulative scores
        candidates = (lprobs + scores[:, None]).view(len(prompts), width * k)
        top_scores, top = candidates.topk(min(2 * beam, width * k))  # (P, 2B)
        rows = top // k + torch.arange(len(prompts), device=device)[:, None] * width  # (P, 2B)
        cols = top % k
        eos = cols == eos_col
        done = torch.zeros(len(prompts), dtype=torch.bool)
        if bool(eos[:, :beam].any()):
            done = _finish(output, prompts, seqs, step, rows, top_scores, eos, beam, len_penalty)
        live = ~done
        if not bool(live.any()):
            break
        # the first ``beam`` candidates of each source that do not end in EOS
        keep = ~eos & (torch.cumsum(~eos, dim=1) <= beam)  # exactly ``beam`` per source
        live_dev = live.to(device)
        order = rows[keep].view(-1, beam)[live_dev].flatten()
        next_cols = cols[keep].view(-1, beam)[live_dev].flatten()
        scores = top_scores[keep].view(-1, beam)[live_dev].flatten()
        seqs = seqs.index_select(0, order)
        seqs[:, step] = next_cols + ids.start  # a continuing row never ends in EOS
        finished = not bool(live.all())
        state.reorder(order, live_dev.nonzero()[:, 0] if finished else None)
        prompts = [p for p, alive in zip(prompts, live.tolist()) if alive]
        width = beam
    for hypotheses in output:
        hypotheses.sort(key=lambda h: h[1], reverse=True)
    return output


def _finish(
    output: Hypotheses, prompts: list[int], seqs: Tensor, step: int, rows: Tensor,
    top_scores: Tensor, eos: Tensor, beam: int, len_penalty: float,
) -> Tensor:
    """Move the EOS candidates among each source's first ``beam`` to its hypotheses, in rank
    order; returns the ``(P,)`` mask of sources that now have ``beam`` hypotheses."""
    done = torch.zeros(len(prompts), dtype=torch.bool)
    norm = float(step) ** len_penalty
    hits = eos[:, :beam].cpu()
    rows_cpu, scores_cpu = rows[:, :beam].cpu(), top_scores[:, :beam].cpu()
    for p, source in enumerate(prompts):
        for j in hits[p].nonzero()[:, 0].tolist():
            tokens = seqs[int(rows_cpu[p, j]), 1:step].cpu()
            output[source].append((tokens, float(scores_cpu[p, j]) / norm))
            if len(output[source]) == beam:
                done[p] = True
                break
    return done
