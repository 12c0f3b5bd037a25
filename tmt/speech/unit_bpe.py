"""Byte-pair merges over speech units: shorter speech sequences for the translator.

The deduplicated units of a tmt-shapes utterance number 86 on average, against 32 image codes
and 9 text tokens, so speech is most of what the translator reads and writes. Merging the most
frequent adjacent pair of units into a new piece, again and again (Sennrich et al.'s BPE, over
unit ids instead of characters), shortens them; ``python benchmarks/unit_bpe.py`` measures by how
much. A piece stands for a fixed run of units, so decoding expands it exactly and the vocoder
still gets units.

Pieces ``base_size .. base_size + len(merges) - 1`` are the merges in the order they were
learned. Encoding replays them in that order, which gives the learned segmentation. Ties between
equally frequent pairs go to the smaller pair ``(a, b)``: the merges depend only on the data.

Learned and added to a speech codec by ``tmt codec train unit-bpe``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from tmt.errors import TmtError

CONFIG_FORMAT = "tmt-unit-bpe"
SEPARATOR = -1
"""Between sequences in a concatenated corpus; never part of a pair."""
REPLAY_FROM = 8
"""From this many sequences on, :meth:`UnitBPE.encode_many` replays every merge over all of them
at once (:meth:`UnitBPE.replay`); fewer it encodes one by one (:meth:`UnitBPE.encode`). One
utterance at a time, the replay is several times slower (``python benchmarks/unit_bpe.py``)."""


def _merge(seq: np.ndarray, a: int, b: int, piece: int) -> np.ndarray:
    """Every non-overlapping ``a b`` of ``seq``, left to right, replaced by ``piece``."""
    starts = np.flatnonzero((seq[:-1] == a) & (seq[1:] == b))
    if not starts.size:
        return seq
    if a == b:  # in a run "a a a", the second pair overlaps the first: keep every other one
        kept, last = [], -2
        for i in starts.tolist():
            if i != last + 1:
                kept.append(i)
                last = i
        starts = np.asarray(kept, dtype=np.int64)
    out = seq.copy()
    out[starts] = piece
    keep = np.ones(len(seq), dtype=bool)
    keep[starts + 1] = False
    return out[keep]


def _concatenate(sequences: Sequence[np.ndarray | torch.Tensor], base_size: int) -> np.ndarray:
    """Unit sequences, checked to lie in [0, base_size) → one int64 array with a SEPARATOR after
    each."""
    parts = []
    for s in sequences:
        s = s.numpy() if isinstance(s, torch.Tensor) else np.asarray(s)
        if s.size and int(s.min()) < 0:
            raise TmtError(f"unit ids must not be negative (got {int(s.min())})")
        if s.size and int(s.max()) >= base_size:
            raise TmtError(f"unit ids must lie in [0, {base_size}) (got {int(s.max())})")
        parts.append(np.append(s.astype(np.int64), SEPARATOR))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class UnitBPE:
    """Unit ids in [0, base_size) ⇄ piece ids in [0, vocab_size); units are their own pieces."""

    def __init__(self, base_size: int, merges: Sequence[tuple[int, int]]) -> None:
        self.base_size = base_size
        self.merges = [(int(a), int(b)) for a, b in merges]
        expansions: list[np.ndarray] = [np.array([u], dtype=np.int64) for u in range(base_size)]
        for piece, (a, b) in enumerate(self.merges, start=base_size):
            if not (0 <= a < piece and 0 <= b < piece):
                raise TmtError(f"unit BPE merge {piece - base_size} ({a}, {b}) uses an undefined piece")
            expansions.append(np.concatenate([expansions[a], expansions[b]]))
        self._expansions = expansions
        self._rank: dict[tuple[int, int], int] = {}
        for rank, pair in enumerate(self.merges):  # a repeated pair: its first merge applies
            self._rank.setdefault(pair, rank)

    @property
    def vocab_size(self) -> int:
        return self.base_size + len(self.merges)

    @classmethod
    def learn(
        cls, sequences: Sequence[np.ndarray | torch.Tensor], base_size: int, vocab_size: int
    ) -> UnitBPE:
        """Merges until ``vocab_size`` pieces, or until no pair occurs twice."""
        if vocab_size < base_size:
            raise TmtError(f"unit BPE vocab_size {vocab_size} < base_size {base_size}")
        seq = _concatenate(sequences, base_size)
        merges: list[tuple[int, int]] = []
        for piece in range(base_size, vocab_size):
            a, b = seq[:-1], seq[1:]
            pair = (a >= 0) & (b >= 0)
            counts = np.bincount(a[pair] * piece + b[pair], minlength=piece * piece)
            best = int(np.argmax(counts))  # the first maximum: the smallest (a, b) of a tie
            if counts[best] < 2:
                break
            x, y = divmod(best, piece)
            merges.append((x, y))
            seq = _merge(seq, x, y, piece)
        return cls(base_size, merges)

    def encode_many(self, sequences: Sequence[np.ndarray | torch.Tensor]) -> list[torch.Tensor]:
        """Unit sequences → piece sequences (1-D LongTensors). From ``REPLAY_FROM`` sequences
        on, all merges are replayed at once over their concatenation (one array pass per merge,
        shared by all); fewer are encoded one by one (:meth:`encode`), which is faster then."""
        if len(sequences) < REPLAY_FROM:
            return [self.encode(s) for s in sequences]
        return self.replay(sequences)

    def replay(self, sequences: Sequence[np.ndarray | torch.Tensor]) -> list[torch.Tensor]:
        """Unit sequences → piece sequences, every merge replayed in order over all of them."""
        seq = _concatenate(sequences, self.base_size)
        for piece, (a, b) in enumerate(self.merges, start=self.base_size):
            seq = _merge(seq, a, b, piece)
        ends = np.flatnonzero(seq == SEPARATOR)
        starts = np.concatenate([[0], ends[:-1] + 1])
        return [torch.from_numpy(seq[s:e].copy()) for s, e in zip(starts, ends, strict=True)]

    def encode(
        self,
        units: np.ndarray | torch.Tensor,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> torch.Tensor:
        """One unit sequence → its pieces, as :meth:`encode_many` gives them.

        Replaying every merge costs one array pass per merge whether or not the pair occurs,
        which for one utterance is most of the work; here only the merges that apply run. At
        each round the earliest-learned merge among the sequence's adjacent pairs is applied
        (every occurrence, left to right). That is the replay's order: a pair involving piece
        ``p`` can only have been learned after ``p``, so a merge never brings back the pair of
        an earlier one.

        ``dropout`` > 0 (BPE-dropout, after Provilkov et al. 2020): each place a merge is about
        to apply is skipped, for good, with that chance (draws from ``rng``); the units there
        may then merge with other neighbours. One utterance gets many segmentations, all
        decoding to its units. For training only; 0 gives the learned segmentation.
        (Skipping only for the round, as the paper does within a word, changes little here:
        an utterance is one long sequence, and the skipped pair merges a round later.)"""
        if not 0.0 <= dropout < 1.0:
            raise TmtError(f"unit BPE dropout must be in [0, 1), not {dropout}")
        if dropout and rng is None:
            raise TmtError("unit BPE dropout needs a random generator")
        seq = _concatenate([units], self.base_size)[:-1].tolist()
        blocked = [False] * len(seq)
        """blocked[i]: the pair seq[i], seq[i + 1] was skipped and never merges."""
        while len(seq) > 1:
            found = [None if stop else self._rank.get(pair)
                     for pair, stop in zip(zip(seq, seq[1:]), blocked, strict=False)]
            ranks = [r for r in found if r is not None]
            if not ranks:
                break
            rank = min(ranks)
            piece = self.base_size + rank
            out: list[int] = []
            out_blocked: list[bool] = []
            last = -2  # where in seq the last unit put out unmerged was (-2: it was a piece)
            i = 0
            while i < len(seq):
                merge = i + 1 < len(seq) and found[i] == rank
                if merge and dropout and rng.random() < dropout:  # type: ignore[union-attr]
                    blocked[i], merge = True, False
                if out:  # the pair before this one is unchanged between two unmerged units
                    out_blocked[-1] = not merge and last == i - 1 and blocked[i - 1]
                if merge:
                    out.append(piece)
                    last, i = -2, i + 2
                else:
                    out.append(seq[i])
                    last, i = i, i + 1
                out_blocked.append(False)
            seq, blocked = out, out_blocked
        return torch.tensor(seq, dtype=torch.long)

    def decode(self, pieces: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Piece ids → the unit ids they stand for."""
        ids = pieces.tolist() if isinstance(pieces, (torch.Tensor, np.ndarray)) else list(pieces)
        if any(not 0 <= int(i) < self.vocab_size for i in ids):
            raise TmtError(f"speech piece ids must lie in [0, {self.vocab_size})")
        if not ids:
            return torch.zeros(0, dtype=torch.long)
        return torch.from_numpy(np.concatenate([self._expansions[int(i)] for i in ids]))

    def save(self, path: str | Path) -> None:
        cfg = {"format": CONFIG_FORMAT, "base_size": self.base_size, "merges": self.merges}
        Path(path).write_text(json.dumps(cfg) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> UnitBPE:
        try:
            cfg = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise TmtError(f"cannot read unit BPE {path}: {e}") from None
        if not isinstance(cfg, dict) or cfg.get("format") != CONFIG_FORMAT:
            raise TmtError(f"{path} is not a unit BPE file (format {CONFIG_FORMAT!r})")
        return cls(int(cfg["base_size"]), [tuple(m) for m in cfg["merges"]])
