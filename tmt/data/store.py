"""The token store: the pre-tokenized corpus that training reads (as the paper does).

Layout of a store directory::

    store.json              {"format": "tmt-token-store", "version": 1, "vocab_sizes": {...}}
    shard-00000/            one complete shard (renamed into place only once fully written)
        meta.json           {"ids": [...], "split": [...], "source": [...], "pseudo": [...]}
        speech.tokens.npy   int32, all speech ids of the shard end to end
        speech.index.npy    int64 (n, 3): start, length (-1 = absent), raw bytes (-1 = unknown)
        image.* text.*      the same for the other modalities
    shard-00001/ ...

A shard is written into a hidden temporary directory and renamed when complete, so an
interrupted write loses at most the shard in progress; a restarted writer sees which ids are
already stored (``done_ids``) and continues with the next shard number. Several writers may
fill one store in parallel if each has its own ``prefix`` (``--shard i/n``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tmt.data.records import TokenExample
from tmt.data.store_format import merge_vocab_sizes, read_manifest, shard_dirs
from tmt.data.store_writer import TokenStoreWriter
from tmt.errors import TmtError
from tmt.modality import MODALITIES, Modality

__all__ = ["TokenExample", "TokenStore", "TokenStoreWriter"]


class _Shard:
    """One shard's metadata (in memory) and token arrays (memory-mapped, opened lazily)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        self.ids: list[str] = meta["ids"]
        self.split: list[str] = meta["split"]
        self.source: list[str] = meta["source"]
        self.pseudo: list[bool] = meta["pseudo"]
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, index) memmaps of one modality."""
        if self._arrays is None:
            self._arrays = {
                m.value: (
                    np.load(self.path / f"{m.value}.tokens.npy", mmap_mode="r"),
                    np.load(self.path / f"{m.value}.index.npy", mmap_mode="r"),
                )
                for m in MODALITIES
            }
        return self._arrays[modality]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers (spawn) re-open the memmaps instead of pickling their contents.
        return {**self.__dict__, "_arrays": None}


class TokenStore:
    """Read one or several token stores (concatenated, e.g. real + pseudo) by memory map.

    A map-style dataset: ``len(store)``, ``store[i] -> TokenExample``, iteration. Views
    (:meth:`split`, :meth:`filter`) share the memory maps.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path]) -> None:
        dirs = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        if not dirs:
            raise TmtError("no token store given")
        self.vocab_sizes: dict[str, int] = {}
        """Modality name -> codec vocabulary size, as the writers recorded them."""
        self._shards: list[_Shard] = []
        for directory in dirs:
            manifest = read_manifest(directory)
            self.vocab_sizes = merge_vocab_sizes(
                self.vocab_sizes, manifest.get("vocab_sizes", {}), directory
            )
            self._shards.extend(_Shard(p) for p in shard_dirs(directory))
        self.paths = dirs
        sizes = np.array([len(s) for s in self._shards], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # Per-row metadata as small categorical codes, so views filter with numpy.
        self._ids = [i for s in self._shards for i in s.ids]
        self._split_names, self._split_codes = _categorical(
            [x for s in self._shards for x in s.split]
        )
        self._source_names, self._source_codes = _categorical(
            [x for s in self._shards for x in s.source]
        )
        self._pseudo = np.array([x for s in self._shards for x in s.pseudo], dtype=bool)
        self._rows = np.arange(len(self._ids), dtype=np.int64)
        self._columns: dict[tuple[str, int], np.ndarray] = {}  # shared by views

    # -- views -----------------------------------------------------------------------------
    def _view(self, rows: np.ndarray) -> TokenStore:
        view = object.__new__(TokenStore)
        view.__dict__.update(self.__dict__)
        view._rows = rows
        return view

    def subset(self, indices: Sequence[int] | np.ndarray) -> TokenStore:
        """A view of the examples at ``indices`` (positions in this store or view)."""
        return self._view(self._rows[np.asarray(indices, dtype=np.int64)])

    def filter(
        self,
        *,
        split: str | None = None,
        source: str | None = None,
        pseudo: bool | None = None,
        has: Sequence[Modality | str] = (),
    ) -> TokenStore:
        """A view of the examples matching all the given conditions (``has``: modalities
        the example must have)."""
        keep = np.ones(len(self._rows), dtype=bool)
        if split is not None:
            keep &= self._split_codes[self._rows] == _code(self._split_names, split, "split")
        if source is not None:
            keep &= self._source_codes[self._rows] == _code(self._source_names, source, "source")
        if pseudo is not None:
            keep &= self._pseudo[self._rows] == pseudo
        for m in has:
            keep &= self.lengths(m) >= 0
        return self._view(self._rows[keep])

    def split(self, name: str) -> TokenStore:
        """The view of one split (``train``, ``valid``...); unknown names are a TmtError."""
        return self.filter(split=name)

    # -- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rows)

    def _locate(self, row: int) -> tuple[_Shard, int]:
        shard = int(np.searchsorted(self._starts, row, side="right")) - 1
        return self._shards[shard], row - int(self._starts[shard])

    def __getitem__(self, i: int) -> TokenExample:
        n = len(self._rows)
        if not -n <= i < n:
            raise IndexError(f"token store index {i} out of range ({n} examples)")
        row = int(self._rows[i])
        shard, local = self._locate(row)
        tokens: dict[str, torch.Tensor | None] = {}
        raw_bytes: dict[str, int] = {}
        for m in MODALITIES:
            flat, index = shard.arrays(m.value)
            start, length, raw = (int(x) for x in index[local])
            # A copy (int32 memmap -> int64 tensor): the example outlives the mapping.
            tokens[m.value] = (
                None
                if length < 0
                else torch.from_numpy(flat[start : start + length].astype(np.int64))
            )
            if raw >= 0:
                raw_bytes[m.value] = raw
        return TokenExample(
            id=self._ids[row],
            split=self._split_names[self._split_codes[row]],
            source=self._source_names[self._source_codes[row]],
            pseudo=bool(self._pseudo[row]),
            speech=tokens["speech"],
            image=tokens["image"],
            text=tokens["text"],
            raw_bytes=raw_bytes,
        )

    def __iter__(self) -> Iterator[TokenExample]:
        for i in range(len(self)):
            yield self[i]

    @property
    def ids(self) -> list[str]:
        return [self._ids[r] for r in self._rows]

    def pseudo_flags(self) -> np.ndarray:
        """Per example of this view: True if back-translated (bool array, no tokens read)."""
        return self._pseudo[self._rows].copy()

    def _column(self, modality: Modality | str, column: int) -> np.ndarray:
        key = (Modality.parse(modality).value, column)
        if key not in self._columns:
            per_shard = [s.arrays(key[0])[1][:, column] for s in self._shards]
            whole = np.concatenate(per_shard) if per_shard else np.zeros(0, dtype=np.int64)
            self._columns[key] = np.asarray(whole, dtype=np.int64)
        return self._columns[key][self._rows]

    def lengths(self, modality: Modality | str) -> np.ndarray:
        """Token count per example of this view (-1 where the modality is absent)."""
        return self._column(modality, 1)

    def raw_bytes(self, modality: Modality | str) -> np.ndarray:
        """Recorded raw media size per example (-1 where unknown or absent)."""
        return self._column(modality, 2)

    def stats(self) -> dict[str, Any]:
        """Counts per split / source, pseudo count, and token-length figures per modality."""
        modalities: dict[str, dict[str, float | int]] = {}
        for m in MODALITIES:
            lengths = self.lengths(m)
            present = lengths[lengths >= 0]
            modalities[m.value] = {
                "examples": int(present.size),
                "tokens": int(present.sum()),
                "mean": float(present.mean()) if present.size else 0.0,
                "min": int(present.min()) if present.size else 0,
                "max": int(present.max()) if present.size else 0,
            }
        return {
            "examples": len(self),
            "splits": dict(Counter(self._split_names[c] for c in self._split_codes[self._rows])),
            "sources": dict(Counter(self._source_names[c] for c in self._source_codes[self._rows])),
            "pseudo": int(self._pseudo[self._rows].sum()),
            "modalities": modalities,
        }

    def __repr__(self) -> str:
        paths = ", ".join(str(p) for p in self.paths)
        return f"TokenStore({paths!r}, examples={len(self)})"


def _categorical(values: list[str]) -> tuple[list[str], np.ndarray]:
    names = sorted(set(values))
    lookup = {name: i for i, name in enumerate(names)}
    return names, np.array([lookup[v] for v in values], dtype=np.int32)


def _code(names: list[str], value: str, what: str) -> int:
    if value not in names:
        known = ", ".join(names) or "none"
        raise TmtError(f"no {what} {value!r} in the token store (has: {known})")
    return names.index(value)
