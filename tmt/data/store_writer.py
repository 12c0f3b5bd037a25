"""``TokenStoreWriter``: writes a token store shard by shard, atomically, resumably."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tmt.data.records import TokenExample
from tmt.data.store_format import (
    FORMAT,
    MANIFEST,
    MAX_ID,
    SHARD_RE,
    TMP_PREFIX,
    VERSION,
    merge_vocab_sizes,
    read_manifest,
    shard_dirs,
    write_json_atomic,
)
from tmt.errors import TmtError
from tmt.modality import MODALITIES, Modality


def _as_ids(value: Any, name: str, vocab_size: int | None, example_id: str) -> np.ndarray:
    array = value.numpy(force=True) if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise TmtError(f"example {example_id!r}: {name} ids must be a 1-D integer sequence")
    if array.size:
        low, high = int(array.min()), int(array.max())
        limit = MAX_ID if vocab_size is None else vocab_size - 1
        if low < 0 or high > limit:
            bad = low if low < 0 else high
            raise TmtError(f"example {example_id!r}: {name} id {bad} out of range [0, {limit}]")
    return array.astype(np.int32)


class TokenStoreWriter:
    """Write :class:`TokenExample` records shard by shard into ``out_dir``.

    ``vocab_sizes`` (modality name -> codec vocabulary size) is recorded in ``store.json``,
    checked against what an existing store recorded, and used to range-check every id.
    Use as a context manager, or call :meth:`close`: the last, partial shard is written then.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        shard_size: int = 1000,
        vocab_sizes: dict[Modality | str, int] | None = None,
        prefix: str = "shard",
    ) -> None:
        if shard_size < 1:
            raise TmtError(f"shard_size must be positive, got {shard_size}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", prefix):
            raise TmtError(f"shard prefix must be letters, digits or _, got {prefix!r}")
        self.out_dir = Path(out_dir)
        self.shard_size = shard_size
        self.prefix = prefix
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise TmtError(f"token store {self.out_dir} is a file, not a directory")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TmtError(f"cannot create the token store {self.out_dir}: {error.strerror}") from None
        self.vocab_sizes: dict[str, int] = {}
        """Modality name -> codec vocabulary size, as recorded in ``store.json``."""
        if (self.out_dir / MANIFEST).exists():
            self.vocab_sizes = read_manifest(self.out_dir).get("vocab_sizes", {})
        self.set_vocab_sizes(vocab_sizes or {})

        # Leftovers of this prefix's interrupted shard writes are never visible to readers.
        for stale in self.out_dir.glob(f"{TMP_PREFIX}{prefix}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.done_ids: set[str] = set()
        """Ids already durably stored (by any writer of this store): skip them to resume."""
        next_index = 0
        for shard in shard_dirs(self.out_dir):
            self.done_ids.update(json.loads((shard / "meta.json").read_text())["ids"])
            match = SHARD_RE.match(shard.name)
            if match and match["prefix"] == prefix:
                next_index = max(next_index, int(match["index"]) + 1)
        self._next_index = next_index
        self._pending: list[TokenExample] = []
        self._pending_arrays: list[dict[str, np.ndarray | None]] = []
        self._pending_ids: set[str] = set()
        self._closed = False
        self.written = 0
        """Examples written to complete shards by this writer."""

    def set_vocab_sizes(self, vocab_sizes: dict[Modality | str, int]) -> None:
        """Record codec vocabulary sizes; a size differing from the recorded one is a TmtError."""
        given = {Modality.parse(m).value: int(v) for m, v in vocab_sizes.items()}
        self.vocab_sizes = merge_vocab_sizes(self.vocab_sizes, given, self.out_dir)
        manifest = {"format": FORMAT, "version": VERSION, "vocab_sizes": self.vocab_sizes}
        write_json_atomic(self.out_dir / MANIFEST, manifest)

    def __contains__(self, example_id: object) -> bool:
        return example_id in self.done_ids or example_id in self._pending_ids

    def add(self, example: TokenExample) -> None:
        """Queue one example; a full shard is written out. Raises :class:`TmtError` for a
        duplicate id, an example without tokens, or ids out of range."""
        if self._closed:
            raise TmtError("token store writer is closed")
        if not example.id or not isinstance(example.id, str):
            raise TmtError(f"example id must be a non-empty string, got {example.id!r}")
        if example.id in self:
            raise TmtError(f"duplicate example id {example.id!r} in {self.out_dir}")
        arrays: dict[str, np.ndarray | None] = {}
        for m in MODALITIES:
            value = example.tokens(m)
            vocab = self.vocab_sizes.get(m.value)
            arrays[m.value] = None if value is None else _as_ids(value, m.value, vocab, example.id)
        if all(a is None for a in arrays.values()):
            raise TmtError(f"example {example.id!r} has no tokens in any modality")
        self._pending.append(example)
        self._pending_arrays.append(arrays)
        self._pending_ids.add(example.id)
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the queued examples as one shard (temp directory + rename: atomic)."""
        if not self._pending:
            return
        name = f"{self.prefix}-{self._next_index:05d}"
        tmp = self.out_dir / f"{TMP_PREFIX}{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        meta = {
            "ids": [e.id for e in self._pending],
            "split": [e.split for e in self._pending],
            "source": [e.source for e in self._pending],
            "pseudo": [bool(e.pseudo) for e in self._pending],
        }
        for m in MODALITIES:
            parts = [a[m.value] for a in self._pending_arrays]
            lengths = np.array([-1 if p is None else len(p) for p in parts], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(np.maximum(lengths, 0))[:-1]])
            raw = [e.raw_bytes.get(m.value, -1) for e in self._pending]
            index = np.stack([starts, lengths, np.array(raw, dtype=np.int64)], axis=1)
            flat = [p for p in parts if p is not None]
            tokens = np.concatenate(flat) if flat else np.zeros(0, dtype=np.int32)
            _save_synced(tmp / f"{m.value}.tokens.npy", tokens.astype(np.int32))
            _save_synced(tmp / f"{m.value}.index.npy", index)
        with open(tmp / "meta.json", "w", encoding="utf-8") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.out_dir / name)  # the commit point: the shard appears whole
        self.done_ids.update(self._pending_ids)
        self.written += len(self._pending)
        self._next_index += 1
        self._pending, self._pending_arrays, self._pending_ids = [], [], set()

    def close(self) -> None:
        """Write the last (partial) shard. Idempotent."""
        if not self._closed:
            self.flush()
            self._closed = True

    def __enter__(self) -> TokenStoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an exception the examples queued so far are still complete: keep them.
        self.close()


def _save_synced(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
