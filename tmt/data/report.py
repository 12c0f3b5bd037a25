"""Bits per example, tokens against raw media (the paper's Table 1).

For each modality: mean tokens per example, token bits = tokens x log2(vocab size), the raw
media bits (wav / image file bytes x 8 and caption UTF-8 bytes x 8 as recorded at
tokenization, or a figure the caller gives, e.g. 8 bits x H x W x 3 raw pixels) and the
compression ratio raw / token bits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tmt.data.store import TokenStore
from tmt.errors import TmtError
from tmt.modality import MODALITIES, Modality


def bits_report(
    store: TokenStore,
    vocab_sizes: dict[Modality | str, int] | None = None,
    raw_bits: dict[Modality | str, float] | None = None,
) -> dict[str, Any]:
    """Per-modality bits per example of ``store``.

    ``vocab_sizes`` (modality -> codec vocabulary size) defaults to what the store recorded;
    ``raw_bits`` (modality -> raw bits per example) overrides the recorded raw file sizes.
    Returns ``{"examples": n, "modalities": {name: {...}}}``; each modality the store holds
    has ``examples``, ``mean_tokens``, ``vocab_size``, ``bits_per_token``, ``token_bits``,
    ``raw_bits`` (None when unknown), ``raw_from`` (``"recorded"``/``"given"``/None) and
    ``compression`` (raw / token bits, None when raw is unknown).
    """
    sizes = dict(store.vocab_sizes)
    sizes.update({Modality.parse(m).value: int(v) for m, v in (vocab_sizes or {}).items()})
    given_raw = {Modality.parse(m).value: float(v) for m, v in (raw_bits or {}).items()}
    rows: dict[str, dict[str, Any]] = {}
    for m in MODALITIES:
        lengths = store.lengths(m)
        present = lengths >= 0
        if not present.any():
            continue
        if sizes.get(m.value, 0) < 2:
            raise TmtError(
                f"the {m.value} vocabulary size is unknown: give it (e.g. {m.value}=200)"
            )
        vocab = sizes[m.value]
        mean_tokens = float(lengths[present].mean())
        bits_per_token = math.log2(vocab)
        token_bits = mean_tokens * bits_per_token
        raw, raw_from = _raw_bits(store.raw_bytes(m)[present], given_raw.get(m.value))
        rows[m.value] = {
            "examples": int(present.sum()),
            "mean_tokens": mean_tokens,
            "vocab_size": vocab,
            "bits_per_token": bits_per_token,
            "token_bits": token_bits,
            "raw_bits": raw,
            "raw_from": raw_from,
            "compression": raw / token_bits if raw is not None and token_bits > 0 else None,
        }
    return {"examples": len(store), "modalities": rows}


def _raw_bits(recorded: np.ndarray, given: float | None) -> tuple[float | None, str | None]:
    if given is not None:
        return given, "given"
    known = recorded[recorded >= 0]
    if known.size == 0:
        return None, None
    # The mean over the examples whose raw size was recorded.
    return float(known.mean()) * 8.0, "recorded"


def format_bits_report(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    header = (
        "modality", "examples", "tokens/ex", "vocab", "bits/token", "token bits/ex",
        "raw bits/ex", "raw/token",
    )  # fmt: skip
    lines = [header]
    for name, row in report["modalities"].items():
        raw = row["raw_bits"]
        ratio = row["compression"]
        lines.append(
            (
                name,
                str(row["examples"]),
                f"{row['mean_tokens']:.1f}",
                str(row["vocab_size"]),
                f"{row['bits_per_token']:.2f}",
                f"{row['token_bits']:,.0f}",
                "unknown"
                if raw is None
                else f"{raw:,.0f}" + (" (given)" if row["raw_from"] == "given" else ""),
                "-" if ratio is None else f"{ratio:,.1f}x" if ratio < 10 else f"{ratio:,.0f}x",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        )
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([f"{report['examples']} examples", *text])


def parse_modality_values(items: list[str] | None, what: str) -> dict[str, float]:
    """``["speech=200", "image=8192"]`` -> ``{"speech": 200.0, "image": 8192.0}``."""
    values: dict[str, float] = {}
    for item in items or []:
        name, sep, number = item.partition("=")
        try:
            if not sep:
                raise ValueError
            values[Modality.parse(name).value] = float(number)
        except ValueError:
            raise TmtError(f"bad {what} {item!r}: expected MODALITY=NUMBER") from None
    return values
